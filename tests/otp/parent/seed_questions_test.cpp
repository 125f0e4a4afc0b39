// SEMANTICS.md section 8, "Seed questions" 110, 111 and 113 re-done with Parent: the server
// that starts children is a Parent, which restarts them itself, stops them after its
// terminate whatever its reason, and keeps their names across restarts. (The plain GenServer
// and Supervisor versions are in otp/scenarios/seed_questions_test.cpp and
// otp/supervisor/nested_test.cpp.)
#include "otp/parent/parent_support.hpp"

namespace coppice_test::par {
namespace {

using coppice::ServerRef;
using coppice::StartOptions;

struct ChildPids {
  Pid first;
  Pid second;
};
struct GetChildPids {};  // call: the children's pids, from the child table
struct Finish {};        // cast: P stops with normal ({:stop, :normal, state})

// The seed questions' P as a Parent: it starts two children in its init, and keeps no pids:
// the child table has them.
class P : public Parent<P> {
 public:
  using calls = coppice::Protocol<GetChildPids>;
  using casts = coppice::Protocol<Finish>;
  P(Pid observer, WorkerOptions children) : observer_(observer), children_(std::move(children)) {}

  Async<Init> init() {
    auto a = start_child(pworker("first", observer_, children_));
    Result<Pid> first = co_await a;
    if (!first) co_return stop_with(first.error().reason());
    auto b = start_child(pworker("second", observer_, children_));
    Result<Pid> second = co_await b;
    if (!second) co_return stop_with(second.error().reason());
    co_return ok();
  }
  ChildPids handle_call(GetChildPids) {
    return {child_pid("first").value_or(Pid{}), child_pid("second").value_or(Pid{})};
  }
  NoReply handle_cast(Finish) { return stop_with(ExitReason::normal()); }

 private:
  Pid observer_;
  WorkerOptions children_;
};

// 110, Parent variant: a child's crash does not reach P (it traps exits, and the EXIT is its
// machinery's, not handle_info's); P restarts the child, and the pids it gives are the
// current ones, the same as ParentClient::child_pid gives anyone else.
TEST(Scenario, seed_110_parent_children_restarted_by_the_parent_with_current_pids) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), WorkerOptions{}).value();
  EXPECT_EQ(next_ids<Started>(inbox, 2), (std::vector<std::string>{"first", "second"}));
  ChildPids old = P::call(rt, p, GetChildPids{}).value();
  EXPECT_EQ(rt.process_info(old.first).value().links, std::vector<Pid>{p});

  coppice::Ref m1 = inbox.monitor(old.first);
  Worker::cast(rt, old.first, Crash{ExitReason::other("boom")});
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::other("boom"));
  const Pid first = started_pid(inbox, "first");
  ChildPids now = P::call(rt, p, GetChildPids{}).value();
  EXPECT_EQ(now.first, first);
  EXPECT_NE(now.first, old.first);
  EXPECT_EQ(now.second, old.second) << "only the crashed child restarts";
  EXPECT_EQ(ParentClient::child_pid(rt, p, "first").value(), first);
  EXPECT_EQ(Worker::call(rt, now.first, Whoami{}).value(), first);

  coppice::Ref m2 = inbox.monitor(old.second);
  Worker::cast(rt, old.second, Crash{ExitReason::other("boom")});
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::other("boom"));
  const Pid second = started_pid(inbox, "second");
  now = P::call(rt, p, GetChildPids{}).value();
  EXPECT_EQ(now.first, first);
  EXPECT_EQ(now.second, second);
  EXPECT_NE(now.second, old.second);
  EXPECT_TRUE(rt.alive(p)) << "a child's crash does not take P down";
  EXPECT_EQ(Supervisor::count_children(rt, p).value(), counts(2, 2, 0, 2));
}

// 110: a child that needs its sibling asks the parent after its init, from handle_continue.
// (From init it would wait on a parent that is itself waiting for that init to return.)
struct AskSibling {};
struct SiblingIs {
  Pid sibling;
};
class Asker : public GenServer<Asker> {
 public:
  Asker(Pid parent, Pid observer) : parent_(parent), observer_(observer) {}
  Init init() { return ok(continue_with(AskSibling{})); }
  Async<void> handle_continue(AskSibling) {
    auto ask = ParentClient::child_pid(parent_, "first");
    Result<Pid> sibling = co_await ask;
    coppice::send(observer_, SiblingIs{sibling.value_or(Pid{})});
  }

 private:
  Pid parent_;
  Pid observer_;
};

TEST(Scenario, seed_110_parent_child_asks_its_parent_for_a_sibling_from_handle_continue) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid p = Owner::start(rt, StartOptions{}, inbox.pid()).value();
  const Pid first = ask<Pid>(rt, p, StartChild{pworker("first", inbox.pid())}).value();
  ParentChildSpec asker = coppice::child<Asker>("asker", p, inbox.pid());
  const Pid a = ask<Pid>(rt, p, StartChild{asker}).value();
  std::optional<SiblingIs> told = inbox.receive<SiblingIs>(wait_time);
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->sibling, first);
  EXPECT_TRUE(rt.alive(a));
}

