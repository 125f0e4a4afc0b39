// Supervisor restarts: what each restart type does with each exit reason, the strategies'
// order of termination and restart, restart intensity, and failed restarts retried.
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

using Row = std::pair<std::string, Pid>;

void crash(coppice::Runtime& rt, Pid child, ExitReason reason) {
  Worker::cast(rt, child, Crash{std::move(reason)});
}

// [SUPT permanent_normal, permanent_shutdown, permanent_abnormal] A permanent child is
// restarted whatever its reason: a new pid, counts [1,1,0,1].
TEST(Scenario, supervisor_SUITE_permanent) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid())}, flags(Strategy::one_for_one, 10)).value();
  Pid child = started_pid(inbox, "child1");
  for (const ExitReason& reason : {ExitReason::normal(), ExitReason::shutdown(), ExitReason::shutdown("some_info"),
                                   ExitReason::other("died")}) {
    crash(rt, child, reason);
    Pid again = started_pid(inbox, "child1");
    EXPECT_NE(again, child) << reason;
    EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", again}}));
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
    child = again;
  }
}

// [SUPT transient_normal, transient_shutdown, transient_abnormal] normal, shutdown and
// shutdown with a detail: not restarted, the spec kept with no pid; another reason: restarted.
TEST(Scenario, supervisor_SUITE_transient) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  for (const ExitReason& reason : {ExitReason::normal(), ExitReason::shutdown(), ExitReason::shutdown("x")}) {
    Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()).with_restart(Restart::transient)},
                                flags(Strategy::one_for_one))
                  .value();
    Pid child = started_pid(inbox, "child1");
    coppice::Ref m = inbox.monitor(child);
    crash(rt, child, reason);
    EXPECT_EQ(down_for(inbox, m)->reason, reason);
    EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", Pid{}}})) << reason;
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 0, 0, 1));
    EXPECT_TRUE(none_of<Started>(inbox));
  }
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()).with_restart(Restart::transient)},
                              flags(Strategy::one_for_one))
                .value();
  Pid child = started_pid(inbox, "child1");
  crash(rt, child, ExitReason::other("abnormal"));
  Pid again = started_pid(inbox, "child1");
  EXPECT_NE(again, child);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
}

// [SUPT temporary_normal, temporary_shutdown, temporary_abnormal] Any exit removes the spec;
// the same spec can be started again.
TEST(Scenario, supervisor_SUITE_temporary) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
  for (const ExitReason& reason : {ExitReason::normal(), ExitReason::shutdown(), ExitReason::other("abnormal")}) {
    ChildSpec spec = worker("child1", inbox.pid()).with_restart(Restart::temporary);
    Pid child = Supervisor::start_child(rt, sup, spec).value();
    coppice::Ref m = inbox.monitor(child);
    crash(rt, child, reason);
    EXPECT_EQ(down_for(inbox, m)->reason, reason);
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0)) << reason;
    EXPECT_TRUE(Supervisor::which_children(rt, sup).value().empty());
  }
}

