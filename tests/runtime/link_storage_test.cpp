// How a process keeps its links (one in its header, more in a table that is freed when it
// empties) and detail::exit_monitored, a supervisor's one-signal shutdown of a child.
// The observable rules are SEMANTICS.md 1.3 (links) and 1.5 (monitors); these tests walk
// the storage through each of its states and check the rules hold in each.
#include <algorithm>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

void link_ok(Inbox& inbox, Pid from, Pid to) {
  Result<Outcome> r = inbox.call<Outcome>(from, LinkTo{to}, wait_time);
  ASSERT_TRUE(r) << "the puppet did not answer";
  EXPECT_FALSE(r->error) << r->error->to_string();
}

void unlink_ok(Inbox& inbox, Pid from, Pid to) { ASSERT_TRUE(inbox.call<Done>(from, UnlinkFrom{to}, wait_time)); }

std::vector<Pid> sorted_links(Runtime& rt, Pid pid) {
  Result<ProcessInfo> info = rt.process_info(pid);
  EXPECT_TRUE(info) << info.error();
  std::vector<Pid> links = info ? info->links : std::vector<Pid>{};
  std::sort(links.begin(), links.end(), [](Pid x, Pid y) { return x.bits() < y.bits(); });
  return links;
}

std::vector<Pid> sorted(std::vector<Pid> v) {
  std::sort(v.begin(), v.end(), [](Pid x, Pid y) { return x.bits() < y.bits(); });
  return v;
}

}  // namespace

// One link (header), three (table), back to one, none (the table freed), one again: the
// set is right in every state, and the last link still carries a death.
TEST(LinkStorage, OneThenManyThenOneThenNoneThenOneAgain) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  const Pid c = rt.spawn<Puppet>();
  const Pid d = rt.spawn<Puppet>();
  link_ok(inbox, a, b);
  EXPECT_EQ(sorted_links(rt, a), std::vector<Pid>{b});
  link_ok(inbox, a, c);
  link_ok(inbox, a, d);
  link_ok(inbox, a, c);  // again: still one link to c
  EXPECT_EQ(sorted_links(rt, a), sorted({b, c, d}));
  EXPECT_EQ(sorted_links(rt, c), std::vector<Pid>{a});
  unlink_ok(inbox, a, c);
  unlink_ok(inbox, d, a);  // from the other side
  EXPECT_EQ(sorted_links(rt, a), std::vector<Pid>{b});
  EXPECT_TRUE(sorted_links(rt, d).empty());
  unlink_ok(inbox, a, b);
  EXPECT_TRUE(sorted_links(rt, a).empty());
  EXPECT_TRUE(sorted_links(rt, b).empty());

  // Deaths of the former peers do not reach a.
  for (Pid p : {b, c, d}) {
    const Ref r = inbox.monitor(p);
    inbox.send(p, Die{ExitReason::other("former")});
    ASSERT_TRUE(down_for(inbox, r));
  }
  EXPECT_TRUE(answers(inbox, a)) << "a died through a link it had removed";

  const Pid e = rt.spawn<Puppet>();
  link_ok(inbox, a, e);
  EXPECT_EQ(sorted_links(rt, a), std::vector<Pid>{e});
  const Ref ra = inbox.monitor(a);
  inbox.send(e, Die{ExitReason::other("boom")});
  std::optional<Down> down = down_for(inbox, ra);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->reason, ExitReason::other("boom"));
}

// A process with many links tells every one of them when it dies.
TEST(LinkStorage, ADeathReachesEveryLinkInTheTable) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid hub = rt.spawn<Puppet>();
  std::vector<Pid> spokes;
  std::vector<Ref> refs;
  for (int i = 0; i < 20; ++i) {
    spokes.push_back(rt.spawn<Puppet>());
    link_ok(inbox, spokes.back(), hub);
    refs.push_back(inbox.monitor(spokes.back()));
  }
  EXPECT_EQ(sorted_links(rt, hub).size(), spokes.size());
  inbox.send(hub, Die{ExitReason::other("hub")});
  for (Ref r : refs) {
    std::optional<Down> down = down_for(inbox, r);
    ASSERT_TRUE(down);
    EXPECT_EQ(down->reason, ExitReason::other("hub"));
  }
}

// Monitors set and removed over many turns: the extras are freed and made again, and a
// monitor set after that still fires.
TEST(LinkStorage, MonitorsAfterTheExtrasWereFreedStillFire) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid watcher = rt.spawn<Puppet>(inbox.pid());
  for (int i = 0; i < 50; ++i) {
    const Pid target = rt.spawn<Puppet>();
    Result<Ref> ref = inbox.call<Ref>(watcher, MonitorOf{target}, wait_time);
    ASSERT_TRUE(ref);
    Result<bool> active = inbox.call<bool>(watcher, DemonitorRef{*ref, true}, wait_time);
    ASSERT_TRUE(active);
    EXPECT_TRUE(*active);
    inbox.send(target, Die{ExitReason::normal()});
  }
  const Pid target = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.call<Ref>(watcher, MonitorOf{target}, wait_time));
  inbox.send(target, Die{ExitReason::other("last")});
  std::optional<SawDown> saw = inbox.receive<SawDown>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.pid, target);
  EXPECT_EQ(saw->down.reason, ExitReason::other("last"));
}

