// GenServer: OTP's gen_server. A server class, its callbacks and what they may return, the
// synchronous start, calls, casts, stop, and the system messages served between callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include "coppice/async.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/inbox.hpp"
#include "coppice/message.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/signals.hpp"
#include "coppice/detail/server_fwd.hpp"

namespace coppice {

// A timeout that never expires. Every timeout in the API is a std::chrono::nanoseconds, so any
// integral std::chrono unit converts to it losslessly (seconds, milliseconds, microseconds...);
// this one is far enough (about 146 years) to read as never, and near enough that adding it
// to steady_clock::now() cannot overflow.
inline constexpr std::chrono::milliseconds infinity{std::numeric_limits<std::int64_t>::max() / 2000000};

// ---- What a callback may ask for after it returns (OTP's fourth element) ----------------

struct Hibernate {};
inline constexpr Hibernate hibernate{};

// What handle_info receives when a timeout a callback asked for expires with no message.
struct Timeout {};

// handle_continue(T) with this value runs before any other message (see continue_with).
struct Continue {
  Message payload;
  detail::ContinueThunk thunk = nullptr;
};

class After {
 public:
  enum class Kind : std::uint8_t { none, timeout, hibernate, continue_with };
  After() = default;
  // Any std::chrono duration (a template, so that noreply(std::chrono::seconds(1)) needs one
  // conversion, not two).
  template <class Rep, class Period>
  After(std::chrono::duration<Rep, Period> timeout) : kind_(Kind::timeout), timeout_(timeout) {}
  After(Hibernate) : kind_(Kind::hibernate) {}
  After(Continue c) : kind_(Kind::continue_with), continue_(std::move(c)) {}
  Kind kind() const { return kind_; }
  std::chrono::nanoseconds timeout() const { return timeout_; }
  Continue& continuation() { return continue_; }

 private:
  Kind kind_ = Kind::none;
  std::chrono::nanoseconds timeout_{0};
  Continue continue_;
};

// ---- Callback results --------------------------------------------------------------------

// A request to stop, convertible to whatever the callback returns (Init, CallReturn, NoReply).
struct StopRequest {
  ExitReason reason;
};

// What init returns: ok (with an After), ignore, error or stop.
class Init {
 public:
  enum class Kind : std::uint8_t { ok, ignore, error, stop };
  Init() = default;  // ok
  Init(StopRequest s) : kind_(Kind::stop), reason_(std::move(s.reason)) {}
  static Init ok(After after = {}) {
    Init i;
    i.after_ = std::move(after);
    return i;
  }
  static Init ignore() { return Init(Kind::ignore, {}); }
  static Init error(ExitReason reason) { return Init(Kind::error, std::move(reason)); }
  static Init stop(ExitReason reason) { return Init(Kind::stop, std::move(reason)); }
  Kind kind() const { return kind_; }
  const ExitReason& reason() const { return reason_; }
  After& after() { return after_; }

 private:
  Init(Kind k, ExitReason r) : kind_(k), reason_(std::move(r)) {}
  Kind kind_ = Kind::ok;
  ExitReason reason_;
  After after_;
};

// What handle_cast, handle_info and handle_continue return: noreply (with an After) or stop.
class NoReply {
 public:
  NoReply() = default;
  NoReply(After after) : after_(std::move(after)) {}
  NoReply(StopRequest s) : stop_(std::move(s.reason)) {}
  bool stops() const { return stop_.has_value(); }
  const ExitReason& reason() const { return *stop_; }
  After& after() { return after_; }

 private:
  After after_;
  std::optional<ExitReason> stop_;
};

// What handle_call returns: reply (with an After), noreply (reply later with reply(From, v)),
// stop with a reply (terminate runs first, then the reply goes), or stop without one.
template <class R>
class CallReturn {
 public:
  CallReturn(R value, After after = {}) : value_(std::move(value)), after_(std::move(after)) {}
  CallReturn(NoReply n) {
    if (n.stops()) stop_ = n.reason();
    after_ = std::move(n.after());
  }
  CallReturn(StopRequest s) : stop_(std::move(s.reason)) {}
  static CallReturn stop(ExitReason reason, R reply) {
    CallReturn c(std::move(reply));
    c.stop_ = std::move(reason);
    return c;
  }
  std::optional<R>& value() { return value_; }
  bool stops() const { return stop_.has_value(); }
  const ExitReason& reason() const { return *stop_; }
  After& after() { return after_; }

