// The static Supervisor: starting children in order, reacting to their exits (restart by
// strategy within the restart intensity), its API, and stopping children in reverse order.
#include "coppice/supervisor.hpp"

#include <unordered_set>

#include "otp/supervision.hpp"
#include "otp/supervisor_server.hpp"

namespace coppice {

std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::one_for_one: return "one_for_one";
    case Strategy::one_for_all: return "one_for_all";
    case Strategy::rest_for_one: return "rest_for_one";
  }
  return "?";
}

std::string_view to_string(AutoShutdown a) {
  switch (a) {
    case AutoShutdown::never: return "never";
    case AutoShutdown::any_significant: return "any_significant";
    case AutoShutdown::all_significant: return "all_significant";
  }
  return "?";
}

namespace {

Error invalid_flag(std::string_view field, std::string_view problem) {
  return detail::invalid_field(ErrorKind::invalid_argument, "supervisor flags", field, problem);
}

Error invalid_spec(std::string_view field, std::string_view problem) {
  return detail::invalid_field(ErrorKind::invalid_child_spec, "child spec", field, problem);
}

// A significant child needs a supervisor that shuts itself down (SEMANTICS.md 3.1).
Status validate_against(const SupervisorFlags& flags, const ChildSpec& spec) {
  if (Status s = validate(spec); !s) return s;
  if (spec.significant && flags.auto_shutdown == AutoShutdown::never)
    return invalid_spec("significant", "child '" + spec.id + "' is significant but auto_shutdown is never (bad_combination)");
  return {};
}

bool is_temporary(const ChildSpec& spec) { return spec.restart == Restart::temporary; }

Message ok_reply() { return Message::of(detail::SupervisorOk{}); }
Message error_reply(ErrorKind kind, std::string message, Pid pid = {}) {
  return Message::of(Error(kind, std::move(message), pid));
}

std::string quoted(std::string_view id) {
  std::string s = "'";
  s.append(id);
  s.push_back('\'');
  return s;
}

template <class R>
Result<R> blocking_call(Runtime& rt, const ServerRef& sup, Message request) {
  return detail::reply_as<R>(detail::call_blocking(rt, sup, std::move(request), infinity), Pid{});
}

Status to_status(Result<detail::SupervisorOk> r) {
  if (!r) return r.error();
  return {};
}

}  // namespace

Status validate(const SupervisorFlags& flags) {
  switch (flags.strategy) {
    case Strategy::one_for_one:
    case Strategy::one_for_all:
    case Strategy::rest_for_one:
      break;
    default:
      return invalid_flag("strategy", "not one_for_one, one_for_all or rest_for_one");
  }
  if (flags.intensity < 0) return invalid_flag("intensity", "must be 0 or more, not " + std::to_string(flags.intensity));
  if (flags.period.count() <= 0)
    return invalid_flag("period", "must be more than 0 ms, not " + detail::duration_text(flags.period));
  switch (flags.auto_shutdown) {
    case AutoShutdown::never:
    case AutoShutdown::any_significant:
    case AutoShutdown::all_significant:
      break;
    default:
      return invalid_flag("auto_shutdown", "not never, any_significant or all_significant");
  }
  return {};
}

Status validate(const SupervisorFlags& flags, const std::vector<ChildSpec>& children) {
  if (Status s = validate(flags); !s) return s;
  std::unordered_set<std::string_view> ids;
  ids.reserve(children.size());
  for (const ChildSpec& spec : children) {
    if (Status s = validate_against(flags, spec); !s) return s;
    if (!ids.insert(spec.id).second) return invalid_spec("id", "duplicate child id " + quoted(spec.id));
  }
  return {};
}

// ---- Starting -----------------------------------------------------------------------------

Async<Result<Pid>> Supervisor::start_link(std::vector<ChildSpec> children, SupervisorFlags flags, StartOptions options) {
  if (Status s = validate(flags, children); !s) co_return s.error();
  ServerRef name = options.name;
  auto start = GenServer<detail::SupervisorServer>::start_link(std::move(options), detail::SupervisorServer::Source(SupervisorSpec{std::move(children), flags}),
                                                  std::move(name));
  co_return co_await start;
}

