// Tasks owned by a plain thread's Inbox: started with task::async(inbox, ...), awaited with
// a blocking task.await(inbox, timeout).
#include "otp/task/task_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Inbox;
using coppice::Result;
using coppice::Runtime;
using coppice::Task;

TEST(Task, AnInboxAwaitsItsTask) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  Task<int> plain = coppice::task::async(inbox, [](int a, int b) { return a + b; }, 2, 3);
  Task<int> coroutine = coppice::task::async(inbox, wait_then_answer, inbox.pid(), 8);
  std::optional<Ready> ready = inbox.receive<Ready>(wait_time);
  ASSERT_TRUE(ready.has_value());
  inbox.send(ready->pid, Release{});
  Result<int> a = plain.await(inbox);
  Result<int> b = coroutine.await(inbox);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a.value(), 5);
  EXPECT_EQ(b.value(), 8);
  EXPECT_EQ(inbox.queued(), 0u);
}

TEST(Task, AnInboxsAwaitTimesOutAndNothingArrivesLater) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  Task<int> t = coppice::task::async(inbox, wait_then_answer, inbox.pid(), 1);
  std::optional<Ready> ready = inbox.receive<Ready>(wait_time);
  ASSERT_TRUE(ready.has_value());
  Result<int> r = t.await(inbox, 0ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::timeout);
  const coppice::Ref watch = inbox.monitor(t.pid());
  inbox.send(t.pid(), Release{});
  std::optional<coppice::Down> d = down_for(inbox, watch);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason, ExitReason::normal());
  EXPECT_EQ(inbox.queued(), 0u);
}

TEST(Task, AnInboxsAwaitGivesTheReasonOfACrash) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Task<int> t = coppice::task::async(inbox, []() -> int { throw TaskError("boom"); });
  Result<int> r = t.await(inbox);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::exited);
  EXPECT_EQ(r.error().reason().detail(), "boom");
  EXPECT_EQ(inbox.queued(), 0u);  // not linked: no Exit either
}

TEST(Task, AnotherInboxMayNotAwait) {
  Runtime rt(workers(2));
  Inbox owner(rt);
  Inbox other(rt);
  Task<int> t = coppice::task::async(owner, [] { return 1; });
  Result<int> refused = t.await(other);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind(), ErrorKind::invalid_argument);
  Result<int> r = t.await(owner);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 1);
}

}  // namespace
}  // namespace coppice_test
