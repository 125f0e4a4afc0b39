// Supervisor start and stop: children start in order, a failing child undoes the start,
// ignore, bad specs and flags, and the shutdown of every child in reverse order.
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

using coppice::StartOptions;
using coppice::SupervisorSpec;

// [SUPT sup_start_normal] {one_for_one, 2, 3600} with no children: ok; exit(Pid, shutdown)
// reaches the trapping starter as EXIT shutdown.
TEST(Scenario, supervisor_SUITE_sup_start_normal) {
  coppice::Runtime rt(workers(2));
  ExitReason r = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    auto start = Supervisor::start_link({}, flags(Strategy::one_for_one, 2, 3600s));
    Result<Pid> sup = co_await start;
    CO_ASSERT_TRUE(sup.has_value());
    coppice::exit(*sup, ExitReason::shutdown());
    coppice::Exit e = co_await coppice::receive<coppice::Exit>();
    EXPECT_EQ(e.from, *sup);
    EXPECT_EQ(e.reason, ExitReason::shutdown());
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [SUPT sup_start_ignore_init] init returns ignore: start returns ignore, and no EXIT
// reaches the (trapping) caller.
TEST(Scenario, supervisor_SUITE_sup_start_ignore_init) {
  coppice::Runtime rt(workers(2));
  ExitReason r = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    coppice::SupervisorInit init = []() -> Result<SupervisorSpec> { return coppice::Error(ErrorKind::ignore, "not today"); };
    auto start = Supervisor::start_link(init);
    Result<Pid> sup = co_await start;
    CO_ASSERT_FALSE(sup.has_value());
    EXPECT_EQ(sup.error().kind(), ErrorKind::ignore);
    std::optional<Message> stray = co_await coppice::receive_any(50ms);
    EXPECT_FALSE(stray.has_value()) << (stray ? stray->type_name() : "");
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [SUPT sup_start_error_return, sup_start_fail] C++ has no bad return value: the closest is
// an init function that returns an error (start_error, the supervisor exits with it), and
// one that throws (start_error carrying the exception).
TEST(Scenario, supervisor_SUITE_sup_start_error_return_and_fail) {
  coppice::Runtime rt(quiet(workers(2)));
  ExitReason r = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    {
      coppice::SupervisorInit init = []() -> Result<SupervisorSpec> {
        return coppice::Error(ErrorKind::invalid_argument, "invalid");
      };
      auto start = Supervisor::start_link(init);
      Result<Pid> sup = co_await start;
      CO_ASSERT_FALSE(sup.has_value());
      EXPECT_EQ(sup.error().kind(), ErrorKind::start_error);
      EXPECT_NE(sup.error().reason().detail().find("invalid"), std::string_view::npos) << sup.error();
    }
    {
      coppice::SupervisorInit init = []() -> Result<SupervisorSpec> { throw std::runtime_error("fail"); };
      auto start = Supervisor::start_link(init);
      Result<Pid> sup = co_await start;
      CO_ASSERT_FALSE(sup.has_value());
      EXPECT_EQ(sup.error().kind(), ErrorKind::start_error);
      EXPECT_EQ(sup.error().reason().kind(), ExitReason::Kind::error);
      EXPECT_EQ(sup.error().reason().detail(), "fail");
    }
    // The starter consumed the failed supervisor's EXIT: nothing stray.
    std::optional<Message> stray = co_await coppice::receive_any(50ms);
    EXPECT_FALSE(stray.has_value()) << (stray ? stray->type_name() : "");
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// A module-style init returning a spec starts its children like the static form.
TEST(SupervisorStart, AModuleStyleInitReturnsTheChildrenAndFlags) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  coppice::SupervisorInit init = [observer]() -> Result<SupervisorSpec> {
    return SupervisorSpec{{worker("a", observer), worker("b", observer)}, flags(Strategy::rest_for_one)};
  };
  Result<Pid> sup = Supervisor::start(rt, init);
  ASSERT_TRUE(sup.has_value()) << sup.error();
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Supervisor::count_children(rt, *sup).value(), counts(2, 2, 0, 2));
}

TEST(SupervisorStart, ChildrenStartInOrderAndStopInReverseOrderOneAtATime) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  WorkerOptions trap = trapping();
  Result<Pid> sup = Supervisor::start(
      rt, {worker("c1", inbox.pid(), trap), worker("c2", inbox.pid(), trap), worker("c3", inbox.pid(), trap)},
      flags(Strategy::one_for_one));
  ASSERT_TRUE(sup.has_value()) << sup.error();
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"c1", "c2", "c3"}));
  // Each terminate reports before its process exits, and the next child is told only after
  // the previous one is down: the reports come in reverse start order.
  ASSERT_TRUE(coppice::stop(rt, *sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(next_ids<Terminated>(inbox, 3), (std::vector<std::string>{"c3", "c2", "c1"}));
}

// [SUP init] The first child that fails: those already started stop in reverse order, the
// supervisor exits, and start returns start_error: shutdown, failed_to_start_child and the id.
TEST(SupervisorStart, AFailingChildStopsTheStartedOnesInReverseOrderAndNamesItself) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  WorkerOptions trap = trapping();
  auto script = std::make_shared<Script>();
  script->fail = -1;
  Result<Pid> sup = Supervisor::start(rt,
                                      {worker("c1", inbox.pid(), trap), worker("c2", inbox.pid(), trap),
                                       worker("c3", inbox.pid(), scripted(script, true)), worker("c4", inbox.pid())},
                                      flags(Strategy::one_for_one));
  ASSERT_FALSE(sup.has_value());
  EXPECT_EQ(sup.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(sup.error().reason().kind(), ExitReason::Kind::shutdown);
  EXPECT_NE(sup.error().reason().detail().find("failed_to_start_child 'c3'"), std::string_view::npos) << sup.error();
  EXPECT_NE(sup.error().reason().detail().find("init of c3 failed"), std::string_view::npos) << sup.error();
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(next_ids<Terminated>(inbox, 2), (std::vector<std::string>{"c2", "c1"}));
  EXPECT_TRUE(none_of<Started>(inbox)) << "c4 never starts";
  EXPECT_EQ(log.count("start_error: child 'c3'"), 1u);
}

// An exception in a child's init is a failed start like any other.
TEST(SupervisorStart, AnExceptionInAChildsInitFailsTheStart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  script->raise = true;
  Result<Pid> sup = Supervisor::start(rt, {worker("c1", inbox.pid()), worker("boom", inbox.pid(), scripted(script))},
                                      flags(Strategy::one_for_one));
  ASSERT_FALSE(sup.has_value());
  EXPECT_EQ(sup.error().kind(), ErrorKind::start_error);
  EXPECT_NE(sup.error().reason().detail().find("failed_to_start_child 'boom'"), std::string_view::npos) << sup.error();
  EXPECT_NE(sup.error().reason().detail().find("init of boom raised"), std::string_view::npos) << sup.error();
}

// A supervisor's failed start kills a linked starter that does not trap exits (its exit
// reason is shutdown with a detail), as OTP's {stop, {shutdown, _}} from init does.
TEST(SupervisorStart, AFailedStartKillsANonTrappingLinkedStarter) {
  coppice::Runtime rt(quiet(workers(2)));
  ExitReason r = run_process(rt, []() -> Async<void> {
    auto start = Supervisor::start_link({failing("bad", coppice::Error(ErrorKind::start_error, "no"))},
                                        flags(Strategy::one_for_one));
    Result<Pid> sup = co_await start;
    (void)sup;
    ADD_FAILURE() << "start returned to a starter that does not trap exits";
  });
  EXPECT_EQ(r.kind(), ExitReason::Kind::shutdown);
}

// [SUPT sup_start_child_returns_error] A start that returns an error: the error, and nothing
// is stored.
TEST(Scenario, supervisor_SUITE_sup_start_child_returns_error) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
  Result<Pid> r = Supervisor::start_child(rt, sup, failing("child1", coppice::Error(ErrorKind::start_error, "reason")));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(r.error().message(), "reason");
  auto script = std::make_shared<Script>();
  script->fail = -1;
  Inbox inbox(rt);
  Result<Pid> r2 = Supervisor::start_child(rt, sup, worker("child2", inbox.pid(), scripted(script)));
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(r2.error().reason(), ExitReason::other("init of child2 failed"));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0));
}