Async<Result<Pid>> Supervisor::start_link(SupervisorInit init, StartOptions options) {
  if (!init) co_return Error(ErrorKind::invalid_argument, "Supervisor::start_link: no init function");
  ServerRef name = options.name;
  auto start = GenServer<detail::SupervisorServer>::start_link(std::move(options), detail::SupervisorServer::Source(std::move(init)), std::move(name));
  co_return co_await start;
}

Result<Pid> Supervisor::start(Runtime& rt, std::vector<ChildSpec> children, SupervisorFlags flags, StartOptions options) {
  if (Status s = validate(flags, children); !s) return s.error();
  ServerRef name = options.name;
  return GenServer<detail::SupervisorServer>::start(rt, std::move(options), detail::SupervisorServer::Source(SupervisorSpec{std::move(children), flags}),
                                      std::move(name));
}

Result<Pid> Supervisor::start(Runtime& rt, SupervisorInit init, StartOptions options) {
  if (!init) return Error(ErrorKind::invalid_argument, "Supervisor::start: no init function");
  ServerRef name = options.name;
  return GenServer<detail::SupervisorServer>::start(rt, std::move(options), detail::SupervisorServer::Source(std::move(init)), std::move(name));
}

ChildSpec Supervisor::child_spec(std::string id, std::vector<ChildSpec> children, SupervisorFlags flags) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.type = ChildType::supervisor;
  spec.shutdown = Shutdown::infinity();
  spec.modules = {std::string(behaviour)};
  spec.start = [children = std::move(children), flags](const StartArgs& a) -> Async<Result<Pid>> {
    return Supervisor::start_link(children, flags, a.options);
  };
  return spec;
}

ChildSpec Supervisor::child_spec(std::string id, SupervisorInit init) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.type = ChildType::supervisor;
  spec.shutdown = Shutdown::infinity();
  spec.modules = {std::string(behaviour)};
  spec.start = [init = std::move(init)](const StartArgs& a) -> Async<Result<Pid>> {
    return Supervisor::start_link(init, a.options);
  };
  return spec;
}

// ---- The API ------------------------------------------------------------------------------

CallAwaiter<Pid> Supervisor::start_child(const ServerRef& sup, ChildSpec spec) {
  return detail::call_ref<Pid>(sup, Message::of(detail::SupervisorStartChild{std::move(spec)}), infinity);
}
Async<Status> Supervisor::terminate_child(ServerRef sup, std::string id) {
  auto call = detail::call_ref<detail::SupervisorOk>(sup, Message::of(detail::SupervisorTerminateChild{std::move(id), Pid{}}), infinity);
  co_return to_status(co_await call);
}
Async<Status> Supervisor::terminate_child(ServerRef sup, Pid child) {
  auto call = detail::call_ref<detail::SupervisorOk>(sup, Message::of(detail::SupervisorTerminateChild{{}, child}), infinity);
  co_return to_status(co_await call);
}
CallAwaiter<Pid> Supervisor::restart_child(const ServerRef& sup, std::string id) {
  return detail::call_ref<Pid>(sup, Message::of(detail::SupervisorRestartChild{std::move(id)}), infinity);
}
Async<Status> Supervisor::delete_child(ServerRef sup, std::string id) {
  auto call = detail::call_ref<detail::SupervisorOk>(sup, Message::of(detail::SupervisorDeleteChild{std::move(id)}), infinity);
  co_return to_status(co_await call);
}
CallAwaiter<std::vector<ChildInfo>> Supervisor::which_children(const ServerRef& sup) {
  return detail::call_ref<std::vector<ChildInfo>>(sup, Message::of(detail::SupervisorWhichChildren{}), infinity);
}
CallAwaiter<ChildCounts> Supervisor::count_children(const ServerRef& sup) {
  return detail::call_ref<ChildCounts>(sup, Message::of(detail::SupervisorCountChildren{}), infinity);
}
CallAwaiter<ChildSpec> Supervisor::get_childspec(const ServerRef& sup, std::string id) {
  return detail::call_ref<ChildSpec>(sup, Message::of(detail::SupervisorGetChildSpec{std::move(id), Pid{}}), infinity);
}
CallAwaiter<ChildSpec> Supervisor::get_childspec(const ServerRef& sup, Pid child) {
  return detail::call_ref<ChildSpec>(sup, Message::of(detail::SupervisorGetChildSpec{{}, child}), infinity);
}
CallAwaiter<ChildInfo> Supervisor::which_child(const ServerRef& sup, std::string id) {
  return detail::call_ref<ChildInfo>(sup, Message::of(detail::SupervisorWhichChild{std::move(id)}), infinity);
}

