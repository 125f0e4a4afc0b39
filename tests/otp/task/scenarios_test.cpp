// SEMANTICS.md section 8, Registry / Task: the scenarios from Elixir's task_test.
#include "otp/task/task_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::Down;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Message;
using coppice::Pid;
using coppice::Result;
using coppice::Runtime;

// 89. [EX task_test "async/1"] link + monitor; messages {ref, :done} then
// {:DOWN, ref, _, _, :normal}.
TEST(Scenario, task_test_async_1) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    coppice::Task<int> t = coppice::task::async(wait_then_answer, me, 42);
    EXPECT_TRUE(t.pid());
    EXPECT_TRUE(t.ref());
    EXPECT_EQ(t.owner(), me);
    Ready ready = co_await coppice::receive<Ready>();
    EXPECT_EQ(ready.pid, t.pid());
    coppice::ProcessInfo info = coppice::self_info();
    EXPECT_TRUE(contains(info.links, t.pid()));
    EXPECT_TRUE(contains(info.monitors, t.pid()));

    coppice::send(t.pid(), Release{});
    // The reply first, addressed to the task's reply_to, then the Down, normal.
    Message first = co_await coppice::receive_any();
    CO_ASSERT_TRUE(first.is<int>());
    EXPECT_EQ(first.get<int>(), 42);
    EXPECT_EQ(first.envelope()->ref, t.reply_to().ref.bits());
    Message second = co_await coppice::receive_any();
    CO_ASSERT_TRUE(second.is<Down>());
    EXPECT_EQ(second.get<Down>().ref, t.ref());
    EXPECT_EQ(second.get<Down>().pid, t.pid());
    EXPECT_EQ(second.get<Down>().reason, ExitReason::normal());
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

// 91. [EX task_test "exits on normal exit"] the task exits normal without replying: await
// gives its reason, normal.
TEST(Scenario, task_test_exits_on_normal_exit) {
  Runtime rt(workers(2));
  ExitReason owner = run_process(rt, []() -> Async<void> {
    coppice::Task<int> t = coppice::task::async([]() -> int { coppice::exit(ExitReason::normal()); });
    auto wait = t.await();
    Result<int> r = co_await wait;
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::exited);
    EXPECT_EQ(r.error().reason(), ExitReason::normal());
    EXPECT_EQ(r.error().pid(), t.pid());
    std::vector<std::string> left = co_await leftovers();
    EXPECT_TRUE(left.empty()) << left.front();
  });
  EXPECT_EQ(owner, ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test