// [SUPT sup_start_ignore_child] start_child with a start that returns ignore: ok with no
// pid, the spec kept; counts [2,1,0,2]; which_children newest first.
TEST(Scenario, supervisor_SUITE_sup_start_ignore_child) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
  auto script = std::make_shared<Script>();
  script->ignore = true;
  Result<Pid> c1 = Supervisor::start_child(rt, sup, worker("child1", inbox.pid(), scripted(script)));
  ASSERT_TRUE(c1.has_value()) << c1.error();
  EXPECT_EQ(*c1, Pid{});
  Result<Pid> c2 = Supervisor::start_child(rt, sup, worker("child2", inbox.pid()));
  ASSERT_TRUE(c2.has_value()) << c2.error();
  EXPECT_TRUE(*c2);
  using Row = std::pair<std::string, Pid>;
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child2", *c2}, {"child1", Pid{}}}));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 1, 0, 2));
}

// [SUPT sup_start_ignore_temporary_child(_start_child)] A temporary child whose start
// returns ignore is not kept, in the init list or by start_child.
TEST(Scenario, supervisor_SUITE_sup_start_ignore_temporary_child) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  script->ignore = true;
  using Row = std::pair<std::string, Pid>;
  {
    Pid sup = Supervisor::start(rt,
                                {worker("child1", inbox.pid(), scripted(script)).with_restart(Restart::temporary),
                                 worker("child2", inbox.pid())},
                                flags(Strategy::one_for_one))
                  .value();
    Pid c2 = started_pid(inbox, "child2");
    EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child2", c2}}));
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  }
  {
    Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
    Result<Pid> c1 =
        Supervisor::start_child(rt, sup, worker("child1", inbox.pid(), scripted(script)).with_restart(Restart::temporary));
    ASSERT_TRUE(c1.has_value());
    EXPECT_EQ(*c1, Pid{});
    Pid c2 = Supervisor::start_child(rt, sup, worker("child2", inbox.pid())).value();
    EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child2", c2}}));
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  }
}

