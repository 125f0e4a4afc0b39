// Parent's rules (SEMANTICS.md section 7) beyond the peer scenarios: bound siblings and one
// restart per event, failed restarts retried without blocking, per-child intensity, when
// handle_stopped_children runs, lifetimes, backoff, ParentClient from threads and processes,
// a Parent inside a Supervisor, and that no way of stopping a parent leaves a child behind.
#include <any>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "otp/parent/recorder.hpp"

using namespace coppice_test;
using namespace coppice_test::par;

namespace {

using coppice::Backoff;
using coppice::Down;
using coppice::Ref;
using coppice::ServerRef;
using coppice::too_many_restarts;

Result<Pid> start_recorder(coppice::Runtime& rt, Pid observer, RecorderOptions options = {}) {
  return Recorder::start(rt, {}, observer, std::move(options));
}

Pid start_one(coppice::Runtime& rt, Pid parent, ParentChildSpec spec) {
  Result<Pid> p = ask<Pid>(rt, parent, StartChild{std::move(spec)});
  EXPECT_TRUE(p) << p.error();
  return p.value_or(Pid{});
}

void crash(coppice::Runtime& rt, Pid child, ExitReason reason = ExitReason::other("boom")) {
  coppice::cast(rt, child, Crash{std::move(reason)});
}

// Ends `child` with a cast and waits for its DOWN. Links go out before monitors, so the
// parent has the child's EXIT queued by then: a request sent after this is served after it.
void crash_and_wait(coppice::Runtime& rt, Inbox& inbox, Pid child, ExitReason reason = ExitReason::other("boom")) {
  const Ref m = inbox.monitor(child);
  crash(rt, child, std::move(reason));
  std::optional<Down> d = down_for(inbox, m);
  ASSERT_TRUE(d.has_value()) << "the child did not stop";
}

std::vector<Ref> next_downs(Inbox& inbox, std::size_t n) {
  std::vector<Ref> refs;
  for (std::size_t i = 0; i < n; ++i) {
    std::optional<Down> d = inbox.receive<Down>(wait_time);
    if (!d) break;
    refs.push_back(d->ref);
  }
  return refs;
}

std::vector<ExitReason> reasons_of(const std::vector<Terminated>& ts) {
  std::vector<ExitReason> out;
  for (const Terminated& t : ts) out.push_back(t.reason);
  return out;
}

std::vector<Terminated> next_terminated(Inbox& inbox, std::size_t n) {
  std::vector<Terminated> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::optional<Terminated> t = inbox.receive<Terminated>(wait_time);
    if (!t) break;
    out.push_back(std::move(*t));
  }
  return out;
}

std::vector<std::string> ids_of(const std::vector<Terminated>& ts) {
  std::vector<std::string> out;
  for (const Terminated& t : ts) out.push_back(t.id);
  return out;
}
using par::ids_of;

bool has_text(const coppice::Error& e, std::string_view text) { return e.to_string().find(text) != std::string::npos; }

}  // namespace

// ---- Bound siblings ---------------------------------------------------------------------------

// a, d, b(binds a), c(binds b): a crash of a stops c then b (reverse start order) and starts
// a, b, c again (start order), each in its place in children(); d is untouched. The whole
// event is one restart: with intensity 1 the parent survives it, and gives up on a second
// event within the window (stopping what is left, newest first).
TEST(ParentBinding, BoundSiblingsStopInReverseRestartInOrderAndCountAsOneRestart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(1)));
  ASSERT_TRUE(parent) << parent.error();
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(
      rt, *parent,
      StartAll{{pworker("a", o, trapping()), pworker("d", o, trapping()), pworker("b", o, trapping()).bound_to({"a"}),
                pworker("c", o, trapping()).bound_to({"b"})}});
  ASSERT_TRUE(pids) << pids.error();
  EXPECT_EQ(drain<Started>(inbox), 4u);
  const Ref mp = inbox.monitor(*parent);

  crash(rt, (*pids)[0]);
  const std::vector<Terminated> stopped = next_terminated(inbox, 3);
  EXPECT_EQ(ids_of(stopped), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(reasons_of(stopped),
            (std::vector<ExitReason>{ExitReason::other("boom"), ExitReason::shutdown(), ExitReason::shutdown()}));
  EXPECT_EQ(next_ids<Started>(inbox, 3), (std::vector<std::string>{"a", "b", "c"}));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"a", "d", "b", "c"}));
  EXPECT_EQ(pid_in(now, "d"), (*pids)[1]);
  for (const char* id : {"a", "b", "c"}) EXPECT_TRUE(pid_in(now, id)) << id;

  // A second event in the window: b (with c bound to it) crashes; the parent gives up.
  crash(rt, pid_in(now, "b"));
  const std::vector<Terminated> last = next_terminated(inbox, 4);
  EXPECT_EQ(ids_of(last), (std::vector<std::string>{"b", "c", "d", "a"}));
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
  EXPECT_TRUE(nothing_queued<Started>(inbox));
}

// restart_child of a child restarts those bound to it too, in start order, in their places;
// and it starts a kept child that is not running.
TEST(ParentBinding, RestartChildTakesItsBoundSiblingsAlongAndStartsAStoppedChild) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(
      rt, *parent, StartAll{{pworker("a", o), pworker("x", o), pworker("b", o).bound_to({"a"})}});
  ASSERT_TRUE(pids) << pids.error();
  EXPECT_EQ(drain<Started>(inbox), 3u);
  const Ref ma = inbox.monitor((*pids)[0]);
  const Ref mb = inbox.monitor((*pids)[2]);
  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "a"));
  EXPECT_EQ(next_downs(inbox, 2), (std::vector<Ref>{mb, ma}));
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"a", "b"}));
  std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"a", "x", "b"}));
  EXPECT_EQ(pid_in(now, "x"), (*pids)[1]);

  const Pid t = start_one(rt, *parent, pworker("t", o).with_restart(Restart::temporary));
  crash_and_wait(rt, inbox, t, ExitReason::normal());
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "t").value_or(o), Pid{});
  drain<Started>(inbox);
  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "t"));
  const Pid t2 = started_pid(inbox, "t");
  EXPECT_TRUE(t2);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "t").value_or(Pid{}), t2);
}

// A child that stops and is not restarted (temporary) takes its bound siblings down; a
// non-ephemeral sibling is kept, not running, even a permanent one (7.4: the event is the
// temporary child's, and it is not restarted).
TEST(ParentBinding, APermanentSiblingOfAStoppedTemporaryChildIsKeptNotRunning) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid t = start_one(rt, *parent, pworker("t", o).with_restart(Restart::temporary));
  const Pid s = start_one(rt, *parent, pworker("s", o).bound_to({"t"}));
  drain<Started>(inbox);
  const Ref ms = inbox.monitor(s);
  crash(rt, t);
  EXPECT_EQ(down_for(inbox, ms)->reason, ExitReason::shutdown());
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"t", "s"}));
  EXPECT_EQ(pid_in(now, "t"), Pid{});
  EXPECT_EQ(pid_in(now, "s"), Pid{});
  EXPECT_TRUE(nothing_queued<Started>(inbox));
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));
}

// The restart rules (SEMANTICS.md 0, for Parent too): permanent is restarted even after
// normal; transient is not after normal, shutdown or shutdown with a detail, and is after
// anything else.
TEST(ParentRestart, RestartTypesFollowOtpRules) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  const Pid p = start_one(rt, *parent, pworker("permanent", o));
  drain<Started>(inbox);
  crash(rt, p, ExitReason::normal());
  EXPECT_NE(started_pid(inbox, "permanent"), p);
  for (const ExitReason& clean : {ExitReason::normal(), ExitReason::shutdown(), ExitReason::shutdown("detail")}) {
    SCOPED_TRACE(clean.to_string());
    ParentClient::shutdown_child(rt, *parent, "transient").value_or(StoppedChildren{});
    const Pid t = start_one(rt, *parent, pworker("transient", o).with_restart(Restart::transient));
    drain<Started>(inbox);
    crash_and_wait(rt, inbox, t, clean);
    EXPECT_EQ(ParentClient::child_pid(rt, *parent, "transient").value_or(o), Pid{});
  }
  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "transient"));
  const Pid t = started_pid(inbox, "transient");
  crash(rt, t, ExitReason::other("boom"));
  EXPECT_NE(started_pid(inbox, "transient"), t);
  children_via(inbox, *parent);
  EXPECT_TRUE(nothing_queued<Started>(inbox));
}

