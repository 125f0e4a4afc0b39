// Supervision trees: supervisors under supervisors, a restarted child that keeps its name,
// and the seed questions about servers that start children in init (110, 111, 113).
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

using coppice::StartOptions;

// A plain GenServer that starts two workers with start_link in its init and keeps their pids.
struct Children {
  Pid first;
  Pid second;
};
struct GetChildren {};
class Owner : public GenServer<Owner> {
 public:
  using calls = coppice::Protocol<GetChildren>;
  explicit Owner(Pid observer) : observer_(observer) {}
  Async<Init> init() {
    StartOptions o;
    auto a = Worker::start_link(o, observer_, std::string("first"), WorkerOptions{});
    Result<Pid> first = co_await a;
    if (!first) co_return stop_with(first.error().reason());
    auto b = Worker::start_link(o, observer_, std::string("second"), WorkerOptions{});
    Result<Pid> second = co_await b;
    if (!second) co_return stop_with(second.error().reason());
    children_ = {*first, *second};
    co_return ok();
  }
  Children handle_call(GetChildren) { return children_; }

 private:
  Pid observer_;
  Children children_;
};

TEST(NestedSupervisors, AKilledChildSupervisorIsRestartedWithItsChildren) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid outer = Supervisor::start(rt, {Supervisor::child_spec("inner", {worker("w", inbox.pid())}, flags(Strategy::one_for_one))},
                                flags(Strategy::one_for_one))
                  .value();
  Pid w = started_pid(inbox, "w");
  ChildInfo inner = Supervisor::which_child(rt, outer, "inner").value();
  EXPECT_EQ(inner.type, ChildType::supervisor);
  EXPECT_EQ(Supervisor::count_children(rt, outer).value(), counts(1, 1, 1, 0));
  coppice::Ref mw = inbox.monitor(w);
  rt.exit(inner.pid, ExitReason::kill());
  EXPECT_EQ(down_for(inbox, mw)->reason, ExitReason::killed()) << "the link takes the worker down";
  Pid w2 = started_pid(inbox, "w");
  EXPECT_NE(w2, w);
  Pid inner2 = Supervisor::which_child(rt, outer, "inner").value().pid;
  EXPECT_NE(inner2, inner.pid);
  EXPECT_EQ(children_of(rt, inner2), (std::vector<std::pair<std::string, Pid>>{{"w", w2}}));
}

TEST(NestedSupervisors, StoppingTheTopStopsTheTreeDepthFirstInReverseOrder) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  Pid top = Supervisor::start(rt,
                              {worker("a", observer, trapping()),
                               Supervisor::child_spec("mid", {worker("b", observer, trapping()), worker("c", observer, trapping())},
                                                      flags(Strategy::one_for_all)),
                               worker("d", observer, trapping())},
                              flags(Strategy::rest_for_one))
                .value();
  EXPECT_EQ(next_ids<Started>(inbox, 4), (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_TRUE(coppice::stop(rt, top, ExitReason::shutdown()).has_value());
  EXPECT_EQ(next_ids<Terminated>(inbox, 4), (std::vector<std::string>{"d", "c", "b", "a"}));
}

// A child supervisor that gives up exits shutdown: a permanent one is restarted by its
// parent, a transient one is not (shutdown is a clean exit) [EX-supervisor].
TEST(NestedSupervisors, AChildSupervisorThatGivesUpIsRestartedOnlyIfPermanent) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  for (Restart restart : {Restart::permanent, Restart::transient}) {
    Pid outer = Supervisor::start(rt,
                                  {Supervisor::child_spec("inner", {worker("w", inbox.pid())}, flags(Strategy::one_for_one, 0))
                                       .with_restart(restart)},
                                  flags(Strategy::one_for_one))
                    .value();
    Pid inner = Supervisor::which_child(rt, outer, "inner").value().pid;
    coppice::Ref mi = inbox.monitor(inner);
    Worker::cast(rt, started_pid(inbox, "w"), Crash{ExitReason::other("crash")});
    EXPECT_EQ(down_for(inbox, mi)->reason, ExitReason::shutdown());
    if (restart == Restart::permanent) {
      EXPECT_TRUE(started(inbox, "w").has_value());
      EXPECT_EQ(Supervisor::count_children(rt, outer).value(), counts(1, 1, 1, 0));
    } else {
      EXPECT_TRUE(none_of<Started>(inbox));
      EXPECT_EQ(Supervisor::count_children(rt, outer).value(), counts(1, 0, 1, 0));
    }
    ASSERT_TRUE(coppice::stop(rt, outer).has_value());
  }
}

