// The Parent library scenarios of SEMANTICS.md section 8 (95-109), against coppice's API:
// errors are coppice::Error kinds, {ok, undefined} is Pid{}, the parent's give-up reason is
// too_many_restarts() and a failed start_all_children exits with start_error_reason().
// Scenario 107 is in basics_test.cpp.
#include <any>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "otp/parent/recorder.hpp"

using namespace coppice_test;
using namespace coppice_test::par;

namespace {

using coppice::Down;
using coppice::Ref;
using coppice::RestartIntensity;
using coppice::too_many_restarts;

std::vector<Ref> next_downs(Inbox& inbox, std::size_t n) {
  std::vector<Ref> refs;
  for (std::size_t i = 0; i < n; ++i) {
    std::optional<Down> d = inbox.receive<Down>(wait_time);
    if (!d) break;
    refs.push_back(d->ref);
  }
  return refs;
}

Result<Pid> start_recorder(coppice::Runtime& rt, Pid observer, RecorderOptions options = {}) {
  return Recorder::start(rt, {}, observer, std::move(options));
}

// A Started of `id` already in the inbox (it would have come before what the test waited on).
bool started_queued(Inbox& inbox, std::string_view id) {
  auto is_it = [id](const Message& m) { return m.is<Started>() && m.get<Started>().id == id; };
  return inbox.receive_if(is_it, 0ms).has_value();
}

}  // namespace

// Scenario 95 [parent_test "shutdown_child ... stops all dependencies in the opposite startup
// order"]: c1(g1), c2(binds c1, g2), c3(binds c2), c4(g1), c5(g2), c6; shutdown_child(child4)
// stops c1..c5 (returned in start order), DOWN order c5,c4,c3,c2,c1; c6 stays; no EXIT is
// left for the parent's own handle_info.
TEST(Scenario, parent_parent_test_shutdown_child_stops_all_dependencies_in_the_opposite_startup_order) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  std::vector<ParentChildSpec> specs;
  specs.push_back(pworker("child1", o).in_group("group1"));
  specs.push_back(pworker("child2", o).bound_to({"child1"}).in_group("group2"));
  specs.push_back(pworker("child3", o).bound_to({"child2"}));
  specs.push_back(pworker("child4", o).in_group("group1"));
  specs.push_back(pworker("child5", o).in_group("group2"));
  specs.push_back(pworker("child6", o));
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(rt, *parent, StartAll{specs});
  ASSERT_TRUE(pids) << pids.error();
  ASSERT_EQ(pids->size(), 6u);
  EXPECT_EQ(drain<Started>(inbox), 6u);  // each sent its Started before its start returned
  std::vector<Ref> mons;
  for (std::size_t i = 0; i < 5; ++i) mons.push_back(inbox.monitor((*pids)[i]));

  Result<StoppedChildren> stopped = ParentClient::shutdown_child(rt, *parent, "child4");
  ASSERT_TRUE(stopped) << stopped.error();
  EXPECT_EQ(ids_of(*stopped), (std::vector<std::string>{"child1", "child2", "child3", "child4", "child5"}));
  for (std::size_t i = 0; i < stopped->size() && i < 5; ++i) {
    EXPECT_EQ((*stopped)[i].pid, (*pids)[i]);
    EXPECT_EQ((*stopped)[i].exit_reason, ExitReason::shutdown());
  }
  EXPECT_EQ(next_downs(inbox, 5), (std::vector<Ref>{mons[4], mons[3], mons[2], mons[1], mons[0]}));

  const std::vector<ParentChild> left = children_via(inbox, *parent);
  ASSERT_EQ(ids_of(left), std::vector<std::string>{"child6"});
  EXPECT_EQ(left[0].pid, (*pids)[5]);
  EXPECT_TRUE(nothing_queued<UserInfo>(inbox)) << "an EXIT of a stopped child reached handle_info";
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));
  EXPECT_TRUE(nothing_queued<Started>(inbox)) << "a stopped child was started again";
}

