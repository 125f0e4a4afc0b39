// The Supervisor's API (SEMANTICS.md 3.9): start_child, terminate_child, restart_child,
// delete_child, which_children, count_children, get_childspec, which_child; their exact
// results, from a plain thread and inside a process, and what a restart loop looks like.
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

using Row = std::pair<std::string, Pid>;

// [SUPT child_adm] The whole table.
TEST(Scenario, supervisor_SUITE_child_adm) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  ChildSpec child1 = worker("child1", inbox.pid());
  Pid sup = Supervisor::start(rt, {child1}, flags(Strategy::one_for_one)).value();
  Pid cpid = started_pid(inbox, "child1");
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", cpid}}));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));

  Result<Pid> again = Supervisor::start_child(rt, sup, child1);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(again.error().pid(), cpid);

  coppice::Ref m = inbox.monitor(cpid);
  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "child1").has_value());
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::shutdown());
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"child1", Pid{}}}));
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 0, 0, 1));
  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "child1").has_value()) << "idempotent";

  Result<Pid> present = Supervisor::start_child(rt, sup, child1);
  ASSERT_FALSE(present.has_value());
  EXPECT_EQ(present.error().kind(), ErrorKind::already_present);

  Result<Pid> cpid2 = Supervisor::restart_child(rt, sup, "child1");
  ASSERT_TRUE(cpid2.has_value()) << cpid2.error();
  EXPECT_EQ(*cpid2, started_pid(inbox, "child1"));
  EXPECT_NE(*cpid2, cpid);
  Result<Pid> running = Supervisor::restart_child(rt, sup, "child1");
  ASSERT_FALSE(running.has_value());
  EXPECT_EQ(running.error().kind(), ErrorKind::running);
  Status del = Supervisor::delete_child(rt, sup, "child1");
  ASSERT_FALSE(del.has_value());
  EXPECT_EQ(del.error().kind(), ErrorKind::running);

  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "child1").has_value());
  EXPECT_TRUE(Supervisor::delete_child(rt, sup, "child1").has_value());
  Result<Pid> gone = Supervisor::restart_child(rt, sup, "child1");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().kind(), ErrorKind::not_found);
  Status del2 = Supervisor::delete_child(rt, sup, "child1");
  ASSERT_FALSE(del2.has_value());
  EXPECT_EQ(del2.error().kind(), ErrorKind::not_found);
  Status term = Supervisor::terminate_child(rt, sup, "child1");
  ASSERT_FALSE(term.has_value());
  EXPECT_EQ(term.error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0));

  // By pid, on a static supervisor: not_found, and the child is left alone.
  Pid cpid3 = Supervisor::start_child(rt, sup, child1).value();
  Status by_pid = Supervisor::terminate_child(rt, sup, cpid3);
  ASSERT_FALSE(by_pid.has_value());
  EXPECT_EQ(by_pid.error().kind(), ErrorKind::not_found);
  EXPECT_TRUE(rt.alive(cpid3));

  // A call to a name nobody holds: noproc.
  Result<std::vector<ChildInfo>> none = Supervisor::which_children(rt, std::string("foo"));
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind(), ErrorKind::noproc);
}

// terminate_child of a temporary child removes its spec.
TEST(SupervisorApi, TerminatingATemporaryChildRemovesItsSpec) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("t", inbox.pid()).with_restart(Restart::temporary)}, flags(Strategy::one_for_one))
                .value();
  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "t").has_value());
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0));
  EXPECT_EQ(Supervisor::which_child(rt, sup, "t").error().kind(), ErrorKind::not_found);
}