// A module-style init for a child supervisor.
TEST(NestedSupervisors, AChildSupervisorWithAModuleStyleInit) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  coppice::SupervisorInit init = [observer]() -> Result<coppice::SupervisorSpec> {
    return coppice::SupervisorSpec{{worker("w", observer)}, flags(Strategy::one_for_one)};
  };
  Pid outer = Supervisor::start(rt, {Supervisor::child_spec("inner", init)}, flags(Strategy::one_for_one)).value();
  EXPECT_TRUE(started(inbox, "w").has_value());
  EXPECT_EQ(Supervisor::count_children(rt, outer).value(), counts(1, 1, 1, 0));
}

// 113: a permanent child registered as "srv" is killed; once restarted, the name leads to
// the new pid and calls by name work. (Names are released before the EXIT reaches the
// supervisor, so the restart never finds its name taken.)
TEST(Scenario, seed_113_restart_keeping_a_stable_name) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("srv", inbox.pid()).name("srv")}, flags(Strategy::one_for_one, 100)).value();
  (void)sup;
  Pid first = started_pid(inbox, "srv");
  EXPECT_EQ(rt.whereis("srv"), first);
  for (int i = 0; i < 20; ++i) {
    Pid old = rt.whereis("srv");
    rt.exit(old, ExitReason::kill());
    Pid now = started_pid(inbox, "srv");
    EXPECT_NE(now, old);
    EXPECT_EQ(Worker::call(rt, std::string("srv"), Whoami{}).value(), now);
    EXPECT_EQ(rt.whereis("srv"), now);
  }
}

// 110: a GenServer that starts children in its init, under a supervisor. A child's crash
// kills it (it does not trap exits); the supervisor restarts it, and its new init starts
// fresh children; the old ones are dead.
TEST(Scenario, seed_110_server_starting_children_in_init_under_a_supervisor) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {coppice::child<Owner>("owner", inbox.pid())}, flags(Strategy::one_for_one)).value();
  Pid owner = Supervisor::which_child(rt, sup, "owner").value().pid;
  Children old = Owner::call(rt, owner, GetChildren{}).value();
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"first", "second"}));
  coppice::Ref mo = inbox.monitor(owner);
  coppice::Ref m2 = inbox.monitor(old.second);
  Worker::cast(rt, old.first, Crash{ExitReason::other("boom")});
  EXPECT_EQ(down_for(inbox, mo)->reason, ExitReason::other("boom"));
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::other("boom"));
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"first", "second"}));
  Pid owner2 = Supervisor::which_child(rt, sup, "owner").value().pid;
  EXPECT_NE(owner2, owner);
  Children fresh = Owner::call(rt, owner2, GetChildren{}).value();
  EXPECT_NE(fresh.first, old.first);
  EXPECT_FALSE(rt.alive(old.first));
}

// 111: a plain GenServer that started a Supervisor with start_link stops with normal; the
// supervisor (it traps exits, and that server is its parent) stops its children and exits:
// no dangling child.
class SupervisorOwner : public GenServer<SupervisorOwner> {
 public:
  using calls = coppice::Protocol<GetChildren>;
  explicit SupervisorOwner(Pid observer) : observer_(observer) {}
  Async<Init> init() {
    auto s = Supervisor::start_link({worker("w", observer_)}, flags(Strategy::one_for_one));
    Result<Pid> sup = co_await s;
    if (!sup) co_return stop_with(sup.error().reason());
    sup_ = *sup;
    co_return ok();
  }
  Children handle_call(GetChildren) { return {sup_, Pid{}}; }

 private:
  Pid observer_;
  Pid sup_;
};

TEST(Scenario, seed_111_a_supervisor_child_always_stops_with_its_parent) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid owner = SupervisorOwner::start(rt, StartOptions{}, inbox.pid()).value();
  Pid sup = SupervisorOwner::call(rt, owner, GetChildren{}).value().first;
  Pid w = started_pid(inbox, "w");
  coppice::Ref ms = inbox.monitor(sup);
  coppice::Ref mw = inbox.monitor(w);
  ASSERT_TRUE(coppice::stop(rt, owner, ExitReason::normal()).has_value());
  EXPECT_EQ(down_for(inbox, mw)->reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test::sup
