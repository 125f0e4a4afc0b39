// Where processes, envelopes and coroutine frames get their memory: mimalloc, or malloc
// under a sanitizer so that every allocation is tracked.
#pragma once

#include <cstddef>

namespace coppice::detail {

void* allocate(std::size_t size, std::size_t alignment);
void deallocate(void* p) noexcept;

}  // namespace coppice::detail
