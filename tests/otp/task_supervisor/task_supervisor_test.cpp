// TaskSupervisor: start_child, async, async_nolink, children, terminate_child, restart and
// shutdown options (SEMANTICS.md section 6, scenarios 92-94).
#include "coppice/task_supervisor.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::Down;
using coppice::ErrorKind;
using coppice::Exit;
using coppice::ExitReason;
using coppice::Message;
using coppice::Pid;
using coppice::Result;
using coppice::Shutdown;
using coppice::StartOptions;
using coppice::Task;
using coppice::TaskOptions;
using coppice::TaskSupervisor;

struct Go {};
struct Ready {
  Pid pid;
};

// [EX task/supervisor_test "async_nolink"] not linked; the reply and a DOWN normal arrive;
// children(sup) is [task.pid] while it runs.
TEST(Scenario, task_supervisor_test_async_nolink) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid sup = TaskSupervisor::start(rt).value();
  ExitReason r = run_process(rt, [sup]() -> Async<void> {
    auto body = []() -> Async<int> {
      Go g = co_await coppice::receive<Go>();  // runs until the test lets it finish
      (void)g;
      co_return 42;
    };
    auto start = TaskSupervisor::async_nolink(sup, body);
    Result<Task<int>> t = co_await start;
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_TRUE(coppice::self_info().links.empty()) << "async_nolink does not link";
    auto kids = TaskSupervisor::children(sup);
    Result<std::vector<Pid>> children = co_await kids;
    CO_ASSERT_TRUE(children.has_value());
    EXPECT_EQ(*children, std::vector<Pid>{t->pid()});
    coppice::send(t->pid(), Go{});
    auto await = t->await();
    Result<int> v = co_await await;
    EXPECT_EQ(v.value_or(0), 42);
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// async links the task to the caller: a crashing task takes a non-trapping caller with it.
TEST(TaskSupervisor, AsyncLinksTheCallerAndACrashKillsIt) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid sup = TaskSupervisor::start(rt).value();
  ExitReason r = run_process(rt, [sup]() -> Async<void> {
    auto body = []() -> int { throw std::runtime_error("task failed"); };
    auto start = TaskSupervisor::async(sup, body);
    Result<Task<int>> t = co_await start;
    CO_ASSERT_TRUE(t.has_value());
    auto await = t->await();
    Result<int> v = co_await await;  // the link kills us first
    (void)v;
    ADD_FAILURE() << "the caller should have died with its task";
  });
  EXPECT_EQ(r.detail(), "task failed");
  EXPECT_TRUE(rt.alive(sup)) << "a temporary task's crash does not hurt the supervisor";
}

TEST(TaskSupervisor, AsyncNolinkCrashOnlyGivesTheCallerTheReason) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid sup = TaskSupervisor::start(rt).value();
  ExitReason r = run_process(rt, [sup]() -> Async<void> {
    auto body = []() -> int { throw std::runtime_error("task failed"); };
    auto start = TaskSupervisor::async_nolink(sup, body);
    Result<Task<int>> t = co_await start;
    CO_ASSERT_TRUE(t.has_value());
    auto await = t->await();
    Result<int> v = co_await await;
    CO_ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().kind(), ErrorKind::exited);
    EXPECT_EQ(v.error().reason().detail(), "task failed");
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [EX task/supervisor_test "start_child/1 with custom restart"] a permanent task killed with
// shutdown is restarted (it reports ready again).
TEST(Scenario, task_supervisor_test_start_child_with_custom_restart) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid sup = TaskSupervisor::start(rt).value();
  const Pid observer = inbox.pid();
  auto body = [observer]() -> Async<void> {
    coppice::send(observer, Ready{coppice::self()});
    Go g = co_await coppice::receive<Go>();
    (void)g;
  };
  TaskOptions o;
  o.restart = coppice::Restart::permanent;
  Pid first = TaskSupervisor::start_child(rt, sup, o, body).value();
  EXPECT_EQ(inbox.receive<Ready>(wait_time)->pid, first);
  inbox.exit(first, ExitReason::shutdown());
  std::optional<Ready> again = inbox.receive<Ready>(wait_time);
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(again->pid, first);
  EXPECT_EQ(TaskSupervisor::children(rt, sup).value(), std::vector<Pid>{again->pid});
}

// [EX task/supervisor_test "start_child/1 with custom shutdown"] brutal_kill: stopping the
// supervisor kills the task (DOWN killed).
TEST(Scenario, task_supervisor_test_start_child_with_custom_shutdown) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid sup = TaskSupervisor::start(rt).value();
  auto body = []() -> Async<void> {
    coppice::trap_exit(true);  // would ignore a shutdown: only a kill stops it
    Go g = co_await coppice::receive<Go>();
    (void)g;
  };
  TaskOptions o;
  o.shutdown = Shutdown::brutal_kill();
  Pid task = TaskSupervisor::start_child(rt, sup, o, body).value();
  coppice::Ref mon = inbox.monitor(task);
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, mon)->reason, ExitReason::killed());
}