// Every restart type against every kind of exit reason, the expected answer written out from
// the contract (SEMANTICS.md 0 "transient children" and 3.5), not computed with the engine's
// own classification. Restarted: a new pid, counts [1,1,0,1]. Not restarted: transient keeps
// its spec with no pid [1,0,0,1]; temporary's spec is deleted [0,0,0,0].
TEST(SupervisorRestart, EveryRestartTypeAndExitReasonFollowsTheContractTable) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  struct Case {
    Restart restart;
    const char* how;    // "cast": the child stops itself with `reason`; "kill": exit(child, kill)
    ExitReason reason;  // the reason the child dies with
    bool restarted;     // the contract's answer
  };
  const ExitReason detail = ExitReason::shutdown("detail");
  const ExitReason other = ExitReason::other("abnormal");
  const std::vector<Case> table{
      {Restart::permanent, "cast", ExitReason::normal(), true},
      {Restart::permanent, "cast", ExitReason::shutdown(), true},
      {Restart::permanent, "cast", detail, true},
      {Restart::permanent, "cast", other, true},
      {Restart::permanent, "kill", ExitReason::killed(), true},
      {Restart::transient, "cast", ExitReason::normal(), false},
      {Restart::transient, "cast", ExitReason::shutdown(), false},
      {Restart::transient, "cast", detail, false},
      {Restart::transient, "cast", other, true},
      {Restart::transient, "kill", ExitReason::killed(), true},
      {Restart::temporary, "cast", ExitReason::normal(), false},
      {Restart::temporary, "cast", ExitReason::shutdown(), false},
      {Restart::temporary, "cast", detail, false},
      {Restart::temporary, "cast", other, false},
      {Restart::temporary, "kill", ExitReason::killed(), false},
  };
  for (const Case& row : table) {
    SCOPED_TRACE(std::string(coppice::to_string(row.restart)) + " " + row.how + " " + row.reason.to_string());
    Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()).with_restart(row.restart)},
                                flags(Strategy::one_for_one, 10))
                  .value();
    Pid child = started_pid(inbox, "child1");
    coppice::Ref m = inbox.monitor(child);
    if (std::string_view(row.how) == "kill") {
      rt.exit(child, ExitReason::kill());
    } else {
      crash(rt, child, row.reason);
    }
    std::optional<coppice::Down> d = down_for(inbox, m);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->reason, row.reason);
    // The child's EXIT reached the supervisor before its DOWN reached us: this request is
    // served after the supervisor acted on it, and a restart's Started is queued by then.
    const ChildCounts after = Supervisor::count_children(rt, sup).value();
    std::optional<Started> again = inbox.receive<Started>(0ms);
    if (row.restarted) {
      ASSERT_TRUE(again.has_value()) << "not restarted";
      EXPECT_NE(again->pid, child);
      EXPECT_EQ(after, counts(1, 1, 0, 1));
      EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", again->pid}}));
    } else {
      EXPECT_FALSE(again.has_value()) << "restarted, and must not be";
      if (row.restart == Restart::temporary) {
        EXPECT_EQ(after, counts(0, 0, 0, 0));
        EXPECT_TRUE(children_of(rt, sup).empty());
      } else {
        EXPECT_EQ(after, counts(1, 0, 0, 1));
        EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", Pid{}}}));
      }
    }
    EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  }
}

// [SUPT temporary_bystander] one_for_all and rest_for_one: the permanent child1 exits
// normal; the temporary child2 is stopped and not restarted; the supervisor lives on.
TEST(Scenario, supervisor_SUITE_temporary_bystander) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  for (Strategy strategy : {Strategy::one_for_all, Strategy::rest_for_one}) {
    Pid sup = Supervisor::start(rt,
                                {worker("child1", inbox.pid()),
                                 worker("child2", inbox.pid(), trapping()).with_restart(Restart::temporary)},
                                flags(strategy, 10))
                  .value();
    Pid c1 = started_pid(inbox, "child1");
    Pid c2 = started_pid(inbox, "child2");
    coppice::Ref m2 = inbox.monitor(c2);
    crash(rt, c1, ExitReason::normal());
    EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::shutdown());
    Pid again = started_pid(inbox, "child1");
    EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", again}})) << coppice::to_string(strategy);
    EXPECT_TRUE(rt.alive(sup));
    EXPECT_TRUE(none_of<Started>(inbox)) << "child2 is not restarted";
  }
}

