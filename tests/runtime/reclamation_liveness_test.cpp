// A link or monitor request that reaches a process after it closed its mailbox is answered
// when the process's memory is reclaimed (ARCHITECTURE.md, "Envelopes that reach a dying
// process"). Reclamation needs the epoch to advance, and a plain thread inside an
// ExternalGuard holds it back. These tests force the worst case: the request is pushed
// while every worker has already parked with the dead process's memory in the shared bags,
// so the only thing that can free it is the plain thread's guard ending. The answer must
// still come (the DOWN, or the EXIT for a link) without any other activity in the runtime.
#include <atomic>
#include <thread>

#include "coppice/test_hooks.hpp"
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// The hook fires once, on the test's thread, for the armed target: it ends the target,
// waits for its DOWN (so its mailbox is closed and its memory retired), then waits until
// every worker is asleep. Only then does the caller push its request.
struct Window {
  Runtime* runtime = nullptr;
  std::thread::id thread;
  std::atomic<std::uint64_t> target{0};
  bool parked_all = false;
  bool saw_down = false;
};
Window window;

void close_the_window_late(Pid target) {
  if (std::this_thread::get_id() != window.thread) return;
  std::uint64_t armed = target.bits();
  if (!window.target.compare_exchange_strong(armed, 0)) return;  // not ours, or fired
  Runtime& rt = *window.runtime;
  {
    Inbox watcher(rt);
    const Ref ref = watcher.monitor(target);
    watcher.send(target, Die{ExitReason::other("late")});
    window.saw_down = down_for(watcher, ref).has_value();
  }  // the watcher's own end may wake a worker; wait for all of them to sleep again
  const auto deadline = std::chrono::steady_clock::now() + wait_time;
  while (std::chrono::steady_clock::now() < deadline) {
    if (test_hooks::parked_workers(rt) == 2) {
      window.parked_all = true;
      return;
    }
    std::this_thread::yield();
  }
}

class ReclamationLiveness : public ::testing::Test {
 protected:
  void SetUp() override {
    window.runtime = &rt;
    window.thread = std::this_thread::get_id();
    window.parked_all = false;
    window.saw_down = false;
    test_hooks::set_signal_push_hook(&close_the_window_late);
  }
  void TearDown() override { test_hooks::set_signal_push_hook(nullptr); }

  Runtime rt{workers(2)};
};

TEST_F(ReclamationLiveness, MonitorPushedWhileEveryWorkerSleepsStillGetsItsDown) {
  for (int round = 0; round < 5; ++round) {
    Inbox inbox(rt);
    const Pid target = rt.spawn<Puppet>();
    ASSERT_TRUE(answers(inbox, target));  // running, not merely spawned
    window.target = target.bits();
    const Ref ref = inbox.monitor(target);
    ASSERT_TRUE(window.saw_down) << "round " << round << ": the target did not die in the window";
    ASSERT_TRUE(window.parked_all) << "round " << round << ": the workers never all parked";
    std::optional<Down> d = down_for(inbox, ref);
    ASSERT_TRUE(d) << "round " << round << ": the DOWN never came";
    EXPECT_EQ(d->pid, target);
    EXPECT_EQ(d->reason, ExitReason::noproc());
  }
}

TEST_F(ReclamationLiveness, LinkPushedWhileEveryWorkerSleepsStillGetsItsExit) {
  for (int round = 0; round < 5; ++round) {
    Inbox inbox(rt);  // an inbox traps exits: the link's answer arrives as a message
    const Pid target = rt.spawn<Puppet>();
    ASSERT_TRUE(answers(inbox, target));
    window.target = target.bits();
    ASSERT_TRUE(inbox.link(target));
    ASSERT_TRUE(window.saw_down) << "round " << round;
    ASSERT_TRUE(window.parked_all) << "round " << round;
    std::optional<Exit> e = exit_from(inbox, target);
    ASSERT_TRUE(e) << "round " << round << ": the EXIT never came";
    EXPECT_EQ(e->reason, ExitReason::noproc());
  }
}

}  // namespace
