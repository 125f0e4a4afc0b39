// A monitor or link request that reaches a process after it closed its mailbox is answered
// by the next worker free, not when the dead process's memory is reclaimed: reclamation
// waits for every worker to pass a quiescent point, so a long callback anywhere would hold
// the DOWN back (ARCHITECTURE.md, "The life of a process", step 5).
#include <atomic>
#include <thread>

#include "coppice/test_hooks.hpp"
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// The hook fires once, on the test's thread, for the armed target, between the monitor's
// alive check and its push: it kills the target and waits for its DOWN, so the request lands
// in a mailbox that has already closed.
struct LateWindow {
  Runtime* runtime = nullptr;
  std::thread::id thread;
  std::atomic<std::uint64_t> target{0};
  bool saw_down = false;
};
LateWindow late;

void die_before_the_push(Pid target) {
  if (std::this_thread::get_id() != late.thread) return;
  std::uint64_t armed = target.bits();
  if (!late.target.compare_exchange_strong(armed, 0)) return;
  Inbox watcher(*late.runtime);
  const Ref ref = watcher.monitor(target);
  watcher.send(target, Die{ExitReason::other("late")});
  late.saw_down = down_for(watcher, ref).has_value();
}

struct Latch {
  std::atomic<bool> open{false};
  std::atomic<bool> holding{false};
  std::atomic<bool> waited_out{false};
  std::atomic<bool> returned{false};

  // After opening: the callback is done with this latch.
  bool wait_returned() {
    const auto deadline = std::chrono::steady_clock::now() + 4 * wait_time;
    while (!returned.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return returned.load();
  }
};

// Holds its worker (and so the epoch) in one callback until the test opens the latch; the
// wait is bounded, so a DOWN that never comes is a failure, not a hang.
class LongCallback : public Process {
 public:
  explicit LongCallback(Latch* latch) : latch_(latch) {}
  void handle(Message) override {
    latch_->holding.store(true);
    const auto deadline = std::chrono::steady_clock::now() + 3 * wait_time;
    while (!latch_->open.load()) {
      if (std::chrono::steady_clock::now() > deadline) {
        latch_->waited_out.store(true);
        break;
      }
      std::this_thread::yield();
    }
    latch_->returned.store(true);
  }

 private:
  Latch* latch_;
};

class LateDown : public ::testing::Test {
 protected:
  void SetUp() override {
    late.runtime = &rt;
    late.thread = std::this_thread::get_id();
    late.saw_down = false;
    test_hooks::set_signal_push_hook(&die_before_the_push);
  }
  void TearDown() override { test_hooks::set_signal_push_hook(nullptr); }

  Runtime rt{workers(2)};
};

TEST_F(LateDown, AMonitorThatReachesADeadProcessIsAnsweredWhileALongCallbackRuns) {
  for (int round = 0; round < 3; ++round) {
    Latch latch;
    const Pid holder = rt.spawn<LongCallback>(&latch);
    Inbox inbox(rt);
    inbox.send(holder, 1);
    while (!latch.holding.load()) std::this_thread::yield();

    const Pid target = rt.spawn<Puppet>();
    ASSERT_TRUE(answers(inbox, target));
    late.target = target.bits();
    const Ref ref = inbox.monitor(target);
    ASSERT_TRUE(late.saw_down) << "round " << round << ": the target did not die in the window";
    std::optional<Down> d = down_for(inbox, ref);
    const bool held = !latch.waited_out.load();
    latch.open.store(true);
    ASSERT_TRUE(latch.wait_returned());
    ASSERT_TRUE(d) << "round " << round << ": no DOWN while the long callback ran";
    EXPECT_TRUE(held) << "round " << round << ": the callback gave up before the DOWN came";
    EXPECT_EQ(d->pid, target);
    EXPECT_EQ(d->reason, ExitReason::noproc());
  }
}

TEST_F(LateDown, ALinkThatReachesADeadProcessIsAnsweredWhileALongCallbackRuns) {
  Latch latch;
  const Pid holder = rt.spawn<LongCallback>(&latch);
  Inbox inbox(rt);  // an inbox traps exits: the link's answer arrives as a message
  inbox.send(holder, 1);
  while (!latch.holding.load()) std::this_thread::yield();

  const Pid target = rt.spawn<Puppet>();
  ASSERT_TRUE(answers(inbox, target));
  late.target = target.bits();
  ASSERT_TRUE(inbox.link(target));
  ASSERT_TRUE(late.saw_down);
  std::optional<Exit> e = exit_from(inbox, target);
  const bool held = !latch.waited_out.load();
  latch.open.store(true);
  ASSERT_TRUE(latch.wait_returned());
  ASSERT_TRUE(e) << "no EXIT while the long callback ran";
  EXPECT_TRUE(held) << "the callback gave up before the EXIT came";
  EXPECT_EQ(e->reason, ExitReason::noproc());
}

// The same late request, racing the stop instead: the hook stops the runtime on another
// thread and lets the push go only once every worker has ended, so the request reaches a
// process that died in the stop with no worker left to give it its turn. The plain thread
// that scheduled it answers it (ARCHITECTURE.md, "The life of a Runtime: stop").
struct StopWindow {
  Runtime* runtime = nullptr;
  std::thread::id thread;
  std::atomic<std::uint64_t> target{0};
  std::atomic<unsigned> workers_ended{0};
  unsigned workers = 0;
  std::thread stopper;
  bool all_ended = false;
};
StopWindow stop_window;

void stop_before_the_push(Pid target) {
  if (std::this_thread::get_id() != stop_window.thread) return;
  std::uint64_t armed = target.bits();
  if (!stop_window.target.compare_exchange_strong(armed, 0)) return;
  stop_window.stopper = std::thread([] { stop_window.runtime->stop(); });
  const auto deadline = std::chrono::steady_clock::now() + wait_time;
  while (stop_window.workers_ended.load() < stop_window.workers && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  stop_window.all_ended = stop_window.workers_ended.load() == stop_window.workers;
}

TEST(LateDownAtStop, AMonitorThatRacedTheStopIsAnsweredAfterTheWorkersAreGone) {
  stop_window.workers_ended = 0;
  stop_window.all_ended = false;
  RuntimeOptions options = workers(2);
  options.on_worker_stop = [](unsigned) { stop_window.workers_ended.fetch_add(1); };
  Runtime rt(options);
  stop_window.runtime = &rt;
  stop_window.thread = std::this_thread::get_id();
  stop_window.workers = rt.worker_count();
  Inbox inbox(rt);
  const Pid target = rt.spawn<Puppet>();
  ASSERT_TRUE(answers(inbox, target));
  stop_window.target = target.bits();
  test_hooks::set_signal_push_hook(&stop_before_the_push);
  const Ref ref = inbox.monitor(target);
  test_hooks::set_signal_push_hook(nullptr);
  if (stop_window.stopper.joinable()) stop_window.stopper.join();
  ASSERT_TRUE(stop_window.all_ended) << "the workers did not end";
  // The stop is over: receive takes what has arrived and waits no more.
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d) << "a monitor request that reached a process killed by the stop was never answered";
  EXPECT_EQ(d->pid, target);
  EXPECT_EQ(d->reason, ExitReason::noproc());
}

}  // namespace
