// Spawn and exit storms: links and monitors fire from both ends at once, and every monitor
// still gives exactly one DOWN, every link exactly one Exit to a trapping process.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::Pid;
using coppice::Ref;
using coppice::stress::mix;
using coppice::stress::patience;
using coppice::stress::Random;

namespace {

struct Targets {
  std::vector<Pid> mortals;
};
struct Siblings {
  std::vector<Pid> mortals;
};
struct Finish {};
struct Go {};  // the main thread monitors a coordinator before it starts
struct Report {
  std::uint32_t from;  // watcher or coordinator index
  std::uint64_t errors = 0;
  std::string first_error;
  std::uint64_t exits = 0;
  std::uint64_t downs = 0;
};

// Collects failures inside a process, which cannot use gtest's assertions.
struct Errors {
  std::uint64_t count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ == 0) first = what;
  }
};

// Who links and monitors whom: a function of the round's seed, so that both ends know.
bool watcher_links(std::uint64_t seed, std::uint32_t w, std::uint32_t m) { return mix(seed * 5 + 1, w * 4096 + m) % 4 == 0; }
bool mortal_links_watcher(std::uint64_t seed, std::uint32_t m, std::uint32_t w) { return mix(seed * 5 + 2, w * 4096 + m) % 4 == 0; }
unsigned watcher_monitors(std::uint64_t seed, std::uint32_t w, std::uint32_t m) {
  const std::uint64_t h = mix(seed * 5 + 3, w * 4096 + m) % 6;
  return h == 0 ? 2 : h == 1 ? 1 : 0;  // two monitors on one process: two DOWNs
}
bool mortals_link(std::uint64_t seed, std::uint32_t a, std::uint32_t b) {  // symmetric: both ends link
  return mix(seed * 5 + 4, std::min(a, b) * 4096 + std::max(a, b)) % 8 == 0;
}

// A short-lived child of a mortal: gone at once, one way or another.
coppice::Async<void> grandchild(std::uint64_t how) {
  if (how == 1) throw std::runtime_error("grandchild crash");  // kills its non-trapping parent
  if (how == 2) co_await coppice::receive<int>(0ms);
  co_return;
}

// Links to some watchers as it starts, then to siblings (who link back at the same time),
// then dies in one of several ways, some of which kill siblings.
coppice::Async<void> mortal(std::uint64_t seed, std::uint32_t m, std::vector<Pid> watchers) {
  for (std::uint32_t w = 0; w < watchers.size(); ++w)
    if (mortal_links_watcher(seed, m, w)) coppice::link(watchers[w]).value();  // watchers are alive
  Random r(mix(seed, m));
  for (std::uint64_t n = r.below(3); n > 0; --n) coppice::spawn_link(grandchild, r.below(3));
  Siblings s = co_await coppice::receive<Siblings>();
  const std::uint32_t count = static_cast<std::uint32_t>(s.mortals.size());
  for (std::uint32_t j = 0; j < count; ++j)
    if (j != m && mortals_link(seed, m, j)) (void)coppice::link(s.mortals[j]);  // noproc if it is gone
  if (r.below(2) == 0) coppice::monitor(s.mortals[r.below(count)]);
  switch (r.below(6)) {
    case 0:
      co_return;
    case 1:
      coppice::exit(coppice::ExitReason::other("boom"));
    case 2:
      coppice::exit(s.mortals[r.below(count)], coppice::ExitReason::kill());
      co_return;
    case 3:
      coppice::exit(s.mortals[r.below(count)], coppice::ExitReason::shutdown());
      throw std::runtime_error("mortal crash");
    case 4:
      co_await coppice::receive<int>(1ms);  // a timer is pending as the others die
      co_return;
    default:
      co_await coppice::receive<int>(0ms);
      coppice::exit(coppice::ExitReason::shutdown("detail"));
  }
}

