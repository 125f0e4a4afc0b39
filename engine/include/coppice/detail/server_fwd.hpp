// What a Continue carries (gen_server.hpp): the thunk that runs handle_continue, and the Step it yields.
#pragma once

#include <variant>

#include "coppice/async.hpp"
#include "coppice/message.hpp"

namespace coppice::detail {

struct Step;
using Dispatched = std::variant<Step, Async<Step>>;
using ContinueThunk = Dispatched (*)(void* server, Message& payload);

}  // namespace coppice::detail