// Every restart type against every kind of exit reason, each in a fresh parent, the expected
// answer written out from the contract (SEMANTICS.md 0 "transient children", 7.2 and 7.4),
// not computed with the engine's classification. Not restarted: the non-ephemeral child is
// kept with no pid.
TEST(ParentRestart, EveryRestartTypeAndExitReasonFollowsTheContractTable) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  struct Case {
    Restart restart;
    const char* how;    // "cast": the child stops itself with `reason`; "kill": exit(child, kill)
    ExitReason reason;  // the reason the child dies with
    bool restarted;     // the contract's answer
  };
  const ExitReason detail = ExitReason::shutdown("detail");
  const ExitReason other = ExitReason::other("boom");
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
    Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
    ASSERT_TRUE(parent) << parent.error();
    const Pid child = start_one(rt, *parent, pworker("child", o).with_restart(row.restart));
    drain<Started>(inbox);
    const Ref m = inbox.monitor(child);
    if (std::string_view(row.how) == "kill") {
      rt.exit(child, ExitReason::kill());
    } else {
      crash(rt, child, row.reason);
    }
    std::optional<Down> d = down_for(inbox, m);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->reason, row.reason);
    // The child's EXIT reached the parent before its DOWN reached us: this request is served
    // after the parent acted on it, and a restart's Started is queued by then.
    Result<Pid> now = ParentClient::child_pid(rt, *parent, "child");
    ASSERT_TRUE(now) << now.error();
    std::optional<Started> again = inbox.receive<Started>(0ms);
    if (row.restarted) {
      ASSERT_TRUE(again.has_value()) << "not restarted";
      EXPECT_NE(again->pid, child);
      EXPECT_EQ(*now, again->pid);
    } else {
      EXPECT_FALSE(again.has_value()) << "restarted, and must not be";
      EXPECT_EQ(*now, Pid{});
    }
    EXPECT_TRUE(coppice::stop(rt, *parent, ExitReason::shutdown()));
  }
}

// A shutdown group stops and restarts together (one_for_all within the group), in start
// order, as one restart; a child outside the group between them is untouched.
TEST(ParentBinding, AShutdownGroupRestartsTogetherAsOneRestart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(1)));
  ASSERT_TRUE(parent) << parent.error();
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(
      rt, *parent,
      StartAll{{pworker("a", o, trapping()).in_group("g"), pworker("m", o), pworker("b", o, trapping()).in_group("g")}});
  ASSERT_TRUE(pids) << pids.error();
  EXPECT_EQ(drain<Started>(inbox), 3u);
  crash(rt, (*pids)[2]);
  EXPECT_EQ(ids_of(next_terminated(inbox, 2)), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"a", "b"}));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"a", "m", "b"}));
  EXPECT_EQ(pid_in(now, "m"), (*pids)[1]);
  EXPECT_NE(pid_in(now, "a"), (*pids)[0]);
}

// A permanent child's bound siblings are restarted with it, even temporary ephemeral ones,
// and nothing is reported to handle_stopped_children.
TEST(ParentBinding, TemporaryEphemeralSiblingsAreRestartedWithAPermanentChild) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid p = start_one(rt, *parent, pworker("p", o));
  const Pid e = start_one(rt, *parent, pworker("e", o).with_restart(Restart::temporary).as_ephemeral().bound_to({"p"}));
  drain<Started>(inbox);
  crash(rt, p);
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"p", "e"}));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"p", "e"}));
  EXPECT_NE(pid_in(now, "e"), e);
  EXPECT_TRUE(pid_in(now, "e"));
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));
}

// A child registered under a name is restarted under it: the name is free again by the time
// the parent restarts it.
TEST(ParentRestart, ANamedChildIsRestartedUnderItsName) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid c = start_one(rt, *parent, ParentChildSpec(worker("named", o).name("parent_test_named")));
  drain<Started>(inbox);
  EXPECT_EQ(coppice::call<Pid>(rt, std::string("parent_test_named"), Whoami{}).value_or(Pid{}), c);
  crash(rt, c);
  const Pid again = started_pid(inbox, "named");
  ASSERT_TRUE(again);
  EXPECT_NE(again, c);
  EXPECT_EQ(coppice::call<Pid>(rt, std::string("parent_test_named"), Whoami{}).value_or(Pid{}), again);
}

// ---- Failed restarts ---------------------------------------------------------------------------

// A restart whose start fails is retried later (after the messages already queued), each
// failure counted; the sibling that did not crash is left alone.
TEST(ParentRestart, AFailedRestartIsRetriedUntilItStarts) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(10)));
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  const Pid steady = start_one(rt, *parent, pworker("steady", o));
  const Pid flaky = start_one(rt, *parent, pworker("flaky", o, scripted(script)));
  drain<Started>(inbox);
  script->fail = 3;
  crash(rt, flaky);
  EXPECT_EQ(next_ids<InitFailed>(inbox, 3), (std::vector<std::string>{"flaky", "flaky", "flaky"}));
  const Pid again = started_pid(inbox, "flaky");
  EXPECT_NE(again, flaky);
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"steady", "flaky"}));
  EXPECT_EQ(pid_in(now, "steady"), steady);
  EXPECT_EQ(pid_in(now, "flaky"), again);
  EXPECT_TRUE(nothing_queued<InitFailed>(inbox));
}

// In a restart of bound siblings, a start that fails takes down (does not start) those bound
// to it; the others of the set still start; the failed one and its dependents are retried
// together later. p, x(binds p), y(binds p), z(binds x); p crashes, x fails once.
TEST(ParentRestart, AFailedStartInARestartSkipsItsDependentsButNotTheOthers) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(10)));
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  Result<std::vector<Pid>> pids = ask<std::vector<Pid>>(
      rt, *parent,
      StartAll{{pworker("p", o), pworker("x", o, scripted(script)).bound_to({"p"}), pworker("y", o).bound_to({"p"}),
                pworker("z", o).bound_to({"x"})}});
  ASSERT_TRUE(pids) << pids.error();
  EXPECT_EQ(drain<Started>(inbox), 4u);
  script->fail = 1;
  crash(rt, (*pids)[0]);
  std::vector<std::string> events;
  for (int i = 0; i < 5; ++i) {
    auto either = [](const Message& m) { return m.is<Started>() || m.is<InitFailed>(); };
    std::optional<Message> m = inbox.receive_if(either, wait_time);
    if (!m) break;
    events.push_back(m->is<Started>() ? "started " + m->get<Started>().id : "failed " + m->get<InitFailed>().id);
  }
  EXPECT_EQ(events, (std::vector<std::string>{"started p", "failed x", "started y", "started x", "started z"}));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"p", "x", "y", "z"}));
  for (const ParentChild& c : now) EXPECT_TRUE(c.pid) << c.id;
}

// restart_child whose start fails answers ok and the failure is a crash: with intensity 0
// the parent gives up (after the request has been answered).
TEST(ParentRestart, AFailedStartInRestartChildCountsAsACrash) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(0)));
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  start_one(rt, *parent, pworker("x", o, scripted(script)));
  const Ref mp = inbox.monitor(*parent);
  script->fail = -1;
  EXPECT_TRUE(ParentClient::restart_child(rt, *parent, "x"));
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
}

// While a child keeps failing to restart, the parent still serves requests: it does not loop
// inside one callback. The child shows as not running (restarting, to a Supervisor query).
TEST(ParentRestart, TheParentAnswersWhileAChildKeepsFailingToRestart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  const Pid flaky = start_one(rt, *parent, pworker("flaky", o, scripted(script)));
  drain<Started>(inbox);
  script->fail = -1;
  crash(rt, flaky);
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time));
  Result<std::vector<ParentChild>> kids = ParentClient::children(rt, *parent);
  ASSERT_TRUE(kids) << kids.error();
  ASSERT_EQ(ids_of(*kids), std::vector<std::string>{"flaky"});
  EXPECT_EQ((*kids)[0].pid, Pid{});
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, *parent);
  ASSERT_TRUE(which) << which.error();
  ASSERT_EQ(which->size(), 1u);
  EXPECT_TRUE((*which)[0].restarting);
  EXPECT_EQ((*which)[0].pid, Pid{});
  ASSERT_TRUE(inbox.receive<InitFailed>(wait_time)) << "the retries stopped";
  script->fail = 0;
  const Pid again = started_pid(inbox, "flaky");
  EXPECT_TRUE(again);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "flaky").value_or(Pid{}), again);
}