// [SUPT sup_start_map] Defaults are filled in: permanent, 5000 ms for a worker and infinity
// for a supervisor, type worker; an unknown id is not_found.
TEST(Scenario, supervisor_SUITE_sup_start_map) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid()), Supervisor::child_spec("child2", {}, {})},
                              flags(Strategy::one_for_one))
                .value();
  ChildSpec w = Supervisor::get_childspec(rt, sup, "child1").value();
  EXPECT_EQ(w.id, "child1");
  EXPECT_EQ(w.restart, Restart::permanent);
  EXPECT_EQ(w.shutdown, Shutdown::timeout(5000ms));
  EXPECT_EQ(w.type, ChildType::worker);
  EXPECT_FALSE(w.significant);
  EXPECT_FALSE(w.modules.empty());
  ChildSpec s = Supervisor::get_childspec(rt, sup, "child2").value();
  EXPECT_EQ(s.shutdown, Shutdown::infinity());
  EXPECT_EQ(s.type, ChildType::supervisor);
  EXPECT_EQ(s.modules, std::vector<std::string>{"Supervisor"});
  Result<ChildSpec> none = Supervisor::get_childspec(rt, sup, "child3");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(2, 2, 1, 1));
}

// [SUPT sup_start_map_faulty_specs] Each bad spec is refused with invalid_child_spec naming
// the field, in the init list and by start_child.
TEST(Scenario, supervisor_SUITE_sup_start_map_faulty_specs) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  auto check = [&](ChildSpec bad, std::string_view field) {
    Result<Pid> s = Supervisor::start(rt, {worker("good", inbox.pid()), bad}, flags(Strategy::one_for_one));
    ASSERT_FALSE(s.has_value()) << field;
    EXPECT_EQ(s.error().kind(), ErrorKind::invalid_child_spec) << s.error();
    EXPECT_NE(s.error().message().find(field), std::string::npos) << s.error();
    Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
    Result<Pid> c = Supervisor::start_child(rt, sup, bad);
    ASSERT_FALSE(c.has_value()) << field;
    EXPECT_EQ(c.error().kind(), ErrorKind::invalid_child_spec) << c.error();
    EXPECT_NE(c.error().message().find(field), std::string::npos) << c.error();
  };
  ChildSpec no_id = worker("", inbox.pid());
  check(no_id, "id");
  ChildSpec no_start = worker("x", inbox.pid());
  no_start.start = nullptr;
  check(no_start, "start");
  check(worker("x", inbox.pid()).with_shutdown(Shutdown::timeout(-1ms)), "shutdown");
  check(worker("x", inbox.pid()).with_restart(Restart::permanent).as_significant(), "significant");
  // Significant and transient is a valid spec, but not under auto_shutdown never.
  check(worker("x", inbox.pid()).with_restart(Restart::transient).as_significant(), "significant");
  EXPECT_TRUE(none_of<Started>(inbox)) << "nothing starts when a spec is bad";
}

