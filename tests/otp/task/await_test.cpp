// Task.async and what the owner does with the task: await, yield, ignore, await_many; the
// link in both directions; only the owner may touch its task.
#include <numeric>

#include "otp/task/task_support.hpp"

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
using coppice::Runtime;
using coppice::Task;

TEST(Task, AwaitGivesThePlainFunctionsValue) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<std::string> t = coppice::task::async([](int n) { return std::string(static_cast<std::size_t>(n), 'x'); }, 3);
    auto wait = t.await();
    Result<std::string> r = co_await wait;
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r.value(), "xxx");
    std::vector<std::string> left = co_await leftovers();  // the Down was flushed
    EXPECT_TRUE(left.empty());
    EXPECT_FALSE(contains(coppice::self_info().monitors, t.pid()));
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AwaitGivesTheCoroutinesValue) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 7);
    Ready ready = co_await coppice::receive<Ready>();
    coppice::send(ready.pid, Release{});
    auto wait = t.await();
    Result<int> r = co_await wait;
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r.value(), 7);
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AVoidFunctionsTaskAwaitsToOk) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    Task<void> t = coppice::task::async([me] { coppice::send(me, 5); });
    auto wait = t.await();
    coppice::Status r = co_await wait;
    EXPECT_TRUE(r.has_value());
    int sent = co_await coppice::receive<int>();  // sent before the reply
    EXPECT_EQ(sent, 5);
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// [EX task_test "await/2 demonitors and unalias on timeout"]
TEST(Task, AwaitTimeoutLeavesNothingBehind) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    auto wait = t.await(0ms);
    Result<int> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::timeout);
    EXPECT_EQ(r.error().pid(), t.pid());
    EXPECT_FALSE(contains(coppice::self_info().monitors, t.pid()));
    // The task runs on, still linked; once it has replied and exited normal, neither its
    // reply nor its Down is in the mailbox.
    EXPECT_TRUE(contains(coppice::self_info().links, t.pid()));
    ExitReason reason = co_await end_after(ready.pid, Release{});
    EXPECT_EQ(reason, ExitReason::normal());
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AnExceptionInTheTaskIsItsExitReason) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    Task<int> t = coppice::task::async([]() -> int { throw TaskError("boom"); });
    auto wait = t.await();
    Result<int> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::exited);
    EXPECT_EQ(r.error().reason().kind(), ExitReason::Kind::error);
    EXPECT_NE(r.error().reason().error_type().find("TaskError"), std::string_view::npos);
    EXPECT_EQ(r.error().reason().detail(), "boom");
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// The link: a task that crashes takes its non-trapping owner with it.
TEST(Task, ACrashingTaskKillsANonTrappingOwner) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    [[maybe_unused]] Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    coppice::send(ready.pid, Crash{});
    Release never = co_await coppice::receive<Release>();  // the task's exit signal ends this
    (void)never;
    ADD_FAILURE() << "the owner outlived its crashed task";
  });
  EXPECT_EQ(owner.kind(), ExitReason::Kind::error);
  EXPECT_EQ(owner.detail(), "boom");
}

// A trapping owner survives: it gets the Exit, and await gives the task's reason.
TEST(Task, ATrappingOwnerGetsTheExitAndAwaitGivesTheReason) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    coppice::send(ready.pid, Crash{});
    auto wait = t.await();
    Result<int> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::exited);
    EXPECT_EQ(r.error().reason().detail(), "boom");
    Exit e = co_await coppice::receive<Exit>();
    EXPECT_EQ(e.from, t.pid());
    EXPECT_EQ(e.reason, r.error().reason());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// The link, the other way: an owner that crashes takes its task with it.
TEST(Task, ACrashingOwnerKillsItsTask) {
  Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  Pid owner = rt.spawn([observer]() -> Async<void> {
    [[maybe_unused]] Task<int> t = coppice::task::async(wait_then_answer, observer, 1);
    Crash c = co_await coppice::receive<Crash>();
    (void)c;
    throw TaskError("owner down");
  });
  std::optional<Ready> ready = inbox.receive<Ready>(wait_time);
  ASSERT_TRUE(ready.has_value());
  const coppice::Ref watch = inbox.monitor(ready->pid);
  inbox.send(owner, Crash{});
  std::optional<Down> d = down_for(inbox, watch);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason.kind(), ExitReason::Kind::error);
  EXPECT_EQ(d->reason.detail(), "owner down");
}

