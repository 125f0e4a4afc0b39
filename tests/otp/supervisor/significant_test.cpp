// auto_shutdown and significant children (SEMANTICS.md 3.10).
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

using coppice::AutoShutdown;

SupervisorFlags auto_flags(AutoShutdown a, Strategy s = Strategy::one_for_one) {
  SupervisorFlags f = flags(s, 10);
  f.auto_shutdown = a;
  return f;
}

// [SUPT significant_temporary] any_significant: terminate_child of the significant child
// does not shut the supervisor down; its own exit (kill, abnormal or normal) does, and the
// other children stop too.
TEST(Scenario, supervisor_SUITE_significant_temporary_any) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto spec = [&] { return worker("child1", inbox.pid()).with_restart(Restart::temporary).as_significant(); };
  {
    Pid sup = Supervisor::start(rt, {worker("other", inbox.pid()), spec()}, auto_flags(AutoShutdown::any_significant)).value();
    EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"other", "child1"}));
    EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "child1").has_value());
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1)) << "alive, child1's spec removed";
    ASSERT_TRUE(coppice::stop(rt, sup).has_value());
  }
  for (const ExitReason& reason : {ExitReason::kill(), ExitReason::other("abnormal"), ExitReason::normal()}) {
    Pid sup = Supervisor::start(rt, {worker("other", inbox.pid()), spec()}, auto_flags(AutoShutdown::any_significant)).value();
    Pid other = started_pid(inbox, "other");
    Pid child = started_pid(inbox, "child1");
    coppice::Ref ms = inbox.monitor(sup);
    coppice::Ref mo = inbox.monitor(other);
    if (reason.is_kill()) {
      rt.exit(child, reason);
    } else {
      Worker::cast(rt, child, Crash{reason});
    }
    EXPECT_EQ(down_for(inbox, mo)->reason, ExitReason::shutdown()) << reason;
    EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown()) << reason;
  }
}

// [SUPT significant_temporary] all_significant: the first significant exit does nothing;
// the last one shuts everything down.
TEST(Scenario, supervisor_SUITE_significant_temporary_all) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid()).with_restart(Restart::temporary).as_significant(),
                               worker("child2", inbox.pid()).with_restart(Restart::temporary).as_significant(),
                               worker("other", inbox.pid())},
                              auto_flags(AutoShutdown::all_significant))
                .value();
  Pid c1 = started_pid(inbox, "child1");
  Pid c2 = started_pid(inbox, "child2");
  coppice::Ref ms = inbox.monitor(sup);
  coppice::Ref m1 = inbox.monitor(c1);
  Worker::cast(rt, c1, Crash{ExitReason::normal()});
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::normal());
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 2, 0, 2)) << "still running";
  Worker::cast(rt, c2, Crash{ExitReason::normal()});
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT significant_transient] any_significant: a killed or crashed significant transient
// child is restarted (no shutdown); one that exits normally shuts the supervisor down.
TEST(Scenario, supervisor_SUITE_significant_transient) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()).with_restart(Restart::transient).as_significant()},
                              auto_flags(AutoShutdown::any_significant))
                .value();
  coppice::Ref ms = inbox.monitor(sup);
  Pid c = started_pid(inbox, "child1");
  rt.exit(c, ExitReason::kill());
  c = started_pid(inbox, "child1");
  Worker::cast(rt, c, Crash{ExitReason::other("abnormal")});
  c = started_pid(inbox, "child1");
  EXPECT_TRUE(rt.alive(sup));
  Worker::cast(rt, c, Crash{ExitReason::normal()});
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT significant_bystander] A significant child stopped as a bystander of a sibling's
// one_for_all restart does not trigger the auto shutdown.
TEST(Scenario, supervisor_SUITE_significant_bystander) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid()),
                               worker("child2", inbox.pid()).with_restart(Restart::transient).as_significant()},
                              auto_flags(AutoShutdown::any_significant, Strategy::one_for_all))
                .value();
  Pid c1 = started_pid(inbox, "child1");
  started_pid(inbox, "child2");
  Worker::cast(rt, c1, Crash{ExitReason::other("crash")});
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"child1", "child2"}));
  EXPECT_TRUE(rt.alive(sup));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 2, 0, 2));
}

// A significant child under auto_shutdown never is refused, at start and by start_child.
TEST(AutoShutdown, SignificantChildrenNeedAnAutoShutdown) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  ChildSpec s = worker("x", inbox.pid()).with_restart(Restart::transient).as_significant();
  Status v = coppice::validate(SupervisorFlags{}, {s});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().kind(), ErrorKind::invalid_child_spec);
  EXPECT_NE(v.error().message().find("significant"), std::string::npos);
  EXPECT_TRUE(coppice::validate(auto_flags(AutoShutdown::any_significant), {s}).has_value());
}

}  // namespace
}  // namespace coppice_test::sup