// Failed restarts count toward the intensity: intensity 2, a crash then two failed
// starts is a third restart in the window.
TEST(ParentRestart, FailedRestartsCountTowardTheIntensity) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(2)));
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  const Pid flaky = start_one(rt, *parent, pworker("flaky", o, scripted(script)));
  const Ref mp = inbox.monitor(*parent);
  script->fail = -1;
  crash(rt, flaky);
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
  EXPECT_EQ(drain<InitFailed>(inbox), 2u);
}

// A per-child intensity applies to that child only, beside a parent-wide infinity.
TEST(ParentRestart, PerChildMaxRestartsBesideAnInfiniteParentLimit) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  Pid free = start_one(rt, *parent, pworker("free", o));
  Pid limited = start_one(rt, *parent, pworker("limited", o).with_intensity(1));
  drain<Started>(inbox);
  const Ref mp = inbox.monitor(*parent);
  for (int i = 0; i < 5; ++i) {
    crash(rt, free);
    const Pid next = started_pid(inbox, "free");
    ASSERT_TRUE(next);
    free = next;
  }
  crash(rt, limited);
  limited = started_pid(inbox, "limited");
  ASSERT_TRUE(limited);
  EXPECT_EQ(ids_of(children_via(inbox, *parent)), (std::vector<std::string>{"free", "limited"}));
  crash(rt, limited);
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
}

// The intensity window's boundary (SEMANTICS.md 7.4, the `parent` library's counter): with a
// window of W ms, a restart at t still counts at `now` while t + W - 1 >= now, so with
// intensity 1 a second restart W - 1 ms after the first gives up and one W ms after it
// does not. Both sides, for the parent-wide limit and for a per-child one.
//
// Parent reads steady_clock itself (there is no clock to control), so the test brackets each
// restart instead: the parent records it after the crash is sent (a) and before the restarted
// child says Started, or the parent's DOWN arrives (b). A trial counts only when a and b fall
// in the same millisecond, so the restart's millisecond is known exactly, and the second
// restart is set off in the millisecond it needs; other trials are discarded. Nothing
// depends on speed: a slow machine discards more trials (and the test is skipped, saying
// so, if none could be bracketed), it never turns a valid trial into a wrong verdict.
namespace {

std::int64_t millisecond_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

enum class Trial { discarded, restarted, gave_up };

// One trial: a fresh parent, one permanent child, two crashes, the second `gap` ms (of the
// clock's millisecond ticks) after the first restart was recorded.
Trial second_restart_after(coppice::Runtime& rt, Inbox& inbox, ParentOptions options, ParentChildSpec spec,
                           std::int64_t gap) {
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(options));
  EXPECT_TRUE(parent) << parent.error();
  if (!parent) return Trial::discarded;
  const Ref mp = inbox.monitor(*parent);
  const Pid first = start_one(rt, *parent, std::move(spec));
  drain<Started>(inbox);
  auto started_or_down = [mp](const coppice::Message& m) {
    if (const auto* d = m.get_if<Down>()) return d->ref == mp;
    return m.is<Started>();
  };
  bool parent_alive = true;
  auto finish = [&](Trial t) {
    if (parent_alive) {
      EXPECT_TRUE(coppice::stop(rt, *parent, ExitReason::shutdown()));
      down_for(inbox, mp);
    }
    return t;
  };

  const std::int64_t a1 = millisecond_now();
  crash(rt, first);
  std::optional<coppice::Message> m1 = inbox.receive_if(started_or_down, wait_time);
  const std::int64_t b1 = millisecond_now();
  EXPECT_TRUE(m1 && m1->is<Started>()) << "the first restart must succeed";
  if (!m1 || !m1->is<Started>()) {
    parent_alive = m1.has_value() ? false : parent_alive;
    return finish(Trial::discarded);
  }
  const Pid second = m1->get<Started>().pid;
  if (a1 != b1) return finish(Trial::discarded);  // the first restart's millisecond is unknown

  const std::int64_t target = b1 + gap;
  std::int64_t a2 = millisecond_now();
  while (a2 < target) a2 = millisecond_now();  // waits for the clock, at most `gap` ms
  if (a2 != target) return finish(Trial::discarded);
  crash(rt, second);
  std::optional<coppice::Message> m2 = inbox.receive_if(started_or_down, wait_time);
  const std::int64_t b2 = millisecond_now();
  EXPECT_TRUE(m2.has_value()) << "neither a restart nor the parent's end";
  if (!m2) return finish(Trial::discarded);
  const bool gave_up = m2->is<Down>();
  if (gave_up) {
    parent_alive = false;
    EXPECT_EQ(m2->get<Down>().reason, too_many_restarts());
  }
  if (b2 != target) return finish(Trial::discarded);  // the second restart's millisecond is unknown
  return finish(gave_up ? Trial::gave_up : Trial::restarted);
}

// Runs trials until one is valid (or gives up after `attempts`); the verdict of that one.
Trial first_valid(coppice::Runtime& rt, Inbox& inbox, ParentOptions options, const ParentChildSpec& spec,
                  std::int64_t gap) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const Trial t = second_restart_after(rt, inbox, options, spec, gap);
    if (t != Trial::discarded) return t;
  }
  return Trial::discarded;
}

}  // namespace

TEST(ParentRestart, IntensityWindowCountsARestartWhileTPlusIntervalMinusOneIsNotBeforeNow) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  constexpr std::int64_t window = 3;  // ms
  struct Limit {
    const char* name;
    ParentOptions options;
    ParentChildSpec spec;
  };
  const std::vector<Limit> limits{
      {"parent-wide", intensity(1, std::chrono::milliseconds(window)), pworker("c", o)},
      {"per child", intensity(std::nullopt), pworker("c", o).with_intensity(1, std::chrono::milliseconds(window))},
  };
  for (const Limit& limit : limits) {
    SCOPED_TRACE(limit.name);
    // t + W - 1 >= now with now = t + W - 1: the first restart still counts, two in the window.
    const Trial inside = first_valid(rt, inbox, limit.options, limit.spec, window - 1);
    // now = t + W: t + W - 1 < now, the first restart has left the window.
    const Trial outside = first_valid(rt, inbox, limit.options, limit.spec, window);
    if (inside == Trial::discarded || outside == Trial::discarded) {
      GTEST_SKIP() << "no restart could be bracketed within one millisecond on this machine";
    }
    EXPECT_EQ(inside, Trial::gave_up) << "a restart W - 1 ms after the first must exceed intensity 1";
    EXPECT_EQ(outside, Trial::restarted) << "a restart W ms after the first is alone in the window";
  }
}

// return_children of a child that crashed counts as a restart: with intensity 0 it is
// one too many.
TEST(ParentRestart, ReturningACrashedChildCountsAsARestart) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(0)));
  ASSERT_TRUE(parent) << parent.error();
  const Pid e = start_one(rt, *parent, pworker("e", o).with_restart(Restart::temporary).as_ephemeral());
  const Ref mp = inbox.monitor(*parent);
  crash(rt, e);  // temporary: not restarted, so not counted
  std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
  ASSERT_TRUE(saw);
  ASSERT_EQ(saw->stopped.size(), 1u);
  EXPECT_TRUE(saw->stopped[0].crashed);
  EXPECT_TRUE(ParentClient::return_children(rt, *parent, saw->stopped));
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
}

// return_children puts children back in their places and starts them; returning them again
// changes nothing.
TEST(ParentRestart, ReturnChildrenIsIdempotent) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  start_one(rt, *parent, pworker("a", o));
  start_one(rt, *parent, pworker("b", o));
  start_one(rt, *parent, pworker("c", o));
  Result<StoppedChildren> b = ParentClient::shutdown_child(rt, *parent, "b");
  ASSERT_TRUE(b) << b.error();
  drain<Started>(inbox);
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *b));
  const Pid b2 = started_pid(inbox, "b");
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *b));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(pid_in(now, "b"), b2);
  EXPECT_TRUE(nothing_queued<Started>(inbox)) << "a child already present was started again";
}

// ---- handle_stopped_children (SEMANTICS.md 7.4) ----------------------------------------------