TEST(SupervisorStart, DuplicateIdsAreRefusedNamingTheId) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Result<Pid> s = Supervisor::start(rt, {worker("a", inbox.pid()), worker("b", inbox.pid()), worker("a", inbox.pid())},
                                    flags(Strategy::one_for_one));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().kind(), ErrorKind::invalid_child_spec);
  EXPECT_NE(s.error().message().find("duplicate child id 'a'"), std::string::npos) << s.error();
  EXPECT_TRUE(none_of<Started>(inbox));
}

// [SUPT sup_flags] Bad flags are refused with invalid_argument naming the field.
TEST(Scenario, supervisor_SUITE_sup_flags) {
  coppice::Runtime rt(workers(2));
  auto check = [&](SupervisorFlags f, std::string_view field) {
    Status v = coppice::validate(f);
    ASSERT_FALSE(v.has_value()) << field;
    EXPECT_EQ(v.error().kind(), ErrorKind::invalid_argument);
    EXPECT_NE(v.error().message().find(field), std::string::npos) << v.error();
    Result<Pid> s = Supervisor::start(rt, {}, f);
    ASSERT_FALSE(s.has_value()) << field;
    EXPECT_EQ(s.error().kind(), ErrorKind::invalid_argument);
    EXPECT_NE(s.error().message().find(field), std::string::npos) << s.error();
  };
  SupervisorFlags f;
  f.strategy = static_cast<Strategy>(7);  // none_for_one
  check(f, "strategy");
  f = {};
  f.intensity = -1;
  check(f, "intensity");
  f = {};
  f.period = 0ms;
  check(f, "period");
  f = {};
  f.period = -5ms;
  check(f, "period");
  f = {};
  f.auto_shutdown = static_cast<coppice::AutoShutdown>(9);  // sometimes
  check(f, "auto_shutdown");
  EXPECT_TRUE(coppice::validate(SupervisorFlags{}).has_value());
}

// [EX supervisor_test "init/2"] Elixir's defaults: one_for_one, 3 restarts in 5 s, never.
TEST(Scenario, elixir_supervisor_test_init_defaults) {
  SupervisorFlags f;
  EXPECT_EQ(f.strategy, Strategy::one_for_one);
  EXPECT_EQ(f.intensity, 3);
  EXPECT_EQ(f.period, 5000ms);
  EXPECT_EQ(f.auto_shutdown, coppice::AutoShutdown::never);
  // (A missing strategy cannot be written in C++: the field always has a value.)
}

// [SUPT sup_stop_infinity] Children with shutdown infinity, a worker and a supervisor, both
// exit shutdown.
TEST(Scenario, supervisor_SUITE_sup_stop_infinity) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid()).with_shutdown(Shutdown::infinity()),
                               Supervisor::child_spec("child2", {}, {})},
                              flags(Strategy::one_for_one))
                .value();
  std::vector<ChildInfo> w = Supervisor::which_children(rt, sup).value();
  ASSERT_EQ(w.size(), 2u);
  coppice::Ref m2 = inbox.monitor(w[0].pid);
  coppice::Ref m1 = inbox.monitor(w[1].pid);
  coppice::Ref ms = inbox.monitor(sup);
  // (Started from a plain thread it has no parent, whose exit signal it would obey; an
  // exit signal from anyone else is ignored. stop is sys:terminate.)
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT sup_stop_brutal_kill] A brutal_kill child exits killed, the other shutdown.
TEST(Scenario, supervisor_SUITE_sup_stop_brutal_kill) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid()), worker("child2", inbox.pid()).with_shutdown(Shutdown::brutal_kill())},
                              flags(Strategy::one_for_one))
                .value();
  coppice::Ref m1 = inbox.monitor(started_pid(inbox, "child1"));
  coppice::Ref m2 = inbox.monitor(started_pid(inbox, "child2"));
  coppice::Ref ms = inbox.monitor(sup);
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::killed());
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  EXPECT_EQ(log.count("shutdown_error"), 0u) << "killed is what brutal_kill asks for";
}

