// The "Processes & signals" scenarios of SEMANTICS.md section 8, one test each, named after the scenario.
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Go {};
struct ChildIs {
  Pid pid;
};

// A spawn_links a child B that exits with `reason` when told; A traps exits if asked, and
// reports B's pid and then any Exit it gets. A not trapping waits forever (only a link can end it).
Async<void> parent_of_one(Pid observer, bool trap, ExitReason reason) {
  trap_exit(trap);
  const Pid b = spawn_link([](ExitReason r) -> Async<void> {
    co_await receive<Go>();
    coppice::exit(r);
  }, reason);
  send(observer, ChildIs{b});
  Exit e = co_await receive<Exit>();
  send(observer, e);
  co_await receive<Go>();  // stays alive, to show it was not killed
}

}  // namespace

// 1. A spawn_links B; B exits boom => A (not trapping) dies boom; A trapping => {'EXIT',B,boom}.
TEST(Scenario, processes_1_spawn_link_crash_propagates) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  {
    const Pid a = rt.spawn(parent_of_one, inbox.pid(), false, ExitReason::other("boom"));
    const Ref ra = inbox.monitor(a);
    std::optional<ChildIs> b = inbox.receive<ChildIs>(wait_time);
    ASSERT_TRUE(b);
    inbox.send(b->pid, Go{});
    std::optional<Down> d = down_for(inbox, ra);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, ExitReason::other("boom"));
    EXPECT_FALSE(inbox.receive<Exit>(0ms)) << "a non-trapping A handled the exit as a message";
  }
  {
    const Pid a = rt.spawn(parent_of_one, inbox.pid(), true, ExitReason::other("boom"));
    std::optional<ChildIs> b = inbox.receive<ChildIs>(wait_time);
    ASSERT_TRUE(b);
    inbox.send(b->pid, Go{});
    std::optional<Exit> e = inbox.receive<Exit>(wait_time);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->from, b->pid);
    EXPECT_EQ(e->reason, ExitReason::other("boom"));
    EXPECT_TRUE(rt.alive(a));
  }
}

// 2. B exits normal => non-trapping linked A keeps running; trapping A gets {'EXIT',B,normal}.
TEST(Scenario, processes_2_normal_exit_does_not_propagate) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  {
    const Pid a = rt.spawn<Puppet>(inbox.pid(), false);
    const Pid b = rt.spawn<Puppet>();
    ASSERT_TRUE(inbox.call<Outcome>(a, LinkTo{b}, wait_time));
    const Ref rb = inbox.monitor(b);
    inbox.send(b, Die{ExitReason::normal()});
    ASSERT_TRUE(down_for(inbox, rb));
    EXPECT_TRUE(answers(inbox, a)) << "a normal exit killed a linked process";
    EXPECT_FALSE(inbox.receive<SawExit>(0ms));
  }
  {
    const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
    const Pid b = rt.spawn<Puppet>();
    ASSERT_TRUE(inbox.call<Outcome>(a, LinkTo{b}, wait_time));
    inbox.send(b, Die{ExitReason::normal()});
    std::optional<SawExit> seen = inbox.receive<SawExit>(wait_time);
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->by, a);
    EXPECT_EQ(seen->exit.from, b);
    EXPECT_EQ(seen->exit.reason, ExitReason::normal());
    EXPECT_TRUE(answers(inbox, a));
  }
}

// 3. exit(B, kill) where B traps => B dies killed; B's linked trapping peer gets {'EXIT',B,killed}.
TEST(Scenario, processes_3_kill_of_trapping_process_gives_killed) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid b = rt.spawn<Puppet>(Pid{}, true);
  const Pid peer = rt.spawn<Puppet>(inbox.pid(), true);
  ASSERT_TRUE(inbox.call<Outcome>(peer, LinkTo{b}, wait_time));
  ASSERT_TRUE(answers(inbox, b));  // b traps by now
  const Ref rb = inbox.monitor(b);
  rt.exit(b, ExitReason::kill());
  std::optional<Down> d = down_for(inbox, rb);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::killed());
  std::optional<SawExit> seen = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, peer);
  EXPECT_EQ(seen->exit.from, b);
  EXPECT_EQ(seen->exit.reason, ExitReason::killed());
  EXPECT_TRUE(answers(inbox, peer));
}

// 5. exit(self(), normal) in a non-trapping process => it terminates normal;
//    exit(Other, normal) to non-trapping Other => no effect.
TEST(Scenario, processes_5_exit_self_normal_and_exit_other_normal) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), false);
  const Pid other = rt.spawn<Puppet>(inbox.pid(), false);
  const Ref ro = inbox.monitor(other);
  ASSERT_TRUE(inbox.call<Done>(a, SendExit{other, ExitReason::normal()}, wait_time));
  EXPECT_TRUE(answers(inbox, other));
  EXPECT_FALSE(down_for(inbox, ro, 0ms));

  const Ref ra = inbox.monitor(a);
  inbox.send(a, SendExit{a, ExitReason::normal()});
  std::optional<Down> d = down_for(inbox, ra);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::normal());
}