Result<Pid> Supervisor::start_child(Runtime& rt, const ServerRef& sup, ChildSpec spec) {
  return blocking_call<Pid>(rt, sup, Message::of(detail::SupervisorStartChild{std::move(spec)}));
}
Status Supervisor::terminate_child(Runtime& rt, const ServerRef& sup, std::string id) {
  return to_status(blocking_call<detail::SupervisorOk>(rt, sup, Message::of(detail::SupervisorTerminateChild{std::move(id), Pid{}})));
}
Status Supervisor::terminate_child(Runtime& rt, const ServerRef& sup, Pid child) {
  return to_status(blocking_call<detail::SupervisorOk>(rt, sup, Message::of(detail::SupervisorTerminateChild{{}, child})));
}
Result<Pid> Supervisor::restart_child(Runtime& rt, const ServerRef& sup, std::string id) {
  return blocking_call<Pid>(rt, sup, Message::of(detail::SupervisorRestartChild{std::move(id)}));
}
Status Supervisor::delete_child(Runtime& rt, const ServerRef& sup, std::string id) {
  return to_status(blocking_call<detail::SupervisorOk>(rt, sup, Message::of(detail::SupervisorDeleteChild{std::move(id)})));
}
Result<std::vector<ChildInfo>> Supervisor::which_children(Runtime& rt, const ServerRef& sup) {
  return blocking_call<std::vector<ChildInfo>>(rt, sup, Message::of(detail::SupervisorWhichChildren{}));
}
Result<ChildCounts> Supervisor::count_children(Runtime& rt, const ServerRef& sup) {
  return blocking_call<ChildCounts>(rt, sup, Message::of(detail::SupervisorCountChildren{}));
}
Result<ChildSpec> Supervisor::get_childspec(Runtime& rt, const ServerRef& sup, std::string id) {
  return blocking_call<ChildSpec>(rt, sup, Message::of(detail::SupervisorGetChildSpec{std::move(id), Pid{}}));
}
Result<ChildSpec> Supervisor::get_childspec(Runtime& rt, const ServerRef& sup, Pid child) {
  return blocking_call<ChildSpec>(rt, sup, Message::of(detail::SupervisorGetChildSpec{{}, child}));
}
Result<ChildInfo> Supervisor::which_child(Runtime& rt, const ServerRef& sup, std::string id) {
  return blocking_call<ChildInfo>(rt, sup, Message::of(detail::SupervisorWhichChild{std::move(id)}));
}

// ---- The server ---------------------------------------------------------------------------

detail::SupervisorServer::SupervisorServer(Source source, ServerRef name) : source_(std::move(source)), name_(std::move(name)) {}

