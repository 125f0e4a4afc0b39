// Stress for the two paths a late request and a supervisor's shutdown take (written by a
// reviewer of the reclamation liveness fix and of exit_monitored):
// 1. Late link/monitor requests from a plain thread and from a process, with the window
//    between the liveness check and the push widened by a random amount while the target
//    dies (sometimes until every worker sleeps), with and without a second plain thread
//    churning ExternalGuards: every request must be answered, with nothing else running.
// 2. A child's link to its supervisor crossing the supervisor's exit_monitored (sent while
//    the supervisor had no link to the child): as with OTP's unlink, which signals only an
//    existing link, the child's fresh link must survive on both sides.
#include <atomic>
#include <random>
#include <thread>

#include "coppice/test_hooks.hpp"
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// ---- 1. Liveness under random windows --------------------------------------------------

struct RandomWindow {
  Runtime* runtime = nullptr;
  Inbox* killer = nullptr;
  std::atomic<std::uint64_t> target{0};
  std::atomic<int> mode{0};  // 0: no delay; 1: random spin; 2: until all workers sleep
  std::atomic<unsigned> delay_us{0};
};
RandomWindow rw;

void random_window(Pid target) {
  std::uint64_t armed = target.bits();
  if (!rw.target.compare_exchange_strong(armed, 0)) return;
  Runtime& rt = *rw.runtime;
  // From a plain thread: sent from a worker, the target would wait in this worker's next
  // slot, which nobody else takes while the hook holds the worker.
  std::thread([&] { rw.killer->send(target, Die{ExitReason::other("late")}); }).join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  // Wait for the exiting flag (the mailbox closes right after).
  while (rt.alive(target) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  switch (rw.mode.load()) {
    case 1: {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rw.delay_us.load());
      while (std::chrono::steady_clock::now() < until) {
      }
      break;
    }
    case 2:
      while (test_hooks::parked_workers(rt) != rt.worker_count() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      break;
    default:
      break;
  }
}

class LateRequests : public ::testing::Test {
 protected:
  void SetUp() override {
    rw.runtime = &rt;
    rw.killer = &killer;
    test_hooks::set_signal_push_hook(&random_window);
  }
  void TearDown() override {
    test_hooks::set_signal_push_hook(nullptr);
    churn_stop = true;
    if (churner.joinable()) churner.join();
  }
  void start_churn() {
    churner = std::thread([this] {
      const Pid nobody = dead_pid_quiet();
      while (!churn_stop.load()) (void)rt.alive(nobody);  // an ExternalGuard per call
    });
  }
  Pid dead_pid_quiet() {
    Inbox i(rt);
    return dead_pid(rt, i);
  }

  Runtime rt{workers(2)};
  Inbox killer{rt};
  std::atomic<bool> churn_stop{false};
  std::thread churner;
};

void run_plain_thread_rounds(LateRequests& t, Runtime& rt, int rounds, unsigned seed, int& late) {
  std::mt19937 rng(seed);
  for (int round = 0; round < rounds; ++round) {
    Inbox inbox(rt);
    const Pid target = rt.spawn<Puppet>();
    ASSERT_TRUE(answers(inbox, target));
    rw.mode = static_cast<int>(rng() % 3);
    rw.delay_us = rng() % 400;
    rw.target = target.bits();
    if (rng() % 2 == 0) {
      const Ref ref = inbox.monitor(target);
      std::optional<Down> d = down_for(inbox, ref, std::chrono::seconds(3));
      ASSERT_TRUE(d) << "round " << round << " mode " << rw.mode.load() << ": no DOWN";
      if (d->reason == ExitReason::noproc()) ++late;
    } else {
      ASSERT_TRUE(inbox.link(target));
      std::optional<Exit> e = exit_from(inbox, target, std::chrono::seconds(3));
      ASSERT_TRUE(e) << "round " << round << " mode " << rw.mode.load() << ": no EXIT";
      if (e->reason == ExitReason::noproc()) ++late;
    }
  }
  (void)t;
}

TEST_F(LateRequests, PlainThreadRequestsUnderRandomWindows) {
  int late = 0;
  run_plain_thread_rounds(*this, rt, 150, 1, late);
  EXPECT_GT(late, 0) << "no request took the late path (answered at reclamation)";
}

TEST_F(LateRequests, PlainThreadRequestsUnderRandomWindowsWithGuardChurn) {
  start_churn();
  int late = 0;
  run_plain_thread_rounds(*this, rt, 150, 2, late);
  EXPECT_GT(late, 0) << "no request took the late path (answered at reclamation)";
}

// The requester is a process: the hook runs on its worker, inside its turn.
TEST_F(LateRequests, ProcessRequestsUnderRandomWindows) {
  std::mt19937 rng(3);
  int late = 0;
  for (int round = 0; round < 150; ++round) {
    Inbox inbox(rt);
    const Pid requester = rt.spawn<Puppet>(inbox.pid(), true);
    const Pid target = rt.spawn<Puppet>();
    ASSERT_TRUE(answers(inbox, requester));
    ASSERT_TRUE(answers(inbox, target));
    rw.mode = static_cast<int>(rng() % 2);  // a worker cannot wait for itself to sleep
    rw.delay_us = rng() % 400;
    rw.target = target.bits();
    if (rng() % 2 == 0) {
      ASSERT_TRUE(inbox.call<Ref>(requester, MonitorOf{target}, wait_time));
      std::optional<SawDown> d = inbox.receive<SawDown>(std::chrono::seconds(3));
      ASSERT_TRUE(d) << "round " << round << ": no DOWN at the requester";
      if (d->down.reason == ExitReason::noproc()) ++late;
    } else {
      ASSERT_TRUE(inbox.call<Outcome>(requester, LinkTo{target}, wait_time));
      std::optional<SawExit> e = inbox.receive<SawExit>(std::chrono::seconds(3));
      ASSERT_TRUE(e) << "round " << round << ": no EXIT at the requester";
      if (e->exit.reason == ExitReason::noproc()) ++late;
    }
    inbox.send(requester, Die{ExitReason::normal()});
  }
  EXPECT_GT(late, 0) << "no request took the late path (answered at reclamation)";
}

// ---- 2. A link crossing exit_monitored ---------------------------------------------------

struct Go {};
std::atomic<bool> child_linked{false};

// Traps exits, reports EXITs and DOWNs to the observer; on Go, waits until the test says the
// child's link request is in our mailbox, then shuts the child down with exit_monitored.
class Shutter : public Process {
 public:
  Shutter(Pid child, Pid observer) : child_(child), observer_(observer) {}
  void init() override { trap_exit(true); }
  void handle(Message m) override {
    const std::optional<From> from = m.reply_to();
    const Pid me = self();
    m.match(
        [&](Go&) {
          const auto deadline = std::chrono::steady_clock::now() + wait_time;
          while (!child_linked.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
          (void)detail::exit_monitored(child_, ExitReason::shutdown());
          if (from) reply(*from, Done{});
        },
        [&](Ping&) {
          if (from) reply(*from, Pong{me});
        },
        [&](LinkTo& l) {
          Status s = link(l.pid);
          if (from) reply(*from, Outcome{s ? std::nullopt : std::optional<Error>(s.error())});
        },
        [&](Exit& e) { send(observer_, SawExit{me, e}); },
        [&](Down& d) { send(observer_, SawDown{me, d}); });
  }

 private:
  Pid child_;
  Pid observer_;
};

std::vector<Pid> links_of(Runtime& rt, Pid pid) {
  Result<ProcessInfo> info = rt.process_info(pid);
  EXPECT_TRUE(info);
  return info ? info->links : std::vector<Pid>{};
}

TEST(ExitMonitoredCrossing, AChildsLinkCrossingTheShutdownIsNotHalfRemoved) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  child_linked = false;
  const Pid child = rt.spawn<Puppet>(inbox.pid(), true);  // traps: survives the shutdown
  const Pid shutter = rt.spawn<Shutter>(child, inbox.pid());
  ASSERT_TRUE(answers(inbox, child));
  ASSERT_TRUE(answers(inbox, shutter));
  // The supervisor has no link to the child. It starts its shutdown turn...
  inbox.send(shutter, Go{});
  // ...while the child links to it: the link request waits in the supervisor's mailbox.
  Result<Outcome> linked = inbox.call<Outcome>(child, LinkTo{shutter}, wait_time);
  ASSERT_TRUE(linked);
  ASSERT_FALSE(linked->error);
  child_linked = true;  // now the supervisor sends exit_monitored; then it takes the link
  std::optional<SawExit> exit = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(exit);
  ASSERT_EQ(exit->by, child);
  ASSERT_TRUE(answers(inbox, shutter));  // has taken the child's link request
  const std::vector<Pid> at_child = links_of(rt, child);
  const std::vector<Pid> at_shutter = links_of(rt, shutter);
  EXPECT_EQ(at_child, std::vector<Pid>{shutter}) << "the child's fresh link was removed by the crossing signal";
  EXPECT_EQ(at_shutter, std::vector<Pid>{child});
  // The consequence: the supervisor believes it is linked, so its own link is a no-op, and
  // the child's death is not signalled to it.
  Result<Outcome> relink = inbox.call<Outcome>(shutter, LinkTo{child}, wait_time);
  ASSERT_TRUE(relink);
  inbox.send(child, Die{ExitReason::other("later")});
  std::optional<SawDown> down = inbox.receive<SawDown>(wait_time);  // the exit_monitored DOWN
  ASSERT_TRUE(down);
  std::optional<SawExit> later = inbox.receive<SawExit>(std::chrono::milliseconds(500));
  EXPECT_TRUE(later) << "the supervisor linked (twice, by its own account) but got no EXIT";
}

}  // namespace
