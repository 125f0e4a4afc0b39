// Parent's basics (SEMANTICS.md 7.1-7.5): children started from any callback, listed in start
// order, restarted by their own rules, stopped after the parent's terminate.
#include "otp/parent/parent_support.hpp"

using namespace coppice_test;
using namespace coppice_test::par;

TEST(ParentBasics, StartsChildrenFromACallbackAndListsThemInStartOrder) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Result<Pid> parent = Owner::start(rt, {}, inbox.pid());
  ASSERT_TRUE(parent) << parent.error();
  Result<Pid> a = ask<Pid>(rt, *parent, StartChild{pworker("a", inbox.pid())});
  ASSERT_TRUE(a) << a.error();
  Result<Pid> b = ask<Pid>(rt, *parent, StartChild{pworker("b", inbox.pid())});
  ASSERT_TRUE(b) << b.error();
  Result<std::vector<ParentChild>> kids = ParentClient::children(rt, *parent);
  ASSERT_TRUE(kids) << kids.error();
  ASSERT_EQ(kids->size(), 2u);
  EXPECT_EQ((*kids)[0].id, "a");
  EXPECT_EQ((*kids)[0].pid, *a);
  EXPECT_EQ((*kids)[1].id, "b");
  Result<ChildCounts> n = Supervisor::count_children(rt, *parent);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, counts(2, 2, 0, 2));
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, *parent);
  ASSERT_TRUE(which) << which.error();
  ASSERT_EQ(which->size(), 2u);
  EXPECT_EQ((*which)[0].id, "b");  // newest first, as a Supervisor
  Result<Pid> dup = ask<Pid>(rt, *parent, StartChild{pworker("a", inbox.pid())});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(dup.error().pid(), *a);
}

TEST(ParentBasics, APermanentChildThatCrashesIsRestarted) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Result<Pid> parent = Owner::start(rt, {}, inbox.pid());
  ASSERT_TRUE(parent);
  ASSERT_TRUE(ask<Pid>(rt, *parent, StartChild{pworker("a", inbox.pid())}));
  const Pid first = started_pid(inbox, "a");
  ASSERT_TRUE(coppice::cast(rt, first, Crash{ExitReason::other("boom")}));
  const Pid second = started_pid(inbox, "a");
  EXPECT_NE(first, second);
  Result<Pid> now = ParentClient::child_pid(rt, *parent, "a");
  ASSERT_TRUE(now) << now.error();
  EXPECT_EQ(*now, second);
}

// Scenario 107 [gen_server_test "terminates children before the parent stops"]: terminate
// runs with the children alive, then they stop in reverse start order, the parent last.
TEST(Scenario, parent_gen_server_test_terminates_children_before_the_parent_stops) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Result<Pid> parent = Owner::start(rt, {}, inbox.pid());
  ASSERT_TRUE(parent);
  ASSERT_TRUE(ask<std::vector<Pid>>(rt, *parent, StartAll{{pworker("child1", inbox.pid()), pworker("child2", inbox.pid())}}));
  const Pid c1 = started_pid(inbox, "child1");
  const Pid c2 = started_pid(inbox, "child2");
  const coppice::Ref m1 = inbox.monitor(c1);
  const coppice::Ref m2 = inbox.monitor(c2);
  const coppice::Ref mp = inbox.monitor(*parent);
  ASSERT_TRUE(coppice::stop(rt, *parent));
  std::optional<ParentTerminating> t = inbox.receive<ParentTerminating>(wait_time);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->running, 2u) << "terminate ran after the children stopped";
  std::vector<coppice::Ref> order;
  for (int i = 0; i < 3; ++i) {
    std::optional<coppice::Down> d = inbox.receive<coppice::Down>(wait_time);
    ASSERT_TRUE(d);
    order.push_back(d->ref);
  }
  EXPECT_EQ(order, (std::vector<coppice::Ref>{m2, m1, mp}));
}