Async<Init> detail::SupervisorServer::init() {
  trap_exit(true);
  // Before the init function: a PartitionSupervisor's renames the entry from inside it.
  record_.join(behaviour, name_, &intensity_);
  SupervisorSpec spec;
  if (auto* f = std::get_if<SupervisorInit>(&source_)) {
    Result<SupervisorSpec> r = (*f)();  // may throw: the start fails with the exception
    if (!r) {
      if (r.error().kind() == ErrorKind::ignore) co_return ignore();
      co_return Init::stop(ExitReason::other("init returned an error: " + r.error().to_string()));
    }
    spec = std::move(r).value();
  } else {
    spec = std::move(std::get<SupervisorSpec>(source_));
  }
  source_ = SupervisorSpec{};  // the specs now live in the children
  if (Status s = validate(spec.flags, spec.children); !s) co_return Init::stop(ExitReason::other(s.error().to_string()));
  flags_ = spec.flags;
  intensity_ = RestartIntensity(flags_.intensity, flags_.period);
  children_.reserve(spec.children.size());
  for (ChildSpec& s : spec.children) {
    Position c = add(std::move(s));
    Result<Pid> r = co_await start_one(c);
    if (r) {
      if (*r) {
        children_.set_pid(c, *r);
      } else if (is_temporary(c->spec)) {
        children_.erase(c);  // temporary + ignore: the spec is not kept
      }
      continue;
    }
    // The first failure: stop those already started, in reverse order, and give up.
    std::string detail = "failed_to_start_child " + quoted(c->spec.id) + ": " + r.error().to_string();
    report_start_error(*c, r.error());
    children_.erase(c);
    co_await stop_range(children_.begin());
    co_return Init::stop(ExitReason::shutdown(std::move(detail)));
  }
  record_.running();
  co_return ok();
}

detail::SupervisorServer::Position detail::SupervisorServer::add(ChildSpec spec) {
  Child child;
  child.args.options = spec.options;
  child.shutdown = spec.effective_shutdown();
  child.spec = std::move(spec);
  return children_.insert(children_.end(), std::move(child));
}

ChildInfo detail::SupervisorServer::info_of(const Child& c) const {
  return ChildInfo{c.spec.id, c.pid, c.restarting, c.spec.type, c.spec.modules};
}

// Starts one child; Pid{} for ignore. An exception from the start function is a start error.
Async<Result<Pid>> detail::SupervisorServer::start_one(Position c) {
  try {
    Async<Result<Pid>> start = c->spec.start(c->args);
    Result<Pid> r = co_await start;
    if (!r && r.error().kind() == ErrorKind::ignore) co_return Pid{};
    if (!r) {
      record_.start_failed();
    } else if (*r) {
      record_.started(report_child(*c, *r));
    }
    co_return r;
  } catch (...) {
    record_.start_failed();
    ExitReason reason;
    std::string what = detail::describe_exception(std::current_exception(), reason);
    co_return Error(ErrorKind::start_error, "start of child " + quoted(c->spec.id) + " raised: " + what, Pid{}, reason);
  }
}

// OTP's shutdown/1 for one child, then reported if it did not end as asked.
Async<void> detail::SupervisorServer::stop_one(Position c) {
  const Pid pid = c->pid;
  children_.clear_pid(c);
  c->restarting = false;
  if (!pid) co_return;
  ExitReason reason = co_await detail::shutdown_child(pid, c->shutdown);
  // noproc: it was already gone and its EXIT is not here yet (it will be ignored).
  if (!detail::expected_shutdown_reason(reason, c->shutdown, c->spec.restart) && reason.kind() != ExitReason::Kind::noproc)
    report(ReportKind::shutdown_error, *c, pid, reason);
}

Async<void> detail::SupervisorServer::stop_range(Position from) {
  if (from == children_.end()) co_return;
  Position c = std::prev(children_.end());
  for (;;) {
    const bool last = c == from;
    Position before = last ? c : std::prev(c);
    if (c->pid) {
      co_await stop_one(c);
      if (is_temporary(c->spec)) children_.erase(c);  // a temporary bystander is not restarted
    }
    if (last) break;
    c = before;
  }
}

Async<bool> detail::SupervisorServer::start_range(Position from) {
  for (Position c = from; c != children_.end();) {
    Position next = std::next(c);
    c->restarting = false;
    Result<Pid> r = co_await start_one(c);
    if (!r) {
      report_start_error(*c, r.error());
      c->restarting = true;
      send(self(), detail::SupervisorTryAgain{c->spec.id});
      co_return false;
    }
    if (*r) {
      children_.set_pid(c, *r);
    } else if (is_temporary(c->spec)) {
      children_.erase(c);
    }
    c = next;
  }
  co_return true;
}