 private:
  CallReturn() = default;
  std::optional<R> value_;
  std::optional<ExitReason> stop_;
  After after_;
};

// ---- Starting ----------------------------------------------------------------------------

struct StartOptions {
  // Registered before init runs; taken: already_started with the holder, and init never runs.
  ServerRef name{};
  // init must return within this, or the server is killed and start returns timeout.
  std::chrono::nanoseconds timeout = infinity;
};

// A typed protocol: the requests a server answers (calls), the casts it takes, and the plain
// messages it expects (infos). Declared in the server class as
//   using calls = coppice::Protocol<Get, Put>;
// Dispatch is then a comparison of type identities; client helpers check at compile time.
template <class... T>
struct Protocol {};

// What get_status answers (sys:get_status).
struct ServerStatus {
  Pid pid;
  std::string name;       // the registered name, if any
  std::string behaviour;  // "GenServer", "Supervisor", ...
  bool suspended = false;
  std::size_t message_queue_len = 0;
  std::string state;  // the server's format_status(), if it has one
};

// What sys::suspend, sys::resume and sys::replace_state answer when they succeed.
struct SystemOk {};

// A start in flight (for supervisors that serve other requests while a child runs init):
// the server is spawned, linked and monitored; its acknowledgement will arrive as a reply to
// `ack`, or its DOWN to `monitor` if it dies first. start_outcome reads either.
struct PendingStart {
  Pid pid;
  From ack;
  Ref monitor;
};

// If `m` ends `start` (its acknowledgement, or its DOWN), the start's result, with the
// monitor and alias removed; nullopt if `m` is about something else. The outcomes are those of
// start_link, except that an EXIT a failed server sends its linked starter is left to the
// starter (a supervisor ignores an EXIT from a pid that is not its child).
std::optional<Result<Pid>> start_outcome(const PendingStart& start, Message& m);

}  // namespace coppice

// The engine behind the class below (coppice/detail/): how a server's process starts, reads
// its callbacks' results, dispatches and answers its clients. It uses the types above.
#include "coppice/detail/server_client.hpp"
#include "coppice/detail/server_process.hpp"
#include "coppice/detail/server_start.hpp"
#include "coppice/detail/server_system.hpp"

namespace coppice {

// ---- The base a server class derives from ---------------------------------------------

// class Counter : public coppice::GenServer<Counter> {
//  public:
//   using calls = coppice::Protocol<Get>;
//   using casts = coppice::Protocol<Add>;
//   long handle_call(Get) { return n_; }
//   void handle_cast(Add a) { n_ += a.n; }
//  private:
//   long n_ = 0;
// };
//
// Callbacks, all optional: init() -> void | Init | Async<Init> | Async<void>;
// handle_call(T[, const From&]) -> R | CallReturn<R> | void (noreply) | Async<...>;
// handle_cast(T), handle_info(T), handle_continue(T) -> void | NoReply | Async<...>;
// terminate(const ExitReason&) -> void | Async<void>; format_status() const -> std::string.
// A message whose type the server does not declare goes to handle_info(Message) if it has
// one; otherwise it is reported (unexpected_message, coppice/report.hpp) and dropped (a
// request is answered with an error). A server that ends abnormally is reported as a crash.
template <class D>
class GenServer {
 public:
  // ---- results, for the callbacks ----
  static Init ok(After after = {}) { return Init::ok(std::move(after)); }
  static Init ignore() { return Init::ignore(); }
  static Init error(ExitReason reason) { return Init::error(std::move(reason)); }
  // stop_with, not stop: inside a server class a member named stop would hide the free
  // coppice::stop(server, ...) that stops another server.
  static StopRequest stop_with(ExitReason reason) { return StopRequest{std::move(reason)}; }
  template <class R>
  static CallReturn<std::decay_t<R>> stop_with(ExitReason reason, R&& reply) {
    return CallReturn<std::decay_t<R>>::stop(std::move(reason), std::forward<R>(reply));
  }
  template <class R>
  static CallReturn<std::decay_t<R>> reply(R&& value, After after = {}) {
    return CallReturn<std::decay_t<R>>(std::forward<R>(value), std::move(after));
  }
  // A deferred reply, from this server or any process the From was handed to.
  template <class T>
  static void reply(const From& to, T&& value) {
    coppice::reply(to, std::forward<T>(value));
  }
  static NoReply noreply(After after = {}) { return NoReply(std::move(after)); }
  // handle_continue(T{...}) runs next, before any message.
  template <class T>
  static Continue continue_with(T value) {
    return Continue{Message::of(std::move(value)), &detail::continue_thunk<D, std::decay_t<T>>};
  }