// Scenario 97 [parent_test "preserves startup order"]: a restarted middle child keeps its
// place in children(); children returned after a shutdown go back to their places, and
// shutdown_all then stops them in the original reverse order.
TEST(Scenario, parent_parent_test_preserves_startup_order) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  Result<std::vector<Pid>> pids =
      ask<std::vector<Pid>>(rt, *parent, StartAll{{pworker("child1", o), pworker("child2", o), pworker("child3", o)}});
  ASSERT_TRUE(pids) << pids.error();
  const std::vector<std::string> order{"child1", "child2", "child3"};

  // restart_child of the middle one.
  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "child2"));
  std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), order);
  EXPECT_EQ(pid_in(now, "child1"), (*pids)[0]);
  EXPECT_NE(pid_in(now, "child2"), (*pids)[1]);
  EXPECT_TRUE(pid_in(now, "child2"));
  EXPECT_EQ(pid_in(now, "child3"), (*pids)[2]);

  // A crash of the middle one.
  const Pid before = pid_in(now, "child2");
  drain<Started>(inbox);
  coppice::cast(rt, before, Crash{ExitReason::other("boom")});
  const Pid after = started_pid(inbox, "child2");
  EXPECT_NE(after, before);
  now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), order);
  EXPECT_EQ(pid_in(now, "child2"), after);

  // The first one shut down and returned: back in front.
  Result<StoppedChildren> first = ParentClient::shutdown_child(rt, *parent, "child1");
  ASSERT_TRUE(first) << first.error();
  EXPECT_EQ(ids_of(children_via(inbox, *parent)), (std::vector<std::string>{"child2", "child3"}));
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *first));
  now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), order);

  // shutdown_all: reverse of the original start order.
  std::vector<Ref> mons;
  for (const ParentChild& c : now) mons.push_back(inbox.monitor(c.pid));
  Result<StoppedChildren> all = ParentClient::shutdown_all(rt, *parent);
  ASSERT_TRUE(all) << all.error();
  EXPECT_EQ(ids_of(*all), order);
  EXPECT_EQ(next_downs(inbox, 3), (std::vector<Ref>{mons[2], mons[1], mons[0]}));

  // Returned all together, and stopped again: the same order still.
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *all));
  now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), order);
  mons.clear();
  for (const ParentChild& c : now) mons.push_back(inbox.monitor(c.pid));
  ASSERT_TRUE(ParentClient::shutdown_all(rt, *parent));
  EXPECT_EQ(next_downs(inbox, 3), (std::vector<Ref>{mons[2], mons[1], mons[0]}));
}

// Scenario 98 [parent_test "child termination" group]: permanent killed with shutdown ⇒
// restarted; transient with shutdown ⇒ the `parent` library restarts it, coppice keeps OTP's
// rule (SEMANTICS.md 0): not restarted, kept with Pid{} (and an abnormal exit does restart
// it); temporary ⇒ kept with Pid{}; transient exiting normal ⇒ kept with Pid{}; stopped via
// shutdown_child ⇒ no restart, no messages.
TEST(Scenario, parent_parent_test_child_termination) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(10)));
  ASSERT_TRUE(parent) << parent.error();
  auto start = [&](ParentChildSpec spec) {
    const std::string id = spec.id;
    Result<Pid> p = ask<Pid>(rt, *parent, StartChild{std::move(spec)});
    EXPECT_TRUE(p) << p.error();
    EXPECT_EQ(started_pid(inbox, id), p.value_or(Pid{}));
    return p.value_or(Pid{});
  };
  // Ends `pid` with `how` and waits for its DOWN: the parent has its EXIT queued by then
  // (links go out before monitors), so a request sent after this is served after it.
  auto end = [&](Pid pid, auto how) {
    const Ref m = inbox.monitor(pid);
    how(pid);
    std::optional<Down> d = down_for(inbox, m);
    EXPECT_TRUE(d.has_value());
  };
  auto exit_shutdown = [&](Pid p) { inbox.exit(p, ExitReason::shutdown()); };
  auto stop_normal = [&](Pid p) { coppice::cast(rt, p, Crash{ExitReason::normal()}); };
  auto crash = [&](Pid p) { coppice::cast(rt, p, Crash{ExitReason::other("boom")}); };

  // permanent, exit signal shutdown: restarted.
  const Pid permanent = start(pworker("permanent", o));
  end(permanent, exit_shutdown);
  const Pid permanent2 = started_pid(inbox, "permanent");
  EXPECT_NE(permanent2, permanent);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "permanent").value_or(Pid{}), permanent2);

  // transient, exit signal shutdown: not restarted (coppice's transient rule), kept.
  const Pid transient = start(pworker("transient", o).with_restart(Restart::transient));
  end(transient, exit_shutdown);
  Result<Pid> t = ParentClient::child_pid(rt, *parent, "transient");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(*t, Pid{});
  // ... and an abnormal exit of a transient child does restart it.
  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "transient"));
  const Pid transient2 = started_pid(inbox, "transient");
  end(transient2, crash);
  EXPECT_NE(started_pid(inbox, "transient"), transient2);

  // temporary: kept, not running.
  const Pid temporary = start(pworker("temporary", o).with_restart(Restart::temporary));
  end(temporary, exit_shutdown);
  Result<Pid> tmp = ParentClient::child_pid(rt, *parent, "temporary");
  ASSERT_TRUE(tmp) << tmp.error();
  EXPECT_EQ(*tmp, Pid{});

  // transient exiting normal: kept, not running.
  const Pid normal = start(pworker("transient_normal", o).with_restart(Restart::transient));
  end(normal, stop_normal);
  Result<Pid> n = ParentClient::child_pid(rt, *parent, "transient_normal");
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, Pid{});

  // stopped through shutdown_child: gone, not restarted, nothing reported.
  const Pid stopped = start(pworker("stopped", o));
  const Ref ms = inbox.monitor(stopped);
  Result<StoppedChildren> s = ParentClient::shutdown_child(rt, *parent, "stopped");
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  Result<Pid> gone = ParentClient::child_pid(rt, *parent, "stopped");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::not_found);

  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"permanent", "transient", "temporary", "transient_normal"}));
  EXPECT_TRUE(nothing_queued<Started>(inbox)) << "a child was restarted that should not have been";
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));
  EXPECT_TRUE(nothing_queued<UserInfo>(inbox));
}

