// Writing a process: the Process base class, and the functions a running process calls
// (self, send, spawn, link, monitor, exit, trap_exit, names, timers, receive, call).
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "coppice/async.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/signals.hpp"
#include "coppice/timer.hpp"
#include "coppice/detail/call_wait.hpp"
#include "coppice/detail/receive_wait.hpp"
#include "coppice/detail/runtime_core.hpp"

namespace coppice {

class Runtime;

// Base of a process written as a class: init() runs first, then handle() receives each
// message in order of arrival, until the process exits. The object is destroyed when the
// process ends, whatever the reason (also on kill: a C++ destructor always runs), before
// its links and monitors are told, so whatever the destructor sends arrives first. A
// process whose first turn never came (spawned as its runtime stopped) is killed without
// running init(): its destructor runs on an object init() never saw.
class Process {
 public:
  virtual ~Process() = default;
  virtual void init() {}
  virtual void handle(Message message) = 0;

 protected:
  // Makes `work` this process's current activity: until it finishes, handle() is not called
  // and messages wait in the mailbox for the receives `work` makes (a call's reply, say).
  // The worker thread is never blocked: while `work` waits, other processes run.
  void await(Async<void> work);
};

// Raised by exit(reason) to end the current process; the runtime catches it.
struct ProcessExit {
  ExitReason reason;
};

}  // namespace coppice

// How a process is spawned (needs class Process above).
#include "coppice/detail/spawn.hpp"

