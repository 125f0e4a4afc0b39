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
  EXPECT_EQ((*which)[0].id, "a");  // start order, as the `parent` library (SEMANTICS.md 9)
  EXPECT_EQ((*which)[1].id, "b");
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
  coppice::cast(rt, first, Crash{ExitReason::other("boom")});
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

// ServerRef::child_of(parent, id) follows the child across restarts, for callers that hold
// only the parent and the id; a child that is not running resolves to nothing (noproc).
TEST(ParentBasics, ChildOfNameFollowsTheChildAcrossRestarts) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Result<Pid> parent = Owner::start(rt, {.name = "owner"}, inbox.pid());
  ASSERT_TRUE(parent);
  ASSERT_TRUE(ask<Pid>(rt, *parent, StartChild{pworker("device", inbox.pid())}));
  const Pid first = started_pid(inbox, "device");
  const coppice::ServerRef device = coppice::ServerRef::child_of("owner", "device");
  EXPECT_EQ(device.to_string(), "{child 'device' of 'owner'}");
  Result<Pid> who = coppice::call<Pid>(rt, device, Whoami{});
  ASSERT_TRUE(who) << who.error();
  EXPECT_EQ(*who, first);
  coppice::cast(rt, device, Crash{ExitReason::other("boom")});
  const Pid second = started_pid(inbox, "device");
  // The parent records the new pid once the child's start has returned: a query to the
  // parent is served after that (until then the name resolves to nothing, as a Registry's).
  Result<Pid> recorded = ParentClient::child_pid(rt, *parent, "device");
  ASSERT_TRUE(recorded) << recorded.error();
  EXPECT_EQ(*recorded, second);
  who = coppice::call<Pid>(rt, device, Whoami{});
  ASSERT_TRUE(who) << who.error();
  EXPECT_EQ(*who, second);
  Result<StoppedChildren> stopped = ask<StoppedChildren>(rt, *parent, ShutdownChild{"device"});
  ASSERT_TRUE(stopped) << stopped.error();
  Result<Pid> gone = coppice::call<Pid>(rt, device, Whoami{});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::noproc);
  Result<Pid> unknown = coppice::call<Pid>(rt, coppice::ServerRef::child_of("nobody", "device"), Whoami{});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind(), ErrorKind::noproc);
}

// ParentSupervisor: a list of children under bindings instead of a strategy. Under a
// Supervisor it reports as a supervisor; a child that fails to start fails the whole start.
TEST(ParentBasics, ParentSupervisorStartsItsChildrenAndSitsInASupervisionTree) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  std::vector<ParentChildSpec> kids{pworker("a", inbox.pid()), pworker("b", inbox.pid()).bound_to({"a"})};
  Result<Pid> top = Supervisor::start(rt, {coppice::ParentSupervisor::child_spec("tree", kids)});
  ASSERT_TRUE(top) << top.error();
  const Pid a = started_pid(inbox, "a");
  const Pid b = started_pid(inbox, "b");
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, *top);
  ASSERT_TRUE(which) << which.error();
  ASSERT_EQ(which->size(), 1u);
  EXPECT_EQ((*which)[0].type, ChildType::supervisor);
  Result<coppice::ChildSpec> spec = Supervisor::get_childspec(rt, *top, "tree");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->effective_shutdown(), Shutdown::infinity());
  // b is bound to a: a crash of a brings both back, b after a.
  coppice::cast(rt, a, Crash{ExitReason::other("boom")});
  std::optional<Started> s1 = started(inbox);
  std::optional<Started> s2 = started(inbox);
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(s1->id, "a");
  EXPECT_EQ(s2->id, "b");
  EXPECT_NE(s2->pid, b);

  auto failing_start = ParentChildSpec(failing("bad", coppice::Error(ErrorKind::start_error, "no device")));
  Result<Pid> broken = coppice::ParentSupervisor::start(rt, {pworker("c", inbox.pid()), failing_start});
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(broken.error().reason(), coppice::start_error_reason());
  const Pid c = started_pid(inbox, "c");
  EXPECT_FALSE(rt.alive(c)) << "the child started before the failure was left running";
}

// Parent-wide options are checked when the parent is built: the start fails and says which.
TEST(ParentBasics, InvalidParentOptionsFailTheStartNamingTheField) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  ParentOptions negative;
  negative.intensity = -1;
  Result<Pid> a = Owner::start(rt, {}, inbox.pid(), negative);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().kind(), ErrorKind::start_error);
  EXPECT_NE(a.error().to_string().find("intensity"), std::string::npos) << a.error();
  ParentOptions zero;
  zero.period = std::chrono::milliseconds(0);
  Result<Pid> b = Owner::start(rt, {}, inbox.pid(), zero);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().to_string().find("period"), std::string::npos) << b.error();
}
