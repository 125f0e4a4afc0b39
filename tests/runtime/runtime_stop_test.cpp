// Stopping a Runtime while the program around it keeps going: spawns refused, every spawned process ended, stop from anywhere, inboxes that outlive it.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// What happened to one process object: how many times it was destroyed, and on which thread.
struct Fate {
  std::atomic<int> destroyed{0};
  std::thread::id destroyer;
};

// Every Fate of a test, so that it can check each object after the stop.
struct Fates {
  std::mutex mutex;
  std::vector<std::shared_ptr<Fate>> all;
  std::shared_ptr<Fate> make() {
    auto f = std::make_shared<Fate>();
    std::lock_guard lock(mutex);
    all.push_back(f);
    return f;
  }
};

// True if a refused spawn destroyed its object before returning, on the thread that spawned.
bool destroyed_here(const Fate& f) {
  return f.destroyed.load(std::memory_order_acquire) == 1 && f.destroyer == std::this_thread::get_id();
}

// Answers Ping with Pong; records its destruction in its Fate.
class Tracked : public Process {
 public:
  explicit Tracked(std::shared_ptr<Fate> fate) : fate_(std::move(fate)) {}
  ~Tracked() override {
    fate_->destroyer = std::this_thread::get_id();
    // Release: a reader that sees the count (acquire) sees the destroyer's id.
    fate_->destroyed.fetch_add(1, std::memory_order_release);
  }
  void handle(Message m) override {
    if (m.is<Ping>())
      if (auto from = m.reply_to()) coppice::reply(*from, Pong{coppice::self()});
  }

 private:
  std::shared_ptr<Fate> fate_;
};

struct Breed {};

// Spawns a monitored child, shuts it down and goes round again, forever: a process that
// keeps spawning while the runtime stops. A refused spawn must have destroyed the child's
// object on this worker before returning; `misplaced` counts those that did not.
class Breeder : public Process {
 public:
  Breeder(Fates* fates, std::atomic<int>* misplaced, std::atomic<long>* refused)
      : fates_(fates), misplaced_(misplaced), refused_(refused) {}
  // Killed by the stop, it tries once more: certainly after the stop began, so refused.
  ~Breeder() override {
    if (breed()) misplaced_->fetch_add(1);
  }
  void handle(Message m) override {
    if (!m.is<Breed>()) return;
    breed();
    coppice::send(coppice::self(), Breed{});
  }

 private:
  // True if the child was started.
  bool breed() {
    std::shared_ptr<Fate> fate = fates_->make();
    auto [child, ref] = coppice::spawn_monitor<Tracked>(fate);
    if (!child) {
      refused_->fetch_add(1);
      if (!destroyed_here(*fate)) misplaced_->fetch_add(1);
      return false;
    }
    coppice::exit(child, ExitReason::shutdown());
    return true;
  }

  Fates* fates_;
  std::atomic<int>* misplaced_;
  std::atomic<long>* refused_;
};

// Waits (yielding) until `done` holds: for a count other threads raise, not for the clock.
template <class Done>
void wait_until(Done done) {
  while (!done()) std::this_thread::yield();
}

}  // namespace

// Issue 12, item 1: a spawn after stop() began is refused, its object destroyed on the
// spawning thread; a spawn that succeeded is run or killed by the stop. Nothing is stranded.
TEST(RuntimeStop, SpawnAfterStopIsRefusedAndItsObjectDestroyedOnTheCaller) {
  Runtime rt(workers(2));
  rt.stop();
  auto fate = std::make_shared<Fate>();
  const Pid pid = rt.spawn<Tracked>(fate);
  EXPECT_FALSE(pid) << "a spawn after stop gave " << pid.to_string();
  EXPECT_TRUE(destroyed_here(*fate)) << "destroyed " << fate->destroyed.load() << " times, elsewhere or never";
  EXPECT_EQ(rt.process_count(), 0u);
  // The form that says why.
  auto again = std::make_shared<Fate>();
  Result<Pid> r = rt.try_spawn<Tracked>(again);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::runtime_stopped) << r.error();
  EXPECT_TRUE(destroyed_here(*again));
  Result<Pid> body = rt.try_spawn([]() -> Async<void> { co_return; });
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().kind(), ErrorKind::runtime_stopped) << body.error();
}