// Scenario 100 [parent_test "takes down the entire parent on too many restarts"]: parent-wide
// intensity 2: a third crash ⇒ the parent logs "Too many restarts in parent process",
// stops every child and exits too_many_restarts; the same with a per-child intensity 2 /
// period 1 beside a parent-wide infinity; and restarts at 0, 1 and 2 s with max 2 in
// 2 s survive (the window the parent builds: RestartIntensity(max, period - 1 ms)).
namespace {

// Three crashes of the child `crasher` beside a `bystander`: the parent restarts the first
// two, and on the third stops the bystander, logs, and exits too_many_restarts.
void expect_give_up_on_the_third_crash(ParentOptions options, std::function<ParentChildSpec(Pid)> crasher) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(options));
  ASSERT_TRUE(parent) << parent.error();
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(rt, *parent, StartAll{{crasher(o), pworker("bystander", o)}});
  ASSERT_TRUE(pids) << pids.error();
  const Ref mp = inbox.monitor(*parent);
  const Ref mb = inbox.monitor((*pids)[1]);
  EXPECT_EQ(drain<Started>(inbox), 2u);
  Pid c = (*pids)[0];
  for (int i = 0; i < 2; ++i) {
    coppice::cast(rt, c, Crash{ExitReason::other("boom")});
    const Pid next = started_pid(inbox, "crasher");
    ASSERT_TRUE(next);
    ASSERT_NE(next, c);
    c = next;
  }
  coppice::cast(rt, c, Crash{ExitReason::other("boom")});
  std::optional<Down> bystander = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(bystander);
  EXPECT_EQ(bystander->ref, mb) << "the parent exited before stopping its children";
  EXPECT_EQ(bystander->reason, ExitReason::shutdown());
  std::optional<Down> p = down_for(inbox, mp);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->reason, too_many_restarts());
  EXPECT_TRUE(nothing_queued<Started>(inbox)) << "the third crash was restarted";
  EXPECT_EQ(log.count("Too many restarts in parent process"), 1u);
}

}  // namespace

