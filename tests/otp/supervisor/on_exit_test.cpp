// coppice::on_exit: the host's callback hears once, with the reason, that a top-level
// supervisor died; not when the host stops the runtime itself.
#include <atomic>
#include <memory>

#include "coppice/on_exit.hpp"
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

// What the test's callback sends its observer, from the worker thread it runs on.
struct Told {
  Pid pid;
  ExitReason reason;
};

// A callback that tells `observer` through the runtime (it runs on a worker thread).
std::function<void(Pid, const ExitReason&)> tell(coppice::Runtime& rt, Pid observer) {
  return [&rt, observer](Pid pid, const ExitReason& reason) { rt.send(observer, Told{pid, reason}); };
}

TEST(OnExit, ASupervisorWhoseIntensityTripsTellsTheHookOnceWithShutdown) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 0)).value();
  Pid watcher = coppice::on_exit(rt, sup, tell(rt, inbox.pid()));
  ASSERT_TRUE(watcher);
  coppice::Ref watcher_down = inbox.monitor(watcher);
  Worker::cast(rt, started_pid(inbox, "a"), Crash{ExitReason::other("crash")});
  std::optional<Told> told = inbox.receive<Told>(wait_time);
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->pid, sup);
  EXPECT_EQ(told->reason, ExitReason::shutdown());
  // The watcher ends after telling: once it is gone, nothing more can come from it (its
  // messages reach us before its Down).
  std::optional<coppice::Down> gone = down_for(inbox, watcher_down);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->reason, ExitReason::normal());
  EXPECT_FALSE(inbox.receive<Told>(0ms).has_value());
}

TEST(OnExit, APidAlreadyGoneIsToldAtOnceWithNoproc) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one)).value();
  coppice::Ref mon = inbox.monitor(sup);
  rt.exit(sup, ExitReason::kill());
  ASSERT_TRUE(down_for(inbox, mon).has_value());
  coppice::on_exit(rt, sup, tell(rt, inbox.pid()));
  std::optional<Told> told = inbox.receive<Told>(wait_time);
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->pid, sup);
  EXPECT_EQ(told->reason, ExitReason::noproc());
}

TEST(OnExit, ATreeThatRunsUntilTheHostStopsTheRuntimeIsNotReported) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  {
    coppice::Runtime rt(quiet(workers(2)));
    Inbox inbox(rt);
    Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one)).value();
    started_pid(inbox, "a");
    ASSERT_TRUE(coppice::on_exit(rt, sup, [calls](Pid, const ExitReason&) { calls->fetch_add(1); }));
    rt.stop();  // joins every worker: any callback has run by now
  }
  EXPECT_EQ(calls->load(), 0);
}

TEST(OnExit, ExitingTheWatcherCancelsTheHook) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one)).value();
  Pid watcher = coppice::on_exit(rt, sup, [calls](Pid, const ExitReason&) { calls->fetch_add(1); });
  coppice::Ref watcher_down = inbox.monitor(watcher);
  rt.exit(watcher, ExitReason::shutdown());
  ASSERT_TRUE(down_for(inbox, watcher_down).has_value());
  coppice::Ref sup_down = inbox.monitor(sup);
  rt.exit(sup, ExitReason::kill());
  ASSERT_TRUE(down_for(inbox, sup_down).has_value());
  EXPECT_EQ(calls->load(), 0);
}

}  // namespace
}  // namespace coppice_test::sup