// Traps exits, links to and monitors mortals while they link to it and die; counts what
// arrives until Finish, which comes once every mortal is gone.
coppice::Async<void> watcher(Pid coordinator, std::uint64_t seed, std::uint32_t w) {
  coppice::trap_exit(true);
  Targets t = co_await coppice::receive<Targets>();
  struct Expected {
    int exits = 0;     // received
    int expected = 1;  // one per link made, by either end
    int noproc = 0;
    bool both_link = false;  // the mortal linked to us and we link to it too
  };
  std::unordered_map<std::uint64_t, Expected> exits;  // mortal pid -> Exits
  std::unordered_map<std::uint64_t, int> downs;       // monitor ref -> DOWNs received
  Errors errors;
  Report report;
  report.from = w;
  auto count_exit = [&](const coppice::Exit& e) {
    ++report.exits;
    auto it = exits.find(e.from.bits());
    if (it == exits.end()) return errors.add("watcher " + std::to_string(w) + ": Exit from unlinked " + e.from.to_string());
    ++it->second.exits;
    if (e.reason.kind() == coppice::ExitReason::Kind::noproc) ++it->second.noproc;
  };
  for (std::uint32_t m = 0; m < t.mortals.size(); ++m) {
    const Pid pid = t.mortals[m];
    if (mortal_links_watcher(seed, m, w)) exits[pid.bits()];
  }
  // Exits that came with Targets: a mortal that linked to us has died already. If we link
  // to it now, that is a second link, to a dead process: a second Exit, noproc (OTP's rule).
  // The last receive of this drain may give the worker back (an await that completes at once
  // yields after messages_per_turn of them, as a BEAM process is preempted), and the next turn
  // acts on what arrived meanwhile: a mortal's Exit can then be taken in after the drain and
  // before our link, which makes that link a second one too (both_link, checked below).
  while (auto e = co_await coppice::receive<coppice::Exit>(0ms)) count_exit(*e);
  for (std::uint32_t m = 0; m < t.mortals.size(); ++m) {
    const Pid pid = t.mortals[m];
    if (watcher_links(seed, w, m)) {
      auto [it, fresh] = exits.try_emplace(pid.bits());
      it->second.both_link = !fresh;
      if (!fresh && it->second.exits > 0) it->second.expected = 2;
      coppice::link(pid).value();  // trapping: a dead pid gives Exit(noproc), not an error
    }
    for (unsigned k = watcher_monitors(seed, w, m); k > 0; --k) downs[coppice::monitor(pid).bits()] = 0;
  }
  for (;;) {
    auto msg = co_await coppice::receive_any(patience);
    if (!msg) {
      errors.add("watcher " + std::to_string(w) + ": no Finish");
      break;
    }
    if (auto* e = msg->get_if<coppice::Exit>()) {
      count_exit(*e);
    } else if (auto* d = msg->get_if<coppice::Down>()) {
      ++report.downs;
      auto it = downs.find(d->ref.bits());
      if (it == downs.end()) {
        errors.add("watcher " + std::to_string(w) + ": DOWN for unknown " + d->ref.to_string());
      } else {
        ++it->second;
      }
    } else if (msg->is<Finish>()) {
      break;
    }
  }
  // Finish comes once the coordinator has every mortal's DOWN. A dying process sends its
  // link Exits before its DOWNs, but our own DOWNs may still be on their way (and, on the
  // engine this was written against, an Exit now and then: see BROKEN_VARIANTS.md). Wait for
  // everything expected; a duplicate then shows as a count above one.
  auto all_in = [&] {
    for (auto& [ref, n] : downs)
      if (n == 0) return false;
    for (auto& [pid, e] : exits)
      if (e.exits < e.expected) return false;
    return true;
  };
  while (!all_in()) {
    auto msg = co_await coppice::receive_any(patience);
    if (!msg) break;
    if (auto* e = msg->get_if<coppice::Exit>()) {
      count_exit(*e);
    } else if (auto* d = msg->get_if<coppice::Down>()) {
      ++report.downs;
      if (auto it = downs.find(d->ref.bits()); it != downs.end()) ++it->second;
    }
  }
  // Where both ends linked and the mortal's Exit was not seen before our link, our link was
  // either a no-op (its Exit not yet taken in: one Exit) or a second link to a dead process
  // (its Exit taken in while we yielded: a second Exit, noproc). Never two real ones.
  auto as_expected = [](const Expected& e) {
    if (e.exits == e.expected) return e.expected != 2 || e.noproc >= 1;
    return e.both_link && e.expected == 1 && e.exits == 2 && e.noproc >= 1;
  };
  for (auto& [pid, e] : exits)
    if (!as_expected(e))
      errors.add("watcher " + std::to_string(w) + ": " + std::to_string(e.exits) + " Exits (" +
                 std::to_string(e.noproc) + " noproc) from " + Pid::from_bits(pid).to_string() + ", expected " +
                 std::to_string(e.expected));
  for (auto& [ref, n] : downs)
    if (n != 1)
      errors.add("watcher " + std::to_string(w) + ": " + std::to_string(n) + " DOWNs for " +
                 Ref::from_bits(ref).to_string());
  report.errors = errors.count;
  report.first_error = errors.first;
  coppice::send(coordinator, std::move(report));
}