TEST(Task, YieldGivesNothingWhileTheTaskRunsThenItsValue) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 9);
    Ready ready = co_await coppice::receive<Ready>();
    auto early = t.yield(0ms);
    std::optional<Result<int>> none = co_await early;
    EXPECT_FALSE(none.has_value());
    EXPECT_TRUE(contains(coppice::self_info().monitors, t.pid()));  // still monitored
    coppice::send(ready.pid, Release{});
    auto late = t.yield(wait_time);
    std::optional<Result<int>> some = co_await late;
    CO_ASSERT_TRUE(some.has_value() && some->has_value());
    EXPECT_EQ(some->value(), 9);
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, YieldGivesTheReasonOfATaskThatDied) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    Task<int> t = coppice::task::async([]() -> int { coppice::exit(ExitReason::other("gone")); });
    auto wait = t.yield(wait_time);
    std::optional<Result<int>> r = co_await wait;
    CO_ASSERT_TRUE(r.has_value() && !r->has_value());
    EXPECT_EQ(r->error().kind(), ErrorKind::exited);
    EXPECT_EQ(r->error().reason(), ExitReason::other("gone"));
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, IgnoreUnlinksAndDropsTheLateReply) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    std::optional<Result<int>> r = t.ignore();
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(contains(coppice::self_info().links, t.pid()));
    EXPECT_FALSE(contains(coppice::self_info().monitors, t.pid()));
    // Unlinked: its crash does not reach this non-trapping owner; and nothing of it arrives.
    ExitReason reason = co_await end_after(ready.pid, Crash{});
    EXPECT_EQ(reason.detail(), "boom");
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// SEMANTICS.md 6 (Task.ignore unlinks) and 1.4: after ignore, the task's abnormal end
// does not reach the owner, which does not trap exits. Independent of the test above: the
// task is killed from outside (reason killed travels a link like any abnormal reason), and
// the owner's survival is checked from outside too, by what it says after the task's DOWN
// (a link signal from the task would be queued before that DOWN).
TEST(Task, AfterIgnoreTheTasksDeathDoesNotReachTheOwner) {
  Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  const Pid owner = rt.spawn([](Pid observer) -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 1);
    Ready ready = co_await coppice::receive<Ready>();
    (void)t.ignore();
    const coppice::Ref ref = coppice::monitor(ready.pid);
    coppice::send(observer, ready);  // the test kills it now
    auto is_it = [ref](const Message& m) {
      const auto* d = m.get_if<Down>();
      return d != nullptr && d->ref == ref;
    };
    Message down = co_await coppice::receive_if(is_it);
    coppice::send(observer, down.get<Down>().reason);
    coppice::send(observer, coppice::self_info().links.size());
  }, observer);
  const coppice::Ref owner_ref = inbox.monitor(owner);
  std::optional<Ready> task = inbox.receive<Ready>(wait_time);
  ASSERT_TRUE(task);
  rt.exit(task->pid, ExitReason::kill());
  std::optional<ExitReason> task_end = inbox.receive<ExitReason>(wait_time);
  ASSERT_TRUE(task_end) << "the owner died with its ignored task";
  EXPECT_EQ(*task_end, ExitReason::killed());
  std::optional<std::size_t> links = inbox.receive<std::size_t>(wait_time);
  ASSERT_TRUE(links);
  EXPECT_EQ(*links, 0u) << "the owner is still linked";
  std::optional<Down> owner_end = down_for(inbox, owner_ref);
  ASSERT_TRUE(owner_end);
  EXPECT_EQ(owner_end->reason, ExitReason::normal());
}