namespace coppice {

template <class T>
struct ReceiveAwaiter {
  detail::ReceiveWait w;
  bool await_ready() { return w.done_or_yield(w.ready()); }
  void await_suspend(std::coroutine_handle<> h) { w.suspend(h); }
  T await_resume() {
    Message m = w.take();
    if constexpr (std::is_same_v<T, Message>) {
      return m;
    } else {
      return m.template take<T>();
    }
  }
};

template <class T>
struct ReceiveForAwaiter {
  detail::ReceiveWait w;
  bool await_ready() { return w.done_or_yield(w.ready()); }
  void await_suspend(std::coroutine_handle<> h) { w.suspend(h); }
  std::optional<T> await_resume() {
    if (!w.result) return std::nullopt;
    Message m = w.take();
    if constexpr (std::is_same_v<T, Message>) {
      return std::optional<Message>(std::move(m));
    } else {
      return m.template take<T>();
    }
  }
};

template <class R>
struct CallAwaiter {
  detail::CallWait c;
  bool await_ready() { return c.wait.done_or_yield(c.started ? (c.failed_early || c.wait.ready()) : c.start()); }
  void await_suspend(std::coroutine_handle<> h) { c.wait.suspend(h); }
  Result<R> await_resume() { return detail::reply_as<R>(c.finish(), c.to); }
};

// ---- The running process -------------------------------------------------------------

// The running process's pid; Pid{} on a thread that is not running a process.
Pid self();
// True while the running process traps exits.
bool trapping_exits();
// Sets whether exit signals become Exit messages; returns the previous setting.
bool trap_exit(bool on);

// Sends to a pid: never fails; a message to a dead pid is dropped, as in OTP, and so is one
// to a pid of another Runtime (it reaches nobody, whatever process here has the same slot).
template <class T>
void send(Pid to, T&& value) {
  detail::RuntimeCore& core = detail::current_core();
  detail::send_envelope(core, to, Message::of(std::forward<T>(value)).release());
}
inline void send(Pid to, Message message) {
  detail::send_envelope(detail::current_core(), to, message.release());
}
// Sends to a registered name: unknown_name when nobody holds it.
template <class T>
Status send(std::string_view name, T&& value) {
  return detail::send_envelope_to_name(detail::current_core(), name, Message::of(std::forward<T>(value)).release());
}

// Replies to a request (see Message::reply_to); any process may reply for the server.
// A reply that arrives after the caller gave up is pushed like any message and dropped
// when the caller takes it in (its alias is no longer active): it never reaches a receive.
template <class T>
void reply(const From& to, T&& value) {
  detail::send_reply_envelope(detail::current_core(), to, Message::of(std::forward<T>(value)).release());
}

// Spawns a process of class P built from args; the new process runs init() first. While the
// runtime stops, every spawn (spawn_link and spawn_monitor too) is refused: the object is
// destroyed before it returns, the pid is Pid{} (no link is made; spawn_monitor's Ref is
// empty), as Runtime::spawn describes.
template <class P, class... Args>
Pid spawn(Args&&... args) {
  return detail::spawn_in<P>(detail::current_core(), {}, std::forward<Args>(args)...);
}
// Spawns a process whose body is the coroutine f(args...); it exits normal when it returns.
template <class F, class... Args>
  requires detail::AsyncBody<F, Args...>
Pid spawn(F&& f, Args&&... args) {
  using Body = detail::BodyProcess<std::decay_t<F>, std::decay_t<Args>...>;
  return detail::spawn_in<Body>(detail::current_core(), {}, std::forward<F>(f), std::forward<Args>(args)...);
}
// Spawn and link in one step: the child cannot die unobserved.
template <class P, class... Args>
Pid spawn_link(Args&&... args) {
  return detail::spawn_in<P>(detail::current_core(), {.link = true}, std::forward<Args>(args)...);
}
template <class F, class... Args>
  requires detail::AsyncBody<F, Args...>
Pid spawn_link(F&& f, Args&&... args) {
  using Body = detail::BodyProcess<std::decay_t<F>, std::decay_t<Args>...>;
  return detail::spawn_in<Body>(detail::current_core(), {.link = true}, std::forward<F>(f), std::forward<Args>(args)...);
}
// Spawn and monitor in one step; returns the child and the monitor's reference.
template <class P, class... Args>
std::pair<Pid, Ref> spawn_monitor(Args&&... args) {
  Ref ref;
  Pid pid = detail::spawn_in<P>(detail::current_core(), {.monitor = true, .monitor_ref = &ref},
                                std::forward<Args>(args)...);
  return {pid, ref};
}
template <class F, class... Args>
  requires detail::AsyncBody<F, Args...>
std::pair<Pid, Ref> spawn_monitor(F&& f, Args&&... args) {
  using Body = detail::BodyProcess<std::decay_t<F>, std::decay_t<Args>...>;
  Ref ref;
  Pid pid = detail::spawn_in<Body>(detail::current_core(), {.monitor = true, .monitor_ref = &ref},
                                   std::forward<F>(f), std::forward<Args>(args)...);
  return {pid, ref};
}

// Links the running process to `pid`. A dead pid: noproc when not trapping exits; when
// trapping, ok and an Exit{pid, noproc} message follows (OTP's rule). A pid of another
// Runtime: foreign_pid, trapping or not.
Status link(Pid pid);
// Removes the link; afterwards no exit signal through it is acted on.
void unlink(Pid pid);
// Monitors `pid`: one Down message when it is gone (at once, noproc, if it already is; at
// once, noconnection, for a pid of another Runtime, as OTP for a node it cannot reach).
// monitor(self()) creates nothing (as ERTS): no Down, and demonitor of it returns false.
Ref monitor(Pid pid);
// Monitors the process registered as `name` now: its Down carries the name (Down::name).
// A name nobody holds gives a Down with reason noproc at once.
Ref monitor(std::string_view name);

// An alias (OTP 24): an address, From{self(), ref}, that others reply to with reply(); once
// unalias() returns, whatever is sent to it is dropped before it reaches the mailbox.
From alias();
// true if the alias was active.
bool unalias(Ref ref);

struct DemonitorOptions {
  bool flush = false;  // also remove a Down for this monitor already in the mailbox
};
// Stops a monitor; true if it was still active (OTP's demonitor(Ref, [info])).
bool demonitor(Ref ref, DemonitorOptions options = {});

// Sends an exit signal to `pid`; see SEMANTICS.md 1.4 for what the receiver does with it.
// To a dead pid or a pid of another Runtime it is dropped, as a message is.
// A kill takes effect at the receiver's next scheduling point: a callback that is running
// finishes first (C++ cannot preempt it, as a NIF cannot be preempted on the BEAM).
void exit(Pid pid, ExitReason reason);
// Ends the running process with `reason` (OTP's exit/1): unwinds the callback and exits.
// Unwinding costs microseconds; stop_self is the cheap way when the callback can return.
[[noreturn]] void exit(ExitReason reason);
// Ends the running process with `reason` as soon as the current callback returns (like
// returning {stop, Reason, State} from an OTP callback): no unwinding, no further message.
void stop_self(ExitReason reason = ExitReason::normal());

// True while `pid` is alive (OTP's is_process_alive): not yet exiting.
bool is_alive(Pid pid);
// Writes one report line through the runtime's logger (RuntimeOptions::logger).
void log(std::string_view line);

// Registers a name for a process (the running one by default).
Status register_name(std::string name, Pid pid = self());
Status unregister_name(std::string_view name);
Pid whereis(std::string_view name);

// A reference unique in this runtime.
Ref make_ref();

// Sends `value` to `to` after `delay`; cancel_timer stops it unless it already fired.
// `delay` in any std::chrono unit; timers fire on whole milliseconds (a finer delay is
// rounded up).
template <class T>
TimerRef send_after(std::chrono::nanoseconds delay, Pid to, T&& value);
// true: cancelled before it fired; false: it had fired (or been cancelled) already.
bool cancel_timer(TimerRef timer);

// ---- Receiving (inside a coroutine of the running process) ---------------------------

// The first message holding a T; other messages stay queued in order.
template <class T>
ReceiveAwaiter<T> receive() {
  ReceiveAwaiter<T> a;
  a.w.match = &detail::match_type<T>;
  return a;
}
// The same with a timeout: nullopt when none came in time (0: only what is already there).
template <class T>
ReceiveForAwaiter<T> receive(std::chrono::nanoseconds timeout) {
  ReceiveForAwaiter<T> a;
  a.w.match = &detail::match_type<T>;
  a.w.timeout_ns = detail::to_timeout_ns(timeout);
  return a;
}
// The first message of any type.
inline ReceiveAwaiter<Message> receive_any() {
  ReceiveAwaiter<Message> a;
  a.w.match = &detail::match_any;
  return a;
}
inline ReceiveForAwaiter<Message> receive_any(std::chrono::nanoseconds timeout) {
  ReceiveForAwaiter<Message> a;
  a.w.match = &detail::match_any;
  a.w.timeout_ns = detail::to_timeout_ns(timeout);
  return a;
}
// The first message for which pred(const Message&) is true. `pred` must outlive the await.
template <class Pred>
ReceiveAwaiter<Message> receive_if(const Pred& pred) {
  ReceiveAwaiter<Message> a;
  a.w.match = &detail::match_predicate<Pred>;
  a.w.context = &pred;
  return a;
}
template <class Pred>
ReceiveForAwaiter<Message> receive_if(const Pred& pred, std::chrono::nanoseconds timeout) {
  ReceiveForAwaiter<Message> a;
  a.w.match = &detail::match_predicate<Pred>;
  a.w.context = &pred;
  a.w.timeout_ns = detail::to_timeout_ns(timeout);
  return a;
}

inline constexpr std::chrono::milliseconds default_call_timeout{5000};

// Every timeout is a std::chrono::nanoseconds: pass any integral std::chrono duration
// (std::chrono::seconds(1), 250ms, 100us), or coppice::infinity (gen_server.hpp).
//
// Sends `request` as a request and awaits the reply (a message of type R sent with reply()).
// Outcomes: the reply; timeout (a late reply is dropped, never queued); noproc; calling_self;
// foreign_pid (a pid of another Runtime: nothing is sent);
// exited with the server's reason when it died first.
template <class R, class Req>
CallAwaiter<R> call(Pid to, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
  CallAwaiter<R> a;
  a.c.to = to;
  a.c.request = Message::of(std::forward<Req>(request)).release();
  a.c.wait.timeout_ns = detail::to_timeout_ns(timeout);
  return a;
}
template <class R, class Req>
CallAwaiter<R> call(std::string_view name, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
  CallAwaiter<R> a;
  a.c.name = std::string(name);
  a.c.request = Message::of(std::forward<Req>(request)).release();
  a.c.wait.timeout_ns = detail::to_timeout_ns(timeout);
  return a;
}

// A request in flight, from send_request: the reference its reply will carry.
struct RequestId {
  Ref ref;
  Pid to;
  std::optional<Error> failed;  // set when it could not even be sent (calling_self, foreign_pid)
};

// OTP's send_request / receive_response: sends `request` now (monitoring the server, with an
// alias for the reply) and returns at once; receive_response later awaits the reply by its
// reference, with the outcomes of call. Several requests may be in flight at once.
template <class Req>
RequestId send_request(Pid to, Req request);

template <class R>
CallAwaiter<R> receive_response(const RequestId& id, std::chrono::nanoseconds timeout = default_call_timeout) {
  CallAwaiter<R> a;
  a.c.to = id.to;
  a.c.wait.timeout_ns = detail::to_timeout_ns(timeout);
  a.c.started = true;
  if (id.failed) {
    a.c.failed_early = true;
    a.c.early = *id.failed;
  } else {
    a.c.wait.ref = id.ref.bits();
    a.c.wait.match = &detail::match_reply;
  }
  return a;
}

// Asks another process for its ProcessInfo (served between its callbacks, like OTP's
// process_info signal); noproc if it is gone. The timeout in any std::chrono unit, rounded up
// to whole milliseconds.
CallAwaiter<ProcessInfo> process_info(Pid pid, std::chrono::milliseconds timeout = default_call_timeout);
template <class Rep, class Period>
CallAwaiter<ProcessInfo> process_info(Pid pid, std::chrono::duration<Rep, Period> timeout) {
  return process_info(pid, detail::whole_milliseconds(timeout));
}
// The running process's own info, at once.
ProcessInfo self_info();

template <class Req>
RequestId send_request(Pid to, Req request) {
  return detail::send_request_envelope(to, Message::of(std::move(request)).release());
}

template <class T>
TimerRef send_after(std::chrono::nanoseconds delay, Pid to, T&& value) {
  detail::RuntimeCore& core = detail::current_core();
  return detail::start_timer(core, detail::whole_milliseconds(delay), to, Message::of(std::forward<T>(value)).release());
}

}  // namespace coppice
