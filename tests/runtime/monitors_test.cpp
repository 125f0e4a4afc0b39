// Monitors (SEMANTICS.md 1.5): DOWN with the reason, noproc for the dead, one DOWN per monitor, demonitor and its flush.
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

// An Inbox as the monitored process is used below where a test must know that every signal
// the dead process sent is already in the watcher's mailbox: an inbox's destructor ends it on
// the test's own thread, so all its DOWNs are delivered when the destructor returns.

TEST(Monitors, DownCarriesTheRefThePidAndTheExitReason) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  std::optional<Down> d = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ref, ref);
  EXPECT_EQ(d->pid, a);
  EXPECT_EQ(d->reason, ExitReason::other("boom"));
}

// A monitor of a dead pid from a plain thread: BadInput.MonitorOfADeadPidGivesAnImmediateDownNoproc.

TEST(Monitors, ProcessMonitoringADeadPidGetsDownNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid a = rt.spawn<Puppet>(inbox.pid());
  Result<Ref> ref = inbox.call<Ref>(a, MonitorOf{dead}, wait_time);
  ASSERT_TRUE(ref);
  std::optional<SawDown> seen = inbox.receive<SawDown>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->down.ref, *ref);
  EXPECT_EQ(seen->down.pid, dead);
  EXPECT_EQ(seen->down.reason, ExitReason::noproc());
}

TEST(Monitors, TwoMonitorsGiveTwoDowns) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Ref r1 = inbox.monitor(a);
  const Ref r2 = inbox.monitor(a);
  EXPECT_NE(r1, r2);
  inbox.send(a, Die{ExitReason::shutdown()});
  std::optional<Down> d1 = down_for(inbox, r1);
  std::optional<Down> d2 = down_for(inbox, r2);
  ASSERT_TRUE(d1);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d1->reason, ExitReason::shutdown());
  EXPECT_EQ(d2->reason, ExitReason::shutdown());
}

TEST(Monitors, ProcessMonitorGetsDownWithTheReason) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid watcher = rt.spawn<Puppet>(inbox.pid());
  const Pid target = rt.spawn<Puppet>();
  Result<Ref> ref = inbox.call<Ref>(watcher, MonitorOf{target}, wait_time);
  ASSERT_TRUE(ref);
  inbox.send(target, Die{ExitReason::other("boom")});
  std::optional<SawDown> seen = inbox.receive<SawDown>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->down.ref, *ref);
  EXPECT_EQ(seen->down.pid, target);
  EXPECT_EQ(seen->down.reason, ExitReason::other("boom"));
}

// A monitor is one-way: the death of the watcher does nothing to the watched.
TEST(Monitors, AreUnidirectional) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid watcher = rt.spawn<Puppet>();
  const Pid target = rt.spawn<Puppet>(inbox.pid(), true);
  ASSERT_TRUE(inbox.call<Ref>(watcher, MonitorOf{target}, wait_time));
  const Ref rw = inbox.monitor(watcher);
  inbox.send(watcher, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, rw));
  EXPECT_TRUE(answers(inbox, target));
  EXPECT_FALSE(inbox.receive<SawDown>(0ms));
  EXPECT_FALSE(inbox.receive<SawExit>(0ms));
}

TEST(Monitors, DemonitorMeansNoDownIsAdded) {
  Runtime rt(workers(2));
  Inbox watcher(rt);
  Ref dropped, kept;
  {
    Inbox target(rt);
    dropped = watcher.monitor(target.pid());
    kept = watcher.monitor(target.pid());
    EXPECT_TRUE(watcher.demonitor(dropped));
  }  // target ends here: its DOWNs are all in watcher's mailbox now
  std::optional<Down> d = down_for(watcher, kept);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::normal());
  EXPECT_FALSE(down_for(watcher, dropped, 0ms)) << "a DOWN arrived for a monitor removed before the death";
}

TEST(Monitors, DemonitorLeavesAQueuedDownUnlessFlushed) {
  Runtime rt(workers(2));
  Inbox watcher(rt);
  Ref ref;
  {
    Inbox target(rt);
    ref = watcher.monitor(target.pid());
  }
  ASSERT_EQ(watcher.queued(), 1u);  // the DOWN is in the queue now, not only on its way
  EXPECT_FALSE(watcher.demonitor(ref)) << "the monitor had already fired";
  std::optional<Down> d = down_for(watcher, ref, 0ms);
  ASSERT_TRUE(d) << "demonitor without flush removed the DOWN";
  EXPECT_EQ(d->reason, ExitReason::normal());
}