TEST(Scenario, parent_parent_test_takes_down_the_entire_parent_on_too_many_restarts) {
  {
    SCOPED_TRACE("parent-wide intensity 2");
    expect_give_up_on_the_third_crash(intensity(2), [](Pid o) { return pworker("crasher", o); });
  }
  {
    SCOPED_TRACE("per-child intensity 2 in 1 s, parent-wide infinity");
    expect_give_up_on_the_third_crash(intensity(std::nullopt),
                                      [](Pid o) { return pworker("crasher", o).with_intensity(2, 1000ms); });
  }
  // The window, with the clock at 0, 1 and 2 s and max 2 in 2 s: the parent's construction
  // (parent_children.cpp: RestartIntensity(intensity, period - 1 ms), the `parent` library's
  // "purged when t + interval - 1 < now") lets the restart at 0 s out at 2 s: it survives.
  const ParentOptions two_in_two = intensity(2, 2000ms);
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  RestartIntensity window(two_in_two.intensity.value_or(0), two_in_two.period - 1ms);
  EXPECT_FALSE(window.add(t0));
  EXPECT_FALSE(window.add(t0 + 1s));
  EXPECT_FALSE(window.add(t0 + 2s)) << "three restarts at 0, 1, 2 s with max 2 in 2 s must survive";
  EXPECT_EQ(window.in_window(), 2u);
  // One millisecond earlier the restart at 0 s is still in: that third restart gives up.
  RestartIntensity sooner(two_in_two.intensity.value_or(0), two_in_two.period - 1ms);
  EXPECT_FALSE(sooner.add(t0));
  EXPECT_FALSE(sooner.add(t0 + 1s));
  EXPECT_TRUE(sooner.add(t0 + 1999ms));
  // (A Supervisor's inclusive window, RestartIntensity(2, 2 s), would give up at 2 s: the
  // reason the parent takes one millisecond off.)
  RestartIntensity inclusive(2, 2000ms);
  EXPECT_FALSE(inclusive.add(t0));
  EXPECT_FALSE(inclusive.add(t0 + 1s));
  EXPECT_TRUE(inclusive.add(t0 + 2s));
}

// Scenario 102 [parent_test "start_all_children exits at first error"; supervisor_test]: the
// second spec returns an error ⇒ the parent logs it, stops the first, never starts the
// third, and exits start_error with no child left; from init, start returns start_error
// (Parent.Supervisor.start_link's {:error, :start_error}).
TEST(Scenario, parent_parent_test_start_all_children_exits_at_first_error) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  auto specs = [o] {
    return std::vector<ParentChildSpec>{
        pworker("child1", o, trapping()),
        ParentChildSpec(failing("child2", coppice::Error(ErrorKind::start_error, "some_error"))),
        pworker("child3", o)};
  };
  {
    SCOPED_TRACE("from a callback");
    Result<Pid> parent = start_recorder(rt, o);
    ASSERT_TRUE(parent) << parent.error();
    const Ref mp = inbox.monitor(*parent);
    Result<std::vector<Pid>> r = ask<std::vector<Pid>>(rt, *parent, StartAll{specs()});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::exited) << r.error();
    EXPECT_EQ(r.error().reason(), coppice::start_error_reason()) << r.error();
    std::optional<Terminated> t1 = terminated(inbox, "child1");
    ASSERT_TRUE(t1);
    EXPECT_EQ(t1->reason, ExitReason::shutdown());
    std::optional<Terminating> t = inbox.receive<Terminating>(wait_time);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->children, 0u) << "num_children is not 0 after the failed start_all_children";
    EXPECT_EQ(t->reason, coppice::start_error_reason());
    std::optional<Down> d = down_for(inbox, mp);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, coppice::start_error_reason());
    EXPECT_FALSE(started_queued(inbox, "child3")) << "the third child was started";
  }
  {
    SCOPED_TRACE("from init");
    Result<Pid> parent = start_recorder(rt, o, starting(specs()));
    ASSERT_FALSE(parent);
    EXPECT_EQ(parent.error().kind(), ErrorKind::start_error) << parent.error();
    EXPECT_EQ(parent.error().reason(), coppice::start_error_reason()) << parent.error();
    std::optional<Terminated> t1 = terminated(inbox, "child1");
    ASSERT_TRUE(t1);
    EXPECT_EQ(t1->reason, ExitReason::shutdown());
    EXPECT_FALSE(started_queued(inbox, "child3")) << "the third child was started";
    EXPECT_TRUE(nothing_queued<Terminating>(inbox)) << "terminate ran after a failed init";
  }
  EXPECT_EQ(log.count("Error starting the child 'child2'"), 2u);
}