Async<void> detail::SupervisorServer::restart(Position c) {
  switch (flags_.strategy) {
    case Strategy::one_for_one: {
      c->restarting = false;
      Result<Pid> r = co_await start_one(c);
      if (!r) {
        report_start_error(*c, r.error());
        c->restarting = true;
        send(self(), detail::SupervisorTryAgain{c->spec.id});
      } else if (*r) {
        children_.set_pid(c, *r);
      }
      co_return;
    }
    case Strategy::one_for_all:
      co_await stop_range(children_.begin());
      co_await start_range(children_.begin());
      co_return;
    case Strategy::rest_for_one:
      co_await stop_range(std::next(c));
      co_await start_range(c);
      co_return;
  }
}

void detail::SupervisorServer::give_up(Position c, const ExitReason& reason) {
  record_.gave_up();
  report(ReportKind::reached_max_restart_intensity, *c, Pid{}, reason, "shutting down");
  children_.erase(c);
}

bool detail::SupervisorServer::auto_shutdown_now() const {
  switch (flags_.auto_shutdown) {
    case AutoShutdown::never: return false;
    case AutoShutdown::any_significant: return true;
    case AutoShutdown::all_significant:
      for (const Child& c : children_)
        if (c.spec.significant && c.pid) return false;
      return true;
  }
  return false;
}

Async<NoReply> detail::SupervisorServer::handle_info(Exit exit) {
  Position c = children_.find(exit.from);
  if (c == children_.end()) co_return noreply();  // not (or no longer) a child: ignored
  children_.clear_pid(c);
  const bool abnormal = !exit.reason.is_clean();
  if (!detail::restarts(c->spec.restart, exit.reason)) {
    if (abnormal) report(ReportKind::child_terminated, *c, exit.from, exit.reason, "not restarted");
    const bool significant = c->spec.significant;
    if (is_temporary(c->spec)) children_.erase(c);
    if (significant && auto_shutdown_now()) co_return stop_with(ExitReason::shutdown());
    co_return noreply();
  }
  if (intensity_.add()) {
    if (abnormal) report(ReportKind::child_terminated, *c, exit.from, exit.reason, "giving up");
    give_up(c, exit.reason);
    co_return stop_with(ExitReason::shutdown());
  }
  record_.restarted();
  co_await restart(c);
  // Reported after the restart, so that the replacement's init does not wait for a report
  // line to be formatted and written. `c` is still there: only temporary children are
  // removed by a restart, and a child that is restarted is not temporary.
  if (abnormal) report(ReportKind::child_terminated, *c, exit.from, exit.reason, "restarted");
  co_return noreply();
}

Async<NoReply> detail::SupervisorServer::handle_info(detail::SupervisorTryAgain again) {
  Position c = children_.find(again.id);
  // Stopped meanwhile (terminate_child): nothing to retry.
  if (c == children_.end() || !c->restarting) co_return noreply();
  if (intensity_.add()) {
    give_up(c, ExitReason::other("its restart failed"));
    co_return stop_with(ExitReason::shutdown());
  }
  record_.restarted();
  co_await restart(c);
  co_return noreply();
}

Async<void> detail::SupervisorServer::terminate(const ExitReason& reason) {
  record_.stopping(reason);
  co_await stop_range(children_.begin());
}

// ---- Serving the API ----------------------------------------------------------------------

Async<Message> detail::SupervisorServer::handle_call(detail::SupervisorStartChild request) {
  if (Status s = validate_against(flags_, request.spec); !s) co_return Message::of(s.error());
  if (Position c = children_.find(request.spec.id); c != children_.end()) {
    if (c->pid)
      co_return error_reply(ErrorKind::already_started, "child " + quoted(c->spec.id) + " is already running", c->pid);
    co_return error_reply(ErrorKind::already_present, "child " + quoted(c->spec.id) + " exists but is not running");
  }
  Position c = add(std::move(request.spec));
  Result<Pid> r = co_await start_one(c);
  if (!r) {
    children_.erase(c);  // a child that failed to start is not kept
    co_return Message::of(r.error());
  }
  if (*r) {
    children_.set_pid(c, *r);
  } else if (is_temporary(c->spec)) {
    children_.erase(c);
  }
  co_return Message::of(*r);
}