  // ---- starting ----
  // Inside a process: co_await; the result is the pid once init has returned ok.
  // start_link links the server to the caller (its parent); start does not.
  template <class... Args>
  static Async<Result<Pid>> start_link(StartOptions options, Args... args) {
    return detail::start_server<D, std::decay_t<Args>...>(true, std::move(options), std::move(args)...);
  }
  template <class... Args>
  static Async<Result<Pid>> start(StartOptions options, Args... args) {
    return detail::start_server<D, std::decay_t<Args>...>(false, std::move(options), std::move(args)...);
  }
  // Spawns and links the server and returns at once; see PendingStart and start_outcome.
  template <class... Args>
  static PendingStart spawn_link(StartOptions options, Args... args) {
    return detail::spawn_server<D, std::decay_t<Args>...>(std::move(options), std::move(args)...);
  }
  // From a plain thread: blocks until init has returned. The start runs in a helper process
  // spawned for it, whose answer the thread waits for with an Inbox made for it (see call
  // below): a spawn, an exit and an Inbox besides the server's own start.
  template <class... Args>
  static Result<Pid> start(Runtime& rt, StartOptions options, Args... args) {
    auto work = [options = std::move(options), ... args = std::move(args)]() mutable -> Async<Message> {
      return wrap_pid(detail::start_server<D, std::decay_t<Args>...>(false, std::move(options), std::move(args)...));
    };
    Result<Message> r = detail::run_blocking(rt, std::move(work));
    if (!r) return r.error();
    if (auto* e = r->template get_if<Error>()) return *e;
    return r->template get<Pid>();
  }

  // ---- typed client helpers: the request must be one of `calls` / `casts` ----
  // A request not in `calls` does not compile (it would reach no handle_call), nor does a cast
  // not in `casts` (when the server declares `casts`).
  //
  // Inside a process: co_await Server::call(server, Get{}) gives a Result of handle_call's reply
  // type, or an error (timeout, noproc, exited, calling_self, foreign_pid).
  template <class Req>
  static auto call(const ServerRef& server, Req request, std::chrono::nanoseconds timeout = default_call_timeout) {
    static_assert(detail::declares_call<D, Req>(), "this server does not declare that request in `calls`");
    if constexpr (detail::declares_call<D, Req>()) {
      using R = reply_of<Req>;
      static_assert(!std::is_void_v<R>, "handle_call returns void (a deferred reply): use coppice::call<R> with the reply's type");
      return detail::call_ref<R>(server, Message::of(std::move(request)), timeout);
    }
  }
  // From a plain thread, blocking it for at most `timeout` (blocking_in_process on a worker).
  // Besides the call itself this makes an Inbox for the one call: a pid of its own (never
  // reused), one allocation (its mailbox, a mutex and a condition variable), the runtime's
  // inbox list locked as it is made and as it goes, and its exit at the end. A thread that
  // calls often keeps an Inbox and passes it instead (the Inbox& form), which costs none of it.
  template <class Req>
  static auto call(Runtime& rt, const ServerRef& server, Req request, std::chrono::nanoseconds timeout = default_call_timeout) {
    static_assert(detail::declares_call<D, Req>(), "this server does not declare that request in `calls`");
    if constexpr (detail::declares_call<D, Req>()) {
      return detail::reply_as<reply_of<Req>>(detail::call_blocking(rt, server, Message::of(std::move(request)), timeout), Pid{});
    }
  }
  // From a plain thread, through its own inbox (its pid is the caller the server sees).
  template <class Req>
  static auto call(Inbox& inbox, const ServerRef& server, Req request, std::chrono::nanoseconds timeout = default_call_timeout) {
    static_assert(detail::declares_call<D, Req>(), "this server does not declare that request in `calls`");
    if constexpr (detail::declares_call<D, Req>()) {
      return detail::reply_as<reply_of<Req>>(detail::call_through(inbox, server, Message::of(std::move(request)), timeout), Pid{});
    }
  }
  // Casts always succeed, as OTP's gen_server:cast: to a dead pid or a name nobody holds the
  // message is dropped. The Runtime& form sends from a plain thread and does not block.
  template <class Msg>
  static void cast(const ServerRef& server, Msg message) {
    static_assert(detail::accepts_cast<D, Msg>(), "this server does not declare that cast in `casts`");
    detail::cast_message(server, Message::of(std::move(message)));
  }
  template <class Msg>
  static void cast(Runtime& rt, const ServerRef& server, Msg message) {
    static_assert(detail::accepts_cast<D, Msg>(), "this server does not declare that cast in `casts`");
    detail::cast_message(rt, server, Message::of(std::move(message)));
  }