// [SUPT which_children, which_child] Newest first; a terminated child shows no pid; a
// deleted one is not_found.
TEST(Scenario, supervisor_SUITE_which_children_and_which_child) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {worker("c1", inbox.pid()), Supervisor::child_spec("c2", {}, {}), worker("c3", inbox.pid())},
                              flags(Strategy::one_for_one))
                .value();
  std::vector<ChildInfo> w = Supervisor::which_children(rt, sup).value();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].id, "c3");
  EXPECT_EQ(w[1].id, "c2");
  EXPECT_EQ(w[1].type, ChildType::supervisor);
  EXPECT_EQ(w[2].id, "c1");
  EXPECT_EQ(w[2].type, ChildType::worker);
  for (const ChildInfo& c : w) {
    EXPECT_TRUE(c.pid) << c.id;
    EXPECT_FALSE(c.restarting);
  }
  ChildInfo c2 = Supervisor::which_child(rt, sup, "c2").value();
  EXPECT_EQ(c2.pid, w[1].pid);
  EXPECT_EQ(c2.modules, std::vector<std::string>{"Supervisor"});
  ASSERT_TRUE(Supervisor::terminate_child(rt, sup, "c2").has_value());
  EXPECT_EQ(Supervisor::which_child(rt, sup, "c2").value().pid, Pid{});
  EXPECT_EQ(Supervisor::which_children(rt, sup).value()[1].pid, Pid{});
  ASSERT_TRUE(Supervisor::delete_child(rt, sup, "c2").has_value());
  EXPECT_EQ(Supervisor::which_child(rt, sup, "c2").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(children_of(rt, sup), (std::vector<Row>{{"c3", w[0].pid}, {"c1", w[2].pid}}));
}

// [EX supervisor_test "child life cycle"]
TEST(Scenario, elixir_supervisor_test_child_life_cycle) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {}, SupervisorFlags{}).value();
  Pid child = Supervisor::start_child(rt, sup, worker("task", inbox.pid())).value();
  EXPECT_TRUE(child);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  EXPECT_EQ(Supervisor::delete_child(rt, sup, "task").error().kind(), ErrorKind::running);
  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "task").has_value());
  Result<Pid> again = Supervisor::restart_child(rt, sup, "task");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(*again);
  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "task").has_value());
  EXPECT_TRUE(Supervisor::delete_child(rt, sup, "task").has_value());
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(0, 0, 0, 0));
}

// get_childspec by a running child's pid; a pid that is not a child: not_found.
TEST(SupervisorApi, GetChildspecByPid) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid()).with_restart(Restart::transient)}, flags(Strategy::one_for_one))
                .value();
  Pid a = started_pid(inbox, "a");
  ChildSpec spec = Supervisor::get_childspec(rt, sup, a).value();
  EXPECT_EQ(spec.id, "a");
  EXPECT_EQ(spec.restart, Restart::transient);
  EXPECT_EQ(Supervisor::get_childspec(rt, sup, inbox.pid()).error().kind(), ErrorKind::not_found);
}

