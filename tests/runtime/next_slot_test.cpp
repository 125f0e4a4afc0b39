// A process woken into its waker's next slot must not be stranded there while the waker's
// callback holds the worker: another worker takes it (ARCHITECTURE.md, "The scheduler").
#include <array>
#include <cstdio>
#include <atomic>
#include <thread>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Flag {
  std::atomic<bool> set{false};
};
struct Go {
  Pid target;
  Flag* ran;
  Pid report_to;
};
struct Ran {
  bool ran;
};
struct Touch {};

// Sets the flag whenever it runs a message.
class Setter : public Process {
 public:
  explicit Setter(Flag* flag) : flag_(flag) {}
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    flag_->set.store(true);
  }

 private:
  Flag* flag_;
};

// On Go: wakes the target (which lands in this worker's next slot), then holds the worker
// until the target has run, which only another worker can make happen. The wait is bounded
// so that a stranded target is a failure, not a hang.
class Waker : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    Go* go = m.get_if<Go>();
    if (go == nullptr) return;
    send(go->target, Touch{});
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!go->ran->set.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    send(go->report_to, Ran{go->ran->set.load()});
  }
};

}  // namespace

TEST(NextSlot, AProcessWokenByACallbackThatWaitsForItRunsOnAnotherWorker) {
  // Before the runtime, so that they outlive every process that may still set one.
  std::array<Flag, 10> flags;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  for (int round = 0; round < 10; ++round) {
    Flag& flag = flags[static_cast<std::size_t>(round)];
    const Pid setter = rt.spawn<Setter>(&flag);
    const Pid waker = rt.spawn<Waker>();
    ASSERT_TRUE(answers(inbox, setter));  // idle now: the waker's send schedules it
    ASSERT_TRUE(answers(inbox, waker));
    flag.set.store(false);
    inbox.send(waker, Go{setter, &flag, inbox.pid()});
    std::optional<Ran> r = inbox.receive<Ran>(2 * wait_time);
    ASSERT_TRUE(r) << "round " << round << ": the waker never reported";
    ASSERT_TRUE(r->ran) << "round " << round << ": the woken process stayed stranded in the waker's next slot";
  }
}

// A process that spent its turn's budget goes back to its worker's queue without waking
// anyone (alone there, it would run next anyway). If the message that ended its turn woke a
// process into the next slot, that one runs first, and may hold the worker: then the
// requeued process must be taken by another worker, not wait for the callback.
namespace {

struct Busy {
  Pid wake;
  Flag* ran;
  Pid report_to;
};
struct Mark {
  Flag* ran;
};

// On Busy: wakes the holder (into this worker's next slot); its turn's budget is then spent
// (messages_per_turn 2), and the Mark behind waits in the queue.
class Requeued : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});
      return;
    }
    if (Busy* b = m.get_if<Busy>()) send(b->wake, Go{self(), b->ran, b->report_to});
    if (Mark* mark = m.get_if<Mark>()) mark->ran->set.store(true);
  }
};

// On Go: holds the worker until the requeued process has run its Mark (bounded).
class Holder : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});
      return;
    }
    Go* go = m.get_if<Go>();
    if (go == nullptr) return;
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!go->ran->set.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    send(go->report_to, Ran{go->ran->set.load()});
  }
};

struct Filler {};

}  // namespace

TEST(NextSlot, AProcessRequeuedBehindANextSlotThatHoldsTheWorkerRunsOnAnotherWorker) {
  // Before the runtime, so that they outlive every process that may still set one.
  std::array<Flag, 10> flags;
  Runtime rt(workers(2, 2));
  Inbox inbox(rt);
  for (int round = 0; round < 10; ++round) {
    Flag& flag = flags[static_cast<std::size_t>(round)];
    const Pid requeued = rt.spawn<Requeued>();
    const Pid holder = rt.spawn<Holder>();
    ASSERT_TRUE(answers(inbox, requeued));
    ASSERT_TRUE(answers(inbox, holder));
    // Three messages in one go: a filler, Busy (the second: the budget is spent with it),
    // and the Mark that must still run while the holder holds.
    inbox.send(requeued, Filler{});
    inbox.send(requeued, Busy{holder, &flag, inbox.pid()});
    inbox.send(requeued, Mark{&flag});
    std::optional<Ran> r = inbox.receive<Ran>(2 * wait_time);
    ASSERT_TRUE(r) << "round " << round << ": the holder never reported";
    ASSERT_TRUE(r->ran) << "round " << round << ": the requeued process waited for the holder's callback";
  }
}