// 111, Parent variant: P stops with normal from a callback. Its terminate runs with both
// children alive, then it stops them itself, reverse start order, with shutdown (normal
// becomes shutdown: a normal exit signal would be ignored), then it exits: nothing dangles.
TEST(Scenario, seed_111_parent_shutdown_all_normal_leaves_no_dangling_child) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const std::size_t before = rt.process_count();
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), WorkerOptions{}).value();
  ChildPids c = P::call(rt, p, GetChildPids{}).value();
  const coppice::Ref m1 = inbox.monitor(c.first);
  const coppice::Ref m2 = inbox.monitor(c.second);
  const coppice::Ref mp = inbox.monitor(p);
  P::cast(rt, p, Finish{});
  std::vector<coppice::Ref> order;
  std::vector<ExitReason> reasons;
  for (int i = 0; i < 3; ++i) {
    std::optional<coppice::Down> d = inbox.receive<coppice::Down>(wait_time);
    ASSERT_TRUE(d);
    order.push_back(d->ref);
    reasons.push_back(d->reason);
  }
  EXPECT_EQ(order, (std::vector<coppice::Ref>{m2, m1, mp}));
  EXPECT_EQ(reasons, (std::vector<ExitReason>{ExitReason::shutdown(), ExitReason::shutdown(), ExitReason::normal()}));
  EXPECT_EQ(rt.process_count(), before);
}

// 111: the same with children that trap exits: each runs terminate(shutdown), the second
// first. And shutdown_all(normal) from outside stops them with shutdown too; P stays up.
TEST(Scenario, seed_111_parent_shutdown_all_normal_stops_trapping_children_with_shutdown) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), trapping()).value();
  ChildPids c = P::call(rt, p, GetChildPids{}).value();
  Result<StoppedChildren> stopped = ParentClient::shutdown_all(rt, p, ExitReason::normal());
  ASSERT_TRUE(stopped) << stopped.error();
  ASSERT_EQ(stopped->size(), 2u);
  EXPECT_EQ((*stopped)[0].id(), "first");  // in start order
  EXPECT_EQ((*stopped)[0].exit_reason, ExitReason::shutdown());
  EXPECT_EQ((*stopped)[1].exit_reason, ExitReason::shutdown());
  std::optional<Terminated> t2 = terminated(inbox);
  std::optional<Terminated> t1 = terminated(inbox);
  ASSERT_TRUE(t1 && t2);
  EXPECT_EQ(t2->pid, c.second) << "reverse start order";
  EXPECT_EQ(t1->pid, c.first);
  EXPECT_EQ(t1->reason, ExitReason::shutdown());
  EXPECT_EQ(t2->reason, ExitReason::shutdown());
  EXPECT_FALSE(rt.alive(c.first));
  EXPECT_FALSE(rt.alive(c.second));
  EXPECT_TRUE(rt.alive(p));
  EXPECT_TRUE(ParentClient::children(rt, p).value().empty());
}

// 113, Parent variant: a child registered under `name` is killed again and again; the parent
// restarts it, and the name leads to the new pid (a dying process releases its names before
// its parent hears of the death, so the restart never finds its name taken).
void keeps_its_name(coppice::Runtime& rt, Inbox& inbox, const ServerRef& name) {
  ParentOptions room;
  room.intensity = std::nullopt;  // twenty restarts in a row are the point here
  Pid p = Owner::start(rt, StartOptions{}, inbox.pid(), room,
                       std::vector<ParentChildSpec>{ParentChildSpec(worker("srv", inbox.pid()).name(name))})
              .value();
  Pid old = started_pid(inbox, "srv");
  EXPECT_EQ(Worker::call(rt, name, Whoami{}).value(), old);
  for (int i = 0; i < 20; ++i) {
    coppice::Ref watch = inbox.monitor(old);
    rt.exit(old, ExitReason::kill());
    ASSERT_TRUE(down_for(inbox, watch));
    // The parent had the EXIT (a link) before we had the DOWN (a monitor), and it restarts
    // the child before it answers: this is the restarted child.
    Pid now = ParentClient::child_pid(rt, p, "srv").value();
    EXPECT_NE(now, old);
    EXPECT_EQ(Worker::call(rt, name, Whoami{}).value(), now);
    Result<Pid> stale = Worker::call(rt, old, Whoami{});
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().kind(), ErrorKind::noproc);
    old = now;
  }
  ASSERT_TRUE(coppice::stop(rt, p, ExitReason::shutdown()).has_value());
}

TEST(Scenario, seed_113_parent_child_restarted_keeps_its_local_name) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  keeps_its_name(rt, inbox, ServerRef("srv"));
  EXPECT_FALSE(rt.whereis("srv")) << "released once the child is gone";
}

TEST(Scenario, seed_113_parent_child_restarted_keeps_its_registry_name) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  coppice::RegistryOptions o;
  o.name = "names";
  ASSERT_TRUE(coppice::Registry::start(rt, o));
  keeps_its_name(rt, inbox, ServerRef::via("names", "srv"));
  EXPECT_FALSE(coppice::Registry::whereis_name(rt, "names", "srv"));
}

}  // namespace
}  // namespace coppice_test::par