// Calls to a supervisor that is not running: noproc, from a thread and from a process.
TEST(SupervisorApi, CallsToADeadOrUnknownSupervisorAreNoproc) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {}, SupervisorFlags{}).value();
  ASSERT_TRUE(coppice::stop(rt, sup).has_value());
  EXPECT_EQ(Supervisor::which_children(rt, sup).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::count_children(rt, sup).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::start_child(rt, sup, worker("a", inbox.pid())).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::terminate_child(rt, sup, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::restart_child(rt, sup, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::delete_child(rt, sup, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::get_childspec(rt, sup, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::which_child(rt, sup, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Supervisor::which_children(rt, std::string("nobody")).error().kind(), ErrorKind::noproc);
  ExitReason r = run_process(rt, [sup]() -> Async<void> {
    coppice::ServerRef dead = sup;
    auto w = Supervisor::which_children(dead);
    Result<std::vector<ChildInfo>> a = co_await w;
    CO_ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.error().kind(), ErrorKind::noproc);
    coppice::ServerRef unknown = std::string("nobody");
    auto t = Supervisor::terminate_child(unknown, "x");
    Status b = co_await t;
    CO_ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().kind(), ErrorKind::noproc);
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// Every call, awaited inside a process, against a named supervisor.
TEST(SupervisorApi, EveryCallAwaitedInsideAProcess) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    coppice::trap_exit(true);  // it stops its supervisor with shutdown below
    coppice::StartOptions o;
    o.name = "sup";
    auto start = Supervisor::start_link({worker("a", observer)}, flags(Strategy::one_for_one), o);
    Result<Pid> sup = co_await start;
    CO_ASSERT_TRUE(sup.has_value());
    coppice::ServerRef s = std::string("sup");

    auto sc = Supervisor::start_child(s, worker("b", observer));
    Result<Pid> b = co_await sc;
    CO_ASSERT_TRUE(b.has_value());
    auto wc = Supervisor::which_children(s);
    Result<std::vector<ChildInfo>> w = co_await wc;
    CO_ASSERT_TRUE(w.has_value() && w->size() == 2);
    EXPECT_EQ((*w)[0].id, "b");
    EXPECT_EQ((*w)[0].pid, *b);
    auto cc = Supervisor::count_children(s);
    Result<ChildCounts> n = co_await cc;
    EXPECT_EQ(n.value(), counts(2, 2, 0, 2));
    auto wh = Supervisor::which_child(s, "b");
    Result<ChildInfo> info = co_await wh;
    EXPECT_EQ(info.value().pid, *b);
    auto gs = Supervisor::get_childspec(s, *b);
    Result<ChildSpec> spec = co_await gs;
    EXPECT_EQ(spec.value().id, "b");
    auto gi = Supervisor::get_childspec(s, "a");
    Result<ChildSpec> spec_a = co_await gi;
    EXPECT_EQ(spec_a.value().id, "a");
    auto tp = Supervisor::terminate_child(s, *b);
    Status by_pid = co_await tp;
    EXPECT_EQ(by_pid.error().kind(), ErrorKind::not_found);
    auto tc = Supervisor::terminate_child(s, "b");
    Status t = co_await tc;
    EXPECT_TRUE(t.has_value());
    auto rc = Supervisor::restart_child(s, "b");
    Result<Pid> b2 = co_await rc;
    CO_ASSERT_TRUE(b2.has_value());
    EXPECT_NE(*b2, *b);
    auto tc2 = Supervisor::terminate_child(s, "b");
    Status t2 = co_await tc2;
    EXPECT_TRUE(t2.has_value());
    auto dc = Supervisor::delete_child(s, "b");
    Status d = co_await dc;
    EXPECT_TRUE(d.has_value());
    auto dc2 = Supervisor::delete_child(s, "b");
    Status d2 = co_await dc2;
    EXPECT_EQ(d2.error().kind(), ErrorKind::not_found);
    auto stop = coppice::stop(s, ExitReason::shutdown());
    Status stopped = co_await stop;
    EXPECT_TRUE(stopped.has_value());
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(rt.whereis("sup"), Pid{});
}

// [SUPT hanging_restart_loop] While a restart keeps failing: the child shows restarting;
// start_child already_present; restart_child and delete_child restarting; counts [1,0,0,1];
// terminate_child ends the loop; a shutdown during a loop completes.
TEST(Scenario, supervisor_SUITE_hanging_restart_loop) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  script->fail_after = 10ms;  // each attempt takes a while, as the suite's child does
  Pid sup = Supervisor::start(rt, {}, flags(Strategy::one_for_one, 100000, 3600s)).value();
  ChildSpec child1 = worker("child1", inbox.pid(), scripted(script)).with_shutdown(Shutdown::brutal_kill());
  Pid cpid1 = Supervisor::start_child(rt, sup, child1).value();
  script->fail = -1;
  coppice::Ref m1 = inbox.monitor(cpid1);
  Worker::cast(rt, cpid1, Crash{ExitReason::other("error")});
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::other("error"));
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value());
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value()) << "it retries";

  EXPECT_EQ(Supervisor::start_child(rt, sup, child1).error().kind(), ErrorKind::already_present);
  EXPECT_EQ(Supervisor::restart_child(rt, sup, "child1").error().kind(), ErrorKind::restarting);
  EXPECT_EQ(Supervisor::delete_child(rt, sup, "child1").error().kind(), ErrorKind::restarting);
  std::vector<ChildInfo> w = Supervisor::which_children(rt, sup).value();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].restarting);
  EXPECT_EQ(w[0].pid, Pid{});
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 0, 0, 1));

  EXPECT_TRUE(Supervisor::terminate_child(rt, sup, "child1").has_value());
  w = Supervisor::which_children(rt, sup).value();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_FALSE(w[0].restarting);
  EXPECT_EQ(w[0].pid, Pid{});
  // The loop has ended: at most the attempt that was running then finishes.
  while (inbox.receive<InitFailed>(0ms)) {
  }
  EXPECT_TRUE(none_of<InitFailed>(inbox, 100ms));

  script->fail = 0;
  Pid cpid2 = Supervisor::restart_child(rt, sup, "child1").value();
  script->fail = -1;
  coppice::Ref ms = inbox.monitor(sup);
  Worker::cast(rt, cpid2, Crash{ExitReason::other("error")});
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value());
  ASSERT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()).has_value()) << "the shutdown does not hang in the loop";
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
}

