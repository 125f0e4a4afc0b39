// Where processes, envelopes and coroutine frames get their memory.
#include "runtime/allocation.hpp"

#include <cstdlib>
#include <new>

#include "coppice/async.hpp"
#include "coppice/message.hpp"

#ifndef COPPICE_SYSTEM_ALLOCATOR
#include <mimalloc.h>
#endif

namespace coppice::detail {

void* allocate(std::size_t size, std::size_t alignment) {
#ifdef COPPICE_SYSTEM_ALLOCATOR
  void* p = alignment <= alignof(std::max_align_t) ? std::malloc(size)
                                                   : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
#else
  void* p = alignment <= 16 ? mi_malloc(size) : mi_malloc_aligned(size, alignment);
#endif
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void deallocate(void* p) noexcept {
#ifdef COPPICE_SYSTEM_ALLOCATOR
  std::free(p);
#else
  mi_free(p);
#endif
}

void* allocate_envelope(std::size_t size, std::size_t alignment) { return allocate(size, alignment); }

void free_envelope(Envelope* e) noexcept {
  if (const TypeInfo* t = e->type(); t != nullptr && t->destroy != nullptr) t->destroy(e->payload());
  e->~Envelope();
  deallocate(e);
}

void* allocate_frame(std::size_t size) { return allocate(size, alignof(std::max_align_t)); }
void free_frame(void* frame) noexcept { deallocate(frame); }

}  // namespace coppice::detail