// An ephemeral temporary child that stops on its own: one call, with it and the ephemeral
// siblings bound to it (exit reason shutdown), in start order; they are removed.
TEST(ParentStoppedChildren, AnEphemeralChildThatStoppedIsReportedOnceWithItsBoundSiblings) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  auto eph = [o](std::string id) { return pworker(std::move(id), o).with_restart(Restart::temporary).as_ephemeral(); };
  const Pid e1 = start_one(rt, *parent, eph("e1"));
  const Pid u = start_one(rt, *parent, pworker("u", o));
  const Pid e2 = start_one(rt, *parent, eph("e2").bound_to({"e1"}));
  const Pid e3 = start_one(rt, *parent, eph("e3").bound_to({"e2"}));
  crash(rt, e1, ExitReason::normal());
  std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
  ASSERT_TRUE(saw);
  ASSERT_EQ(ids_of(saw->stopped), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(saw->stopped[0].pid, e1);
  EXPECT_EQ(saw->stopped[0].exit_reason, ExitReason::normal());
  EXPECT_EQ(saw->stopped[1].pid, e2);
  EXPECT_EQ(saw->stopped[1].exit_reason, ExitReason::shutdown());
  EXPECT_EQ(saw->stopped[2].pid, e3);
  EXPECT_EQ(saw->stopped[2].exit_reason, ExitReason::shutdown());
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), std::vector<std::string>{"u"});
  EXPECT_EQ(pid_in(now, "u"), u);
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox)) << "handle_stopped_children was called more than once";
}

// Not called for: a restarted (ephemeral permanent) child; children stopped through
// shutdown_child or shutdown_all; a non-ephemeral child that stops (kept, not running).
TEST(ParentStoppedChildren, NotCalledForRestartedChildrenApiStopsOrNonEphemeralChildren) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  auto eph = [o](std::string id) { return pworker(std::move(id), o).with_restart(Restart::temporary).as_ephemeral(); };

  const Pid restarted = start_one(rt, *parent, pworker("restarted", o).as_ephemeral());
  drain<Started>(inbox);
  crash(rt, restarted);
  EXPECT_NE(started_pid(inbox, "restarted"), restarted);

  start_one(rt, *parent, eph("by_shutdown_child"));
  ASSERT_TRUE(ParentClient::shutdown_child(rt, *parent, "by_shutdown_child"));

  const Pid kept = start_one(rt, *parent, pworker("kept", o).with_restart(Restart::temporary));
  crash_and_wait(rt, inbox, kept);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "kept").value_or(o), Pid{});

  children_via(inbox, *parent);
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));

  start_one(rt, *parent, eph("by_shutdown_all"));
  Result<StoppedChildren> all = ParentClient::shutdown_all(rt, *parent);
  ASSERT_TRUE(all) << all.error();
  EXPECT_EQ(ids_of(*all), (std::vector<std::string>{"restarted", "kept", "by_shutdown_all"}));
  children_via(inbox, *parent);
  EXPECT_TRUE(nothing_queued<SawStopped>(inbox));
}

// A non-ephemeral child that stops and is not restarted is kept; the ephemeral siblings bound
// to it are removed and reported.
TEST(ParentStoppedChildren, ANonEphemeralChildIsKeptAndItsEphemeralBoundSiblingsReported) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid t = start_one(rt, *parent, pworker("t", o).with_restart(Restart::temporary));
  const Pid s = start_one(
      rt, *parent, pworker("s", o).with_restart(Restart::temporary).as_ephemeral().bound_to({"t"}).with_meta(7));
  crash(rt, t);
  std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
  ASSERT_TRUE(saw);
  ASSERT_EQ(ids_of(saw->stopped), std::vector<std::string>{"s"});
  EXPECT_EQ(saw->stopped[0].pid, s);
  EXPECT_EQ(saw->stopped[0].exit_reason, ExitReason::shutdown());
  EXPECT_EQ(std::any_cast<int>(saw->stopped[0].meta()), 7);
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), std::vector<std::string>{"t"});
  EXPECT_EQ(pid_in(now, "t"), Pid{});
}

// An ephemeral temporary child restarted with the permanent child it is bound to, whose start
// fails, is reported with the start's reason (7.4: "ephemeral temporary children that failed
// to restart").
TEST(ParentStoppedChildren, AnEphemeralTemporaryChildThatFailsToRestartIsReported) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  auto script = std::make_shared<Script>();
  const Pid p = start_one(rt, *parent, pworker("p", o));
  start_one(rt, *parent,
            pworker("s", o, scripted(script)).with_restart(Restart::temporary).as_ephemeral().bound_to({"p"}));
  drain<Started>(inbox);
  script->fail = 1;
  crash(rt, p);
  std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
  ASSERT_TRUE(saw);
  ASSERT_EQ(ids_of(saw->stopped), std::vector<std::string>{"s"});
  EXPECT_EQ(saw->stopped[0].exit_reason, ExitReason::other("init of s failed"));
  const std::vector<ParentChild> now = children_via(inbox, *parent);
  EXPECT_EQ(ids_of(now), std::vector<std::string>{"p"});
  EXPECT_TRUE(pid_in(now, "p"));
  EXPECT_NE(pid_in(now, "p"), p);
}

// ---- Lifetimes ------------------------------------------------------------------------------

// A child whose lifetime ends is stopped with reason timeout and restarted (not temporary);
// a temporary one is kept, not running; an ephemeral temporary one is reported.
TEST(ParentLifetime, AChildIsStoppedWithTimeoutAndRestartedUnlessTemporary) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  {
    SCOPED_TRACE("permanent");
    const Pid c = start_one(rt, *parent, pworker("permanent", o, trapping()).with_lifetime(20ms));
    EXPECT_EQ(started_pid(inbox, "permanent"), c);
    std::optional<Terminated> t = terminated(inbox, "permanent");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->pid, c);
    EXPECT_EQ(t->reason, ExitReason::timeout());
    const Pid again = started_pid(inbox, "permanent");
    EXPECT_NE(again, c);
    ASSERT_TRUE(ParentClient::shutdown_child(rt, *parent, "permanent"));
    drain<Terminated>(inbox);
  }
  {
    SCOPED_TRACE("temporary");
    const Pid c = start_one(rt, *parent, pworker("temporary", o).with_restart(Restart::temporary).with_lifetime(10ms));
    std::optional<ExitReason> r = end_of(inbox, c);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r == ExitReason::timeout() || *r == ExitReason::noproc()) << *r;
    const std::vector<ParentChild> now = children_via(inbox, *parent);
    EXPECT_EQ(ids_of(now), std::vector<std::string>{"temporary"});
    EXPECT_EQ(pid_in(now, "temporary"), Pid{});
  }
  {
    SCOPED_TRACE("ephemeral temporary");
    const Pid c = start_one(
        rt, *parent, pworker("ephemeral", o).with_restart(Restart::temporary).as_ephemeral().with_lifetime(10ms));
    std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
    ASSERT_TRUE(saw);
    ASSERT_EQ(ids_of(saw->stopped), std::vector<std::string>{"ephemeral"});
    EXPECT_EQ(saw->stopped[0].pid, c);
    EXPECT_EQ(saw->stopped[0].exit_reason, ExitReason::timeout());
  }
  drain<Started>(inbox);
  children_via(inbox, *parent);
  EXPECT_TRUE(nothing_queued<Started>(inbox));
}

// ---- Backoff ----------------------------------------------------------------------------------

// The parent is suspended while the child crashes, and a ReportChildren cast is queued behind
// the child's EXIT: on resume the parent handles the EXIT, then reports. A child without a
// backoff is restarted before the report; one with a backoff is not running at the report
// and starts after it.
TEST(ParentBackoff, AChildWithABackoffIsRestartedAfterItsDelay) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  Backoff backoff;
  backoff.initial = 10ms;
  backoff.max = 20ms;
  backoff.jitter = 0;
  const Pid slow = start_one(rt, *parent, pworker("slow", o).with_backoff(backoff));
  const Pid quick = start_one(rt, *parent, pworker("quick", o));
  drain<Started>(inbox);

  std::vector<ParentChild> report;
  // The next Started or ChildrenNow, in the order they came.
  auto next_event = [&]() -> std::string {
    auto either = [](const Message& m) { return m.is<ChildrenNow>() || m.is<Started>(); };
    std::optional<Message> m = inbox.receive_if(either, wait_time);
    if (!m) return "nothing";
    if (m->is<Started>()) return "Started " + m->get<Started>().id;
    report = m->take<ChildrenNow>().children;
    return "ChildrenNow";
  };
  auto crash_while_suspended = [&](Pid child) {
    ASSERT_TRUE(coppice::sys::suspend(rt, *parent));
    crash_and_wait(rt, inbox, child);
    coppice::cast(rt, *parent, ReportChildren{});
    ASSERT_TRUE(coppice::sys::resume(rt, *parent));
  };

  crash_while_suspended(quick);
  EXPECT_EQ(next_event(), "Started quick");
  EXPECT_EQ(next_event(), "ChildrenNow");
  EXPECT_TRUE(pid_in(report, "quick"));
  EXPECT_NE(pid_in(report, "quick"), quick);

  Pid child = slow;
  for (int round = 0; round < 2; ++round) {  // the second delay is twice the first
    SCOPED_TRACE(round);
    crash_while_suspended(child);
    EXPECT_EQ(next_event(), "ChildrenNow");
    EXPECT_EQ(ids_of(report), (std::vector<std::string>{"slow", "quick"}));
    EXPECT_EQ(pid_in(report, "slow"), Pid{}) << "a child with a backoff was restarted at once";
    EXPECT_EQ(next_event(), "Started slow");
    const Pid next = ParentClient::child_pid(rt, *parent, "slow").value_or(Pid{});
    EXPECT_TRUE(next);
    EXPECT_NE(next, child);
    child = next;
  }
}

