// Task.shutdown: unlink, shutdown (or kill), wait for the end; the reply if it raced in.
#include "otp/task/task_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Pid;
using coppice::Result;
using coppice::Runtime;
using coppice::Shutdown;
using coppice::Task;

TEST(Task, ShutdownOfARunningTaskGivesNothingAndLeavesNothing) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    (void)ready;
    auto stop = t.shutdown();
    std::optional<Result<int>> r = co_await stop;
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(coppice::is_alive(t.pid()));
    EXPECT_FALSE(contains(coppice::self_info().links, t.pid()));
    EXPECT_TRUE(coppice::self_info().monitors.empty());
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  // Unlinked first: the task's shutdown did not reach its non-trapping owner.
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, BrutalKillShutdownGivesNothing) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    (void)ready;
    auto stop = t.shutdown(Shutdown::brutal_kill());
    std::optional<Result<int>> r = co_await stop;
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(coppice::is_alive(t.pid()));
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// A task that traps exits ignores the shutdown: it is killed when the timeout runs out.
TEST(Task, ATaskThatOutlivesTheShutdownTimeoutIsKilled) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    Task<int> t = coppice::task::async([me]() -> Async<int> {
      coppice::trap_exit(true);
      coppice::send(me, Ready{coppice::self()});
      Release never = co_await coppice::receive<Release>();
      (void)never;
      co_return 0;
    });
    Ready ready = co_await coppice::receive<Ready>();
    (void)ready;
    auto stop = t.shutdown(Shutdown::timeout(10ms));
    std::optional<Result<int>> r = co_await stop;
    // The kill after the timeout is the shutdown's own doing: nothing, not an exit.
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(coppice::is_alive(t.pid()));
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, ShutdownGivesAReplyThatRacedIn) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 5);
    Ready ready = co_await coppice::receive<Ready>();
    ExitReason reason = co_await end_after(ready.pid, Release{});  // replied and gone
    EXPECT_EQ(reason, ExitReason::normal());
    auto stop = t.shutdown();
    std::optional<Result<int>> r = co_await stop;
    CO_ASSERT_TRUE(r.has_value() && r->has_value());
    EXPECT_EQ(r->value(), 5);
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, ShutdownGivesTheReasonOfATaskThatEndedOtherwise) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 5);
    Ready ready = co_await coppice::receive<Ready>();
    ExitReason reason = co_await end_after(ready.pid, Crash{});
    EXPECT_EQ(reason.detail(), "boom");
    auto stop = t.shutdown(Shutdown::brutal_kill());
    std::optional<Result<int>> r = co_await stop;
    CO_ASSERT_TRUE(r.has_value() && !r->has_value());
    EXPECT_EQ(r->error().kind(), ErrorKind::exited);
    EXPECT_EQ(r->error().reason(), reason);
    coppice::Exit e = co_await coppice::receive<coppice::Exit>();  // it crashed while linked
    EXPECT_EQ(e.from, t.pid());
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// Shutdown after the task's outcome was taken and the task is gone: its monitor is gone too;
// noproc, as in Elixir. The reply is sent before the task ends, so right after await the task
// may still be finishing (the shutdown then gives exited normal, or nullopt when its signal
// came first): the test waits for the task's end.
TEST(Task, ShutdownOfATaskAlreadyAwaitedAndGoneGivesNoproc) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async([] { return 1; });
    auto wait = t.await();
    Result<int> v = co_await wait;
    EXPECT_TRUE(v.has_value());
    coppice::monitor(t.pid());
    coppice::Down gone = co_await coppice::receive<coppice::Down>();
    // normal if it was still finishing, noproc if it had already gone.
    EXPECT_TRUE(gone.reason == ExitReason::normal() || gone.reason == ExitReason::noproc()) << gone.reason;
    auto stop = t.shutdown(Shutdown::brutal_kill());
    std::optional<Result<int>> r = co_await stop;
    CO_ASSERT_TRUE(r.has_value() && !r->has_value());
    EXPECT_EQ(r->error().reason(), ExitReason::noproc());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test
