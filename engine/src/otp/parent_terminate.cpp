// Parent stopping children: shutdown_child, shutdown_all, and every child at the parent's exit,
// one at a time in reverse start order.
#include "otp/parent_core.hpp"

namespace coppice {
namespace detail {

Async<Result<StoppedChildren>> ParentCore::shutdown_child(ChildRef ref) {
  Pos c = find(ref);
  if (c == children_.end()) co_return not_found(ref);
  std::vector<Pos> set = closure(c);
  std::vector<ExitReason> reasons = co_await stop_set(set, ExitReason::shutdown());
  StoppedChildren stopped;
  stopped.reserve(set.size());
  for (std::size_t i = 0; i < set.size(); ++i) stopped.push_back(take(set[i], reasons[i]));
  co_return stopped;
}

Async<StoppedChildren> ParentCore::shutdown_all(ExitReason reason) { co_return co_await stop_all(std::move(reason)); }

// After terminate (or a failed init): every child, reverse start order.
Async<void> ParentCore::stop_children(ExitReason reason) {
  record_.stopping(reason);
  co_await stop_all(std::move(reason));
}

// Stops the running children of `set` (start order) one at a time, in reverse order, with
// `signal`; their EXITs are taken. Returns each one's exit reason (shutdown for those not
// running).
Async<std::vector<ExitReason>> ParentCore::stop_set(const std::vector<Pos>& set, ExitReason signal) {
  std::vector<ExitReason> reasons(set.size(), ExitReason::shutdown());
  for (std::size_t i = set.size(); i-- > 0;) {
    Pos c = set[i];
    c->restarting = false;
    const Pid pid = c->pid;
    if (!pid) continue;
    clear_running(c);
    reasons[i] = co_await detail::shutdown_child(pid, c->shutdown, signal);
    if (!expected_shutdown_reason(reasons[i], c->shutdown, c->spec.restart) && !(reasons[i] == signal) &&
        reasons[i].kind() != ExitReason::Kind::noproc)
      report(ReportKind::shutdown_error, *c, pid, reasons[i]);
  }
  co_return reasons;
}

Async<StoppedChildren> ParentCore::stop_all(ExitReason reason) {
  if (reason.is_normal()) reason = ExitReason::shutdown();  // a normal exit signal would be ignored
  std::vector<Pos> all;
  all.reserve(children_.size());
  for (Pos p = children_.begin(); p != children_.end(); ++p) all.push_back(p);
  std::vector<ExitReason> reasons = co_await stop_set(all, reason);
  StoppedChildren stopped;
  stopped.reserve(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) stopped.push_back(take(all[i], reasons[i]));
  co_return stopped;
}

}  // namespace detail
}  // namespace coppice