// A child waiting out its backoff is listed as not running (restarting, to a Supervisor
// query) and can be shut down or restarted at once; returned, it starts at once.
TEST(ParentBackoff, AChildWaitingOutItsBackoffCanBeShutDownOrRestarted) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  Backoff backoff;  // long enough never to end within the test
  backoff.initial = 60s;
  backoff.max = 60s;
  backoff.jitter = 0;
  const Pid slow = start_one(rt, *parent, pworker("slow", o).with_backoff(backoff));
  drain<Started>(inbox);
  crash_and_wait(rt, inbox, slow);
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, *parent);
  ASSERT_TRUE(which) << which.error();
  ASSERT_EQ(which->size(), 1u);
  EXPECT_EQ((*which)[0].pid, Pid{});
  EXPECT_TRUE((*which)[0].restarting);

  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "slow"));
  const Pid restarted = started_pid(inbox, "slow");
  EXPECT_TRUE(restarted);
  crash_and_wait(rt, inbox, restarted);

  Result<StoppedChildren> stopped = ParentClient::shutdown_child(rt, *parent, "slow");
  ASSERT_TRUE(stopped) << stopped.error();
  ASSERT_EQ(ids_of(*stopped), std::vector<std::string>{"slow"});
  EXPECT_EQ((*stopped)[0].pid, restarted);
  EXPECT_TRUE(children_via(inbox, *parent).empty());
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *stopped));
  EXPECT_TRUE(started_pid(inbox, "slow"));
}

// ---- ParentClient --------------------------------------------------------------------------

