// The pieces every supervisor shares (supervision.hpp): the restart rule, counting restarts,
// the shutdown protocol for one child or many.
#include "otp/supervision.hpp"

#include <algorithm>
#include <map>

namespace coppice {

// ---- Restarts -----------------------------------------------------------------------------

bool detail::restarts(Restart restart, const ExitReason& reason) {
  switch (restart) {
    case Restart::permanent: return true;
    case Restart::transient: return !reason.is_clean();
    case Restart::temporary: return false;
  }
  return false;
}

bool RestartIntensity::add(std::chrono::steady_clock::time_point now) {
  const std::int64_t t = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  // Kept if t - entry <= period (inclusive, as OTP).
  while (head_ < ticks_.size() && t - ticks_[head_].ms > period_.count()) in_window_ -= ticks_[head_++].count;
  if (head_ > 64 && head_ * 2 > ticks_.size()) {
    ticks_.erase(ticks_.begin(), ticks_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  if (head_ < ticks_.size() && ticks_.back().ms == t) {
    ++ticks_.back().count;
  } else {
    ticks_.push_back(Tick{t, 1});
  }
  ++in_window_;
  return static_cast<std::int64_t>(in_window()) > intensity_;
}

// ---- Shutting children down --------------------------------------------------------------

namespace detail {

bool expected_shutdown_reason(const ExitReason& reason, Shutdown how, Restart restart) {
  if (how.kind() == Shutdown::Kind::brutal_kill && reason.kind() == ExitReason::Kind::killed) return true;
  if (reason.kind() == ExitReason::Kind::shutdown && !reason.has_detail()) return true;
  if (restart != Restart::permanent && reason.is_clean()) return true;
  return false;
}

Async<ExitReason> shutdown_child(Pid child, Shutdown how, ExitReason signal) {
  const Ref mon = monitor(child);
  auto down = [mon](const Message& m) { return m.is<Down>() && m.get<Down>().ref == mon; };
  std::optional<Message> d;
  if (how.kind() == Shutdown::Kind::brutal_kill) {
    exit(child, ExitReason::kill());
    d.emplace(co_await receive_if(down));
  } else {
    exit(child, std::move(signal));
    if (how.kind() == Shutdown::Kind::timeout) {
      d = co_await receive_if(down, how.time());
      if (!d) {
        exit(child, ExitReason::kill());
        d.emplace(co_await receive_if(down));
      }
    } else {
      d.emplace(co_await receive_if(down));
    }
  }
  ExitReason reason = d->get<Down>().reason;
  unlink(child);
  // The child's EXIT, if it was linked, came before its DOWN (links are told before
  // monitors), so it is queued now: take it, and prefer its reason.
  auto exit_from = [child](const Message& m) { return m.is<Exit>() && m.get<Exit>().from == child; };
  std::optional<Message> e = co_await receive_if(exit_from, std::chrono::nanoseconds(0));
  if (e) reason = e->get<Exit>().reason;
  co_return reason;
}

namespace {
struct KillTimer {
  std::int64_t ms;
};
}  // namespace

Async<std::vector<ExitReason>> shutdown_children(std::vector<std::pair<Pid, Shutdown>> children) {
  std::vector<ExitReason> reasons(children.size());
  // (monitor ref, child index), sorted by ref: searched without a hash table. Refs made in
  // one turn come from one worker's counter, so they are sorted already.
  std::vector<std::pair<std::uint64_t, std::size_t>> refs(children.size());
  std::map<std::int64_t, std::vector<std::size_t>> by_timeout;  // one timer per distinct timeout
  std::vector<bool> done(children.size(), false);
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto& [pid, how] = children[i];
    // Unlinked, monitored and told to exit, in one signal (Elixir: monitor, unlink, exit).
    const bool brutal = how.kind() == Shutdown::Kind::brutal_kill;
    refs[i] = {detail::exit_monitored(pid, brutal ? ExitReason::kill() : ExitReason::shutdown()).bits(), i};
    if (how.kind() == Shutdown::Kind::timeout) by_timeout[how.time().count()].push_back(i);
  }
  if (!std::is_sorted(refs.begin(), refs.end())) std::sort(refs.begin(), refs.end());
  auto index_of = [&refs](std::uint64_t ref) -> std::size_t {
    auto it = std::lower_bound(refs.begin(), refs.end(), std::pair<std::uint64_t, std::size_t>{ref, 0});
    return it != refs.end() && it->first == ref ? it->second : refs.size();
  };
  std::vector<TimerRef> timers;
  for (auto& [ms, list] : by_timeout) timers.push_back(send_after(std::chrono::milliseconds(ms), self(), KillTimer{ms}));
  std::size_t left = children.size();
  while (left > 0) {
    std::size_t index = refs.size();
    auto ours = [&](const Message& m) {
      if (const Down* d = m.get_if<Down>()) {
        index = index_of(d->ref.bits());
        return index < refs.size() && !done[index];
      }
      return m.is<KillTimer>();
    };
    Message m = co_await receive_if(ours);
    if (const Down* d = m.get_if<Down>()) {
      reasons[index] = d->reason;
      done[index] = true;
      --left;
    } else {
      // This timeout has expired: whoever of its children is still there is killed.
      for (std::size_t i : by_timeout[m.get<KillTimer>().ms])
        if (!done[i]) exit(children[i].first, ExitReason::kill());
    }
  }
  for (TimerRef t : timers) cancel_timer(t);
  // A timer that fired after the last DOWN leaves a KillTimer behind: drop it.
  for (;;) {
    std::optional<KillTimer> stale = co_await receive<KillTimer>(std::chrono::nanoseconds(0));
    if (!stale) break;
  }
  co_return reasons;
}

}  // namespace detail
}  // namespace coppice