// A process spawned alone wakes nobody (it runs on its spawner's worker when the turn ends).
// If the spawner's callback then holds the worker until the child has run, another worker
// must take the child from the queue (the watcher, take_stranded_next), not wait for it.
namespace {

class InitSetter : public Process {
 public:
  explicit InitSetter(Flag* flag) : flag_(flag) {}
  void init() override { flag_->set.store(true); }
  void handle(Message) override {}

 private:
  Flag* flag_;
};

struct SpawnAndWait {
  Flag* ran;
  Pid report_to;
};

class SpawnThenHold : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});
      return;
    }
    SpawnAndWait* go = m.get_if<SpawnAndWait>();
    if (go == nullptr) return;
    spawn<InitSetter>(go->ran);
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!go->ran->set.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    send(go->report_to, Ran{go->ran->set.load()});
  }
};

// On Go: wakes `target` into this worker's next slot, then a second process that displaces
// it into the queue, alone there (nobody is woken for it); then holds the worker until the
// first has run.
struct WakeTwo {
  Pid first;
  Pid second;
  Flag* ran;
  Pid report_to;
};
class DisplaceThenHold : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});
      return;
    }
    WakeTwo* go = m.get_if<WakeTwo>();
    if (go == nullptr) return;
    send(go->first, Touch{});
    send(go->second, Filler{});
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!go->ran->set.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    send(go->report_to, Ran{go->ran->set.load()});
  }
};

}  // namespace

TEST(NextSlot, AProcessSpawnedByACallbackThatWaitsForItRunsOnAnotherWorker) {
  // Before the runtime, so that they outlive every process that may still set one.
  std::array<Flag, 10> flags;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  for (int round = 0; round < 10; ++round) {
    Flag& flag = flags[static_cast<std::size_t>(round)];
    const Pid spawner = rt.spawn<SpawnThenHold>();
    ASSERT_TRUE(answers(inbox, spawner));
    inbox.send(spawner, SpawnAndWait{&flag, inbox.pid()});
    std::optional<Ran> r = inbox.receive<Ran>(2 * wait_time);
    ASSERT_TRUE(r) << "round " << round << ": the spawner never reported";
    ASSERT_TRUE(r->ran) << "round " << round << ": the child waited in the spawner's queue for its callback";
  }
}

TEST(NextSlot, AProcessDisplacedFromTheNextSlotByACallbackThatWaitsForItRunsOnAnotherWorker) {
  // Before the runtime, so that they outlive every process that may still set one.
  std::array<Flag, 10> flags;
  std::array<Flag, 10> others;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  for (int round = 0; round < 10; ++round) {
    Flag& flag = flags[static_cast<std::size_t>(round)];
    Flag& other = others[static_cast<std::size_t>(round)];
    const Pid first = rt.spawn<Setter>(&flag);
    const Pid second = rt.spawn<Setter>(&other);
    const Pid waker = rt.spawn<DisplaceThenHold>();
    ASSERT_TRUE(answers(inbox, first));
    ASSERT_TRUE(answers(inbox, second));
    ASSERT_TRUE(answers(inbox, waker));
    inbox.send(waker, WakeTwo{first, second, &flag, inbox.pid()});
    std::optional<Ran> r = inbox.receive<Ran>(2 * wait_time);
    ASSERT_TRUE(r) << "round " << round << ": the waker never reported";
    ASSERT_TRUE(r->ran) << "round " << round << ": the displaced process waited for the waker's callback";
  }
}

// W3's chain without the OTP layer: the driver asks the spawner for a child; the child tells
// the driver it is ready and then acknowledges to the spawner, which displaces the driver
// from the next slot into the queue, alone there. That lone process is its worker's to run
// when the spawner's short turn ends: nobody is woken for it, and a searching worker leaves
// it for a while (Scheduler::leave_lone). Taken by the other worker instead, the driver and
// everything it wakes moved across cores at every round (issue 17: W3 on two workers, 1.7
// steals a restart and p50 2.3-3.8 µs, against 1.5 on one). Measured here at 20,000 rounds:
// 16,700-26,200 steals before, 0-5 in 196 runs of 200 after, and 2,100-2,300 in a few runs
// while the host was busy (a worker slowed or preempted leaves the driver waiting longer than
// the grace); hence a bound, a quarter of the rounds, rather than none.
namespace {

struct Again {};
struct ChildReady {};
struct ChildAck {};

Async<void> chain_child(Pid driver, Pid spawner) {
  send(driver, ChildReady{});
  send(spawner, ChildAck{});
  co_return;
}

Async<void> chain_spawner(Pid driver) {
  const Pid me = self();
  for (;;) {
    co_await receive<Again>();
    spawn(chain_child, driver, me);
    co_await receive<ChildAck>();
  }
}

struct ChainDone {};

Async<void> chain_driver(int rounds, Pid report_to) {
  const Pid spawner = spawn_link(chain_spawner, self());
  for (int i = 0; i < rounds; ++i) {
    send(spawner, Again{});
    co_await receive<ChildReady>();
  }
  send(report_to, ChainDone{});
}

}  // namespace