// Every ParentClient function from a plain thread, answered by the parent's machinery: the
// user's catch-all handle_call never sees one.
TEST(ParentClientApi, EveryFunctionFromAPlainThread) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();

  Result<Pid> a = ParentClient::start_child(rt, *parent, pworker("a", o).with_meta(1));
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(started_pid(inbox, "a"), *a);
  Result<Pid> b = ParentClient::start_child(rt, *parent, pworker("b", o));
  ASSERT_TRUE(b) << b.error();
  EXPECT_EQ(started_pid(inbox, "b"), *b);

  Result<std::vector<ParentChild>> kids = ParentClient::children(rt, *parent);
  ASSERT_TRUE(kids) << kids.error();
  ASSERT_EQ(ids_of(*kids), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*kids)[0].pid, *a);
  EXPECT_EQ(std::any_cast<int>((*kids)[0].meta), 1);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "b").value_or(Pid{}), *b);
  Result<std::any> meta = ParentClient::child_meta(rt, *parent, "a");
  ASSERT_TRUE(meta) << meta.error();
  EXPECT_EQ(std::any_cast<int>(*meta), 1);
  ASSERT_TRUE(ParentClient::update_child_meta(rt, *parent, "a", 2));
  meta = ParentClient::child_meta(rt, *parent, "a");
  ASSERT_TRUE(meta) << meta.error();
  EXPECT_EQ(std::any_cast<int>(*meta), 2);

  ASSERT_TRUE(ParentClient::restart_child(rt, *parent, "a"));
  const Pid a2 = started_pid(inbox, "a");
  EXPECT_NE(a2, *a);
  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "a").value_or(Pid{}), a2);
  EXPECT_EQ(std::any_cast<int>(ParentClient::child_meta(rt, *parent, "a").value_or(std::any(0))), 2);

  Result<StoppedChildren> sb = ParentClient::shutdown_child(rt, *parent, "b");
  ASSERT_TRUE(sb) << sb.error();
  EXPECT_EQ(ids_of(*sb), std::vector<std::string>{"b"});
  EXPECT_EQ(ids_of(ParentClient::children(rt, *parent).value()), std::vector<std::string>{"a"});
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *sb));
  EXPECT_TRUE(started_pid(inbox, "b"));

  Result<StoppedChildren> all = ParentClient::shutdown_all(rt, *parent);
  ASSERT_TRUE(all) << all.error();
  EXPECT_EQ(ids_of(*all), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ParentClient::children(rt, *parent).value().empty());
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *all));
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"a", "b"}));

  EXPECT_EQ(ParentClient::child_pid(rt, *parent, "nope").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(ParentClient::child_meta(rt, *parent, "nope").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(ParentClient::update_child_meta(rt, *parent, "nope", 3).error().kind(), ErrorKind::not_found);
  EXPECT_EQ(ParentClient::shutdown_child(rt, *parent, "nope").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(ParentClient::restart_child(rt, *parent, "nope").error().kind(), ErrorKind::not_found);

  EXPECT_EQ(ids_of(children_via(inbox, *parent)), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(nothing_queued<UserCall>(inbox)) << "a ParentClient request reached the user's handle_call";
  EXPECT_TRUE(nothing_queued<UserInfo>(inbox));
}

// The same, awaited inside a process.
TEST(ParentClientApi, EveryFunctionAwaitedInsideAProcess) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> started = start_recorder(rt, o);
  ASSERT_TRUE(started) << started.error();
  ExitReason r = run_process(rt, [p = *started, o]() -> Async<void> {
    const ServerRef parent = p;
    auto sc = ParentClient::start_child(parent, pworker("a", o).with_meta(1));
    Result<Pid> a = co_await sc;
    CO_ASSERT_TRUE(a.has_value());
    auto ch = ParentClient::children(parent);
    Result<std::vector<ParentChild>> kids = co_await ch;
    CO_ASSERT_TRUE(kids.has_value());
    EXPECT_EQ(ids_of(*kids), std::vector<std::string>{"a"});
    auto cp = ParentClient::child_pid(parent, "a");
    Result<Pid> pa = co_await cp;
    EXPECT_EQ(pa.value_or(Pid{}), *a);
    auto um = ParentClient::update_child_meta(parent, "a", 2);
    Status updated = co_await um;
    EXPECT_TRUE(updated.has_value());
    auto cm = ParentClient::child_meta(parent, "a");
    Result<std::any> meta = co_await cm;
    CO_ASSERT_TRUE(meta.has_value());
    EXPECT_EQ(std::any_cast<int>(*meta), 2);
    auto rc = ParentClient::restart_child(parent, "a");
    Status restarted = co_await rc;
    EXPECT_TRUE(restarted.has_value());
    auto cp2 = ParentClient::child_pid(parent, "a");
    Result<Pid> a2 = co_await cp2;
    CO_ASSERT_TRUE(a2.has_value());
    EXPECT_TRUE(*a2);
    EXPECT_NE(*a2, *a);
    auto sd = ParentClient::shutdown_child(parent, "a");
    Result<StoppedChildren> one = co_await sd;
    CO_ASSERT_TRUE(one.has_value());
    EXPECT_EQ(ids_of(*one), std::vector<std::string>{"a"});
    auto ret = ParentClient::return_children(parent, *one);
    Status back = co_await ret;
    EXPECT_TRUE(back.has_value());
    auto sa = ParentClient::shutdown_all(parent);
    Result<StoppedChildren> all = co_await sa;
    CO_ASSERT_TRUE(all.has_value());
    EXPECT_EQ(ids_of(*all), std::vector<std::string>{"a"});
    auto ret2 = ParentClient::return_children(parent, *all);
    Status back2 = co_await ret2;
    EXPECT_TRUE(back2.has_value());
    auto nf = ParentClient::child_pid(parent, "nope");
    Result<Pid> none = co_await nf;
    CO_ASSERT_FALSE(none.has_value());
    EXPECT_EQ(none.error().kind(), ErrorKind::not_found);
    auto rnf = ParentClient::restart_child(parent, "nope");
    Status rnone = co_await rnf;
    CO_ASSERT_FALSE(rnone.has_value());
    EXPECT_EQ(rnone.error().kind(), ErrorKind::not_found);
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(next_ids<Started>(inbox, 4), (std::vector<std::string>{"a", "a", "a", "a"}));
  EXPECT_EQ(ids_of(children_via(inbox, *started)), std::vector<std::string>{"a"});
  EXPECT_TRUE(nothing_queued<UserCall>(inbox)) << "a ParentClient request reached the user's handle_call";
}

// From the parent itself: calling_self, as for any call.
TEST(ParentClientApi, FromTheParentItselfIsCallingSelf) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Result<Pid> parent = start_recorder(rt, inbox.pid());
  ASSERT_TRUE(parent) << parent.error();
  Result<Ok> r = ask<Ok>(rt, *parent, AskSelf{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::calling_self) << r.error();
}

// A parent that is not running: noproc from every function, from a thread or a process.
TEST(ParentClientApi, ADeadParentIsNoproc) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  ASSERT_TRUE(coppice::stop(rt, *parent));
  const Pid p = *parent;
  EXPECT_EQ(ParentClient::children(rt, p).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::child_pid(rt, p, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::child_meta(rt, p, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::update_child_meta(rt, p, "a", 1).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::start_child(rt, p, pworker("a", o)).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::shutdown_child(rt, p, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::restart_child(rt, p, "a").error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::shutdown_all(rt, p).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::return_children(rt, p, {}).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(ParentClient::children(rt, std::string("no_such_parent")).error().kind(), ErrorKind::noproc);
  ExitReason r = run_process(rt, [p, o]() -> Async<void> {
    const ServerRef dead = p;
    auto ch = ParentClient::children(dead);
    Result<std::vector<ParentChild>> kids = co_await ch;
    CO_ASSERT_FALSE(kids.has_value());
    EXPECT_EQ(kids.error().kind(), ErrorKind::noproc);
    auto sc = ParentClient::start_child(dead, pworker("a", o));
    Result<Pid> a = co_await sc;
    CO_ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.error().kind(), ErrorKind::noproc);
    auto sa = ParentClient::shutdown_all(dead);
    Result<StoppedChildren> all = co_await sa;
    CO_ASSERT_FALSE(all.has_value());
    EXPECT_EQ(all.error().kind(), ErrorKind::noproc);
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_TRUE(nothing_queued<Started>(inbox));
}

// ---- A Parent in a supervision tree -----------------------------------------------------------

// child<Parent>(...) is a supervisor child with shutdown infinity; the parent answers the
// Supervisor queries about its own children; killed, it is restarted with fresh children
// (the old ones die with it); the supervisor's stop goes down the tree, children first.
TEST(ParentUnderSupervisor, AParentIsASupervisorChildAndAnswersSupervisorQueries) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  ChildSpec spec = coppice::child<Recorder>("parent", o, starting({pworker("a", o), pworker("b", o)}));
  EXPECT_EQ(spec.type, ChildType::supervisor);
  EXPECT_EQ(spec.effective_shutdown(), Shutdown::infinity());
  Result<Pid> sup = Supervisor::start(rt, {spec}, flags(Strategy::one_for_one));
  ASSERT_TRUE(sup) << sup.error();
  Result<ChildSpec> got = Supervisor::get_childspec(rt, *sup, "parent");
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(got->type, ChildType::supervisor);
  EXPECT_EQ(got->effective_shutdown(), Shutdown::infinity());
  Result<std::vector<ChildInfo>> top = Supervisor::which_children(rt, *sup);
  ASSERT_TRUE(top) << top.error();
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].type, ChildType::supervisor);
  const Pid parent = (*top)[0].pid;
  ASSERT_TRUE(parent);
  EXPECT_EQ(Supervisor::count_children(rt, *sup).value(), counts(1, 1, 1, 0));

  const Pid a = started_pid(inbox, "a");
  const Pid b = started_pid(inbox, "b");
  EXPECT_EQ(children_of(rt, parent), (std::vector<std::pair<std::string, Pid>>{{"a", a}, {"b", b}}));  // start order
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, parent);
  ASSERT_TRUE(which) << which.error();
  for (const ChildInfo& c : *which) {
    EXPECT_EQ(c.type, ChildType::worker);
    EXPECT_FALSE(c.restarting);
  }
  EXPECT_EQ(Supervisor::count_children(rt, parent).value(), counts(2, 2, 0, 2));
  Result<ChildSpec> spec_a = Supervisor::get_childspec(rt, parent, "a");
  ASSERT_TRUE(spec_a) << spec_a.error();
  EXPECT_EQ(spec_a->id, "a");
  EXPECT_EQ(spec_a->effective_shutdown(), Shutdown::timeout(5000ms));
  Result<ChildSpec> spec_b = Supervisor::get_childspec(rt, parent, b);
  ASSERT_TRUE(spec_b) << spec_b.error();
  EXPECT_EQ(spec_b->id, "b");
  EXPECT_EQ(Supervisor::get_childspec(rt, parent, "nope").error().kind(), ErrorKind::not_found);

  // Killed: its children die with it (linked), and the supervisor starts it and them again.
  const Ref ma = inbox.monitor(a);
  const Ref mb = inbox.monitor(b);
  inbox.exit(parent, ExitReason::kill());
  EXPECT_EQ(down_for(inbox, ma)->reason, ExitReason::killed());
  EXPECT_EQ(down_for(inbox, mb)->reason, ExitReason::killed());
  const Pid a2 = started_pid(inbox, "a");
  const Pid b2 = started_pid(inbox, "b");
  const std::vector<std::pair<std::string, Pid>> now = children_of(rt, *sup);
  ASSERT_EQ(now.size(), 1u);
  const Pid parent2 = now[0].second;
  EXPECT_TRUE(parent2);
  EXPECT_NE(parent2, parent);

  // The supervisor stops: b, a, the parent, the supervisor.
  std::vector<Ref> mons{inbox.monitor(b2), inbox.monitor(a2), inbox.monitor(parent2), inbox.monitor(*sup)};
  ASSERT_TRUE(coppice::stop(rt, *sup));
  std::vector<Ref> order;
  for (int i = 0; i < 4; ++i) {
    std::optional<Down> d = inbox.receive<Down>(wait_time);
    ASSERT_TRUE(d);
    order.push_back(d->ref);
    if (d->ref != mons[3]) {
      EXPECT_EQ(d->reason, ExitReason::shutdown());
    }
  }
  EXPECT_EQ(order, mons);
}

// A Parent as the child of a Parent: a supervisor child (shutdown infinity), so stopping
// the outer one goes down the tree, leaves first.
TEST(ParentUnderSupervisor, AParentInsideAParentStopsItsLeavesFirst) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> outer = start_recorder(rt, o, starting({pworker("first", o)}));
  ASSERT_TRUE(outer) << outer.error();
  const Pid inner =
      start_one(rt, *outer, ParentChildSpec(coppice::child<Recorder>("inner", o, starting({pworker("leaf", o)}))));
  ASSERT_TRUE(inner);
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, *outer);
  ASSERT_TRUE(which) << which.error();
  ASSERT_EQ(which->size(), 2u);
  EXPECT_EQ((*which)[0].id, "first");  // start order (SEMANTICS.md 9)
  EXPECT_EQ((*which)[1].id, "inner");
  EXPECT_EQ((*which)[1].type, ChildType::supervisor);
  Result<ChildSpec> spec = Supervisor::get_childspec(rt, *outer, "inner");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_EQ(spec->effective_shutdown(), Shutdown::infinity());
  EXPECT_EQ(Supervisor::count_children(rt, *outer).value(), counts(2, 2, 1, 1));
  const Pid first = started_pid(inbox, "first");
  const Pid leaf = started_pid(inbox, "leaf");
  const std::vector<Ref> mons{inbox.monitor(leaf), inbox.monitor(inner), inbox.monitor(first), inbox.monitor(*outer)};
  ASSERT_TRUE(coppice::stop(rt, *outer));
  EXPECT_EQ(next_downs(inbox, 4), mons);
}

// ---- No child left behind ----------------------------------------------------------------

// A parent that stops with normal from a callback stops its children (non-trapping ones too,
// which a normal exit signal would not stop) with shutdown, newest first, before it exits.
TEST(ParentStop, StoppingWithNormalLeavesNoChildRunning) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, starting({pworker("a", o), pworker("b", o)}));
  ASSERT_TRUE(parent) << parent.error();
  const Pid a = started_pid(inbox, "a");
  const Pid b = started_pid(inbox, "b");
  const std::vector<Ref> mons{inbox.monitor(b), inbox.monitor(a), inbox.monitor(*parent)};
  Result<Ok> r = ask<Ok>(rt, *parent, StopWith{ExitReason::normal()});
  EXPECT_TRUE(r) << r.error();
  std::optional<Terminating> t = inbox.receive<Terminating>(wait_time);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->running, 2u) << "terminate ran after the children stopped";
  EXPECT_EQ(t->reason, ExitReason::normal());
  std::vector<ExitReason> reasons;
  std::vector<Ref> order;
  for (int i = 0; i < 3; ++i) {
    std::optional<Down> d = inbox.receive<Down>(wait_time);
    ASSERT_TRUE(d);
    order.push_back(d->ref);
    reasons.push_back(d->reason);
  }
  EXPECT_EQ(order, mons);
  EXPECT_EQ(reasons, (std::vector<ExitReason>{ExitReason::shutdown(), ExitReason::shutdown(), ExitReason::normal()}));
}

