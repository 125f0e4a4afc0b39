// The start of a server: the acknowledgement its starter waits for, and the spawn.
// Part of gen_server.hpp, which includes it after the callback result types it uses.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "coppice/async.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/server_ref.hpp"

namespace coppice::detail {

// The acknowledgement a starting server sends its starter once init has returned.
struct InitAck {
  enum class Kind : std::uint8_t { ok, ignore, error, stop } kind;
  ExitReason reason;
  Error error{ErrorKind::start_error, {}};
};

// How a starting server finds its starter, and what it keeps of its StartOptions for life:
// its parent, and its name only if it has one (most servers do not, and a million idle
// children should not carry a million empty names).
struct StartContext {
  StartContext(From ack_, Pid parent_, StartOptions&& options)
      : ack(ack_), parent(parent_), name_(options.name.empty() ? nullptr : new ServerRef(std::move(options.name))) {}

  From ack;    // the starter's alias for the InitAck
  Pid parent;  // the starter, when linked (start_link); Pid{} otherwise
  const ServerRef& name() const { return name_ ? *name_ : no_name; }

 private:
  static inline const ServerRef no_name{};
  std::unique_ptr<ServerRef> name_;
};

// Non-template parts (gen_server.cpp).
Async<Result<Pid>> await_start(Pid pid, Ref monitor, From ack, bool linked, std::chrono::nanoseconds timeout);
Status init_prologue(const StartContext& context);  // registers the name; an error ends the start
void acknowledge(const StartContext& context, InitAck ack);

// The process that runs a server (detail/server_process.hpp).
template <class D, class... Args>
class ServerProcess;

template <class D, class... Args>
Async<Result<Pid>> start_server(bool link, StartOptions options, Args... args) {
  // One ref is the alias the acknowledgement comes to and the monitor on the server, as a
  // call's: the server's acknowledgement then takes the monitor away with it (no demonitor).
  const From ack = alias();
  Ref monitor_ref = ack.ref;
  const std::chrono::nanoseconds timeout = options.timeout;
  StartContext context(ack, link ? self() : Pid{}, std::move(options));
  Pid pid = spawn_in<ServerProcess<D, Args...>>(current_core(), SpawnOptions{.link = link, .monitor = true, .monitor_ref = &monitor_ref},
                                                std::move(context), std::move(args)...);
  Async<Result<Pid>> wait = await_start(pid, monitor_ref, ack, link, timeout);
  co_return co_await wait;
}

template <class D, class... Args>
PendingStart spawn_server(StartOptions options, Args... args) {
  const From ack = alias();
  Ref monitor_ref = ack.ref;  // as start_server's
  StartContext context(ack, self(), std::move(options));
  Pid pid = spawn_in<ServerProcess<D, Args...>>(current_core(), SpawnOptions{.link = true, .monitor = true, .monitor_ref = &monitor_ref},
                                                std::move(context), std::move(args)...);
  return PendingStart{pid, ack, monitor_ref};
}

}  // namespace coppice::detail