// 6. link(DeadPid) while trapping => returns, then {'EXIT',DeadPid,noproc}; not trapping => noproc error.
TEST(Scenario, processes_6_link_to_dead_pid) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid trapping = rt.spawn<Puppet>(inbox.pid(), true);
  Result<Outcome> t = inbox.call<Outcome>(trapping, LinkTo{dead}, wait_time);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->error);
  std::optional<SawExit> seen = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->exit.from, dead);
  EXPECT_EQ(seen->exit.reason, ExitReason::noproc());

  const Pid plain = rt.spawn<Puppet>(inbox.pid(), false);
  Result<Outcome> p = inbox.call<Outcome>(plain, LinkTo{dead}, wait_time);
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->error);
  EXPECT_EQ(p->error->kind(), ErrorKind::noproc);
  EXPECT_TRUE(answers(inbox, plain));
}

// 7. monitor(process, DeadPid) => immediate {'DOWN',Ref,process,DeadPid,noproc}; two monitors => two DOWNs.
TEST(Scenario, processes_7_monitor_dead_pid_and_two_monitors) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Ref r0 = inbox.monitor(dead);
  std::optional<Down> d0 = down_for(inbox, r0);
  ASSERT_TRUE(d0);
  EXPECT_EQ(d0->pid, dead);
  EXPECT_EQ(d0->reason, ExitReason::noproc());

  const Pid a = rt.spawn<Puppet>();
  const Ref r1 = inbox.monitor(a);
  const Ref r2 = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  std::optional<Down> d1 = down_for(inbox, r1);
  std::optional<Down> d2 = down_for(inbox, r2);
  ASSERT_TRUE(d1);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d1->reason, ExitReason::other("boom"));
  EXPECT_EQ(d2->reason, ExitReason::other("boom"));
}

// 9. A sends m1..m1000 to B => B receives in order; with A's exit(B, x) after the sends, B
//    (trapping) gets all m's before the EXIT.
TEST(Scenario, processes_9_ordering_then_exit) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Got {
    std::vector<int> ms;
    std::optional<Exit> exit;
  };
  const Pid b = rt.spawn([](Pid observer) -> Async<void> {
    trap_exit(true);
    send(observer, Go{});
    Got got;
    for (;;) {
      Message m = co_await receive_any();
      if (int* n = m.get_if<int>()) {
        got.ms.push_back(*n);
        continue;
      }
      if (Exit* e = m.get_if<Exit>()) got.exit = *e;
      break;
    }
    send(observer, std::move(got));
  }, inbox.pid());
  ASSERT_TRUE(inbox.receive<Go>(wait_time));
  const Pid a = rt.spawn([](Pid to) -> Async<void> {
    for (int i = 1; i <= 1000; ++i) send(to, i);
    coppice::exit(to, ExitReason::other("x"));
    co_await receive<Go>();
  }, b);
  std::optional<Got> got = inbox.receive<Got>(wait_time);
  ASSERT_TRUE(got);
  std::vector<int> expected;
  for (int i = 1; i <= 1000; ++i) expected.push_back(i);
  EXPECT_EQ(got->ms, expected);
  ASSERT_TRUE(got->exit) << "something other than the EXIT ended the messages";
  EXPECT_EQ(got->exit->from, a);
  EXPECT_EQ(got->exit->reason, ExitReason::other("x"));
}

// 10. register N to P; P dies; in the DOWN handler whereis(N) == undefined; register(N, Q)
//     succeeds; registering a taken name or a second name for P fails.
TEST(Scenario, processes_10_name_released_before_down) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct InDownHandler {
    Pid whereis_after_down;
    bool reregistered;
    Pid whereis_after_register;
  };
  const Pid p = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("n", p));
  // Taken name, and a second name for P, fail while P holds "n".
  const Pid q0 = rt.spawn<Puppet>();
  Status taken = rt.register_name("n", q0);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().kind(), ErrorKind::name_taken);
  EXPECT_EQ(taken.error().pid(), p);
  Status second = rt.register_name("m", p);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind(), ErrorKind::already_named);

  const Pid q = rt.spawn([](Pid observer, Pid watched) -> Async<void> {
    const Ref ref = monitor(watched);
    send(observer, Go{});
    Down d = co_await receive<Down>();
    (void)ref;
    (void)d;
    InDownHandler h;
    h.whereis_after_down = whereis("n");
    Status s = register_name("n");
    h.reregistered = s.has_value();
    h.whereis_after_register = whereis("n");
    send(observer, h);
    co_await receive<Go>();
  }, inbox.pid(), p);
  ASSERT_TRUE(inbox.receive<Go>(wait_time));
  inbox.send(p, Die{ExitReason::other("boom")});
  std::optional<InDownHandler> h = inbox.receive<InDownHandler>(wait_time);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->whereis_after_down, Pid{}) << "the name was still registered when the DOWN arrived";
  EXPECT_TRUE(h->reregistered);
  EXPECT_EQ(h->whereis_after_register, q);
  EXPECT_EQ(rt.whereis("n"), q);
}