// Scenario 103 [parent_test start_child errors]: id taken ⇒ already_started with the pid;
// missing deps ⇒ missing_deps naming child4 and child5; a shutdown group mixing restart or
// ephemeral ⇒ non_uniform_shutdown_group naming the group; ignore ⇒ Pid{} (kept unless
// ephemeral). "pid as id ⇒ invalid_child_id" cannot be written here: ids are strings, and a
// pid is only ever a ChildRef. The nearest: anonymous children (no id) are addressed by pid,
// and binds_to a pid that is no child is missing_deps. Derived: a kept, not running id is
// already_started with Pid{}.
TEST(Scenario, parent_parent_test_start_child_errors) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  auto start = [&](ParentChildSpec spec) { return ask<Pid>(rt, *parent, StartChild{std::move(spec)}); };

  Result<Pid> c1 = start(pworker("child1", o));
  ASSERT_TRUE(c1) << c1.error();
  Result<Pid> dup = start(pworker("child1", o));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(dup.error().pid(), *c1);

  // Anonymous children: no id to collide; each addressed by its pid.
  Result<Pid> a1 = start(pworker("", o));
  Result<Pid> a2 = start(pworker("", o));
  ASSERT_TRUE(a1) << a1.error();
  ASSERT_TRUE(a2) << a2.error();
  EXPECT_NE(*a1, *a2);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, ChildRef(*a2)).value_or(Pid{}), *a2);
  Result<Pid> foreign = ParentClient::child_pid(rt, *parent, ChildRef(o));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().kind(), ErrorKind::not_found);
  Result<Pid> to_foreign = start(pworker("child7", o).bound_to({ChildRef(o)}));
  ASSERT_FALSE(to_foreign);
  EXPECT_EQ(to_foreign.error().kind(), ErrorKind::missing_deps) << to_foreign.error();

  Result<Pid> missing = start(pworker("child6", o).bound_to({"child1", "child4", "child5"}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind(), ErrorKind::missing_deps);
  EXPECT_NE(missing.error().message().find("'child4', 'child5'"), std::string::npos) << missing.error();
  EXPECT_EQ(missing.error().message().find("'child1'"), std::string::npos) << missing.error();

  Result<Pid> c2 = start(pworker("child2", o).in_group("group"));
  ASSERT_TRUE(c2) << c2.error();
  Result<Pid> other_restart = start(pworker("child3", o).in_group("group").with_restart(Restart::temporary));
  ASSERT_FALSE(other_restart);
  EXPECT_EQ(other_restart.error().kind(), ErrorKind::non_uniform_shutdown_group);
  EXPECT_NE(other_restart.error().message().find("'group'"), std::string::npos) << other_restart.error();
  Result<Pid> other_ephemeral = start(pworker("child3", o).in_group("group").as_ephemeral());
  ASSERT_FALSE(other_ephemeral);
  EXPECT_EQ(other_ephemeral.error().kind(), ErrorKind::non_uniform_shutdown_group);

  auto script = std::make_shared<Script>();
  script->ignore = true;
  Result<Pid> ignored = start(pworker("ignored", o, scripted(script)));
  ASSERT_TRUE(ignored) << ignored.error();
  EXPECT_EQ(*ignored, Pid{});
  Result<Pid> kept = ParentClient::child_pid(rt, *parent, "ignored");
  ASSERT_TRUE(kept) << kept.error();
  EXPECT_EQ(*kept, Pid{});
  Result<Pid> again = start(pworker("ignored", o, scripted(script)));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(again.error().pid(), Pid{});
  Result<Pid> ephemeral = start(pworker("ignored_ephemeral", o, scripted(script)).as_ephemeral());
  ASSERT_TRUE(ephemeral) << ephemeral.error();
  EXPECT_EQ(*ephemeral, Pid{});
  Result<Pid> absent = ParentClient::child_pid(rt, *parent, "ignored_ephemeral");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().kind(), ErrorKind::not_found);

  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"child1", "", "", "child2", "ignored"}));
  EXPECT_EQ(pid_in(now, "ignored"), Pid{});
}