// A parent that stops with another reason stops its children with that reason as the exit
// signal (7.5: terminate, then shutdown_all(reason)).
TEST(ParentStop, StoppingWithAnotherReasonPassesItToTheChildren) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, starting({pworker("a", o)}));
  ASSERT_TRUE(parent) << parent.error();
  const Pid a = started_pid(inbox, "a");
  const std::vector<Ref> mons{inbox.monitor(a), inbox.monitor(*parent)};
  Result<Ok> r = ask<Ok>(rt, *parent, StopWith{ExitReason::other("bye")});
  EXPECT_TRUE(r) << r.error();
  std::optional<Down> child = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(child);
  EXPECT_EQ(child->ref, mons[0]);
  EXPECT_EQ(child->reason, ExitReason::other("bye"));
  std::optional<Down> p = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ref, mons[1]);
  EXPECT_EQ(p->reason, ExitReason::other("bye"));
}

// init raises (or returns an error) after starting children: they are stopped (shutdown,
// newest first) before start returns.
TEST(ParentStop, AFailedInitAfterStartingChildrenLeavesNoChildRunning) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  for (bool raise : {true, false}) {
    SCOPED_TRACE(raise ? "init raises" : "init returns an error");
    RecorderOptions options = starting({pworker("a", o, trapping()), pworker("b", o, trapping())});
    options.raise_in_init = raise;
    options.fail_init = !raise;
    Result<Pid> parent = start_recorder(rt, o, options);
    ASSERT_FALSE(parent);
    EXPECT_EQ(parent.error().kind(), ErrorKind::start_error) << parent.error();
    if (raise) {
      EXPECT_EQ(parent.error().reason().kind(), ExitReason::Kind::error) << parent.error();
    }
    const Pid a = started_pid(inbox, "a");
    const Pid b = started_pid(inbox, "b");
    // Their terminate ran before they exited, and they exited before start returned.
    const std::vector<Terminated> ts = next_terminated(inbox, 2);
    EXPECT_EQ(ids_of(ts), (std::vector<std::string>{"b", "a"}));
    EXPECT_EQ(reasons_of(ts), (std::vector<ExitReason>{ExitReason::shutdown(), ExitReason::shutdown()}));
    EXPECT_EQ(end_of(inbox, a), ExitReason::noproc()) << "a child was still running";
    EXPECT_EQ(end_of(inbox, b), ExitReason::noproc()) << "a child was still running";
  }
}

// terminate runs first and may start a child; that one is stopped with the others, newest
// first, before the parent exits.
TEST(ParentStop, AChildStartedInTerminateIsStoppedToo) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  RecorderOptions options = starting({pworker("a", o, trapping())});
  options.start_in_terminate = pworker("late", o, trapping());
  Result<Pid> parent = start_recorder(rt, o, options);
  ASSERT_TRUE(parent) << parent.error();
  drain<Started>(inbox);
  const Ref mp = inbox.monitor(*parent);
  ASSERT_TRUE(coppice::stop(rt, *parent));
  EXPECT_TRUE(started_pid(inbox, "late"));
  const std::vector<Terminated> ts = next_terminated(inbox, 2);
  EXPECT_EQ(ids_of(ts), (std::vector<std::string>{"late", "a"}));
  EXPECT_EQ(reasons_of(ts), (std::vector<ExitReason>{ExitReason::shutdown(), ExitReason::shutdown()}));
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::normal());
}

// terminate raises: the children are still stopped (after it), then the parent exits with
// the exception's reason.
TEST(ParentStop, AnExceptionInTerminateStillStopsTheChildren) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  RecorderOptions options = starting({pworker("a", o), pworker("b", o)});
  options.raise_in_terminate = true;
  Result<Pid> parent = start_recorder(rt, o, options);
  ASSERT_TRUE(parent) << parent.error();
  const Pid a = started_pid(inbox, "a");
  const Pid b = started_pid(inbox, "b");
  const std::vector<Ref> mons{inbox.monitor(b), inbox.monitor(a), inbox.monitor(*parent)};
  Status s = coppice::stop(rt, *parent);
  (void)s;  // the parent exits with the exception, not with normal
  std::optional<Terminating> t = inbox.receive<Terminating>(wait_time);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->running, 2u);
  std::vector<Ref> order;
  std::vector<ExitReason> reasons;
  for (int i = 0; i < 3; ++i) {
    std::optional<Down> d = inbox.receive<Down>(wait_time);
    ASSERT_TRUE(d);
    order.push_back(d->ref);
    reasons.push_back(d->reason);
  }
  EXPECT_EQ(order, mons);
  EXPECT_EQ(reasons[0], ExitReason::shutdown());
  EXPECT_EQ(reasons[1], ExitReason::shutdown());
  EXPECT_EQ(reasons[2].kind(), ExitReason::Kind::error) << reasons[2];
  EXPECT_NE(reasons[2].to_string().find("terminate raised"), std::string::npos) << reasons[2];
}

// A child that unlinked itself from the parent is still stopped: by shutdown_child, and when
// the parent stops (the parent watches it with a monitor, not the link).
TEST(ParentShutdown, AChildThatUnlinkedItselfIsStillStopped) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, starting({pworker("a", o), pworker("b", o)}));
  ASSERT_TRUE(parent) << parent.error();
  const Pid a = started_pid(inbox, "a");
  const Pid b = started_pid(inbox, "b");
  for (Pid c : {a, b}) {
    coppice::cast(rt, c, UnlinkFromParent{});
    EXPECT_EQ(coppice::call<Pid>(rt, c, Whoami{}).value_or(Pid{}), c);  // the unlink is done
  }
  const Ref ma = inbox.monitor(a);
  Result<StoppedChildren> s = ParentClient::shutdown_child(rt, *parent, "a");
  ASSERT_TRUE(s) << s.error();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].exit_reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, ma)->reason, ExitReason::shutdown());

  const Ref mb = inbox.monitor(b);
  const Ref mp = inbox.monitor(*parent);
  ASSERT_TRUE(coppice::stop(rt, *parent));
  std::optional<Down> first = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->ref, mb) << "the parent exited before its unlinked child";
  EXPECT_EQ(first->reason, ExitReason::shutdown());
  EXPECT_TRUE(down_for(inbox, mp).has_value());
}

// A child that ignores shutdown is killed once its shutdown timeout passes: by shutdown_all,
// and when the parent stops.
TEST(ParentShutdown, AChildThatIgnoresShutdownIsKilledAfterItsTimeout) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid s1 = start_one(rt, *parent, ParentChildSpec(stubborn("stubborn", o)).with_shutdown(Shutdown::timeout(20ms)));
  const Pid w = start_one(rt, *parent, pworker("w", o));
  const std::vector<Ref> mons{inbox.monitor(w), inbox.monitor(s1)};
  Result<StoppedChildren> all = ParentClient::shutdown_all(rt, *parent);
  ASSERT_TRUE(all) << all.error();
  ASSERT_EQ(ids_of(*all), (std::vector<std::string>{"stubborn", "w"}));
  EXPECT_EQ((*all)[0].exit_reason, ExitReason::killed());
  EXPECT_EQ((*all)[1].exit_reason, ExitReason::shutdown());
  EXPECT_EQ(next_downs(inbox, 2), mons);

  const Pid s2 = start_one(rt, *parent, ParentChildSpec(stubborn("stubborn", o)).with_shutdown(Shutdown::timeout(20ms)));
  const Ref m2 = inbox.monitor(s2);
  const Ref mp = inbox.monitor(*parent);
  ASSERT_TRUE(coppice::stop(rt, *parent));
  std::optional<Down> first = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->ref, m2);
  EXPECT_EQ(first->reason, ExitReason::killed());
  EXPECT_TRUE(down_for(inbox, mp).has_value());
}

