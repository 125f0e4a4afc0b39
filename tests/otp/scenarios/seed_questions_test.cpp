// SEMANTICS.md section 8, "Seed questions": the forum questions coppice must answer, as
// tests of what plain GenServers do (the Parent variants are in the Parent issue's tests).
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::Down;
using coppice::ErrorKind;
using coppice::Exit;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Init;
using coppice::Message;
using coppice::NoReply;
using coppice::Pid;
using coppice::Result;
using coppice::StartOptions;

struct Children {
  Pid first;
  Pid second;
};
struct GetChildren {};
struct Crash {
  ExitReason reason;
};
struct AskParent {};  // sent by a child that calls its parent

class Child : public GenServer<Child> {
 public:
  using casts = coppice::Protocol<Crash>;
  using calls = coppice::Protocol<AskParent>;
  Child(Pid observer, bool trap, bool call_parent_in_init)
      : observer_(observer), trap_(trap), call_parent_in_init_(call_parent_in_init) {}
  Async<Init> init() {
    if (trap_) coppice::trap_exit(true);
    if (call_parent_in_init_) {
      // The parent is blocked in its start of this child: this call cannot be answered.
      auto c = coppice::call<Children>(parent(), GetChildren{}, 100ms);
      Result<Children> r = co_await c;
      coppice::send(observer_, r ? std::string("answered") : std::string(coppice::to_string(r.error().kind())));
    }
    co_return ok();
  }
  NoReply handle_cast(Crash c) { return stop_with(c.reason); }
  int handle_call(AskParent) { return 0; }
  void terminate(const ExitReason& reason) { coppice::send(observer_, "child terminate " + reason.to_string()); }

 private:
  Pid parent() const { return coppice::self_info().links.empty() ? Pid{} : coppice::self_info().links.front(); }
  Pid observer_;
  bool trap_;
  bool call_parent_in_init_;
};

// P: a GenServer that starts two children with start_link in init and keeps their pids.
class P : public GenServer<P> {
 public:
  using calls = coppice::Protocol<GetChildren>;
  using infos = coppice::Protocol<Exit>;
  P(Pid observer, bool trap, bool children_trap, bool child_calls_parent = false)
      : observer_(observer), trap_(trap), children_trap_(children_trap), child_calls_parent_(child_calls_parent) {}
  Async<Init> init() {
    if (trap_) coppice::trap_exit(true);
    StartOptions o;
    if (child_calls_parent_) o.timeout = 50ms;
    auto a = Child::start_link(o, observer_, children_trap_, child_calls_parent_);
    Result<Pid> first = co_await a;
    if (!first) co_return stop_with(first.error().reason());
    auto b = Child::start_link(o, observer_, children_trap_, false);
    Result<Pid> second = co_await b;
    if (!second) co_return stop_with(second.error().reason());
    children_ = {*first, *second};
    co_return ok();
  }
  Children handle_call(GetChildren) { return children_; }
  void handle_info(Exit e) { coppice::send(observer_, "parent got EXIT " + e.reason.to_string()); }

 private:
  Pid observer_;
  bool trap_;
  bool children_trap_;
  bool child_calls_parent_;
  Children children_;
};

// 110: the children are linked to P; a child's abnormal crash kills a non-trapping P with
// the same reason.
TEST(Scenario, seed_110_child_crash_kills_a_non_trapping_parent) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), false, false).value();
  Children c = P::call(rt, p, GetChildren{}).value();
  coppice::ProcessInfo info = rt.process_info(c.first).value();
  EXPECT_EQ(info.links, std::vector<Pid>{p});
  coppice::Ref mp = inbox.monitor(p);
  coppice::Ref m2 = inbox.monitor(c.second);
  Child::cast(rt, c.first, Crash{ExitReason::other("boom")});
  EXPECT_EQ(down_for(inbox, mp)->reason, ExitReason::other("boom"));
  // P's death takes its other child with it (it is linked and does not trap).
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::other("boom"));
}

// 110: a trapping P gets the child's EXIT in handle_info; nothing restarts the child.
TEST(Scenario, seed_110_trapping_parent_gets_the_exit_and_nothing_restarts) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), true, false).value();
  Children c = P::call(rt, p, GetChildren{}).value();
  Child::cast(rt, c.first, Crash{ExitReason::other("boom")});
  EXPECT_EQ(inbox.receive<std::string>(wait_time), "child terminate boom");
  EXPECT_EQ(inbox.receive<std::string>(wait_time), "parent got EXIT boom");
  EXPECT_TRUE(rt.alive(p));
  EXPECT_FALSE(rt.alive(c.first));
  EXPECT_EQ(P::call(rt, p, GetChildren{}).value().first, c.first) << "P still holds the stale pid";
}

// 110: a child that calls its starter from its own init deadlocks until the start times
// out (the starter waits for the child's init): do it from handle_continue instead.
TEST(Scenario, seed_110_child_calling_its_parent_from_init_times_out) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Result<Pid> p = P::start(rt, StartOptions{}, inbox.pid(), false, false, true);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(p.error().reason(), ExitReason::timeout()) << p.error();
}

// 111: P stops with normal. A linked child that does not trap exits ignores the normal
// signal and keeps running: it dangles.
TEST(Scenario, seed_111_parent_stopping_normal_leaves_a_non_trapping_child_dangling) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), false, false).value();
  Children c = P::call(rt, p, GetChildren{}).value();
  ASSERT_TRUE(coppice::stop(rt, p).has_value());
  EXPECT_EQ(Child::call(rt, c.first, AskParent{}).value(), 0) << "the child still runs, orphaned";
  EXPECT_TRUE(rt.process_info(c.first).value().links.empty());
}

// 111: a child that traps exits, whose start_link parent was P, runs terminate(normal) and
// stops when P stops normally.
TEST(Scenario, seed_111_trapping_child_terminates_when_its_parent_stops_normal) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid p = P::start(rt, StartOptions{}, inbox.pid(), false, true).value();
  Children c = P::call(rt, p, GetChildren{}).value();
  coppice::Ref m1 = inbox.monitor(c.first);
  coppice::Ref m2 = inbox.monitor(c.second);
  ASSERT_TRUE(coppice::stop(rt, p).has_value());
  EXPECT_EQ(down_for(inbox, m1)->reason, ExitReason::normal());
  EXPECT_EQ(down_for(inbox, m2)->reason, ExitReason::normal());
  EXPECT_EQ(inbox.receive<std::string>(wait_time), "child terminate normal");
  EXPECT_EQ(inbox.receive<std::string>(wait_time), "child terminate normal");
}

}  // namespace
}  // namespace coppice_test