// Scenario 104 [parent_test "brutal_kill" / "doesn't stop in the given time"]: a trapping
// child with shutdown brutal_kill, or one that ignores shutdown with a 10 ms shutdown
// timeout, goes DOWN killed.
TEST(Scenario, parent_parent_test_brutal_kill_and_doesnt_stop_in_the_given_time) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  {
    SCOPED_TRACE("brutal_kill");
    Result<Pid> c = ask<Pid>(rt, *parent, StartChild{pworker("brutal", o, trapping()).with_shutdown(Shutdown::brutal_kill())});
    ASSERT_TRUE(c) << c.error();
    const Ref m = inbox.monitor(*c);
    Result<StoppedChildren> s = ParentClient::shutdown_child(rt, *parent, "brutal");
    ASSERT_TRUE(s) << s.error();
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].exit_reason, ExitReason::killed());
    std::optional<Down> d = down_for(inbox, m);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, ExitReason::killed());
    EXPECT_TRUE(nothing_queued<Terminated>(inbox)) << "a killed child ran its terminate";
  }
  {
    SCOPED_TRACE("shutdown 10 ms");
    Result<Pid> c = ask<Pid>(rt, *parent, StartChild{ParentChildSpec(stubborn("stubborn", o)).with_shutdown(Shutdown::timeout(10ms))});
    ASSERT_TRUE(c) << c.error();
    const Ref m = inbox.monitor(*c);
    Result<StoppedChildren> s = ParentClient::shutdown_child(rt, *parent, "stubborn");
    ASSERT_TRUE(s) << s.error();
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].exit_reason, ExitReason::killed());
    std::optional<Down> d = down_for(inbox, m);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, ExitReason::killed());
  }
  EXPECT_TRUE(children_via(inbox, *parent).empty());
}

// Scenario 106 [gen_server_test "invokes handle_stopped_children/2 when a temporary worker
// stops"]: an ephemeral temporary child killed ⇒ handle_stopped_children with that child:
// its pid, its meta, exit reason killed.
TEST(Scenario, parent_gen_server_test_invokes_handle_stopped_children_when_a_temporary_worker_stops) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  Result<Pid> c = ask<Pid>(
      rt, *parent,
      StartChild{pworker("child", o).with_restart(Restart::temporary).as_ephemeral().with_meta(std::string("meta"))});
  ASSERT_TRUE(c) << c.error();
  inbox.exit(*c, ExitReason::kill());
  std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
  ASSERT_TRUE(saw);
  ASSERT_EQ(saw->stopped.size(), 1u);
  const StoppedChild& s = saw->stopped[0];
  EXPECT_EQ(s.id(), "child");
  EXPECT_EQ(s.pid, *c);
  EXPECT_EQ(s.exit_reason, ExitReason::killed());
  const std::string* meta = std::any_cast<std::string>(&s.meta());
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(*meta, "meta");
  EXPECT_TRUE(children_via(inbox, *parent).empty());
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox)) << "handle_stopped_children was called twice";
}

// Scenario 109 [client_test "returns error" / "handles child start crash"]: through
// ParentClient, a duplicate id ⇒ already_started with the pid; a start that crashes ⇒ its
// error (start_error carrying the exception), and the parent is unaffected: same process,
// same children, no stray EXIT in its handle_info.
TEST(Scenario, parent_client_test_returns_error_and_handles_child_start_crash) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, starting({pworker("child1", o)}));
  ASSERT_TRUE(parent) << parent.error();
  const Pid c1 = started_pid(inbox, "child1");

  Result<Pid> dup = ParentClient::start_child(rt, *parent, pworker("child1", o));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(dup.error().pid(), c1);

  // init of the new child raises.
  auto script = std::make_shared<Script>();
  script->raise = true;
  Result<Pid> crashed = ParentClient::start_child(rt, *parent, pworker("child2", o, scripted(script)));
  ASSERT_FALSE(crashed);
  EXPECT_EQ(crashed.error().kind(), ErrorKind::start_error) << crashed.error();
  EXPECT_EQ(crashed.error().reason().kind(), ExitReason::Kind::error) << crashed.error();
  EXPECT_NE(crashed.error().reason().to_string().find("init of child2 raised"), std::string::npos) << crashed.error();

  // The start function itself raises.
  ParentChildSpec raising;
  raising.id = "child3";
  raising.start = [](const coppice::StartArgs&) -> Async<Result<Pid>> { throw std::runtime_error("some error"); };
  Result<Pid> raised = ParentClient::start_child(rt, *parent, raising);
  ASSERT_FALSE(raised);
  EXPECT_EQ(raised.error().kind(), ErrorKind::start_error) << raised.error();
  EXPECT_NE(raised.error().to_string().find("some error"), std::string::npos) << raised.error();

  const std::vector<ParentChild> now = children_via(inbox, *parent);
  ASSERT_EQ(ids_of(now), std::vector<std::string>{"child1"});
  EXPECT_EQ(now[0].pid, c1);
  EXPECT_TRUE(nothing_queued<UserInfo>(inbox)) << "the crashed child's EXIT reached handle_info";
  EXPECT_TRUE(nothing_queued<UserCall>(inbox));
}
