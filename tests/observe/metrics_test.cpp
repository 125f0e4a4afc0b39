// metrics(): the runtime's counters against known counts (spawns, exits by reason class,
// messages, timers) and the workers' own (turns, parks, utilisation).
#include <thread>

#include "runtime/support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
struct Exited {};
Async<void> exit_with(ExitReason reason) {
  exit(self(), std::move(reason));
  co_await receive<std::string>();  // the signal ends it here
}
Async<void> throwing() {
  throw std::runtime_error("on purpose");
  co_return;
}
Async<void> returning() { co_return; }
Async<void> sleeper() { co_await receive<std::string>(); }
}  // namespace

TEST(Metrics, SpawnsAndExitsAreCountedByReasonClass) {
  Runtime rt(RuntimeOptions{.workers = 2, .logger = [](std::string_view) {}});
  Inbox inbox(rt);
  const RuntimeMetrics before = metrics(rt);
  auto run_and_wait = [&](auto spawn_one, int n) {
    for (int i = 0; i < n; ++i) {
      const Pid p = spawn_one();
      inbox.monitor(p);
    }
    for (int i = 0; i < n; ++i) ASSERT_TRUE(inbox.receive<Down>(wait_time));
  };
  run_and_wait([&] { return rt.spawn(returning); }, 100);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::shutdown()); }, 7);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::shutdown("with a detail")); }, 3);
  run_and_wait([&] { return rt.spawn(throwing); }, 5);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::other("odd")); }, 2);
  std::vector<Pid> sleepers;
  for (int i = 0; i < 11; ++i) sleepers.push_back(rt.spawn(sleeper));
  for (Pid p : sleepers) {
    inbox.monitor(p);
    rt.exit(p, ExitReason::kill());
  }
  for (std::size_t i = 0; i < sleepers.size(); ++i) ASSERT_TRUE(inbox.receive<Down>(wait_time));

  const RuntimeMetrics after = metrics(rt);
  EXPECT_EQ(after.spawns - before.spawns, 100u + 7 + 3 + 5 + 2 + 11);
  EXPECT_EQ(after.exits_normal - before.exits_normal, 100u);
  EXPECT_EQ(after.exits_shutdown - before.exits_shutdown, 10u);
  EXPECT_EQ(after.exits_error - before.exits_error, 7u) << "5 exceptions and 2 other reasons";
  EXPECT_EQ(after.exits_killed - before.exits_killed, 11u);
  EXPECT_EQ(after.exits - before.exits, 128u);
  EXPECT_EQ(after.processes, rt.process_count());
}

TEST(Metrics, MessagesSentCountEveryEnvelopePutIntoAMailbox) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  // A process that forwards 1,000 ints to the inbox: 1,000 sends from a plain thread, 1,000
  // from a worker, and the monitor's DOWN at the end.
  const Pid relay = rt.spawn([](Pid to) -> Async<void> {
    for (int i = 0; i < 1000; ++i) send(to, co_await receive<int>());
  }, inbox.pid());
  const RuntimeMetrics before = metrics(rt);
  for (int i = 0; i < 1000; ++i) inbox.send(relay, i);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(inbox.receive<int>(wait_time));
  const RuntimeMetrics after = metrics(rt);
  EXPECT_GE(after.messages_sent - before.messages_sent, 2000u);
  EXPECT_LE(after.messages_sent - before.messages_sent, 2010u) << "nothing else runs";
}

TEST(Metrics, TimersStartedAndFiredAreCounted) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  const RuntimeMetrics before = metrics(rt);
  for (int i = 0; i < 5; ++i) rt.send_after(1ms, inbox.pid(), i);
  TimerRef never = rt.send_after(1h, inbox.pid(), -1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(inbox.receive<int>(wait_time));
  const RuntimeMetrics mid = metrics(rt);
  EXPECT_EQ(mid.timers_started - before.timers_started, 6u);
  EXPECT_EQ(mid.timers_fired - before.timers_fired, 5u);
  EXPECT_EQ(mid.timers_pending, 1u);
  EXPECT_TRUE(rt.cancel_timer(never));
  EXPECT_EQ(metrics(rt).timers_pending, 0u);
}

TEST(Metrics, WorkersCountTurnsParksAndUtilisation) {
  RuntimeOptions o = workers(2);
  o.spin_before_park = 0us;  // a worker with nothing to do parks at once
  Runtime rt(o);
  Inbox inbox(rt);
  const Pid echo = rt.spawn([](Pid to) -> Async<void> {
    for (;;) send(to, co_await receive<int>());
  }, inbox.pid());
  for (int i = 0; i < 200; ++i) {
    inbox.send(echo, i);
    ASSERT_TRUE(inbox.receive<int>(wait_time));  // one at a time: the worker parks between
  }
  const RuntimeMetrics m = metrics(rt);
  ASSERT_EQ(m.workers.size(), 2u);
  std::uint64_t turns = 0, parks = 0, wakeups = 0;
  for (const WorkerMetrics& w : m.workers) {
    turns += w.turns;
    parks += w.parks;
    wakeups += w.wakeups;
    EXPECT_GT(w.alive.count(), 0);
    EXPECT_LE(w.parked, w.alive);
    EXPECT_GE(w.utilisation(), 0.0);
    EXPECT_LE(w.utilisation(), 1.0);
  }
  EXPECT_GT(turns, 0u);
  Result<ProcessEntry> e = process_entry(rt, echo);
  ASSERT_TRUE(e);
  EXPECT_GE(e->reductions, 199u) << "a receive resumed per echo (the last may still be in its turn)";
  EXPECT_GT(parks, 0u);
  EXPECT_LE(wakeups, parks);
}