// Threads keep spawning, sending, calling, linking and registering names, and two processes
// keep spawning, while another thread stops the runtime: stop returns; each object whose
// spawn succeeded was destroyed exactly once (run to its end or killed), each refused one on
// the thread that spawned it; no process is left.
TEST(RuntimeStop, StopReturnsWhileThreadsAndProcessesKeepSpawningAndNoProcessIsStranded) {
  constexpr int threads = 4;
  constexpr long rounds_before_stop = 200;  // per thread: the stop meets a busy runtime
  constexpr long rounds_after_stop = 20;    // per thread: spawns after stop() returned
  Fates fates;
  std::atomic<int> misplaced{0};
  std::atomic<long> refused_inside{0};
  std::atomic<long> rounds{0};
  std::atomic<bool> stop_returned{false};
  {
    Runtime rt(quiet(workers(2)));
    for (int i = 0; i < 2; ++i) rt.send(rt.spawn<Breeder>(&fates, &misplaced, &refused_inside), Breed{});
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        Inbox inbox(rt);
        const std::string name = "spawner_" + std::to_string(t);
        long after = 0;
        while (after < rounds_after_stop) {
          if (stop_returned.load()) ++after;
          std::shared_ptr<Fate> fate = fates.make();
          const Pid pid = rt.spawn<Tracked>(fate);
          if (!pid) {
            if (!destroyed_here(*fate)) misplaced.fetch_add(1);
          } else {
            rt.send(pid, 1);
            (void)rt.register_name(name, pid);
            (void)inbox.link(pid);
            (void)inbox.call<Pong>(pid, Ping{}, std::chrono::milliseconds(100));
          }
          rounds.fetch_add(1);
        }
      });
    }
    wait_until([&] { return rounds.load() >= threads * rounds_before_stop; });
    const auto began = std::chrono::steady_clock::now();
    rt.stop();
    stop_returned.store(true);
    // A figure for the record, not a check: how long the stop took while they kept going.
    RecordProperty("stop_us", static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                   std::chrono::steady_clock::now() - began)
                                                   .count()));
    for (auto& t : pool) t.join();

    EXPECT_EQ(rt.process_count(), 0u);
    EXPECT_EQ(misplaced.load(), 0) << "refused spawns whose object was not destroyed on the spawning thread";
    long never = 0, twice = 0;
    for (const auto& f : fates.all) {
      const int d = f->destroyed.load();
      never += d == 0;
      twice += d > 1;
    }
    EXPECT_EQ(never, 0) << "of " << fates.all.size() << " process objects, these were never destroyed (stranded)";
    EXPECT_EQ(twice, 0);
    EXPECT_GE(refused_inside.load(), 2) << "each breeder's destructor spawns after the stop began";
  }
}

struct Gate {
  std::atomic<bool> dying{false};
  std::atomic<bool> open{false};
  std::atomic<bool> destroyed{false};
};

// Its destructor holds the stop until the test opens the gate.
class HeldUp : public Process {
 public:
  explicit HeldUp(Gate* gate) : gate_(gate) {}
  ~HeldUp() override {
    gate_->dying.store(true);
    wait_until([&] { return gate_->open.load(); });
    gate_->destroyed.store(true);
  }
  void handle(Message) override {}

 private:
  Gate* gate_;
};

// Issue 12, item 2: stop() from several threads at once: each returns only once the runtime
// is stopped (every process gone), none hangs, and the destructor after them is harmless.
TEST(RuntimeStop, StopFromSeveralThreadsReturnsInEachOnceEverythingIsStopped) {
  Gate gate;
  auto rt = std::make_unique<Runtime>(workers(2));
  rt->spawn<HeldUp>(&gate);
  std::atomic<int> calling{0};
  std::atomic<int> early{0};
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 4; ++i) {
    stoppers.emplace_back([&] {
      calling.fetch_add(1);
      rt->stop();
      if (!gate.destroyed.load() || rt->process_count() != 0) early.fetch_add(1);
    });
  }
  wait_until([&] { return calling.load() == 4 && gate.dying.load(); });
  for (int i = 0; i < 100; ++i) std::this_thread::yield();  // let the others reach stop()
  gate.open.store(true);
  for (auto& t : stoppers) t.join();
  EXPECT_EQ(early.load(), 0) << "stop() returned before the runtime was stopped";
  rt->stop();
  rt.reset();
  EXPECT_TRUE(gate.destroyed.load());
}

