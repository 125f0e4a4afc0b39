// The system requests (sys:get_state, suspend, stop...) a server serves between its callbacks;
// they are answered with a SystemOk (gen_server.hpp) or the state.
#pragma once

#include <cstdint>
#include <functional>
#include <typeinfo>

#include "coppice/exit_reason.hpp"

namespace coppice::detail {

// Requests served by the behaviour between callbacks, never by user code.
struct SystemRequest {
  enum class Op : std::uint8_t { get_state, replace_state, suspend, resume, get_status, stop } op;
  const std::type_info* state_type = nullptr;
  std::function<void(void*)> replace;
  ExitReason reason;
};

}  // namespace coppice::detail
