// ServerProcess: the process that runs a GenServer (init, the dispatch loop, stop, sys).
// Part of gen_server.hpp, which includes it after the callback result types it uses.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "coppice/detail/server_dispatch.hpp"
#include "coppice/detail/server_start.hpp"
#include "coppice/detail/server_step.hpp"
#include "coppice/detail/server_system.hpp"
#include "coppice/process.hpp"

namespace coppice::detail {

// Non-template parts (gen_server.cpp).
std::string describe_exception(std::exception_ptr e, ExitReason& reason);
void report_crash(std::string_view behaviour, const ServerRef& name, const ExitReason& reason, std::string_view last);
void report_unexpected(std::string_view behaviour, Pid self, const Message& m);

// A Parent's machinery (coppice/parent.hpp, src/otp/parent_*.cpp), hooked into its ServerProcess: the
// server traps exits, child EXITs and the parent requests never reach user callbacks, and
// the children are stopped after terminate (or after a failed init).
class ParentBase;
void parent_attach(ParentBase& parent, const ServerRef& name, std::string_view behaviour);
std::optional<Dispatched> parent_intercept(ParentBase& parent, Message& m);
Async<void> parent_stop_children(ParentBase& parent, ExitReason reason);

// ---- The process that runs a server ---------------------------------------------------

template <class D>
constexpr std::string_view behaviour_name() {
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
  // What the listing shows (coppice/observe.hpp): the behaviour and the server's class.
  static constexpr std::string_view observed_behaviour = behaviour_name<D>();
  using observed_type = D;

 private:

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

}  // namespace coppice::detail