struct Child {
  Pid pid;
  Ref ref;
  bool mortal = false;
  int exits = 0;
  int downs = 0;
  coppice::ExitReason exit_reason;
  coppice::ExitReason down_reason;
};

// Waits for Go (it is monitored by then); traps exits; spawn_links + monitors the watchers,
// spawn_monitors + links the mortals, and checks exactly one Exit and one DOWN for each, with
// the same reason (unless the link came too late and answered noproc).
coppice::Async<void> coordinator(Pid main, std::uint32_t index, std::uint64_t seed, std::uint32_t watchers,
                                 std::uint32_t mortals) {
  Go go = co_await coppice::receive<Go>();
  (void)go;
  coppice::trap_exit(true);
  std::vector<Child> children;
  std::unordered_map<std::uint64_t, std::size_t> by_pid, by_ref;
  std::vector<Pid> watcher_pids, mortal_pids;
  for (std::uint32_t w = 0; w < watchers; ++w) {
    Child c;
    c.pid = coppice::spawn_link(watcher, coppice::self(), seed, w);
    c.ref = coppice::monitor(c.pid);
    watcher_pids.push_back(c.pid);
    children.push_back(c);
  }
  for (std::uint32_t m = 0; m < mortals; ++m) {
    Child c;
    c.mortal = true;
    std::tie(c.pid, c.ref) = coppice::spawn_monitor(mortal, seed, m, watcher_pids);
    coppice::link(c.pid).value();  // it may be dead already: then Exit(noproc)
    mortal_pids.push_back(c.pid);
    children.push_back(c);
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    by_pid[children[i].pid.bits()] = i;
    by_ref[children[i].ref.bits()] = i;
  }
  for (Pid p : mortal_pids) coppice::send(p, Siblings{mortal_pids});
  for (Pid p : watcher_pids) coppice::send(p, Targets{mortal_pids});

  Errors errors;
  std::uint32_t reports = 0;
  auto take = [&](coppice::Message& msg) {
    if (auto* e = msg.get_if<coppice::Exit>()) {
      auto it = by_pid.find(e->from.bits());
      if (it == by_pid.end()) return errors.add("coordinator: Exit from stranger " + e->from.to_string());
      Child& c = children[it->second];
      if (++c.exits == 1) c.exit_reason = e->reason;
    } else if (auto* d = msg.get_if<coppice::Down>()) {
      auto it = by_ref.find(d->ref.bits());
      if (it == by_ref.end() || children[it->second].pid != d->pid)
        return errors.add("coordinator: DOWN for unknown " + d->ref.to_string());
      Child& c = children[it->second];
      if (++c.downs == 1) c.down_reason = d->reason;
    } else if (auto* r = msg.get_if<Report>()) {
      ++reports;
      if (r->errors != 0) errors.add(r->first_error + " (+" + std::to_string(r->errors - 1) + " more)");
    }
  };
  auto wait_until = [&](auto done, const char* what) -> coppice::Async<bool> {
    while (!done()) {
      auto msg = co_await coppice::receive_any(patience);
      if (!msg) {
        errors.add(std::string("coordinator: timed out waiting for ") + what);
        co_return false;
      }
      take(*msg);
    }
    co_return true;
  };
  auto all_down = [&](bool mortal) {
    for (const Child& c : children)
      if (c.mortal == mortal && (c.downs == 0 || c.exits == 0)) return false;
    return true;
  };
  if (co_await wait_until([&] { return all_down(true); }, "the mortals' Exits and DOWNs")) {
    for (Pid p : watcher_pids) coppice::send(p, Finish{});
    co_await wait_until([&] { return reports == watchers && all_down(false); }, "the watchers");
  }
  // Anything arriving now is a duplicate (or a stranger).
  while (auto msg = co_await coppice::receive_any(0ms)) take(*msg);
  Report report;
  report.from = index;
  for (const Child& c : children) {
    report.exits += c.exits;
    report.downs += c.downs;
    if (c.exits != 1 || c.downs != 1) {
      errors.add("coordinator: " + c.pid.to_string() + (c.mortal ? " (mortal)" : " (watcher)") + " gave " +
                 std::to_string(c.exits) + " Exits and " + std::to_string(c.downs) + " DOWNs");
    } else if (!(c.exit_reason == c.down_reason) && c.exit_reason.kind() != coppice::ExitReason::Kind::noproc) {
      errors.add("coordinator: " + c.pid.to_string() + " exited " + c.exit_reason.to_string() + " but went DOWN " +
                 c.down_reason.to_string());
    }
  }
  report.errors = errors.count;
  report.first_error = errors.first;
  coppice::send(main, std::move(report));
}

}  // namespace

