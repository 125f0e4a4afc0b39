// Parent starting children: start_child and start_all_children, restart_child,
// return_children, and the start of a set of children in start order.
#include <algorithm>
#include <unordered_set>

#include "otp/parent_core.hpp"

namespace coppice {
namespace detail {

Async<Result<Pid>> ParentCore::start_child(ParentChildSpec spec) {
  if (Status s = check_new(spec); !s) co_return s.error();
  Pos c = add(std::move(spec), next_order_++, std::nullopt);
  Result<Pid> r = co_await start_one(c);
  if (!r) {
    remove(c);
    co_return r.error();
  }
  if (!*r) {
    if (c->spec.ephemeral) remove(c);  // ignore: kept (not running) unless ephemeral
    co_return Pid{};
  }
  set_running(c, *r);
  co_return *r;
}

Async<std::vector<Pid>> ParentCore::start_all_children(std::vector<ParentChildSpec> specs) {
  std::vector<Pid> pids;
  pids.reserve(specs.size());
  for (ParentChildSpec& spec : specs) {
    // Worded as the `parent` library's: "Error starting the child 'id': <error>".
    ReportChild child{spec.id, Pid{}, spec.restart, spec.effective_shutdown(), spec.type};
    Result<Pid> r = co_await start_child(std::move(spec));
    if (!r) {
      record_.report(ReportKind::start_error, child, ExitReason::other(r.error().to_string()), "start_all_children");
      co_await stop_all(ExitReason::shutdown());
      coppice::exit(start_error_reason());
    }
    pids.push_back(*r);
  }
  co_return pids;
}

Async<Status> ParentCore::restart_child(ChildRef ref) {
  Pos c = find(ref);
  if (c == children_.end()) co_return not_found(ref);
  std::vector<Pos> set = closure(c);
  co_await stop_set(set, ExitReason::shutdown());
  Outcome out = co_await start_set(set);
  settle_outside(std::move(out));
  co_return Status{};
}

Async<Status> ParentCore::return_children(StoppedChildren stopped) {
  std::sort(stopped.begin(), stopped.end(), [](const StoppedChild& a, const StoppedChild& b) { return a.order < b.order; });
  std::vector<Pos> added;
  bool crashed = false;
  for (StoppedChild& s : stopped) {
    if (s.order == 0 || by_order_.contains(s.order)) continue;  // present already (idempotent)
    if (!s.spec.id.empty() && children_.contains(s.spec.id)) continue;
    crashed = crashed || s.crashed;
    added.push_back(add(std::move(s.spec), s.order, std::move(s.deps)));
  }
  if (crashed && record_restart(added.front())) {
    coppice::send(coppice::self(), ParentGiveUp{});
    co_return Status{};
  }
  Outcome out = co_await start_set(added);
  settle_outside(std::move(out));
  co_return Status{};
}

Async<Result<Pid>> ParentCore::start_one(Pos c) {
  try {
    // Built per start (not kept per child); the frame keeps it alive for the start function.
    const StartArgs args{c->spec.options, {}};
    Async<Result<Pid>> start = c->spec.start(args);
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
    std::string what = describe_exception(std::current_exception(), reason);
    co_return Error(ErrorKind::start_error, "start of " + describe(c->spec, Pid{}) + " raised: " + what, Pid{}, reason);
  }
}

// Starts the children of `set` that are not running, in start order. A start that fails
// is a crash of that child: the siblings bound to it go down (or do not start), it counts
// as a restart, and it is retried after the messages already queued, unless temporary.
Async<ParentCore::Outcome> ParentCore::start_set(const std::vector<Pos>& set) {
  Outcome out;
  std::unordered_set<std::uint64_t> skip;
  for (Pos c : set) {
    if (c->pid || skip.contains(c->order)) continue;
    c->restarting = false;
    Result<Pid> r = co_await start_one(c);
    if (r && *r) {
      set_running(c, *r);
      continue;
    }
    if (r) {  // ignore: not running; kept unless ephemeral
      if (c->spec.ephemeral) remove(c);
      continue;
    }
    report(ReportKind::start_error, *c, Pid{}, ExitReason::other(r.error().to_string()));
    std::vector<Pos> down = closure(c);
    for (Pos d : down) skip.insert(d->order);
    std::vector<Pos> running;
    for (Pos d : down)
      if (d->pid) running.push_back(d);
    co_await stop_set(running, ExitReason::shutdown());
    if (c->spec.restart == Restart::temporary) {
      for (Pos d : down) {
        if (!d->spec.ephemeral) continue;
        out.stopped.push_back(take(d, d == c ? r.error().reason() : ExitReason::shutdown()));
      }
      continue;
    }
    if (record_restart(c)) {
      out.give_up = true;
      co_return out;
    }
    ParentResume again;
    for (Pos d : down) {
      d->restarting = true;
      again.orders.push_back(d->order);
    }
    coppice::send(coppice::self(), std::move(again));
  }
  co_return out;
}

// What start_set left, from an API function inside a callback: giving up waits for the
// callback to return; stopped children are not reported (7.4: never for API functions).
void ParentCore::settle_outside(Outcome out) {
  if (out.give_up) coppice::send(coppice::self(), ParentGiveUp{});
}

}  // namespace detail
}  // namespace coppice
