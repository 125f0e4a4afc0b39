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

namespace detail {
struct Step;
using Dispatched = std::variant<Step, Async<Step>>;
using ContinueThunk = Dispatched (*)(void* server, Message& payload);
}  // namespace detail

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

namespace detail {

// What a callback asked for, once its result is read.
struct Step {
  enum class Kind : std::uint8_t { next, stop };
  Kind kind = Kind::next;
  After after;
  ExitReason reason;
  std::optional<Message> reply;  // a stop's reply, sent after terminate
  From reply_to;
};

// The acknowledgement a starting server sends its starter once init has returned.
struct InitAck {
  enum class Kind : std::uint8_t { ok, ignore, error, stop } kind;
  ExitReason reason;
  Error error{ErrorKind::start_error, {}};
};

// Requests served by the behaviour between callbacks, never by user code.
struct SystemRequest {
  enum class Op : std::uint8_t { get_state, replace_state, suspend, resume, get_status, stop } op;
  const std::type_info* state_type = nullptr;
  std::function<void(void*)> replace;
  ExitReason reason;
};
struct SystemOk {};

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
std::string describe_exception(std::exception_ptr e, ExitReason& reason);
void report_crash(std::string_view behaviour, const ServerRef& name, const ExitReason& reason, std::string_view last);
void report_unexpected(std::string_view behaviour, Pid self, const Message& m);
// The result of running `work` on a helper process, for a plain thread that waits for it.
Result<Message> run_blocking(Runtime& rt, std::function<Async<Message>()> work);

// A Parent's machinery (coppice/parent.hpp, src/otp/parent_*.cpp), hooked into its ServerProcess: the
// server traps exits, child EXITs and the parent requests never reach user callbacks, and
// the children are stopped after terminate (or after a failed init).
class ParentBase;
void parent_attach(ParentBase& parent, const ServerRef& name, std::string_view behaviour);
std::optional<Dispatched> parent_intercept(ParentBase& parent, Message& m);
Async<void> parent_stop_children(ParentBase& parent, ExitReason reason);

template <class T>
struct is_async : std::false_type {};
template <class T>
struct is_async<Async<T>> : std::true_type {
  using type = T;
};
template <class T>
struct is_call_return : std::false_type {};
template <class R>
struct is_call_return<CallReturn<R>> : std::true_type {
  using type = R;
};

// The reply type R of a call result: R, CallReturn<R>, or Async of either.
template <class X>
struct reply_type {
  using type = X;
};
template <class R>
struct reply_type<CallReturn<R>> {
  using type = R;
};
template <class X>
struct reply_type<Async<X>> : reply_type<X> {};

inline Message as_message(Message m) { return m; }
template <class X>
Message as_message(X&& x) {
  return Message::of(std::forward<X>(x));
}
inline void send_reply(const From& to, Message m) {
  auto* e = m.release();
  e->set_type(e->type(), Addressing::alias);
  e->ref = to.ref.bits();
  send(to.pid, Message::adopt(e));
}

// Reads a handle_call result.
template <class X>
Step call_step(X&& result, const From& from) {
  using T = std::remove_cvref_t<X>;
  Step s;
  if constexpr (std::is_void_v<T>) {
    return s;
  } else if constexpr (is_call_return<T>::value) {
    s.after = std::move(result.after());
    if (result.stops()) {
      s.kind = Step::Kind::stop;
      s.reason = result.reason();
      if (result.value()) {
        s.reply = as_message(std::move(*result.value()));
        s.reply_to = from;
      }
    } else if (result.value()) {
      send_reply(from, as_message(std::move(*result.value())));
    }
    return s;
  } else if constexpr (std::is_same_v<T, NoReply> || std::is_same_v<T, StopRequest>) {
    return call_step(CallReturn<Message>(std::forward<X>(result)), from);
  } else {
    send_reply(from, as_message(std::forward<X>(result)));
    return s;
  }
}

// Reads a handle_cast / handle_info / handle_continue result.
template <class X>
Step noreply_step(X&& result) {
  using T = std::remove_cvref_t<X>;
  Step s;
  if constexpr (std::is_void_v<T>) {
    return s;
  } else {
    NoReply n(std::forward<X>(result));
    s.after = std::move(n.after());
    if (n.stops()) {
      s.kind = Step::Kind::stop;
      s.reason = n.reason();
    }
    return s;
  }
}

// A handle_call may also end by throwing its reply, `throw CallReturn<R>(value)` (Elixir's
// `throw {:reply, value, state}`, for a reply from deep inside helper functions): it is
// read as if returned. R is the handler's reply type.
template <class X>
inline constexpr bool throws_reply = [] {
  using R = typename reply_type<X>::type;
  return !std::is_void_v<R> && !std::is_same_v<R, NoReply> && !std::is_same_v<R, StopRequest>;
}();

template <class X>
Async<Step> call_step_async(Async<X> work, From from) {
  if constexpr (std::is_void_v<X>) {
    co_await work;
    co_return Step{};
  } else if constexpr (throws_reply<X>) {
    std::optional<CallReturn<typename reply_type<X>::type>> thrown;
    try {
      X result = co_await work;
      co_return call_step(std::move(result), from);
    } catch (CallReturn<typename reply_type<X>::type>& r) {
      thrown.emplace(std::move(r));
    }
    co_return call_step(std::move(*thrown), from);
  } else {
    X result = co_await work;
    co_return call_step(std::move(result), from);
  }
}
template <class X>
Async<Step> noreply_step_async(Async<X> work) {
  if constexpr (std::is_void_v<X>) {
    co_await work;
    co_return Step{};
  } else {
    X result = co_await work;
    co_return noreply_step(std::move(result));
  }
}

// Invokes `f` and reads its result with `read` (sync) or wraps it (async).
template <class F, class Read, class ReadAsync>
Dispatched invoke_step(F&& f, Read&& read, ReadAsync&& read_async) {
  using X = std::invoke_result_t<F>;
  if constexpr (is_async<X>::value) {
    return Dispatched(std::in_place_index<1>, read_async(f()));
  } else if constexpr (std::is_void_v<X>) {
    f();
    return Dispatched(std::in_place_index<0>, Step{});
  } else {
    return Dispatched(std::in_place_index<0>, read(f()));
  }
}

// ---- Finding the callback for a message ----------------------------------------------------

template <class D, class T>
concept HasCallFrom = requires(D& d, T&& t, const From& f) { d.handle_call(std::move(t), f); };
template <class D, class T>
concept HasCall = requires(D& d, T&& t) { d.handle_call(std::move(t)); };
template <class D, class T>
concept HasCast = requires(D& d, T&& t) { d.handle_cast(std::move(t)); };
template <class D, class T>
concept HasInfo = requires(D& d, T&& t) { d.handle_info(std::move(t)); };
template <class D, class T>
concept HasContinue = requires(D& d, T&& t) { d.handle_continue(std::move(t)); };

template <class D>
concept HasCalls = requires { typename D::calls; };
template <class D>
concept HasCasts = requires { typename D::casts; };
template <class D>
concept HasInfos = requires { typename D::infos; };

// Invokes a handle_call; a thrown CallReturn<R> is its reply (see throws_reply).
template <class F>
Dispatched invoke_call(F&& f, const From& from) {
  auto run = [&] {
    return invoke_step(f, [&](auto&& r) { return call_step(std::forward<decltype(r)>(r), from); },
                       [&](auto&& a) { return call_step_async(std::move(a), from); });
  };
  using X = std::invoke_result_t<F>;
  if constexpr (!is_async<X>::value && throws_reply<X>) {
    try {
      return run();
    } catch (CallReturn<typename reply_type<X>::type>& thrown) {
      return Dispatched(std::in_place_index<0>, call_step(std::move(thrown), from));
    }
  } else {
    return run();
  }
}

template <class D, class T>
Dispatched dispatch_call(D& d, Message& m, const From& from) {
  T& value = m.get<T>();
  if constexpr (HasCallFrom<D, T>) {
    return invoke_call([&] { return d.handle_call(std::move(value), from); }, from);
  } else {
    static_assert(HasCall<D, T>, "a type in `calls` needs handle_call(T) or handle_call(T, const From&)");
    return invoke_call([&] { return d.handle_call(std::move(value)); }, from);
  }
}

template <class D, class T, bool IsCast>
Dispatched dispatch_noreply(D& d, Message& m) {
  T& value = m.get<T>();
  auto call = [&] {
    if constexpr (IsCast) {
      static_assert(HasCast<D, T>, "a type in `casts` needs handle_cast(T)");
      return d.handle_cast(std::move(value));
    } else {
      static_assert(HasInfo<D, T>, "a type in `infos` needs handle_info(T)");
      return d.handle_info(std::move(value));
    }
  };
  return invoke_step(call, [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                     [](auto&& a) { return noreply_step_async(std::move(a)); });
}

template <class D, class Req>
auto call_result_of() {
  if constexpr (HasCallFrom<D, Req>) {
    return std::type_identity<decltype(std::declval<D&>().handle_call(std::declval<Req>(), std::declval<const From&>()))>{};
  } else {
    return std::type_identity<decltype(std::declval<D&>().handle_call(std::declval<Req>()))>{};
  }
}
// The reply type of D's handle_call(Req): what the typed client helpers return.
template <class D, class Req>
using call_reply_t = typename reply_type<typename decltype(call_result_of<D, Req>())::type>::type;

template <class D, class P>
struct CallTable;
template <class D, class... T>
struct CallTable<D, Protocol<T...>> {
  static bool dispatch(D& d, Message& m, const From& from, std::optional<Dispatched>& out) {
    return ((m.is<T>() ? (out.emplace(dispatch_call<D, T>(d, m, from)), true) : false) || ...);
  }
  template <class Req>
  static constexpr bool contains = (std::is_same_v<Req, T> || ...);
};
template <class D, class P, bool IsCast>
struct NoReplyTable;
template <class D, class... T, bool IsCast>
struct NoReplyTable<D, Protocol<T...>, IsCast> {
  static bool dispatch(D& d, Message& m, std::optional<Dispatched>& out) {
    return ((m.is<T>() ? (out.emplace(dispatch_noreply<D, T, IsCast>(d, m)), true) : false) || ...);
  }
  template <class Msg>
  static constexpr bool contains = (std::is_same_v<Msg, T> || ...);
};

// ---- The process that runs a server ---------------------------------------------------

template <class D>
std::string_view behaviour_name() {
  if constexpr (requires { D::behaviour; }) {
    return D::behaviour;
  } else {
    return "GenServer";
  }
}

template <class D, class... Args>
class ServerProcess final : public Process {
  static constexpr bool is_parent = std::is_base_of_v<ParentBase, D>;

 public:
  template <class... A>
  explicit ServerProcess(StartContext context, A&&... args)
      : context_(std::move(context)), args_(std::forward<A>(args)...) {}

  void init() override {
    if (Status s = init_prologue(context_); !s) {
      fail_start(InitAck{InitAck::Kind::error, ExitReason::normal(), s.error()});
      return;
    }
    try {
      std::apply([this](auto&... a) { server_.emplace(std::move(a)...); }, args_);
    } catch (...) {
      crash_in_init(std::current_exception());
      return;
    }
    if constexpr (is_parent) {
      trap_exit(true);
      parent_attach(parent(), context_.name(), behaviour_name<D>());
    }
    using X = decltype(init_result());
    if constexpr (is_async<X>::value || is_parent) {
      await(async_init());
    } else {
      std::optional<Init> result;
      try {
        result = init_result();
      } catch (...) {
        crash_in_init(std::current_exception());
        return;
      }
      go(finish_init(std::move(*result)));
    }
  }

  void handle(Message m) override { go(step_message(m)); }

 private:
  // What is left to do once a callback has returned: await a coroutine callback's result,
  // await some other work (an async terminate), wait for a message with a timeout, or stay
  // suspended. Kept flat so that a server that keeps asking for timeouts never nests.
  struct Next {
    std::optional<Async<Step>> step;
    std::optional<Async<void>> work;
    std::optional<std::chrono::nanoseconds> timeout;
    bool suspend = false;
    bool empty() const { return !step && !work && !timeout && !suspend; }
  };

  void go(Next n) {
    if (!n.empty()) await(activity(std::move(n)));
  }

  Async<void> activity(Next n) {
    for (;;) {
      if (n.step) {
        Async<Step> work = std::move(*n.step);
        n = Next{};
        std::optional<Step> s;
        try {
          s.emplace(co_await work);
        } catch (...) {
          n = crash(std::current_exception(), "a callback");
          continue;
        }
        n = settle(std::move(*s));
      } else if (n.work) {
        Async<void> work = std::move(*n.work);
        n = Next{};
        co_await work;
      } else if (n.timeout) {
        // Any message but a system query (get_state, replace_state, get_status, resume)
        // cancels the timeout; none in time: Timeout.
        const auto deadline = std::chrono::steady_clock::now() + *n.timeout;
        n = Next{};
        for (;;) {
          const auto left = deadline - std::chrono::steady_clock::now();
          std::optional<Message> m = co_await receive_any(left.count() > 0 ? left : std::chrono::nanoseconds(0));
          if (!m) {
            Message t = Message::of(Timeout{});
            n = step_message(t);
            break;
          }
          if (auto* sys = m->get_if<SystemRequest>(); sys != nullptr && is_query(sys->op)) {
            serve_system(*sys, *m);
            continue;
          }
          n = step_message(*m);
          break;
        }
      } else if (n.suspend) {
        // Suspended: only system requests and the parent's EXIT are served; the rest wait in order.
        n = Next{};
        suspended_ = true;
        auto wanted = [this](const Message& m) { return m.is<SystemRequest>() || is_parent_exit(m); };
        while (suspended_) {
          Message m = co_await receive_if(wanted);
          if (auto* sys = m.get_if<SystemRequest>(); sys != nullptr && sys->op == SystemRequest::Op::suspend) {
            if (auto from = m.reply_to()) send_reply(*from, Message::of(SystemOk{}));
            continue;
          }
          if (!m.is<SystemRequest>() || m.get<SystemRequest>().op == SystemRequest::Op::stop) suspended_ = false;
          n = step_message(m);
          if (!n.empty()) break;
        }
      } else {
        co_return;
      }
    }
  }

  // ---- init ----
  auto init_result() {
    D& d = *server_;
    if constexpr (requires { d.init(); }) {
      using R = decltype(d.init());
      if constexpr (std::is_void_v<R>) {
        d.init();
        return Init::ok();
      } else if constexpr (std::is_same_v<R, Async<void>>) {
        return init_void_async(d.init());
      } else if constexpr (is_async<R>::value) {
        return Async<Init>(init_async(d.init()));
      } else {
        return Init(d.init());
      }
    } else {
      return Init::ok();
    }
  }
  template <class X>
  static Async<Init> init_async(Async<X> work) {
    X result = co_await work;
    co_return Init(std::move(result));
  }
  static Async<Init> init_void_async(Async<void> work) {
    co_await work;
    co_return Init::ok();
  }
  Async<void> async_init() {
    std::optional<Init> result;
    std::exception_ptr raised;
    try {
      auto work = init_result();
      if constexpr (is_async<decltype(work)>::value) {
        result.emplace(co_await work);
      } else {
        result.emplace(std::move(work));
      }
    } catch (...) {
      raised = std::current_exception();
    }
    if constexpr (is_parent) {
      // A parent whose init fails leaves no child behind (whatever it started is stopped).
      if (raised || result->kind() != Init::Kind::ok) co_await parent_stop_children(parent(), ExitReason::shutdown());
    }
    if (raised) {
      crash_in_init(raised);
      co_return;
    }
    Next n = finish_init(std::move(*result));
    if (!n.empty()) co_await activity(std::move(n));
  }
  Next finish_init(Init result) {
    switch (result.kind()) {
      case Init::Kind::ok:
        acknowledge(context_, InitAck{InitAck::Kind::ok, {}});
        return settle(Step{Step::Kind::next, std::move(result.after()), {}, {}, {}});
      case Init::Kind::ignore:
        fail_start(InitAck{InitAck::Kind::ignore, ExitReason::normal()});
        return {};
      case Init::Kind::error:
        fail_start(InitAck{InitAck::Kind::error, ExitReason::normal(),
                           Error(ErrorKind::start_error, "init returned an error: " + result.reason().to_string(), Pid{},
                                 result.reason())});
        return {};
      case Init::Kind::stop:
        acknowledge(context_, InitAck{InitAck::Kind::stop, result.reason()});
        stop_self(result.reason());
        return {};
    }
    return {};
  }
  // ignore, error, a taken name: exit normal, unlinked first so that no EXIT reaches the starter.
  void fail_start(InitAck ack) {
    if (context_.parent) unlink(context_.parent);
    acknowledge(context_, std::move(ack));
    server_.reset();
    stop_self(ExitReason::normal());
  }
  void crash_in_init(std::exception_ptr e) {
    ExitReason reason;
    describe_exception(e, reason);
    report_crash(behaviour_name<D>(), context_.name(), reason, "init");
    mark_crash_reported();
    acknowledge(context_, InitAck{InitAck::Kind::stop, reason});
    server_.reset();
    stop_self(reason);
  }

  // ---- messages ----
  static bool is_query(SystemRequest::Op op) {
    return op == SystemRequest::Op::get_state || op == SystemRequest::Op::replace_state ||
           op == SystemRequest::Op::get_status || op == SystemRequest::Op::resume;
  }

  // One message: a system request, the parent's EXIT, or a callback. The message and its
  // From are kept in the process until the next message, so that a coroutine callback that
  // takes them by reference (const T&, const From&) never outlives them.
  Next step_message(Message& arrived) {
    current_ = std::move(arrived);
    Message& m = current_;
    if (auto* sys = m.get_if<SystemRequest>()) return serve_system(*sys, m);
    if (is_parent_exit(m)) return stop_after(Step{Step::Kind::stop, {}, m.get<Exit>().reason, {}, {}});
    if constexpr (is_parent) {
      std::optional<Dispatched> served;
      try {
        served = parent_intercept(parent(), m);
      } catch (...) {
        return crash(std::current_exception(), m.type_name());
      }
      if (served) return next_of(std::move(*served));
    }
    std::optional<Dispatched> d;
    try {
      d.emplace(dispatch(m));
    } catch (...) {
      return crash(std::current_exception(), m.type_name());
    }
    return next_of(std::move(*d));
  }

  Next next_of(Dispatched d) {
    if (d.index() == 1) {
      Next n;
      n.step.emplace(std::get<1>(std::move(d)));
      return n;
    }
    return settle(std::get<0>(std::move(d)));
  }

  bool is_parent_exit(const Message& m) const {
    const Exit* e = m.get_if<Exit>();
    return e != nullptr && context_.parent && e->from == context_.parent && trapping_exits();
  }

  Dispatched dispatch(Message& m) {
    D& d = *server_;
    std::optional<Dispatched> out;
    if (auto reply_to = m.reply_to()) {
      current_from_ = *reply_to;
      const From& from = current_from_;
      if constexpr (HasCalls<D>) {
        if (CallTable<D, typename D::calls>::dispatch(d, m, from, out)) return std::move(*out);
      }
      if constexpr (HasCallFrom<D, Message>) {
        return invoke_call([&] { return d.handle_call(std::move(m), from); }, from);
      }
    } else if (m.is_cast()) {
      if constexpr (HasCasts<D>) {
        if (NoReplyTable<D, typename D::casts, true>::dispatch(d, m, out)) return std::move(*out);
      }
      if constexpr (HasCast<D, Message>) {
        return invoke_step([&] { return d.handle_cast(std::move(m)); },
                           [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                           [](auto&& a) { return noreply_step_async(std::move(a)); });
      }
    } else {
      if constexpr (HasInfos<D>) {
        if (NoReplyTable<D, typename D::infos, false>::dispatch(d, m, out)) return std::move(*out);
      }
    }
    // Anything else goes to handle_info(Message); without one it is logged and dropped
    // (and a request is answered with an error, so that its caller does not wait in vain).
    if constexpr (HasInfo<D, Message>) {
      return invoke_step([&] { return d.handle_info(std::move(m)); },
                         [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                         [](auto&& a) { return noreply_step_async(std::move(a)); });
    } else {
      report_unexpected(behaviour_name<D>(), self(), m);
      if (auto from = m.reply_to())
        send_reply(*from, Message::of(Error(ErrorKind::invalid_argument,
                                            std::string(behaviour_name<D>()) + " " + self().to_string() +
                                                " does not handle requests of type " + m.type_name())));
      return Dispatched(std::in_place_index<0>, Step{});
    }
  }

  // After a callback: continue chains (run at once, before any message), a timeout,
  // hibernate, or stop.
  Next settle(Step step) {
    for (;;) {
      if (step.kind == Step::Kind::stop) return stop_after(std::move(step));
      switch (step.after.kind()) {
        case After::Kind::none:
        case After::Kind::hibernate:  // accepted: nothing more to give back than what is freed
          return {};
        case After::Kind::timeout: {
          Next n;
          n.timeout = step.after.timeout();
          return n;
        }
        case After::Kind::continue_with: {
          Continue c = std::move(step.after.continuation());
          std::optional<Dispatched> d;
          try {
            d.emplace(c.thunk(&*server_, c.payload));
          } catch (...) {
            return crash(std::current_exception(), "handle_continue");
          }
          if (d->index() == 1) return next_of(std::move(*d));
          step = std::get<0>(std::move(*d));
        }
      }
    }
  }

  // ---- stopping ----
  auto call_terminate(const ExitReason& reason) {
    D& d = *server_;
    if constexpr (requires { d.terminate(reason); }) {
      return d.terminate(reason);
    }
  }
  static constexpr bool async_terminate = is_async<decltype(std::declval<ServerProcess&>().call_terminate(ExitReason{}))>::value;
  // A parent stops its children after terminate, which needs waiting: always the async path.
  static constexpr bool stop_async_path = async_terminate || is_parent;
  ParentBase& parent() { return static_cast<ParentBase&>(*server_); }

  // terminate runs first, then a stop's reply goes, then the process exits with the reason.
  Next stop_after(Step step) {
    if constexpr (stop_async_path) {
      Next n;
      n.work.emplace(stop_async(std::move(step), false));
      return n;
    } else {
      try {
        call_terminate(step.reason);
      } catch (...) {
        terminate_crashed(std::current_exception());
        return {};
      }
      if (step.reply) send_reply(step.reply_to, std::move(*step.reply));
      finish(step.reason, false);
      return {};
    }
  }
  Async<void> stop_async(Step step, bool reported) {
    std::exception_ptr raised;
    try {
      if constexpr (async_terminate) {
        auto work = call_terminate(step.reason);
        co_await work;
      } else {
        call_terminate(step.reason);
      }
    } catch (...) {
      raised = std::current_exception();
    }
    // A parent's children stop after its terminate, even one that raised (SEMANTICS.md 7.5).
    if constexpr (is_parent) co_await parent_stop_children(parent(), step.reason);
    if (raised) {
      terminate_crashed(raised);
      co_return;
    }
    if (step.reply) send_reply(step.reply_to, std::move(*step.reply));
    finish(step.reason, reported);
  }
  void terminate_crashed(std::exception_ptr e) {
    ExitReason reason;
    describe_exception(e, reason);
    report_crash(behaviour_name<D>(), context_.name(), reason, "terminate");
    mark_crash_reported();
    stop_self(reason);
  }
  void finish(const ExitReason& reason, bool reported) {
    if (!reason.is_clean()) {
      if (!reported) report_crash(behaviour_name<D>(), context_.name(), reason, "");
      mark_crash_reported();
    }
    stop_self(reason);
  }

  // An exception escaped a callback: reported, then terminate runs with the error (as OTP
  // calls it for a callback that raised), then the process exits with it.
  Next crash(std::exception_ptr e, std::string_view where) {
    ExitReason reason;
    describe_exception(e, reason);
    report_crash(behaviour_name<D>(), context_.name(), reason, where);
    mark_crash_reported();
    if constexpr (stop_async_path) {
      Next n;
      n.work.emplace(stop_async(Step{Step::Kind::stop, {}, reason, {}, {}}, true));
      return n;
    } else {
      try {
        call_terminate(reason);
      } catch (...) {
        terminate_crashed(std::current_exception());
        return {};
      }
      stop_self(reason);
      return {};
    }
  }

  // ---- system requests ----
  Next serve_system(SystemRequest& sys, Message& m) {
    auto from = m.reply_to();
    auto answer = [&](Message reply) {
      if (from) send_reply(*from, std::move(reply));
    };
    switch (sys.op) {
      case SystemRequest::Op::get_state:
        if constexpr (std::is_copy_constructible_v<D>) {
          if (sys.state_type == &typeid(D)) {
            answer(Message::of(D(*server_)));
            return {};
          }
        }
        answer(Message::of(Error(ErrorKind::invalid_argument,
                                 "get_state: the state is not of the type asked for, or cannot be copied")));
        return {};
      case SystemRequest::Op::replace_state:
        if (sys.state_type != &typeid(D)) {
          answer(Message::of(Error(ErrorKind::invalid_argument, "replace_state: the state is not of the type asked for")));
          return {};
        }
        try {
          sys.replace(&*server_);
        } catch (const std::exception& e) {
          // As OTP: a replace function that raises leaves the server running; the caller gets the error.
          answer(Message::of(Error(ErrorKind::invalid_argument, std::string("replace_state: the function raised: ") + e.what())));
          return {};
        }
        answer(Message::of(SystemOk{}));
        return {};
      case SystemRequest::Op::get_status: {
        ServerStatus st;
        st.pid = self();
        if (context_.name().is_local_name() || context_.name().is_registry_name())
          st.name = context_.name().to_string();
        st.behaviour = std::string(behaviour_name<D>());
        st.suspended = suspended_;
        st.message_queue_len = self_info().message_queue_len;
        if constexpr (requires(const D& d) { d.format_status(); }) st.state = server_->format_status();
        answer(Message::of(std::move(st)));
        return {};
      }
      case SystemRequest::Op::suspend: {
        answer(Message::of(SystemOk{}));
        Next n;
        n.suspend = true;
        return n;
      }
      case SystemRequest::Op::resume:
        suspended_ = false;
        answer(Message::of(SystemOk{}));
        return {};
      case SystemRequest::Op::stop:
        return stop_after(Step{Step::Kind::stop, {}, sys.reason, {}, {}});
    }
    return {};
  }

  StartContext context_;
  std::tuple<Args...> args_;
  std::optional<D> server_;
  Message current_;     // the message being handled
  From current_from_;   // its From, if it is a request
  bool suspended_ = false;
};

template <class D, class... Args>
Async<Result<Pid>> start_server(bool link, StartOptions options, Args... args) {
  const From ack = alias();
  Ref monitor_ref;
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
  Ref monitor_ref;
  StartContext context(ack, self(), std::move(options));
  Pid pid = spawn_in<ServerProcess<D, Args...>>(current_core(), SpawnOptions{.link = true, .monitor = true, .monitor_ref = &monitor_ref},
                                                std::move(context), std::move(args)...);
  return PendingStart{pid, ack, monitor_ref};
}

template <class D, class Msg>
Dispatched continue_thunk(void* server, Message& payload) {
  D& d = *static_cast<D*>(server);
  Msg& value = payload.get<Msg>();
  static_assert(HasContinue<D, Msg>, "continue_with(T) needs handle_continue(T)");
  return invoke_step([&] { return d.handle_continue(std::move(value)); },
                     [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                     [](auto&& a) { return noreply_step_async(std::move(a)); });
}

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

}  // namespace detail

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
// one; otherwise it is logged and dropped (a request is answered with an error).
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
CallAwaiter<detail::SystemOk> replace_state(const ServerRef& server, std::function<void(S&)> f,
                                           std::chrono::nanoseconds timeout = default_call_timeout) {
  auto apply = [f = std::move(f)](void* state) { f(*static_cast<S*>(state)); };
  return detail::call_ref<detail::SystemOk>(
      server, Message::of(detail::SystemRequest{detail::SystemRequest::Op::replace_state, &typeid(S), std::move(apply), {}}), timeout);
}
CallAwaiter<ServerStatus> get_status(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
CallAwaiter<detail::SystemOk> suspend(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);
CallAwaiter<detail::SystemOk> resume(const ServerRef& server, std::chrono::nanoseconds timeout = default_call_timeout);

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
  auto r = detail::reply_as<detail::SystemOk>(
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