// OTP's demonitor(Ref, [info]): true means no DOWN was delivered and none will be; false
// means the DOWN was (or is being) delivered. A DOWN still on its way may go either way.
TEST(Monitors, DemonitorResultTellsWhetherTheDownWillBeSeen) {
  Runtime rt(workers(2));
  Inbox watcher(rt);
  Ref ref;
  {
    Inbox target(rt);
    ref = watcher.monitor(target.pid());
  }
  const bool was_active = watcher.demonitor(ref);
  std::optional<Down> d = down_for(watcher, ref, 0ms);
  EXPECT_EQ(was_active, !d.has_value()) << "demonitor said " << was_active << " but the DOWN "
                                        << (d ? "arrived" : "did not arrive");
}

TEST(Monitors, DemonitorWithFlushRemovesAQueuedDown) {
  Runtime rt(workers(2));
  Inbox watcher(rt);
  Ref ref;
  {
    Inbox target(rt);
    ref = watcher.monitor(target.pid());
  }
  EXPECT_FALSE(watcher.demonitor(ref, {.flush = true})) << "the monitor had already fired";
  EXPECT_FALSE(watcher.receive_any(0ms)) << "flush left the DOWN (or something else) in the mailbox";
  EXPECT_EQ(watcher.queued(), 0u);
}

TEST(Monitors, DemonitorReturnsWhetherTheMonitorWasActive) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Ref ref = inbox.monitor(a);
  EXPECT_TRUE(inbox.demonitor(ref));
  EXPECT_FALSE(inbox.demonitor(ref));
  const Ref other = inbox.monitor(a);
  EXPECT_TRUE(inbox.demonitor(other, {.flush = true}));
}

// The same from inside a process (the in-process demonitor drains its mailbox itself).
TEST(Monitors, ProcessDemonitorWithFlushRemovesAQueuedDown) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Watching {};
  struct Report {
    bool was_active;
    bool anything_left;
  };
  std::optional<Inbox> target(std::in_place, rt);
  const Pid watcher = rt.spawn([](Pid observer, Pid watched) -> Async<void> {
    const Ref ref = monitor(watched);
    send(observer, Watching{});
    co_await receive<std::string>();  // "go": the target is gone by then
    const bool was_active = demonitor(ref, {.flush = true});
    std::optional<Message> left = co_await receive_any(0ms);
    send(observer, Report{was_active, left.has_value()});
  }, inbox.pid(), target->pid());
  ASSERT_TRUE(inbox.receive<Watching>(wait_time));
  target.reset();  // its DOWN is in the watcher's mailbox before our "go"
  inbox.send(watcher, std::string("go"));
  std::optional<Report> r = inbox.receive<Report>(wait_time);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->was_active);
  EXPECT_FALSE(r->anything_left) << "demonitor with flush left the DOWN queued";
}

TEST(Monitors, ProcessDemonitorBeforeTheDeathMeansNoDown) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid watcher = rt.spawn<Puppet>(inbox.pid());
  std::optional<Inbox> target(std::in_place, rt);
  Result<Ref> dropped = inbox.call<Ref>(watcher, MonitorOf{target->pid()}, wait_time);
  Result<Ref> kept = inbox.call<Ref>(watcher, MonitorOf{target->pid()}, wait_time);
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(kept);
  Result<bool> was_active = inbox.call<bool>(watcher, DemonitorRef{*dropped}, wait_time);
  ASSERT_TRUE(was_active);
  EXPECT_TRUE(*was_active);
  target.reset();
  std::optional<SawDown> seen = inbox.receive<SawDown>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->down.ref, *kept);
  ASSERT_TRUE(answers(inbox, watcher));
  EXPECT_FALSE(inbox.receive<SawDown>(0ms)) << "a DOWN came for a monitor removed before the death";
}

TEST(Monitors, SpawnMonitorWatchesTheChildFromItsFirstInstruction) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid observer) -> Async<void> {
    auto [child, ref] = spawn_monitor([]() -> Async<void> {
      coppice::exit(ExitReason::other("at once"));
      co_return;
    });
    Down d = co_await receive<Down>();
    send(observer, SawDown{child, d});
    send(observer, ref);
  }, inbox.pid());
  std::optional<SawDown> seen = inbox.receive<SawDown>(wait_time);
  std::optional<Ref> ref = inbox.receive<Ref>(wait_time);
  ASSERT_TRUE(seen);
  ASSERT_TRUE(ref);
  EXPECT_EQ(seen->down.ref, *ref);
  EXPECT_EQ(seen->down.pid, seen->by);
  EXPECT_EQ(seen->down.reason, ExitReason::other("at once")) << "the monitor was set up after the child died";
}