TEST(TaskSupervisor, TerminateChildAndMaxChildren) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::TaskSupervisorOptions opts;
  opts.max_children = 1;
  Pid sup = TaskSupervisor::start(rt, opts).value();
  auto body = []() -> Async<void> {
    Go g = co_await coppice::receive<Go>();
    (void)g;
  };
  Pid task = TaskSupervisor::start_child(rt, sup, TaskOptions{}, body).value();
  Result<Pid> second = TaskSupervisor::start_child(rt, sup, TaskOptions{}, body);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind(), ErrorKind::max_children);
  EXPECT_TRUE(TaskSupervisor::terminate_child(rt, sup, task).has_value());
  EXPECT_EQ(TaskSupervisor::terminate_child(rt, sup, task).error().kind(), ErrorKind::not_found);
  EXPECT_TRUE(TaskSupervisor::children(rt, sup).value().empty());
}

// A caller that crashes takes its async task with it; an async_nolink task runs on.
TEST(TaskSupervisor, ACallerCrashKillsItsLinkedTaskButNotANolinkOne) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid sup = TaskSupervisor::start(rt).value();
  const Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [sup, observer]() -> Async<void> {
    auto body = []() -> Async<int> {
      Go g = co_await coppice::receive<Go>();
      (void)g;
      co_return 1;
    };
    auto a = TaskSupervisor::async(sup, body);
    Result<Task<int>> linked = co_await a;
    auto b = TaskSupervisor::async_nolink(sup, body);
    Result<Task<int>> unlinked = co_await b;
    CO_ASSERT_TRUE(linked.has_value() && unlinked.has_value());
    coppice::send(observer, std::make_pair(linked->pid(), unlinked->pid()));
    coppice::exit(ExitReason::other("caller crashed"));
  });
  EXPECT_EQ(r, ExitReason::other("caller crashed"));
  auto pids = inbox.receive<std::pair<Pid, Pid>>(wait_time);
  ASSERT_TRUE(pids.has_value());
  // The linked task dies of the caller's reason (or is already gone: noproc).
  std::optional<ExitReason> gone = exit_reason_of(inbox, pids->first);
  ASSERT_TRUE(gone.has_value());
  EXPECT_TRUE(*gone == ExitReason::other("caller crashed") || *gone == ExitReason::noproc()) << *gone;
  EXPECT_TRUE(rt.alive(pids->second));
  // The supervisor hears of the linked task's death through its EXIT, which may still be on
  // its way when our monitor already reported noproc: ask until it has been handled.
  std::vector<Pid> children;
  for (int i = 0; i < 100000; ++i) {
    children = TaskSupervisor::children(rt, sup).value();
    if (children.size() == 1) break;
  }
  EXPECT_EQ(children, std::vector<Pid>{pids->second});
}

}  // namespace
}  // namespace coppice_test