TEST(LinkMonitorStress, SpawnExitStormGivesOneExitAndOneDownEach) {
  coppice::stress::Watchdog watchdog("SpawnExitStormGivesOneExitAndOneDownEach", 4 * patience);
  constexpr std::uint32_t coordinators = 4, watchers = 4, mortals = 48;
  const int rounds = 15 * coppice::stress::scale;
  coppice::Runtime rt(coppice::stress::options(3, 0us, 16, /*quiet=*/true));  // crashes are on purpose
  coppice::Inbox main(rt);
  std::uint64_t total_exits = 0;
  for (int round = 0; round < rounds; ++round) {
    std::map<std::uint64_t, std::uint32_t> coordinator_of_ref;
    std::vector<Pid> pids;
    for (std::uint32_t c = 0; c < coordinators; ++c) {
      Pid p = rt.spawn(coordinator, main.pid(), c, std::uint64_t(round * coordinators + c), watchers, mortals);
      coordinator_of_ref[main.monitor(p).bits()] = c;
      pids.push_back(p);
    }
    // Only now: a coordinator that ended before the monitor would go DOWN noproc.
    for (Pid p : pids) main.send(p, Go{});
    for (std::uint32_t c = 0; c < coordinators; ++c) {
      auto report = main.receive<Report>(patience);
      ASSERT_TRUE(report) << "round " << round << ": a coordinator never reported";
      EXPECT_EQ(report->errors, 0u) << "round " << round << ", coordinator " << report->from << ": "
                                    << report->first_error;
      total_exits += report->exits;
    }
    for (std::uint32_t c = 0; c < coordinators; ++c) {
      auto down = main.receive<coppice::Down>(patience);
      ASSERT_TRUE(down);
      EXPECT_TRUE(down->reason.is_normal()) << down->reason;
      EXPECT_EQ(coordinator_of_ref.erase(down->ref.bits()), 1u);
    }
    ASSERT_TRUE(coppice::stress::eventually([&] { return rt.process_count() == 0; }))
        << "round " << round << ": " << rt.process_count() << " processes left";
  }
  EXPECT_EQ(total_exits, std::uint64_t(rounds) * coordinators * (watchers + mortals));
}