// ---- detail::exit_monitored ------------------------------------------------------------

namespace {

struct ExitMonitoredSaw {
  Down down;
  bool exit_seen = false;  // an Exit from the target reached the caller's queue
};

// Links to `target` if asked, traps exits, calls exit_monitored, and reports the DOWN and
// whether an EXIT from the target came through the link too.
Async<void> exit_monitored_by(Pid target, bool link_first, ExitReason reason, Pid report_to) {
  trap_exit(true);
  if (link_first) (void)link(target);
  const Ref ref = detail::exit_monitored(target, std::move(reason));
  auto is_down = [ref](const Message& m) { return m.is<Down>() && m.get<Down>().ref == ref; };
  Message down = co_await receive_if(is_down);
  ExitMonitoredSaw saw{down.get<Down>(), false};
  // Links are told before monitors, so an EXIT would be queued by now.
  auto is_exit = [target](const Message& m) { return m.is<Exit>() && m.get<Exit>().from == target; };
  std::optional<Message> exit = co_await receive_if(is_exit, std::chrono::nanoseconds(0));
  saw.exit_seen = exit.has_value();
  send(report_to, saw);
}

}  // namespace

TEST(ExitMonitored, ALinkedChildDiesWithTheReasonAndItsExitIsNotDelivered) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid child = rt.spawn<Puppet>();
  const Pid caller = rt.spawn(exit_monitored_by, child, true, ExitReason::shutdown(), inbox.pid());
  std::optional<ExitMonitoredSaw> saw = inbox.receive<ExitMonitoredSaw>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.pid, child);
  EXPECT_EQ(saw->down.reason, ExitReason::shutdown());
  EXPECT_FALSE(saw->exit_seen) << "the caller's side of the link was to be dropped";
  (void)caller;
}

TEST(ExitMonitored, ADeadPidGivesDownNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  rt.spawn(exit_monitored_by, dead, false, ExitReason::shutdown(), inbox.pid());
  std::optional<ExitMonitoredSaw> saw = inbox.receive<ExitMonitoredSaw>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.reason, ExitReason::noproc());
}

// A trapping child gets the signal as an Exit message and lives on; the DOWN carries the
// reason it exits with later.
TEST(ExitMonitored, ATrappingChildSeesTheExitAndTheDownCarriesItsOwnReason) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid child = rt.spawn<Puppet>(inbox.pid(), true);
  ASSERT_TRUE(answers(inbox, child));  // init ran: it traps
  const Pid caller = rt.spawn(exit_monitored_by, child, true, ExitReason::shutdown(), inbox.pid());
  std::optional<SawExit> exit = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit.from, caller);
  EXPECT_EQ(exit->exit.reason, ExitReason::shutdown());
  inbox.send(child, Die{ExitReason::other("in my own time")});
  std::optional<ExitMonitoredSaw> saw = inbox.receive<ExitMonitoredSaw>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.reason, ExitReason::other("in my own time"));
  EXPECT_FALSE(saw->exit_seen);
}

// The signal unlinks both sides: a trapping child that survives it is linked to nothing,
// and a link made afterwards is a real one, on both sides (SEMANTICS.md 1.3).
TEST(ExitMonitored, ATrappingChildThatSurvivesKeepsNoHalfLink) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid child = rt.spawn<Puppet>(inbox.pid(), true);
  ASSERT_TRUE(answers(inbox, child));
  const Pid caller = rt.spawn(exit_monitored_by, child, true, ExitReason::shutdown(), inbox.pid());
  std::optional<SawExit> exit = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(exit);  // the child has acted on the signal
  EXPECT_EQ(sorted_links(rt, child), std::vector<Pid>{}) << "the child kept its side of the link";
  // Linked again from the child's side: the caller (still waiting for its DOWN) has it too.
  link_ok(inbox, child, caller);
  EXPECT_EQ(sorted_links(rt, child), std::vector<Pid>{caller});
  EXPECT_EQ(sorted_links(rt, caller), std::vector<Pid>{child});
  inbox.send(child, Die{ExitReason::other("now")});
  std::optional<ExitMonitoredSaw> saw = inbox.receive<ExitMonitoredSaw>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.reason, ExitReason::other("now"));
  EXPECT_TRUE(saw->exit_seen) << "the new link carried the child's exit to the caller";
}

// kill is untrappable through exit_monitored too.
TEST(ExitMonitored, KillStopsATrappingChild) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid child = rt.spawn<Puppet>(Pid{}, true);
  ASSERT_TRUE(answers(inbox, child));
  rt.spawn(exit_monitored_by, child, true, ExitReason::kill(), inbox.pid());
  std::optional<ExitMonitoredSaw> saw = inbox.receive<ExitMonitoredSaw>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(saw->down.reason, ExitReason::killed());
  EXPECT_FALSE(saw->exit_seen);
}
