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

namespace detail {
struct ProcessHeader;
class RuntimeCore;

struct SpawnOptions {
  bool link = false;
  bool monitor = false;  // fills `monitor_ref`
  Ref* monitor_ref = nullptr;
};

struct ProcessMemory {
  ProcessHeader* header;
  void* object;  // where the Process object is built
};
ProcessMemory allocate_process(std::size_t object_size, std::size_t object_alignment);
void abandon_process(ProcessMemory memory) noexcept;  // the object's constructor threw
Pid start_process(RuntimeCore& core, ProcessMemory memory, Process* object, const SpawnOptions& options);

RuntimeCore& current_core();  // the runtime of the running process; throws outside one
bool is_alive(RuntimeCore& core, Pid pid);
// The running process's behaviour has logged its crash report: the runtime logs no other.
void mark_crash_reported();
// A supervisor's shutdown of one child in one signal: unlinks `pid` (this side at once, so
// the child's EXIT is not delivered; the child's side, if this side had a link, when the
// signal arrives, before the exit acts), monitors it and sends it an exit signal with `reason`. The DOWN (with the
// child's exit reason, or noproc if it was gone) is guaranteed, as after unlink + monitor +
// exit, which this replaces at a third of the signals.
Ref exit_monitored(Pid pid, ExitReason reason);
Pid whereis(RuntimeCore& core, std::string_view name);
void log(RuntimeCore& core, std::string_view line);
RuntimeCore* current_core_or_null() noexcept;
void send_envelope(RuntimeCore& core, Pid to, Envelope* e);
Status send_envelope_to_name(RuntimeCore& core, std::string_view name, Envelope* e);
void start_activity(std::coroutine_handle<> root, bool body);

template <class P, class... Args>
Pid spawn_in(RuntimeCore& core, const SpawnOptions& options, Args&&... args) {
  static_assert(std::is_base_of_v<Process, P>, "a process class derives from coppice::Process");
  ProcessMemory memory = allocate_process(sizeof(P), alignof(P));
  P* object;
  try {
    object = new (memory.object) P(std::forward<Args>(args)...);
  } catch (...) {
    abandon_process(memory);
    throw;
  }
  return start_process(core, memory, object, options);
}

// A process whose body is a coroutine: the callable and its arguments live in the process.
template <class F, class... Args>
class BodyProcess final : public Process {
 public:
  template <class G, class... A>
  explicit BodyProcess(G&& f, A&&... args) : f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}
  void init() override { start_activity(std::apply(f_, args_).release(), true); }
  void handle(Message) override {}

 private:
  F f_;
  std::tuple<Args...> args_;
};

template <class F, class... Args>
concept AsyncBody = std::is_same_v<std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>, Async<void>>;

// One pending receive of the running process: what it matches and where it resumes.
struct ReceiveWait {
  using Match = bool (*)(const ReceiveWait&, Envelope&);
  Match match = nullptr;
  const void* context = nullptr;
  std::uint64_t ref = 0;           // for matches on a reference
  std::int64_t timeout_ns = -1;    // < 0: wait forever
  std::coroutine_handle<> handle;
  Envelope* result = nullptr;      // the matched envelope, removed from the queue
  Envelope* scanned = nullptr;     // last queued envelope already examined
  TimerRef timer;
  std::uint64_t timer_token = 0;
  bool timed_out = false;
  bool waiting = false;
  // Done at once, but suspended anyway to give the worker back (done_or_yield): the turn
  // ends here and the process's next turn resumes it first, with the result already in.
  bool yielded = false;

  ReceiveWait() = default;
  // Moved only before it is awaited (awaiters are returned by value from receive()).
  ReceiveWait(ReceiveWait&& o) noexcept
      : match(o.match), context(o.context), ref(o.ref), timeout_ns(o.timeout_ns),
        result(std::exchange(o.result, nullptr)) {}
  ReceiveWait& operator=(ReceiveWait&&) = delete;
  ~ReceiveWait();

  bool ready();                          // drains and scans; true if done (matched or timed out)
  // What an awaiter's await_ready returns for an await that is `done` at once: true, unless
  // the running process has completed RuntimeOptions::messages_per_turn awaits at once in
  // this turn; then false with `yielded` set, and suspend() makes it a yield, as the BEAM
  // preempts a process whose reductions are spent (a loop of failing calls never suspends
  // otherwise, and would hold its worker for ever).
  bool done_or_yield(bool done);
  void suspend(std::coroutine_handle<> h);
  Message take() { return Message::adopt(std::exchange(result, nullptr)); }
};

template <class T>
bool match_type(const ReceiveWait&, Envelope& e) {
  return e.type() == &type_info_v<T>;
}
template <class Pred>
bool match_predicate(const ReceiveWait& w, Envelope& e) {
  Message m = Message::adopt(&e);
  bool ok = (*static_cast<const Pred*>(w.context))(static_cast<const Message&>(m));
  m.release();
  return ok;
}
inline bool match_any(const ReceiveWait&, Envelope&) { return true; }
// A reply to the alias w.ref, or the DOWN of the monitor w.ref.
bool match_reply(const ReceiveWait& w, Envelope& e);

std::int64_t to_timeout_ns(std::chrono::nanoseconds timeout);
// Where the runtime counts in whole milliseconds (an Inbox's call, a timer, process_info), a
// timeout or delay is rounded up: it never ends before the time asked for.
inline std::chrono::milliseconds whole_milliseconds(std::chrono::nanoseconds t) {
  return std::chrono::ceil<std::chrono::milliseconds>(t);
}

// A call in flight: request sent with a monitor on the server and an alias for the reply.
struct CallWait {
  ReceiveWait wait;
  Pid to;
  std::string name;  // when called by name
  Envelope* request = nullptr;
  bool started = false;
  Error early{ErrorKind::noproc, {}};
  bool failed_early = false;

  CallWait() = default;
  // Moved only before it is awaited.
  CallWait(CallWait&& o) noexcept
      : wait(std::move(o.wait)), to(o.to), name(std::move(o.name)), request(std::exchange(o.request, nullptr)) {}
  CallWait& operator=(CallWait&&) = delete;
  ~CallWait();
  bool start();     // sends, then looks for the answer: true if it is already there
  bool send_now();  // sends only; false if it failed early (see `early`)
  Result<Message> finish();
};

}  // namespace detail

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

namespace detail {
// A call's reply as an R: the reply itself, an error that came instead, or invalid_argument
// when the reply holds another type.
template <class R>
Result<R> reply_as(Result<Message> reply, Pid to) {
  if (!reply) return reply.error();
  if (const Error* e = reply->template get_if<Error>(); e != nullptr && !std::is_same_v<R, Error>) return *e;
  if constexpr (std::is_same_v<R, Message>) {
    return std::move(reply).value();
  } else {
    if (!reply->template is<R>())
      return Error(ErrorKind::invalid_argument, "call: the reply holds " + reply->type_name() + ", not the type asked for",
                   to);
    return reply->template take<R>();
  }
}
}  // namespace detail

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
  auto* e = Message::of(std::forward<T>(value)).release();
  e->set_type(e->type(), detail::Addressing::alias);
  e->ref = to.ref.bits();
  detail::send_envelope(detail::current_core(), to.pid, e);
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

namespace detail {
RequestId send_request_envelope(Pid to, Envelope* request);
TimerRef start_timer(RuntimeCore& core, std::chrono::milliseconds delay, Pid to, Envelope* e);
bool cancel_timer(RuntimeCore& core, TimerRef timer);
}  // namespace detail

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