struct StopNow {};
struct StopReturned {};

// Issue 12, item 3: stop() called by a process of the runtime begins the stop and returns;
// the caller is killed with the rest. The host thread sees the stop complete.
TEST(RuntimeStop, StopFromInsideAProcessBeginsTheStopAndReturns) {
  auto destroyed = std::make_shared<Fate>();
  auto rt = std::make_unique<Runtime>(workers(2));
  Inbox inbox(*rt);
  Runtime* runtime = rt.get();
  const Pid bystander = rt->spawn<Tracked>(destroyed);
  const Ref ref = inbox.monitor(bystander);
  const Pid stopper = rt->spawn([](Runtime* r, Pid observer) -> Async<void> {
    co_await coppice::receive<StopNow>();
    r->stop();
    coppice::send(observer, StopReturned{});
    co_await coppice::receive<StopNow>();  // killed here by the stop it began
  }, runtime, inbox.pid());
  const Ref stopper_ref = inbox.monitor(stopper);
  inbox.send(stopper, StopNow{});
  EXPECT_TRUE(inbox.receive<StopReturned>(wait_time)) << "stop() inside a process did not return";
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d) << "the stop the process began did not kill the others";
  EXPECT_EQ(d->reason, ExitReason::killed());
  std::optional<Down> s = down_for(inbox, stopper_ref);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->reason, ExitReason::killed());
  rt->stop();  // waits for the stop the process began
  EXPECT_EQ(rt->process_count(), 0u);
  EXPECT_EQ(destroyed->destroyed.load(), 1);
  rt.reset();
}

// Issue 12, item 4: an Inbox that outlives its Runtime answers every operation with
// runtime_stopped (or the nearest thing its signature allows) and is destroyed safely.
TEST(RuntimeStop, AnInboxOutlivingItsRuntimeReportsRuntimeStopped) {
  auto rt = std::make_unique<Runtime>(workers(2));
  auto inbox = std::make_unique<Inbox>(*rt);
  auto fate = std::make_shared<Fate>();
  const Pid p = rt->spawn<Tracked>(fate);
  ASSERT_TRUE(answers(*inbox, p));
  rt.reset();

  inbox->send(p, 1);
  inbox->send(inbox->pid(), 2);
  EXPECT_FALSE(inbox->receive<int>(std::chrono::milliseconds(10)));
  Result<Pong> r = inbox->call<Pong>(p, Ping{}, wait_time);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::runtime_stopped) << r.error();
  Status linked = inbox->link(p);
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().kind(), ErrorKind::runtime_stopped) << linked.error();
  EXPECT_FALSE(inbox->demonitor(inbox->monitor(p)));
  inbox->unlink(p);
  inbox->exit(p, ExitReason::kill());
  EXPECT_EQ(inbox->queued(), 0u);
  inbox.reset();
  EXPECT_EQ(fate->destroyed.load(), 1);
}

// A thread blocked in a call when the runtime stops is woken with runtime_stopped rather than
// left to its timeout (the callee here is another inbox, which the stop does not kill).
TEST(RuntimeStop, ACallBlockedWhenTheRuntimeStopsReturnsRuntimeStopped) {
  auto rt = std::make_unique<Runtime>(workers(2));
  Inbox silent(*rt);
  Inbox caller(*rt);
  std::atomic<bool> calling{false};
  std::optional<Error> error;
  std::thread t([&] {
    calling.store(true);
    Result<Pong> r = caller.call<Pong>(silent.pid(), Ping{}, std::chrono::seconds(20));
    if (!r) error = r.error();
  });
  wait_until([&] { return calling.load() && silent.queued() == 1; });
  rt->stop();
  t.join();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), ErrorKind::runtime_stopped) << *error;
}

// Issue 12, item 3: destroying a Runtime from one of its own processes cannot work (the
// process would be freed under itself, its worker join itself): a fatal error that says so.
TEST(RuntimeStopDeathTest, DestroyingARuntimeFromOneOfItsProcessesIsAFatalError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* rt = new Runtime(workers(1));
        Inbox inbox(*rt);
        rt->spawn([](Runtime* r) -> Async<void> {
          delete r;
          co_return;
        }, rt);
        (void)inbox.receive<int>(wait_time);
      },
      "destroyed by one of its own processes");
}