TEST(Task, IgnoreGivesAReplyThatAlreadyArrived) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 3);
    Ready ready = co_await coppice::receive<Ready>();
    ExitReason reason = co_await end_after(ready.pid, Release{});  // its reply is queued by now
    EXPECT_EQ(reason, ExitReason::normal());
    std::optional<Result<int>> r = t.ignore();
    CO_ASSERT_TRUE(r.has_value() && r->has_value());
    EXPECT_EQ(r->value(), 3);
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// Elixir raises ArgumentError; coppice answers invalid_argument, and the task is untouched.
TEST(Task, OnlyTheOwnerMayAwaitYieldShutDownOrIgnore) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    Task<int> t = coppice::task::async(wait_then_answer, coppice::self(), 4);
    Ready ready = co_await coppice::receive<Ready>();
    const Pid me = coppice::self();
    Pid stranger = coppice::spawn([](Task<int> task, Pid back) -> Async<void> {
      auto a = task.await(0ms);
      Result<int> awaited = co_await a;
      auto y = task.yield(0ms);
      std::optional<Result<int>> yielded = co_await y;
      auto s = task.shutdown(coppice::Shutdown::brutal_kill());
      std::optional<Result<int>> shut = co_await s;
      std::optional<Result<int>> ignored = task.ignore();
      const bool all_refused = !awaited && awaited.error().kind() == ErrorKind::invalid_argument && yielded &&
                               !*yielded && yielded->error().kind() == ErrorKind::invalid_argument && shut &&
                               !*shut && shut->error().kind() == ErrorKind::invalid_argument && ignored &&
                               !*ignored && ignored->error().kind() == ErrorKind::invalid_argument;
      coppice::send(back, all_refused);
    }, t, me);
    bool refused = co_await coppice::receive<bool>();
    EXPECT_TRUE(refused);
    (void)stranger;
    coppice::send(ready.pid, Release{});
    auto wait = t.await();
    Result<int> r = co_await wait;
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r.value(), 4);
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AwaitManyGivesTheValuesInTheOrderOfTheTasks) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(coppice::task::async(wait_then_answer, me, i * 10));
    std::vector<Pid> ready;
    for (int i = 0; i < 3; ++i) {
      Ready r = co_await coppice::receive<Ready>();
      ready.push_back(r.pid);
    }
    for (auto it = ready.rbegin(); it != ready.rend(); ++it) coppice::send(*it, Release{});  // last first
    auto wait = coppice::task::await_many(tasks);
    Result<std::vector<int>> r = co_await wait;
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r.value(), (std::vector<int>{0, 10, 20}));
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AwaitManyStopsAtTheFirstTaskToDieAndForgetsTheOthers) {
  Runtime rt(quiet(workers(2)));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    const Pid me = coppice::self();
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(coppice::task::async(wait_then_answer, me, i));
    for (int i = 0; i < 3; ++i) {
      Ready r = co_await coppice::receive<Ready>();
      (void)r;
    }
    coppice::send(tasks[1].pid(), Crash{});
    auto wait = coppice::task::await_many(tasks);
    Result<std::vector<int>> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::exited);
    EXPECT_EQ(r.error().pid(), tasks[1].pid());
    EXPECT_EQ(r.error().reason().detail(), "boom");
    Exit crashed = co_await coppice::receive<Exit>();
    EXPECT_EQ(crashed.from, tasks[1].pid());
    // The others are forgotten: once they have answered and exited, nothing of them is queued
    // but the Exit normal of their links (this owner traps exits).
    for (int i : {0, 2}) {
      ExitReason reason = co_await end_after(tasks[static_cast<std::size_t>(i)].pid(), Release{});
      EXPECT_EQ(reason, ExitReason::normal());
      Exit e = co_await coppice::receive<Exit>();
      EXPECT_EQ(e.reason, ExitReason::normal());
    }
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, AwaitManyTimesOutAndForgetsTheTasks) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    std::vector<Task<int>> tasks;
    tasks.push_back(coppice::task::async([] { return 1; }));
    tasks.push_back(coppice::task::async(wait_then_answer, me, 2));
    Ready ready = co_await coppice::receive<Ready>();
    auto wait = coppice::task::await_many(tasks, 20ms);
    Result<std::vector<int>> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::timeout);
    ExitReason reason = co_await end_after(ready.pid, Release{});
    EXPECT_EQ(reason, ExitReason::normal());
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

TEST(Task, StartLinkAndStartRunTheFunctionAndTellNobody) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    Pid linked = coppice::task::start_link([me]() -> Async<void> {
      Release go = co_await coppice::receive<Release>();
      (void)go;
      coppice::send(me, 1);
    });
    Pid unlinked = coppice::task::start([me]() -> Async<void> {
      Release go = co_await coppice::receive<Release>();
      (void)go;
      coppice::send(me, 2);
    });
    EXPECT_TRUE(contains(coppice::self_info().links, linked));
    EXPECT_FALSE(contains(coppice::self_info().links, unlinked));
    ExitReason a = co_await end_after(linked, Release{});
    ExitReason b = co_await end_after(unlinked, Release{});
    EXPECT_EQ(a, ExitReason::normal());
    EXPECT_EQ(b, ExitReason::normal());
    int first = co_await coppice::receive<int>();
    int second = co_await coppice::receive<int>();
    EXPECT_EQ(first + second, 3);
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// A small stress test: many tasks in flight at once, each awaited by its owner.
TEST(Task, TenThousandTasksAwaited) {
  Runtime rt(workers(2));
  constexpr int count = 10000;
  ExitReason owner = run_process(rt, []() -> Async<void> {
    std::vector<Task<long>> tasks;
    tasks.reserve(count);
    for (int i = 0; i < count; ++i) tasks.push_back(coppice::task::async([](long n) { return n * 2; }, long{i}));
    long sum = 0;
    for (int i = 0; i < count / 2; ++i) {
      auto wait = tasks[static_cast<std::size_t>(i)].await();
      Result<long> r = co_await wait;
      CO_ASSERT_TRUE(r.has_value());
      sum += r.value();
    }
    std::vector<Task<long>> rest(tasks.begin() + count / 2, tasks.end());
    auto wait_rest = coppice::task::await_many(rest);
    Result<std::vector<long>> r = co_await wait_rest;
    CO_ASSERT_TRUE(r.has_value());
    sum = std::accumulate(r->begin(), r->end(), sum);
    EXPECT_EQ(sum, long{count} * (count - 1));
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test
