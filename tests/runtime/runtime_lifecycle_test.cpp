// A Runtime's life: independent of other runtimes, its options honoured, fair between processes, and a stop that kills and joins.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// Counts its destructions, so a test can tell that a killed process's object was destroyed.
class Counted : public Process {
 public:
  explicit Counted(std::shared_ptr<std::atomic<int>> destroyed) : destroyed_(std::move(destroyed)) {}
  ~Counted() override { destroyed_->fetch_add(1); }
  void handle(Message) override {}

 private:
  std::shared_ptr<std::atomic<int>> destroyed_;
};

struct Start {};
struct Tick {};
struct FloodDone {};
struct Pong2 {};

// Sends itself Ticks until `ticks` have been handled, after pinging `other` once at the start.
class Flooder : public Process {
 public:
  Flooder(Pid other, Pid observer, long ticks) : other_(other), observer_(observer), ticks_(ticks) {}
  void handle(Message m) override {
    if (m.is<Start>()) {
      send(self(), Tick{});
      send(other_, Ping{});  // `other` becomes runnable now, while we keep ourselves busy
      return;
    }
    if (++handled_ < ticks_) {
      send(self(), Tick{});
    } else {
      send(observer_, FloodDone{});
    }
  }

 private:
  Pid other_;
  Pid observer_;
  long ticks_;
  long handled_ = 0;
};

class Ponger : public Process {
 public:
  explicit Ponger(Pid observer) : observer_(observer) {}
  void handle(Message m) override {
    if (m.is<Ping>()) send(observer_, Pong2{});
  }

 private:
  Pid observer_;
};

}  // namespace

TEST(RuntimeLifecycle, TwoRuntimesInOneProgramAreIndependent) {
  Runtime one(workers(2));
  Runtime two(workers(2));
  Inbox inbox_one(one);
  Inbox inbox_two(two);
  const Pid a = one.spawn<Puppet>(inbox_one.pid());
  const Pid b = two.spawn<Puppet>(inbox_two.pid());
  // Names are per runtime.
  ASSERT_TRUE(one.register_name("shared", a));
  ASSERT_TRUE(two.register_name("shared", b));
  EXPECT_EQ(one.whereis("shared"), a);
  EXPECT_EQ(two.whereis("shared"), b);
  EXPECT_EQ(one.process_count(), 1u);
  EXPECT_EQ(two.process_count(), 1u);
  // Stopping one leaves the other working.
  inbox_one.monitor(a);
  one.stop();
  std::optional<Down> d = inbox_one.receive<Down>(wait_time);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::killed());
  EXPECT_TRUE(answers(inbox_two, b));
  ASSERT_TRUE(two.send("shared", 5));
  std::optional<SawInt> seen = inbox_two.receive<SawInt>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, b);
}

// stop() kills every process: each object is destroyed, its links and monitors fire (to an
// inbox, which is not a process and is not killed), and nothing is left.
TEST(RuntimeLifecycle, StopKillsLiveProcessesRunsDestructorsAndTellsInboxes) {
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid linked = rt.spawn<Counted>(destroyed);
  const Pid monitored = rt.spawn<Counted>(destroyed);
  rt.spawn<Counted>(destroyed);
  ASSERT_TRUE(inbox.link(linked));
  const Ref ref = inbox.monitor(monitored);

  rt.stop();

  EXPECT_EQ(destroyed->load(), 3);
  EXPECT_EQ(rt.process_count(), 0u);
  std::optional<Exit> e = exit_from(inbox, linked);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, ExitReason::killed());
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::killed());
  rt.stop();  // a second stop is harmless
}

TEST(RuntimeLifecycle, DestroyingARuntimeKillsItsProcessesAndJoins) {
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  {
    Runtime rt(workers(2));
    for (int i = 0; i < 10; ++i) rt.spawn<Counted>(destroyed);
    // A process in the middle of a receive is killed too.
    rt.spawn([](std::shared_ptr<std::atomic<int>> counter) -> Async<void> {
      struct Bump {
        std::shared_ptr<std::atomic<int>> c;
        ~Bump() { c->fetch_add(1); }
      } bump{std::move(counter)};
      co_await receive<Start>();
    }, destroyed);
  }
  EXPECT_EQ(destroyed->load(), 11);
}

TEST(RuntimeLifecycle, WorkersOptionSetsTheWorkerCount) {
  Runtime three(workers(3));
  EXPECT_EQ(three.worker_count(), 3u);
  EXPECT_EQ(three.options().workers, 3u);
  Runtime by_default;
  const unsigned cores = std::thread::hardware_concurrency();
  EXPECT_EQ(by_default.worker_count(), cores == 0 ? 1u : cores);
}

TEST(RuntimeLifecycle, WorkerHooksRunOncePerWorker) {
  std::mutex mutex;
  std::map<unsigned, int> starts, stops;
  {
    RuntimeOptions options = workers(3);
    options.on_worker_start = [&](unsigned i) {
      std::lock_guard lock(mutex);
      ++starts[i];
    };
    options.on_worker_stop = [&](unsigned i) {
      std::lock_guard lock(mutex);
      ++stops[i];
    };
    Runtime rt(std::move(options));
    Inbox inbox(rt);
    EXPECT_TRUE(answers(inbox, rt.spawn<Puppet>()));
  }
  const std::map<unsigned, int> once_each{{0, 1}, {1, 1}, {2, 1}};
  EXPECT_EQ(starts, once_each);
  EXPECT_EQ(stops, once_each);
}

TEST(RuntimeLifecycle, WorkerHooksRunOnTheWorkerThreads) {
  std::mutex mutex;
  std::vector<std::thread::id> hook_threads;
  RuntimeOptions options = workers(2);
  options.on_worker_start = [&](unsigned) {
    std::lock_guard lock(mutex);
    hook_threads.push_back(std::this_thread::get_id());
  };
  {
    Runtime rt(std::move(options));
    Inbox inbox(rt);
    EXPECT_TRUE(answers(inbox, rt.spawn<Puppet>()));
  }
  ASSERT_EQ(hook_threads.size(), 2u);
  EXPECT_NE(hook_threads[0], hook_threads[1]);
  EXPECT_NE(hook_threads[0], std::this_thread::get_id());
}

// One worker, one process flooding itself with messages: with messages_per_turn the flooder
// goes to the back of the queue every 100 messages, so the Ping it sent at the start is
// answered long before the flood ends. Without the budget the flooder would keep the only
// worker until FloodDone, and FloodDone would arrive first.
TEST(RuntimeLifecycle, AFloodingProcessDoesNotStarveAnother) {
  Runtime rt(workers(1, 100));
  Inbox inbox(rt);
  const Pid ponger = rt.spawn<Ponger>(inbox.pid());
  const Pid flooder = rt.spawn<Flooder>(ponger, inbox.pid(), 1'000'000L);
  inbox.send(flooder, Start{});
  std::optional<Message> first = inbox.receive_any(std::chrono::seconds(60));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->is<Pong2>()) << "the flood finished before the other process ran: got " << first->type_name();
}

TEST(RuntimeLifecycle, ProcessCountCountsLiveProcesses) {
  Runtime rt(workers(2));
  EXPECT_EQ(rt.process_count(), 0u);
  rt.spawn<Puppet>();
  rt.spawn<Puppet>();
  EXPECT_EQ(rt.process_count(), 2u);
  Inbox inbox(rt);
  EXPECT_EQ(rt.process_count(), 2u) << "an inbox is not a process";
}