// [SUPT multiple_restarts] intensity 1: two crashes further apart than the period never
// exhaust it. (The suite waits 2.1 s with a 1 s period; here the period is 100 ms and the
// wait a 150 ms timer.)
TEST(Scenario, supervisor_SUITE_multiple_restarts) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid())}, flags(Strategy::one_for_one, 1, 100ms)).value();
  coppice::Ref ms = inbox.monitor(sup);
  Pid child = started_pid(inbox, "child1");
  crash(rt, child, ExitReason::other("crash"));
  child = started_pid(inbox, "child1");
  struct Tick {};
  for (int i = 0; i < 3; ++i) {
    rt.send_after(150ms, inbox.pid(), Tick{});
    ASSERT_TRUE(inbox.receive<Tick>(wait_time).has_value());
    crash(rt, child, ExitReason::other("crash"));
    child = started_pid(inbox, "child1");
  }
  EXPECT_TRUE(rt.alive(sup));
  EXPECT_FALSE(inbox.receive_if([ms](const Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ms; },
                                0ms)
                   .has_value());
}

// [SUPT one_for_one] intensity 2: a crash restarts only that child; the third restart
// within the period makes the supervisor exit shutdown.
TEST(Scenario, supervisor_SUITE_one_for_one) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()), worker("child2", inbox.pid())},
                              flags(Strategy::one_for_one, 2, 3600s))
                .value();
  Pid c1 = started_pid(inbox, "child1");
  Pid c2 = started_pid(inbox, "child2");
  coppice::Ref ms = inbox.monitor(sup);
  crash(rt, c1, ExitReason::other("crash"));
  Pid c1b = started_pid(inbox, "child1");
  EXPECT_NE(c1b, c1);
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child2", c2}, {"child1", c1b}}));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 2, 0, 2));
  crash(rt, c2, ExitReason::other("crash"));
  Pid c2b = started_pid(inbox, "child2");
  coppice::Ref m1 = inbox.monitor(c1b);
  crash(rt, c2b, ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::shutdown()) << "the others are stopped";
  EXPECT_EQ(log.count("reached_max_restart_intensity: child 'child2'"), 1u);
  EXPECT_EQ(log.count("child_terminated: child 'child1'"), 1u);
  EXPECT_EQ(log.count("child_terminated: child 'child2'"), 2u);
}

// [SUPT one_for_all] A crash of child1 stops child2 (its terminate runs: it traps) and
// restarts both, in order; two more crashes within the period: the supervisor exits.
TEST(Scenario, supervisor_SUITE_one_for_all) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid(), trapping()), worker("child2", inbox.pid(), trapping())},
                              flags(Strategy::one_for_all, 2, 3600s))
                .value();
  Pid c1 = started_pid(inbox, "child1");
  Pid c2 = started_pid(inbox, "child2");
  coppice::Ref ms = inbox.monitor(sup);
  crash(rt, c1, ExitReason::other("crash"));
  EXPECT_EQ(terminated(inbox, "child1")->reason, ExitReason::other("crash"));
  std::optional<Terminated> t2 = terminated(inbox, "child2");
  ASSERT_TRUE(t2.has_value());
  EXPECT_EQ(t2->pid, c2);
  EXPECT_EQ(t2->reason, ExitReason::shutdown());
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"child1", "child2"}));
  std::vector<Row> now = children_of(rt, sup);
  ASSERT_EQ(now.size(), 2u);
  EXPECT_NE(now[0].second, c2);
  EXPECT_NE(now[1].second, c1);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 2, 0, 2));
  crash(rt, now[1].second, ExitReason::other("crash"));
  Pid c1c = started_pid(inbox, "child1");
  crash(rt, c1c, ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT rest_for_one] Three children: a crash of child2 stops child3, restarts child2 and
