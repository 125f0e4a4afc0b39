// Parent's API: the server's messages (the hook into its ServerProcess), ParentBase's members,
// the client functions (ParentClient) and ParentSupervisor.
#include <stdexcept>

#include "otp/parent_core.hpp"

namespace coppice {
namespace detail {

std::optional<Dispatched> ParentCore::intercept(Message& m) {
  if (const Exit* e = m.get_if<Exit>()) {
    if (Pos c = children_.find(e->from); c != children_.end()) {
      clear_running(c);
      return async(on_stopped(c, e->reason));
    }
    if (user_handles_exits_) return std::nullopt;
    return Dispatched(std::in_place_index<0>, Step{});  // e.g. a child that crashed in its own start
  }
  if (const ParentLifetime* t = m.get_if<ParentLifetime>()) return async(on_lifetime(t->pid));
  if (ParentResume* r = m.get_if<ParentResume>()) return async(on_resume(std::move(r->orders)));
  if (m.is<ParentGiveUp>()) return async(give_up());
  auto from = m.reply_to();
  if (!from) return std::nullopt;
  if (ParentRequest* req = m.get_if<ParentRequest>()) return async(serve(std::move(*req), *from));
  if (m.is<SupervisorWhichChildren>()) return answer(*from, which_children());
  if (m.is<SupervisorCountChildren>()) return answer(*from, count_children());
  if (const SupervisorGetChildSpec* g = m.get_if<SupervisorGetChildSpec>()) {
    Pos c = g->pid ? find(ChildRef(g->pid)) : find(ChildRef(g->id));
    if (c == children_.end()) return answer(*from, Error(ErrorKind::not_found, "no such child"));
    ChildSpec spec = c->spec;
    spec.shutdown = c->shutdown;
    return answer(*from, std::move(spec));
  }
  return std::nullopt;
}

Dispatched ParentCore::async(Async<Step> work) { return Dispatched(std::in_place_index<1>, std::move(work)); }

Async<Step> ParentCore::serve(ParentRequest req, From from) {
  using Op = ParentRequest::Op;
  switch (req.op) {
    case Op::children:
      coppice::reply(from, children());
      break;
    case Op::num_children:
      coppice::reply(from, num_children());
      break;
    case Op::child_pid:
      reply_result(from, child_pid(req.ref));
      break;
    case Op::child_meta:
      reply_result(from, child_meta(req.ref));
      break;
    case Op::update_child_meta: {
      Status s = update_child_meta(req.ref, [&](std::any) { return std::move(req.meta); });
      if (!s) {
        coppice::reply(from, s.error());
      } else {
        coppice::reply(from, SupervisorOk{});
      }
      break;
    }
    case Op::start_child: {
      Result<Pid> r = co_await start_child(std::move(req.spec));
      reply_result(from, std::move(r));
      break;
    }
    case Op::shutdown_child: {
      Result<StoppedChildren> r = co_await shutdown_child(req.ref);
      reply_result(from, std::move(r));
      break;
    }
    case Op::restart_child: {
      Status s = co_await restart_child(req.ref);
      if (!s) {
        coppice::reply(from, s.error());
      } else {
        coppice::reply(from, SupervisorOk{});
      }
      break;
    }
    case Op::shutdown_all:
      coppice::reply(from, co_await shutdown_all(std::move(req.reason)));
      break;
    case Op::return_children: {
      Status s = co_await return_children(std::move(req.stopped));
      if (!s) {
        coppice::reply(from, s.error());
      } else {
        coppice::reply(from, SupervisorOk{});
      }
      break;
    }
  }
  co_return Step{};
}

// ---- ParentBase: the members a server class uses, forwarded to its core -----------------

namespace {
// Thrown from the server's constructor, which makes the start fail with this message.
ParentOptions checked(ParentOptions o) {
  if (o.intensity && *o.intensity < 0)
    throw std::invalid_argument("invalid parent options: intensity: must be 0 or more, not " +
                                std::to_string(*o.intensity));
  if (o.period.count() <= 0)
    throw std::invalid_argument("invalid parent options: period: must be more than 0 ms, not " + ms(o.period));
  return o;
}
}  // namespace

ParentBase::ParentBase(ParentOptions options, StoppedThunk on_stopped, bool user_handles_exits)
    : core_(std::make_unique<ParentCore>(checked(options), *this, on_stopped, user_handles_exits)) {}
ParentBase::~ParentBase() = default;

Async<Result<Pid>> ParentBase::start_child(ParentChildSpec spec) { return core_->start_child(std::move(spec)); }
Async<std::vector<Pid>> ParentBase::start_all_children(std::vector<ParentChildSpec> specs) {
  return core_->start_all_children(std::move(specs));
}
Async<Result<StoppedChildren>> ParentBase::shutdown_child(ChildRef ref) { return core_->shutdown_child(std::move(ref)); }
Async<Status> ParentBase::restart_child(ChildRef ref) { return core_->restart_child(std::move(ref)); }
Async<StoppedChildren> ParentBase::shutdown_all(ExitReason reason) { return core_->shutdown_all(std::move(reason)); }
Async<Status> ParentBase::return_children(StoppedChildren stopped) { return core_->return_children(std::move(stopped)); }
std::vector<ParentChild> ParentBase::children() const { return core_->children(); }
std::size_t ParentBase::num_children() const { return core_->num_children(); }
bool ParentBase::is_child(const ChildRef& ref) const { return core_->is_child(ref); }
Result<Pid> ParentBase::child_pid(const ChildRef& ref) const { return core_->child_pid(ref); }
Result<std::string> ParentBase::child_id(Pid pid) const { return core_->child_id(pid); }
Result<std::any> ParentBase::child_meta(const ChildRef& ref) const { return core_->child_meta(ref); }
Status ParentBase::update_child_meta(const ChildRef& ref, std::function<std::any(std::any)> update) {
  return core_->update_child_meta(ref, update);
}

void parent_attach(ParentBase& parent, const ServerRef& name, std::string_view behaviour) {
  parent.parent_core().attach(name, behaviour);
}
std::optional<Dispatched> parent_intercept(ParentBase& parent, Message& m) { return parent.parent_core().intercept(m); }
Async<void> parent_stop_children(ParentBase& parent, ExitReason reason) {
  return parent.parent_core().stop_children(std::move(reason));
}

}  // namespace detail

// ---- ParentClient ---------------------------------------------------------------------------

namespace {
using detail::ParentRequest;
using Op = ParentRequest::Op;

Message request(Op op, ChildRef ref = ChildRef(std::string())) {
  ParentRequest r{op, std::move(ref), {}, {}, {}, {}};
  return Message::of(std::move(r));
}
template <class R>
CallAwaiter<R> ask(const ServerRef& parent, Message m, std::chrono::milliseconds timeout) {
  return detail::call_ref<R>(parent, std::move(m), timeout);
}
template <class R>
Result<R> ask(Runtime& rt, const ServerRef& parent, Message m, std::chrono::milliseconds timeout) {
  return detail::reply_as<R>(detail::call_blocking(rt, parent, std::move(m), timeout), Pid{});
}
Status ok_of(Result<detail::SupervisorOk> r) {
  if (!r) return r.error();
  return {};
}
Message with_spec(ParentChildSpec spec) {
  ParentRequest r{Op::start_child, ChildRef(std::string()), std::move(spec), {}, {}, {}};
  return Message::of(std::move(r));
}
Message with_meta(ChildRef ref, std::any meta) {
  ParentRequest r{Op::update_child_meta, std::move(ref), {}, std::move(meta), {}, {}};
  return Message::of(std::move(r));
}
Message with_reason(ExitReason reason) {
  ParentRequest r{Op::shutdown_all, ChildRef(std::string()), {}, {}, std::move(reason), {}};
  return Message::of(std::move(r));
}
Message with_stopped(StoppedChildren stopped) {
  ParentRequest r{Op::return_children, ChildRef(std::string()), {}, {}, {}, std::move(stopped)};
  return Message::of(std::move(r));
}
constexpr std::chrono::milliseconds query_timeout = default_call_timeout;
}  // namespace

CallAwaiter<std::vector<ParentChild>> ParentClient::children(const ServerRef& parent) {
  return ask<std::vector<ParentChild>>(parent, request(Op::children), query_timeout);
}
CallAwaiter<Pid> ParentClient::child_pid(const ServerRef& parent, ChildRef child) {
  return ask<Pid>(parent, request(Op::child_pid, std::move(child)), query_timeout);
}
CallAwaiter<std::any> ParentClient::child_meta(const ServerRef& parent, ChildRef child) {
  return ask<std::any>(parent, request(Op::child_meta, std::move(child)), query_timeout);
}
Async<Status> ParentClient::update_child_meta(ServerRef parent, ChildRef child, std::any meta) {
  auto call = ask<detail::SupervisorOk>(parent, with_meta(std::move(child), std::move(meta)), infinity);
  co_return ok_of(co_await call);
}
CallAwaiter<Pid> ParentClient::start_child(const ServerRef& parent, ParentChildSpec spec) {
  return ask<Pid>(parent, with_spec(std::move(spec)), infinity);
}
CallAwaiter<StoppedChildren> ParentClient::shutdown_child(const ServerRef& parent, ChildRef child) {
  return ask<StoppedChildren>(parent, request(Op::shutdown_child, std::move(child)), infinity);
}
Async<Status> ParentClient::restart_child(ServerRef parent, ChildRef child) {
  auto call = ask<detail::SupervisorOk>(parent, request(Op::restart_child, std::move(child)), infinity);
  co_return ok_of(co_await call);
}
CallAwaiter<StoppedChildren> ParentClient::shutdown_all(const ServerRef& parent, ExitReason reason) {
  return ask<StoppedChildren>(parent, with_reason(std::move(reason)), infinity);
}
Async<Status> ParentClient::return_children(ServerRef parent, StoppedChildren stopped) {
  auto call = ask<detail::SupervisorOk>(parent, with_stopped(std::move(stopped)), infinity);
  co_return ok_of(co_await call);
}

Result<std::vector<ParentChild>> ParentClient::children(Runtime& rt, const ServerRef& parent) {
  return ask<std::vector<ParentChild>>(rt, parent, request(Op::children), query_timeout);
}
Result<Pid> ParentClient::child_pid(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<Pid>(rt, parent, request(Op::child_pid, std::move(child)), query_timeout);
}
Result<std::any> ParentClient::child_meta(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<std::any>(rt, parent, request(Op::child_meta, std::move(child)), query_timeout);
}
Status ParentClient::update_child_meta(Runtime& rt, const ServerRef& parent, ChildRef child, std::any meta) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, with_meta(std::move(child), std::move(meta)), infinity));
}
Result<Pid> ParentClient::start_child(Runtime& rt, const ServerRef& parent, ParentChildSpec spec) {
  return ask<Pid>(rt, parent, with_spec(std::move(spec)), infinity);
}
Result<StoppedChildren> ParentClient::shutdown_child(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<StoppedChildren>(rt, parent, request(Op::shutdown_child, std::move(child)), infinity);
}
Status ParentClient::restart_child(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, request(Op::restart_child, std::move(child)), infinity));
}
Result<StoppedChildren> ParentClient::shutdown_all(Runtime& rt, const ServerRef& parent, ExitReason reason) {
  return ask<StoppedChildren>(rt, parent, with_reason(std::move(reason)), infinity);
}
Status ParentClient::return_children(Runtime& rt, const ServerRef& parent, StoppedChildren stopped) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, with_stopped(std::move(stopped)), infinity));
}

