// A process woken into its waker's next slot must not be stranded there while the waker's
// callback holds the worker: another worker takes it (ARCHITECTURE.md, "The scheduler").
#include <array>
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