// shutdown_all's reason is the exit signal the children get; normal becomes shutdown (a
// normal signal would not stop them).
TEST(ParentShutdown, ShutdownAllPassesItsReasonAndMapsNormalToShutdown) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  Pid a = start_one(rt, *parent, pworker("a", o));
  Ref m = inbox.monitor(a);
  Result<StoppedChildren> bye = ParentClient::shutdown_all(rt, *parent, ExitReason::other("bye"));
  ASSERT_TRUE(bye) << bye.error();
  ASSERT_EQ(bye->size(), 1u);
  EXPECT_EQ((*bye)[0].exit_reason, ExitReason::other("bye"));
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::other("bye"));

  drain<Started>(inbox);
  ASSERT_TRUE(ParentClient::return_children(rt, *parent, *bye));
  a = started_pid(inbox, "a");
  m = inbox.monitor(a);
  Result<StoppedChildren> normal = ParentClient::shutdown_all(rt, *parent, ExitReason::normal());
  ASSERT_TRUE(normal) << normal.error();
  ASSERT_EQ(normal->size(), 1u);
  EXPECT_EQ((*normal)[0].exit_reason, ExitReason::shutdown());
  EXPECT_EQ(down_for(inbox, m)->reason, ExitReason::shutdown());
}

// An EXIT from a linked process that is no child goes to the user's handle_info; a child's
// never does.
TEST(ParentExits, AnExitFromAProcessThatIsNoChildGoesToHandleInfo) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  const Pid c = start_one(rt, *parent, pworker("c", o));
  crash_and_wait(rt, inbox, c);
  const Pid stranger = rt.spawn<Puppet>();
  Result<Outcome> linked = inbox.call<Outcome>(stranger, LinkTo{*parent});
  ASSERT_TRUE(linked && !linked->error);
  inbox.send(stranger, Die{ExitReason::other("bye")});
  std::optional<UserInfo> info = inbox.receive<UserInfo>(wait_time);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->exit_from, stranger);
  children_via(inbox, *parent);
  EXPECT_TRUE(nothing_queued<UserInfo>(inbox)) << "a child's EXIT reached handle_info";
}

// ---- Validation ------------------------------------------------------------------------------

// A bad spec is invalid_child_spec naming its field, from validate() and from start_child
// (nothing is stored).
TEST(ParentValidation, ErrorsNameTheField) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o);
  ASSERT_TRUE(parent) << parent.error();
  auto base = [o] { return pworker("x", o); };
  auto backoff = [](auto change) {
    Backoff b;
    change(b);
    return b;
  };
  struct Case {
    std::string field;
    ParentChildSpec spec;
  };
  ParentChildSpec no_start;
  no_start.id = "x";
  ParentChildSpec significant = base();
  significant.with_restart(Restart::temporary).as_significant();
  const std::vector<Case> cases{
      {"lifetime", base().with_lifetime(-5ms)},
      {"intensity", base().with_intensity(-1)},
      {"period", base().with_intensity(1, 0ms)},
      {"backoff", base().with_backoff(backoff([](Backoff& b) { b.initial = 0ms; }))},
      {"backoff", base().with_backoff(backoff([](Backoff& b) { b.max = b.initial - 1ms; }))},
      {"backoff", base().with_backoff(backoff([](Backoff& b) { b.multiplier = 0.5; }))},
      {"backoff", base().with_backoff(backoff([](Backoff& b) { b.jitter = 1.0; }))},
      {"backoff", base().with_backoff(backoff([](Backoff& b) { b.reset_after = 0ms; }))},
      {"significant", significant},
      {"binds_to", base().bound_to({"x"})},
      {"binds_to", base().bound_to({ChildRef(Pid{})})},
      {"shutdown_group", base().in_group("")},
      {"start", no_start},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    Status s = coppice::validate(c.spec);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind(), ErrorKind::invalid_child_spec);
    EXPECT_TRUE(has_text(s.error(), "child spec: " + c.field + ":")) << s.error();
    Result<Pid> r = ask<Pid>(rt, *parent, StartChild{c.spec});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::invalid_child_spec);
    EXPECT_TRUE(has_text(r.error(), "child spec: " + c.field + ":")) << r.error();
  }
  EXPECT_TRUE(children_via(inbox, *parent).empty());
  EXPECT_TRUE(nothing_queued<Started>(inbox));
}

// ---- SEMANTICS.md 9: which_children order, lifetime 0 ------------------------------------------

namespace {

std::vector<std::string> which_ids(coppice::Runtime& rt, Pid parent) {
  std::vector<std::string> ids;
  Result<std::vector<ChildInfo>> which = Supervisor::which_children(rt, parent);
  EXPECT_TRUE(which) << which.error();
  if (which)
    for (const ChildInfo& c : *which) ids.push_back(c.id);
  return ids;
}

// which_children lists a Parent's children in start order, as the `parent` library does
// (SEMANTICS.md 0 and 9), and a restarted child keeps its slot (SEMANTICS.md 7.3).
TEST(ParentWhichChildren, ListsChildrenInStartOrder) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  const Pid a = start_one(rt, *parent, pworker("a", o));
  start_one(rt, *parent, pworker("b", o));
  start_one(rt, *parent, pworker("c", o));
  EXPECT_EQ(which_ids(rt, *parent), (std::vector<std::string>{"a", "b", "c"}));
  drain<Started>(inbox);
  crash_and_wait(rt, inbox, a);
  EXPECT_NE(started_pid(inbox, "a"), a);
  EXPECT_EQ(which_ids(rt, *parent), (std::vector<std::string>{"a", "b", "c"}));
}

// Lifetime 0 is accepted (the `parent` library's timeout: 0, SEMANTICS.md 9): the child is
// started and stopped at once with reason timeout; temporary, it is kept with no pid;
// ephemeral, it is removed and reported.
TEST(ParentLifetime, ZeroStopsATemporaryChildAtOnce) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(std::nullopt)));
  ASSERT_TRUE(parent) << parent.error();
  {
    SCOPED_TRACE("temporary");
    const Pid c = start_one(rt, *parent, pworker("temporary", o).with_restart(Restart::temporary).with_lifetime(0ms));
    ASSERT_TRUE(c);
    std::optional<ExitReason> r = end_of(inbox, c);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r == ExitReason::timeout() || *r == ExitReason::noproc()) << *r;
    const std::vector<ParentChild> now = children_via(inbox, *parent);
    EXPECT_EQ(ids_of(now), std::vector<std::string>{"temporary"});
    EXPECT_EQ(pid_in(now, "temporary"), Pid{});
  }
  {
    SCOPED_TRACE("ephemeral temporary");
    const Pid c = start_one(
        rt, *parent, pworker("ephemeral", o).with_restart(Restart::temporary).as_ephemeral().with_lifetime(0ms));
    ASSERT_TRUE(c);
    std::optional<SawStopped> saw = inbox.receive<SawStopped>(wait_time);
    ASSERT_TRUE(saw);
    ASSERT_EQ(ids_of(saw->stopped), std::vector<std::string>{"ephemeral"});
    EXPECT_EQ(saw->stopped[0].pid, c);
    EXPECT_EQ(saw->stopped[0].exit_reason, ExitReason::timeout());
    EXPECT_EQ(ids_of(children_via(inbox, *parent)), std::vector<std::string>{"temporary"});
  }
}

// A permanent child with lifetime 0 is stopped at once and restarted each time, each restart
// counting: with an intensity of 3 in 5 s the parent gives up with too_many_restarts.
TEST(ParentLifetime, ZeroRestartsAPermanentChildUntilTheIntensityTrips) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid o = inbox.pid();
  Result<Pid> parent = start_recorder(rt, o, with_parent(intensity(3)));
  ASSERT_TRUE(parent) << parent.error();
  const Ref mp = inbox.monitor(*parent);
  Result<Pid> c = ask<Pid>(rt, *parent, StartChild{pworker("permanent", o).with_lifetime(0ms)});
  // The start itself succeeds (or the parent is already gone when the reply would come).
  if (!c) {
    EXPECT_EQ(c.error().kind(), ErrorKind::noproc) << c.error();
  }
  std::optional<Down> d = down_for(inbox, mp);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, too_many_restarts());
  EXPECT_EQ(drain<Started>(inbox), 1u + 3u) << "the start, then three restarts";
}

}  // namespace