TEST(NextSlot, ARestartLikeChainOfSpawnsAndAcknowledgementsStaysOnOneCore) {
  constexpr int rounds = 20000;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const std::uint64_t steals_before = [&] {
    std::uint64_t n = 0;
    for (const WorkerMetrics& w : metrics(rt).workers) n += w.steals;
    return n;
  }();
  rt.spawn(chain_driver, rounds, inbox.pid());
  ASSERT_TRUE(inbox.receive<ChainDone>(4 * wait_time)) << "the chain did not finish";
  std::uint64_t steals = 0;
  for (const WorkerMetrics& w : metrics(rt).workers) steals += w.steals;
  steals -= steals_before;
  EXPECT_LT(steals, static_cast<std::uint64_t>(rounds / 4))
      << steals << " processes were taken by the other worker in " << rounds << " rounds";
}

// The other side of leave_lone's grace: two processes with long backlogs on one worker take
// turns through its queue, so the queue always holds one of them, a different one at each
// look. The second worker must still take one of them and run the two at once, and soon
// (found by review of the grace: a searcher keyed on one entry never sees the same one for
// the grace). One sender wakes both in one short turn, so both start on its worker (the
// first, displaced from the next slot alone into the queue, wakes nobody); each keeps its
// backlog by sending itself the next message, and each message holds the worker for about
// 1 µs. The bound is on the messages handled before the two first run at once. Before the
// fix (a process requeued with a backlog is taken at once, and a spinner kept from stealing
// by the cap on searchers asks again when another queue holds work) this failed in 13 runs
// of 20: in some rounds the two never ran at once.
namespace {

struct Backlog {
  std::atomic<int> running{0};
  std::atomic<int> handled{0};
  std::atomic<int> overlap_at{-1};
};
struct Work {};
struct BacklogDone {};
struct Start {
  Pid a;
  Pid b;
};

class BusyOne : public Process {
 public:
  BusyOne(Backlog* log, int messages, Pid report_to) : log_(log), left_(messages), report_to_(report_to) {}
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    if (log_->running.fetch_add(1) == 1) {
      int none = -1;
      log_->overlap_at.compare_exchange_strong(none, log_->handled.load());
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(1);
    while (std::chrono::steady_clock::now() < until) {
    }
    log_->running.fetch_sub(1);
    log_->handled.fetch_add(1);
    if (--left_ > 0) {
      send(self(), Work{});
    } else {
      send(report_to_, BacklogDone{});
    }
  }

 private:
  Backlog* log_;
  int left_;
  Pid report_to_;
};

class Starter : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    if (Start* s = m.get_if<Start>()) {
      send(s->a, Work{});
      send(s->b, Work{});
    }
  }
};

}  // namespace

TEST(NextSlot, TwoBusyProcessesTakingTurnsOnOneWorkerSpreadToTheOther) {
  constexpr int each = 20000;
  constexpr int rounds = 11;
  std::array<Backlog, rounds> logs;  // before the runtime: they outlive its processes
  // The idle worker spins rather than parks (its spin doubles with each find, up to this):
  // waking a parked thread took 0.6-3.9 ms on this kind of host, which would be measured
  // here instead of the scheduler. The first round, while the spin grows, is not judged.
  RuntimeOptions options = workers(2, 2);
  options.spin_before_park = std::chrono::seconds(1);
  Runtime rt(options);
  Inbox inbox(rt);
  for (int round = 0; round < rounds; ++round) {
    Backlog& log = logs[static_cast<std::size_t>(round)];
    const Pid a = rt.spawn<BusyOne>(&log, each, inbox.pid());
    const Pid b = rt.spawn<BusyOne>(&log, each, inbox.pid());
    const Pid starter = rt.spawn<Starter>();
    ASSERT_TRUE(answers(inbox, a));
    ASSERT_TRUE(answers(inbox, b));
    ASSERT_TRUE(answers(inbox, starter));
    inbox.send(starter, Start{a, b});
    ASSERT_TRUE(inbox.receive<BacklogDone>(4 * wait_time)) << "round " << round;
    ASSERT_TRUE(inbox.receive<BacklogDone>(4 * wait_time)) << "round " << round;
    ASSERT_EQ(log.handled.load(), 2 * each);
    const int at = log.overlap_at.load();
    std::printf("round %d: the two ran at once after %d of %d messages\n", round, at, 2 * each);
    if (round == 0) continue;
    EXPECT_GE(at, 0) << "round " << round << ": the two never ran at once";
    EXPECT_LT(at, each) << "round " << round << ": the second worker took one of the two late";
  }
}