// [SUPT one_for_one_escalation] A child whose restart always fails: every attempt counts,
// and the supervisor gives up.
TEST(RestartIntensity, EveryFailedAttemptCounts) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid(), scripted(script))}, flags(Strategy::one_for_one, 4, 3600s))
                .value();
  coppice::Ref ms = inbox.monitor(sup);
  script->fail = -1;
  Worker::cast(rt, started_pid(inbox, "a"), Crash{ExitReason::other("error")});
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  std::size_t attempts = 0;
  while (inbox.receive<InitFailed>(0ms)) ++attempts;
  EXPECT_EQ(attempts, 4u) << "4 restarts allowed, the 5th gives up";
  EXPECT_EQ(log.count("reached_max_restart_intensity: child 'a'"), 1u);
}

// [SUPT rest_for_one_other_child_fails_restart] rest_for_one: the restart of a later child
// fails; the retry restarts it (and those after it), and the earlier restarted child keeps
// running.
TEST(Scenario, supervisor_SUITE_rest_for_one_other_child_fails_restart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid(), trapping()), worker("child2", inbox.pid(), scripted(script, true)),
                               worker("child3", inbox.pid(), trapping())},
                              flags(Strategy::rest_for_one, 10))
                .value();
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"child1", "child2", "child3"}));
  Pid c1 = Supervisor::which_child(rt, sup, "child1").value().pid;
  script->fail = 1;  // child2's next start fails once
  Worker::cast(rt, c1, Crash{ExitReason::other("crash")});
  EXPECT_EQ(next_ids<Terminated>(inbox, 3), (std::vector<std::string>{"child1", "child3", "child2"}));
  Pid c1b = started_pid(inbox, "child1");
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value());
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"child2", "child3"}));
  EXPECT_TRUE(none_of<Terminated>(inbox)) << "child1 is not touched by the retry";
  EXPECT_EQ(Supervisor::which_child(rt, sup, "child1").value().pid, c1b);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(3, 3, 0, 3));
}

// [SUPT one_for_all_other_child_fails_restart] one_for_all: the restart of another child
// fails; the retry stops the already restarted ones (shutdown) and restarts everything.
TEST(Scenario, supervisor_SUITE_one_for_all_other_child_fails_restart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  Pid sup = Supervisor::start(rt,
                              {worker("child1", inbox.pid(), trapping()), worker("child2", inbox.pid(), scripted(script, true)),
                               worker("child3", inbox.pid(), trapping())},
                              flags(Strategy::one_for_all, 10))
                .value();
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"child1", "child2", "child3"}));
  Pid c1 = Supervisor::which_child(rt, sup, "child1").value().pid;
  script->fail = 1;
  Worker::cast(rt, c1, Crash{ExitReason::other("crash")});
  EXPECT_EQ(next_ids<Terminated>(inbox, 3), (std::vector<std::string>{"child1", "child3", "child2"}));
  Pid c1b = started_pid(inbox, "child1");
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value());
  // The retry: child1 (restarted a moment ago) stops with shutdown, then all start again.
  std::optional<Terminated> t = terminated(inbox, "child1");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->pid, c1b);
  EXPECT_EQ(t->reason, ExitReason::shutdown());
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"child1", "child2", "child3"}));
  EXPECT_NE(Supervisor::which_child(rt, sup, "child1").value().pid, c1b);
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(3, 3, 0, 3));
}

// A supervisor answers calls between the attempts of a failing restart (the retry is a
// message it sends itself).
TEST(SupervisorApi, CallsAreServedBetweenRestartAttempts) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  auto script = std::make_shared<Script>();
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid(), scripted(script))}, flags(Strategy::one_for_one, 1000000, 3600s))
                .value();
  script->fail = -1;
  Worker::cast(rt, started_pid(inbox, "a"), Crash{ExitReason::other("error")});
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time).has_value());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 0, 0, 1));
  script->fail = 0;
  EXPECT_TRUE(started(inbox, "a").has_value()) << "a later attempt succeeds";
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  EXPECT_FALSE(Supervisor::which_child(rt, sup, "a").value().restarting);
}

}  // namespace
}  // namespace coppice_test::sup