 private:
  template <class Req>
  using reply_of = detail::call_reply_t<D, Req>;

  static Async<Message> wrap_pid(Async<Result<Pid>> work) {
    Result<Pid> r = co_await work;
    if (!r) co_return Message::of(r.error());
    co_return Message::of(*r);
  }
};

// ---- Untyped client functions (any server) --------------------------------------------

// Inside a process: co_await call<R>(server, request).
template <class R, class Req, class S>
  requires std::same_as<std::remove_cvref_t<S>, ServerRef>
CallAwaiter<R> call(S&& server, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
  return detail::call_ref<R>(server, Message::of(std::forward<Req>(request)), timeout);
}
// From a plain thread: blocks for at most `timeout`, with an Inbox made for this one call
// (what that costs: GenServer::call(Runtime&, ...)); Inbox::call reuses the thread's own.
template <class R, class Req>
Result<R> call(Runtime& rt, const ServerRef& server, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
  return detail::reply_as<R>(detail::call_blocking(rt, server, Message::of(std::forward<Req>(request)), timeout), Pid{});
}
// Casts always succeed, as OTP's gen_server:cast: to a dead pid, to a name nobody holds or
// to an empty ServerRef the message is dropped, as a send to a dead pid is.
template <class Msg>
void cast(const ServerRef& server, Msg&& message) {
  detail::cast_message(server, Message::of(std::forward<Msg>(message)));
}
template <class Msg>
void cast(Runtime& rt, const ServerRef& server, Msg&& message) {
  detail::cast_message(rt, server, Message::of(std::forward<Msg>(message)));
}

// OTP's gen_server:stop / proc_lib:stop: terminate(reason) runs, and this returns once the
// server has exited: ok if it exited with `reason`; noproc if it was not running;
// calling_self from the server itself; timeout (the server keeps running).
inline Async<Status> stop(ServerRef server, ExitReason reason = ExitReason::normal(),
                          std::chrono::nanoseconds timeout = infinity) {
  return detail::stop_server(std::move(server), std::move(reason), timeout);
}
// From a plain thread, blocking it until the server has exited. It runs the stop above in a
// helper process spawned for this one stop, and waits for it with an Inbox made for it (see
// GenServer::call(Runtime&, ...)): a spawn and an exit more than a blocking call.
Status stop(Runtime& rt, ServerRef server, ExitReason reason = ExitReason::normal(), std::chrono::nanoseconds timeout = infinity);

// ---- System messages (sys) ---------------------------------------------------------------
namespace sys {
// A copy of the server's state (its server object), if it is an S and copyable.
template <class S>
CallAwaiter<S> get_state(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout) {
  return detail::call_ref<S>(server, Message::of(detail::SystemRequest{detail::SystemRequest::Op::get_state, &typeid(S), {}, {}}), timeout);
}
// Runs `f` on the server's state between its callbacks.
template <class S>
CallAwaiter<SystemOk> replace_state(const ServerRef& server, std::function<void(S&)> f,
                                           std::chrono::nanoseconds timeout = default_call_timeout) {
  auto apply = [f = std::move(f)](void* state) { f(*static_cast<S*>(state)); };
  return detail::call_ref<SystemOk>(
      server, Message::of(detail::SystemRequest{detail::SystemRequest::Op::replace_state, &typeid(S), std::move(apply), {}}), timeout);
}
CallAwaiter<ServerStatus> get_status(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
CallAwaiter<SystemOk> suspend(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
CallAwaiter<SystemOk> resume(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);

// The same from a plain thread, each with an Inbox made for the one call (see
// GenServer::call(Runtime&, ...)).
template <class S>
Result<S> get_state(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout) {
  return detail::reply_as<S>(
      detail::call_blocking(rt, server, Message::of(detail::SystemRequest{detail::SystemRequest::Op::get_state, &typeid(S), {}, {}}), timeout),
      Pid{});
}
template <class S>
Status replace_state(Runtime& rt, const ServerRef& server, std::function<void(S&)> f,
                     std::chrono::nanoseconds timeout = default_call_timeout) {
  auto apply = [f = std::move(f)](void* state) { f(*static_cast<S*>(state)); };
  auto r = detail::reply_as<SystemOk>(
      detail::call_blocking(rt, server,
                            Message::of(detail::SystemRequest{detail::SystemRequest::Op::replace_state, &typeid(S), std::move(apply), {}}),
                            timeout),
      Pid{});
  if (!r) return r.error();
  return {};
}
Result<ServerStatus> get_status(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
Status suspend(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
Status resume(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
}  // namespace sys

}  // namespace coppice