Async<Message> detail::SupervisorServer::handle_call(detail::SupervisorTerminateChild request) {
  if (request.pid) co_return error_reply(ErrorKind::not_found, "terminate_child by pid: a static supervisor's children are named by id");
  Position c = children_.find(request.id);
  if (c == children_.end()) co_return error_reply(ErrorKind::not_found, "no child " + quoted(request.id));
  co_await stop_one(c);  // also ends a restart loop
  if (is_temporary(c->spec)) children_.erase(c);
  co_return ok_reply();
}

Async<Message> detail::SupervisorServer::handle_call(detail::SupervisorRestartChild request) {
  Position c = children_.find(request.id);
  if (c == children_.end()) co_return error_reply(ErrorKind::not_found, "no child " + quoted(request.id));
  if (c->pid) co_return error_reply(ErrorKind::running, "child " + quoted(request.id) + " is running", c->pid);
  if (c->restarting) co_return error_reply(ErrorKind::restarting, "child " + quoted(request.id) + " is being restarted");
  Result<Pid> r = co_await start_one(c);
  if (!r) co_return Message::of(r.error());  // the spec is kept, not running
  if (*r) {
    children_.set_pid(c, *r);
  } else if (is_temporary(c->spec)) {
    children_.erase(c);
  }
  co_return Message::of(*r);
}

Message detail::SupervisorServer::handle_call(detail::SupervisorDeleteChild request) {
  Position c = children_.find(request.id);
  if (c == children_.end()) return error_reply(ErrorKind::not_found, "no child " + quoted(request.id));
  if (c->pid) return error_reply(ErrorKind::running, "child " + quoted(request.id) + " is running", c->pid);
  if (c->restarting) return error_reply(ErrorKind::restarting, "child " + quoted(request.id) + " is being restarted");
  children_.erase(c);
  return ok_reply();
}

std::vector<ChildInfo> detail::SupervisorServer::handle_call(detail::SupervisorWhichChildren) {
  std::vector<ChildInfo> out;
  out.reserve(children_.size());
  for (auto c = children_.rbegin(); c != children_.rend(); ++c) out.push_back(info_of(*c));
  return out;
}

ChildCounts detail::SupervisorServer::handle_call(detail::SupervisorCountChildren) {
  ChildCounts n;
  for (const Child& c : children_) n.add(static_cast<bool>(c.pid), c.spec.type);
  return n;
}

Message detail::SupervisorServer::handle_call(detail::SupervisorGetChildSpec request) {
  Position c = children_.end();
  if (request.pid) {
    c = children_.find(request.pid);
  } else {
    c = children_.find(request.id);
  }
  if (c == children_.end())
    return error_reply(ErrorKind::not_found, "no child " + (request.pid ? request.pid.to_string() : quoted(request.id)));
  ChildSpec full = c->spec;
  full.shutdown = c->shutdown;
  return Message::of(std::move(full));
}

Message detail::SupervisorServer::handle_call(detail::SupervisorWhichChild request) {
  Position c = children_.find(request.id);
  if (c == children_.end()) return error_reply(ErrorKind::not_found, "no child " + quoted(request.id));
  return Message::of(info_of(*c));
}

// ---- Reports ------------------------------------------------------------------------------

ReportChild detail::SupervisorServer::report_child(const Child& c, Pid pid) {
  return ReportChild{c.spec.id, pid, c.spec.restart, c.shutdown, c.spec.type};
}

// The supervisor, what happened, the child's id and pid, the reason (supervisor_stats.hpp).
void detail::SupervisorServer::report(ReportKind kind, const Child& c, Pid pid, const ExitReason& reason,
                                      std::string_view outcome) const {
  record_.report(kind, report_child(c, pid), reason, outcome);
}

void detail::SupervisorServer::report_start_error(const Child& c, const Error& error) const {
  report(ReportKind::start_error, c, Pid{}, ExitReason::other(error.to_string()));
}

}  // namespace coppice