// child3 in order, leaves child1 alone; counts [3,3,0,3]; two more crashes: it exits.
TEST(Scenario, supervisor_SUITE_rest_for_one) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid(), trapping()), worker("child2", inbox.pid(), trapping()),
                               worker("child3", inbox.pid(), trapping())},
                              flags(Strategy::rest_for_one, 2, 3600s))
                .value();
  Pid c1 = started_pid(inbox, "child1");
  Pid c2 = started_pid(inbox, "child2");
  Pid c3 = started_pid(inbox, "child3");
  coppice::Ref ms = inbox.monitor(sup);
  crash(rt, c2, ExitReason::other("crash"));
  EXPECT_EQ(next_ids<Terminated>(inbox, 2), (std::vector<std::string>{"child2", "child3"}));
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"child2", "child3"}));
  std::vector<Row> now = children_of(rt, sup);
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now[2], (Row{"child1", c1}));
  EXPECT_NE(now[1].second, c2);
  EXPECT_NE(now[0].second, c3);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(3, 3, 0, 3));
  crash(rt, now[0].second, ExitReason::other("crash"));  // child3: only itself
  Pid c3c = started_pid(inbox, "child3");
  crash(rt, c3c, ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  // child3's two crashes (its terminate runs on a stop), then it is given up on (removed),
  // and the others stop in reverse order.
  EXPECT_EQ(next_ids<Terminated>(inbox, 4), (std::vector<std::string>{"child3", "child3", "child2", "child1"}));
}

// [SUPT order_of_children] one_for_all stops the others in reverse start order, then starts
// every child in start order.
TEST(OneForAll, StopsTheOthersInReverseOrderThenStartsAllInOrder) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("a", inbox.pid(), trapping()), worker("b", inbox.pid(), trapping()),
                               worker("c", inbox.pid(), trapping()), worker("d", inbox.pid(), trapping())},
                              flags(Strategy::one_for_all))
                .value();
  (void)sup;
  EXPECT_EQ(next_ids<Started>(inbox, 4), (std::vector<std::string>{"a", "b", "c", "d"}));
  Pid b = Supervisor::which_child(rt, sup, "b").value().pid;
  crash(rt, b, ExitReason::other("crash"));
  EXPECT_EQ(next_ids<Terminated>(inbox, 4), (std::vector<std::string>{"b", "d", "c", "a"}));
  EXPECT_EQ(next_ids<Started>(inbox, 4), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(RestForOne, RestartsTheCrashedChildAndTheOnesStartedAfterIt) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("a", inbox.pid(), trapping()), worker("b", inbox.pid(), trapping()),
                               worker("c", inbox.pid(), trapping()), worker("d", inbox.pid(), trapping())},
                              flags(Strategy::rest_for_one))
                .value();
  EXPECT_EQ(next_ids<Started>(inbox, 4), (std::vector<std::string>{"a", "b", "c", "d"}));
  Pid b = Supervisor::which_child(rt, sup, "b").value().pid;
  crash(rt, b, ExitReason::other("crash"));
  EXPECT_EQ(next_ids<Terminated>(inbox, 3), (std::vector<std::string>{"b", "d", "c"}));
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_TRUE(none_of<Terminated>(inbox)) << "a is untouched";
}

TEST(OneForOne, RestartsOnlyTheCrashedChildInItsPlace) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid()), worker("b", inbox.pid()), worker("c", inbox.pid())},
                              flags(Strategy::one_for_one))
                .value();
  Pid a = started_pid(inbox, "a");
  Pid b = started_pid(inbox, "b");
  Pid c = started_pid(inbox, "c");
  crash(rt, b, ExitReason::other("crash"));
  Pid b2 = started_pid(inbox, "b");
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"c", c}, {"b", b2}, {"a", a}}));
}