// ---- ParentSupervisor -----------------------------------------------------------------------

ParentSupervisor::ParentSupervisor(std::vector<ParentChildSpec> children, ParentOptions options)
    : Parent(options), children_(std::move(children)) {}

Async<Init> ParentSupervisor::init() {
  auto work = start_all_children(std::move(children_));
  std::vector<Pid> pids = co_await work;
  (void)pids;
  co_return ok();
}

Async<Result<Pid>> ParentSupervisor::start_link(std::vector<ParentChildSpec> children, ParentOptions options,
                                                StartOptions start) {
  return GenServer<ParentSupervisor>::start_link(std::move(start), std::move(children), options);
}

Result<Pid> ParentSupervisor::start(Runtime& rt, std::vector<ParentChildSpec> children, ParentOptions options,
                                    StartOptions start) {
  return GenServer<ParentSupervisor>::start(rt, std::move(start), std::move(children), options);
}

ChildSpec ParentSupervisor::child_spec(std::string id, std::vector<ParentChildSpec> children, ParentOptions options) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.type = ChildType::supervisor;
  spec.modules = {std::string(behaviour)};
  spec.start = [children = std::move(children), options](const StartArgs& a) -> Async<Result<Pid>> {
    return GenServer<ParentSupervisor>::start_link(a.options, children, options);
  };
  return spec;
}

}  // namespace coppice
