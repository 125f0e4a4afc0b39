// The client side of a server behind GenServer's call, cast and stop, and sys.
// Part of gen_server.hpp, which includes it after the callback result types it uses.
#pragma once

#include <chrono>
#include <functional>

#include "coppice/async.hpp"
#include "coppice/detail/server_dispatch.hpp"
#include "coppice/inbox.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/server_ref.hpp"

namespace coppice::detail {

// The result of running `work` on a helper process, for a plain thread that waits for it.
Result<Message> run_blocking(Runtime& rt, std::function<Async<Message>()> work);

// Client side of the system requests and of stop.
template <class R>
CallAwaiter<R> call_ref(const ServerRef& server, Message request, std::chrono::nanoseconds timeout);
Async<Status> stop_server(ServerRef server, ExitReason reason, std::chrono::nanoseconds timeout);
void cast_message(const ServerRef& server, Message m);
void cast_message(Runtime& rt, const ServerRef& server, Message m);
// A call from a plain thread: through an Inbox made for it (call_blocking; see
// GenServer::call(Runtime&, ...)), or through the thread's own (call_through).
Result<Message> call_blocking(Runtime& rt, const ServerRef& server, Message request, std::chrono::nanoseconds timeout);
Result<Message> call_through(Inbox& inbox, const ServerRef& server, Message request, std::chrono::nanoseconds timeout);

// Whether D declares Req in its `calls`: only those reach a typed handle_call, so the typed
// client helpers refuse any other request at compile time, as cast refuses one not in `casts`.
template <class D, class Req>
consteval bool declares_call() {
  if constexpr (HasCalls<D>) {
    return CallTable<D, typename D::calls>::template contains<Req>;
  } else {
    return false;
  }
}
template <class D, class Msg>
consteval bool accepts_cast() {
  if constexpr (HasCasts<D>) {
    return NoReplyTable<D, typename D::casts, true>::template contains<Msg>;
  } else {
    return true;  // without `casts`, a handle_cast(Message) (or handle_info(Message)) takes any
  }
}
template <class R>
CallAwaiter<R> call_ref(const ServerRef& server, Message request, std::chrono::nanoseconds timeout) {
  CallAwaiter<R> a;
  // infinity arms no timer (a wait that never ends needs none).
  a.c.wait.timeout_ns = timeout >= infinity ? -1 : to_timeout_ns(timeout);
  if (server.is_local_name()) {
    a.c.name = server.local_name();
  } else {
    a.c.to = server.is_pid() ? server.pid() : server.whereis();
    if (!a.c.to) {
      a.c.started = true;
      a.c.failed_early = true;
      a.c.early = Error(ErrorKind::noproc, "call: no process is registered as " + server.to_string());
      return a;
    }
  }
  a.c.request = request.release();
  return a;
}

}  // namespace coppice::detail