// A child that ignores the shutdown signal is killed when its shutdown time is up, and the
// supervisor reports it.
TEST(SupervisorStop, AChildThatIgnoresShutdownIsKilledAfterItsTimeout) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {stubborn("mule", inbox.pid()).with_shutdown(Shutdown::timeout(50ms))},
                              flags(Strategy::one_for_one))
                .value();
  coppice::Ref m = inbox.monitor(started_pid(inbox, "mule"));
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::killed());
  EXPECT_EQ(log.count("shutdown_error: child 'mule'"), 1u);
}

// A shutdown time takes any std::chrono unit (issue 13 item 4): microseconds are rounded up to
// whole milliseconds, never down to 0, and the child is killed when they are up.
TEST(SupervisorStop, AShutdownTimeoutInMicrosecondsIsRoundedUpToWholeMilliseconds) {
  EXPECT_EQ(Shutdown::timeout(500us), Shutdown::timeout(1ms));
  EXPECT_EQ(Shutdown::timeout(1500us).time(), 2ms);
  EXPECT_EQ(Shutdown::timeout(0us).time(), 0ms);
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {stubborn("mule", inbox.pid()).with_shutdown(Shutdown::timeout(500us))},
                              flags(Strategy::one_for_one))
                .value();
  coppice::Ref m = inbox.monitor(started_pid(inbox, "mule"));
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::killed());
  EXPECT_EQ(log.count("shutdown_error: child 'mule'"), 1u);
}

// [SUPT child_unlink] A child that unlinked itself is still stopped (the supervisor monitors
// it), and the supervisor does not hang.
TEST(SupervisorStop, AChildThatUnlinkedItselfIsStillStopped) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("loner", inbox.pid())}, flags(Strategy::one_for_one)).value();
  Pid child = started_pid(inbox, "loner");
  Worker::cast(rt, child, UnlinkFromParent{});
  ASSERT_EQ(Worker::call(rt, child, Whoami{}).value(), child);  // the unlink has happened
  EXPECT_TRUE(rt.process_info(child).value().links.empty());
  coppice::Ref m = inbox.monitor(child);
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::shutdown());
}

// [SUPT sup_stop_race] A child that exits on its own with another reason while it is being
// stopped does not break the shutdown.
TEST(SupervisorStop, AChildExitingOnItsOwnDuringTheShutdownDoesNotBreakIt) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("c1", inbox.pid()), worker("c2", inbox.pid())}, flags(Strategy::one_for_one))
                .value();
  Pid c1 = started_pid(inbox, "c1");
  coppice::Ref ms = inbox.monitor(sup);
  Worker::cast(rt, c1, Crash{ExitReason::other("on my own")});
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value());
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT already_started_outside_supervisor] A child whose name an outsider holds: start
// returns already_started with the outsider's pid.
TEST(Scenario, supervisor_SUITE_already_started_outside_supervisor) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  ASSERT_TRUE(rt.register_name("child1_name", inbox.pid()).has_value());
  Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one)).value();
  Result<Pid> r = Supervisor::start_child(rt, sup, worker("child1", inbox.pid()).name("child1_name"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(r.error().pid(), inbox.pid());
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0));
}

// The EXIT of the supervisor's parent: every child stops in reverse order, and the
// supervisor exits with the parent's reason (SEMANTICS.md 3.5).
TEST(SupervisorStop, TheParentsExitStopsEveryChildThenTheSupervisor) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  Pid parent = rt.spawn([](Pid observer) -> Async<void> {
    WorkerOptions trap = trapping();
    auto start = Supervisor::start_link({worker("c1", observer, trap), worker("c2", observer, trap)},
                                        flags(Strategy::one_for_one));
    Result<Pid> sup = co_await start;
    coppice::send(observer, sup.value());
    Never n = co_await coppice::receive<Never>();
    (void)n;
  }, observer);
  Pid sup = inbox.receive<Pid>(wait_time).value();
  coppice::Ref ms = inbox.monitor(sup);
  rt.exit(parent, ExitReason::other("parent gone"));
  EXPECT_EQ(next_ids<Terminated>(inbox, 2), (std::vector<std::string>{"c2", "c1"}));
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::other("parent gone"));
}

// An exit signal from a process that is neither a child nor the parent is ignored.
TEST(SupervisorStop, AnExitFromAStrangerIsIgnored) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("c1", inbox.pid())}, flags(Strategy::one_for_one)).value();
  inbox.exit(sup, ExitReason::other("go away"));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  EXPECT_TRUE(rt.alive(sup));
}

}  // namespace
}  // namespace coppice_test::sup