// Restarts in the same millisecond share an entry of the window (child_spec.hpp): each still
// counts, they leave the window together, and the limit is crossed at the restart that
// exceeds it, wherever it falls in a millisecond.
TEST(RestartIntensity, RestartsInTheSameMillisecondEachCountAndLeaveTogether) {
  using namespace std::chrono_literals;
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(2));
  coppice::RestartIntensity w(5, 10ms);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(w.add(t0));
  EXPECT_FALSE(w.add(t0 + 4ms));
  EXPECT_FALSE(w.add(t0 + 4ms));
  EXPECT_EQ(w.in_window(), 5u);
  EXPECT_TRUE(w.add(t0 + 10ms)) << "the three at t0 are still in at t0 + 10 ms (inclusive)";
  EXPECT_EQ(w.in_window(), 6u);
  EXPECT_FALSE(w.add(t0 + 11ms)) << "the three at t0 left together";
  EXPECT_EQ(w.in_window(), 4u);
  EXPECT_FALSE(w.add(t0 + 25ms));
  EXPECT_EQ(w.in_window(), 1u) << "everything before t0 + 15 ms has left";

  // A storm: 100,000 restarts over 20 ms within an intensity of a million, then the window
  // empties, and counting starts over.
  coppice::RestartIntensity storm(1'000'000, 1000ms);
  for (int i = 0; i < 100'000; ++i) ASSERT_FALSE(storm.add(t0 + std::chrono::milliseconds(i / 5000)));
  EXPECT_EQ(storm.in_window(), 100'000u);
  EXPECT_FALSE(storm.add(t0 + 2000ms));
  EXPECT_EQ(storm.in_window(), 1u);
  coppice::RestartIntensity limit(100'000, 1000ms);
  for (int i = 0; i < 100'000; ++i) ASSERT_FALSE(limit.add(t0 + std::chrono::milliseconds(i / 5000)));
  EXPECT_TRUE(limit.add(t0 + 19ms)) << "the 100,001st restart within the period exceeds 100,000";
}

// intensity 0: the first crash is one restart too many.
TEST(RestartIntensity, ZeroMeansTheFirstCrashStopsTheSupervisor) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 0)).value();
  coppice::Ref ms = inbox.monitor(sup);
  crash(rt, started_pid(inbox, "a"), ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  EXPECT_TRUE(none_of<Started>(inbox));
}

// The period takes any std::chrono unit (issue 13 item 4): intensity 1 in an hour given in
// microseconds survives the first crash and gives up at the second.
TEST(RestartIntensity, APeriodInMicrosecondsCountsAsTheSameTimeInMilliseconds) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  coppice::SupervisorFlags f;
  f.intensity = 1;
  f.period = std::chrono::microseconds(3'600'000'000);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, f).value();
  coppice::Ref ms = inbox.monitor(sup);
  crash(rt, started_pid(inbox, "a"), ExitReason::other("crash"));
  crash(rt, started_pid(inbox, "a"), ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  EXPECT_TRUE(none_of<Started>(inbox));
}

// A child that crashes as soon as it has started: the supervisor gives up cleanly, stops the
// others, and its trapping parent sees EXIT shutdown.
TEST(RestartIntensity, ARestartStormEndsWithTheParentSeeingExitShutdown) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    coppice::trap_exit(true);
    auto start = Supervisor::start_link({worker("steady", observer, trapping()), worker("storm", observer, crashing())},
                                        flags(Strategy::one_for_one, 5, 3600s));
    Result<Pid> sup = co_await start;
    CO_ASSERT_TRUE(sup.has_value());
    coppice::Exit e = co_await coppice::receive<coppice::Exit>();
    EXPECT_EQ(e.from, *sup);
    EXPECT_EQ(e.reason, ExitReason::shutdown());
  });
  EXPECT_EQ(r, ExitReason::normal());
  // Every Started was sent before the supervisor exited: they are all queued by now.
  std::size_t storms = 0;
  while (inbox.receive_if([](const Message& m) { return m.is<Started>() && m.get<Started>().id == "storm"; }, 0ms) &&
         storms < 100)
    ++storms;
  EXPECT_EQ(storms, 6u) << "the first start and 5 restarts";
  EXPECT_EQ(terminated(inbox, "steady")->reason, ExitReason::shutdown());
  EXPECT_EQ(log.count("reached_max_restart_intensity: child 'storm'"), 1u);
  EXPECT_EQ(log.count("child_terminated: child 'storm'"), 6u);
}

}  // namespace
}  // namespace coppice_test::sup
