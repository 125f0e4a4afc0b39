// Parent after a child stopped on its own (SEMANTICS.md 7.4): restarted or not, with the
// siblings bound to it; restarts counted, backoff, lifetimes; the reports.
#include <algorithm>

#include "otp/parent_core.hpp"

namespace coppice {

namespace detail {

// Counts one restart of `c`, parent-wide and for the child; true if either is exceeded.
bool ParentCore::record_restart(Pos c) {
  const auto now = std::chrono::steady_clock::now();
  bool over = options_.intensity && intensity_.add(now);
  if (c->intensity && c->intensity->add(now)) over = true;
  if (over) {
    record_.gave_up();
  } else {
    record_.restarted();
  }
  return over;
}

Async<Step> ParentCore::give_up() {
  record_.report(ReportKind::reached_max_restart_intensity, std::nullopt, too_many_restarts());
  co_await stop_all(ExitReason::shutdown());
  co_return Step{Step::Kind::stop, {}, too_many_restarts(), {}, {}};
}

Async<Step> ParentCore::finish(Outcome out) {
  if (out.give_up) co_return co_await give_up();
  if (out.stopped.empty()) co_return Step{};
  co_return co_await notify(std::move(out.stopped));
}

Async<Step> ParentCore::notify(StoppedChildren stopped) {
  Message m = Message::of(std::move(stopped));
  Dispatched d = on_stopped_(base_, m);
  if (d.index() == 0) co_return std::get<0>(std::move(d));
  Async<Step> work = std::get<1>(std::move(d));
  co_return co_await work;
}

// A child stopped on its own (SEMANTICS.md 7.4); its pid is already cleared.
Async<Step> ParentCore::on_stopped(Pos c, ExitReason reason) {
  const Pid pid = c->last;
  std::vector<Pos> set = closure(c);
  std::vector<Pos> others;
  for (Pos p : set)
    if (p != c) others.push_back(p);
  co_await stop_set(others, ExitReason::shutdown());
  const bool abnormal = !reason.is_clean();
  if (restarts(c->spec.restart, reason)) {
    if (record_restart(c)) {
      if (abnormal) report(ReportKind::child_terminated, *c, pid, reason, "giving up");
      co_return co_await give_up();
    }
    if (c->spec.backoff) {
      const std::chrono::milliseconds delay = next_delay(*c);
      if (abnormal) report(ReportKind::child_terminated, *c, pid, reason, "restarting in " + ms(delay));
      ParentResume later;
      for (Pos p : set) {
        p->restarting = true;
        later.orders.push_back(p->order);
      }
      coppice::send_after(delay, coppice::self(), std::move(later));
      co_return Step{};
    }
    Outcome out = co_await start_set(set);
    if (abnormal) report(ReportKind::child_terminated, *c, pid, reason, "restarted");
    co_return co_await finish(std::move(out));
  }
  if (abnormal) report(ReportKind::child_terminated, *c, pid, reason, "not restarted");
  StoppedChildren stopped;
  const bool all = c->spec.ephemeral;
  for (Pos p : set) {
    if (!all && !p->spec.ephemeral) continue;  // kept, not running
    stopped.push_back(take(p, p == c ? reason : ExitReason::shutdown(), p == c && abnormal));
  }
  if (stopped.empty()) co_return Step{};
  co_return co_await notify(std::move(stopped));
}

std::chrono::milliseconds ParentCore::next_delay(Child& c) {
  const Backoff& b = *c.spec.backoff;
  const auto ran = std::chrono::steady_clock::now() - c.started;
  if (c.delay.count() == 0 || ran >= b.reset_after.value_or(b.max)) {
    c.delay = supervision_ms(b.initial);
  } else {
    c.delay = std::min(supervision_ms(b.max), std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(c.delay.count()) * b.multiplier)));
  }
  std::uniform_real_distribution<double> factor(1.0 - b.jitter, 1.0 + b.jitter);
  const double jittered = static_cast<double>(c.delay.count()) * (b.jitter > 0 ? factor(random_) : 1.0);
  return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(jittered)));
}

Async<Step> ParentCore::on_lifetime(Pid pid) {
  Pos c = children_.find(pid);
  if (c == children_.end()) co_return Step{};  // stopped meanwhile
  c->timed = false;  // it fired
  clear_running(c);
  co_await detail::shutdown_child(pid, c->shutdown, ExitReason::timeout());
  co_return co_await on_stopped(c, ExitReason::timeout());
}

Async<Step> ParentCore::on_resume(std::vector<std::uint64_t> orders) {
  std::vector<Pos> set;
  for (std::uint64_t o : orders) {
    auto it = by_order_.find(o);
    if (it != by_order_.end() && it->second->restarting && !it->second->pid) set.push_back(it->second);
  }
  if (set.empty()) co_return Step{};  // stopped or started meanwhile
  Outcome out = co_await start_set(set);
  co_return co_await finish(std::move(out));
}

ReportChild ParentCore::report_child(const Child& c, Pid pid) {
  return ReportChild{c.spec.id, pid, c.spec.restart, c.shutdown, c.spec.type};
}

// Worded as the `parent` library's (Report::parent): an anonymous child is named by its pid.
void ParentCore::report(ReportKind kind, const Child& c, Pid pid, const ExitReason& reason, std::string_view outcome) const {
  record_.report(kind, report_child(c, pid), reason, outcome);
}

}  // namespace detail
}  // namespace coppice
