// Bad input (issue item 16): each misuse has one clear outcome, and none of them disturbs the runtime or other processes.
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

TEST(BadInput, SendToADeadPidIsDroppedSilently) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  inbox.send(dead, 1);
  rt.send(dead, 2);
  const Pid a = rt.spawn<Puppet>(inbox.pid());
  ASSERT_TRUE(inbox.call<Done>(a, SendInt{dead, 3}, wait_time));  // from a process
  EXPECT_TRUE(answers(inbox, a)) << "the sender was hurt by sending to a dead pid";
  EXPECT_FALSE(inbox.receive_any(0ms)) << "something came back from a send to a dead pid";
}

TEST(BadInput, SendToAnUnknownNameFailsNamingIt) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  Status s = rt.send("no_such_name", 1);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::unknown_name);
  EXPECT_NE(s.error().message().find("no_such_name"), std::string::npos) << s.error();

  rt.spawn([](Pid observer) -> Async<void> {
    Status r = send("no_such_name", 1);
    send(observer, r ? std::string("ok") : r.error().to_string());
    co_return;
  }, inbox.pid());
  std::optional<std::string> in_process = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(in_process);
  EXPECT_EQ(in_process->rfind("unknown_name", 0), 0u) << *in_process;
  EXPECT_NE(in_process->find("no_such_name"), std::string::npos) << *in_process;
}

TEST(BadInput, LinkToADeadPidIsNoprocForANonTrappingProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid a = rt.spawn<Puppet>();
  Result<Outcome> r = inbox.call<Outcome>(a, LinkTo{dead}, wait_time);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error);
  EXPECT_EQ(r->error->kind(), ErrorKind::noproc) << *r->error;
  EXPECT_EQ(r->error->pid(), dead);
  EXPECT_TRUE(answers(inbox, a));
}

TEST(BadInput, MonitorOfADeadPidGivesAnImmediateDownNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Ref ref = inbox.monitor(dead);
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pid, dead);
  EXPECT_EQ(d->reason, ExitReason::noproc());
}

TEST(BadInput, MonitorOfTheNullPidGivesDownNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Ref ref = inbox.monitor(Pid{});
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::noproc());
}

// A null Ref names no monitor: nothing to remove, whatever else the inbox monitors.
TEST(BadInput, DemonitorOfTheNullRefReturnsFalse) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Ref ref = inbox.monitor(a);  // the monitor table is not empty
  EXPECT_FALSE(inbox.demonitor(Ref{}));
  EXPECT_TRUE(inbox.demonitor(ref)) << "the real monitor was disturbed";
}

TEST(BadInput, RegisteringATakenNameFailsNamingTheHolder) {
  Runtime rt(workers(2));
  const Pid holder = rt.spawn<Puppet>();
  const Pid other = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("svc", holder));
  Status s = rt.register_name("svc", other);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::name_taken);
  EXPECT_EQ(s.error().pid(), holder);
  EXPECT_NE(s.error().message().find(holder.to_string()), std::string::npos) << s.error();
}

TEST(BadInput, RegisteringASecondNameFailsNamingTheProcess) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("one", a));
  Status s = rt.register_name("two", a);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::already_named);
  EXPECT_EQ(s.error().pid(), a);
  EXPECT_NE(s.error().message().find("one"), std::string::npos) << s.error();
}

TEST(BadInput, UnregisteringAnUnknownNameFails) {
  Runtime rt(workers(2));
  Status s = rt.unregister_name("never_registered");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::not_registered);
  EXPECT_NE(s.error().message().find("never_registered"), std::string::npos) << s.error();
}

TEST(BadInput, ExitSignalToADeadPidHasNoEffect) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid sender = rt.spawn<Puppet>(inbox.pid(), true);
  rt.exit(dead, ExitReason::kill());
  ASSERT_TRUE(inbox.call<Done>(sender, SendExit{dead, ExitReason::other("boom")}, wait_time));
  EXPECT_TRUE(answers(inbox, sender));
  EXPECT_FALSE(inbox.receive_any(0ms)) << "an exit signal to a dead pid came back as something";
  EXPECT_TRUE(answers(inbox, rt.spawn<Puppet>()));
}

TEST(BadInput, CancellingATimerThatFiredReturnsFalseAndDoesNothing) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  TimerRef t = rt.send_after(1ms, inbox.pid(), 1);
  ASSERT_TRUE(inbox.receive<int>(wait_time));
  EXPECT_FALSE(rt.cancel_timer(t));
  rt.send_after(5ms, inbox.pid(), 2);
  std::optional<int> next = inbox.receive<int>(wait_time);
  ASSERT_TRUE(next) << "timers stopped working after a stale cancel";
  EXPECT_EQ(*next, 2);
}

// Only that process dies, with an error reason carrying the exception's type and what();
// its links and monitors fire; the crash is reported with its pid; the rest carries on.
TEST(BadInput, AnExceptionEscapingAHandlerCrashesOnlyThatProcess) {
  LogLines log;
  Runtime rt(logging_to(log, workers(2)));
  Inbox inbox(rt);
  const Pid victim = rt.spawn<Puppet>();
  const Pid bystander = rt.spawn<Puppet>();
  const Pid linked_trapping = rt.spawn<Puppet>(inbox.pid(), true);
  ASSERT_TRUE(inbox.call<Outcome>(linked_trapping, LinkTo{victim}, wait_time));
  ASSERT_TRUE(inbox.link(victim));
  const Ref ref = inbox.monitor(victim);

  inbox.send(victim, Throw{"bad input"});

  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason.kind(), ExitReason::Kind::error) << d->reason;
  EXPECT_NE(d->reason.error_type().find("PuppetError"), std::string::npos) << d->reason.error_type();
  EXPECT_EQ(d->reason.detail(), "bad input");
  std::optional<Exit> e = exit_from(inbox, victim);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, d->reason);
  std::optional<SawExit> peer = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->exit.reason, d->reason);

  EXPECT_TRUE(answers(inbox, bystander));
  EXPECT_TRUE(answers(inbox, linked_trapping));
  EXPECT_TRUE(answers(inbox, rt.spawn<Puppet>()));
  EXPECT_TRUE(log.contains(victim.to_string())) << "the crash was not reported with the pid";
}

// A payload whose copy throws: the send throws before anything is pushed.
struct RefusesToBeCopied {
  RefusesToBeCopied() = default;
  RefusesToBeCopied(const RefusesToBeCopied&) { throw std::runtime_error("refuses to be copied"); }
  RefusesToBeCopied(RefusesToBeCopied&&) noexcept = default;
};

// The envelope was allocated before the payload's constructor threw: it goes back to the
// allocator it came from (under ASan a mismatched free aborts the test), nothing arrives,
// and sending works as before.
TEST(BadInput, APayloadWhoseConstructorThrowsFailsTheSendAndNothingArrives) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const RefusesToBeCopied payload;
  EXPECT_THROW(inbox.send(inbox.pid(), payload), std::runtime_error);
  EXPECT_THROW(rt.send(inbox.pid(), payload), std::runtime_error);
  EXPECT_THROW((void)Message::of(payload), std::runtime_error);
  EXPECT_FALSE(inbox.receive_any(0ms)) << "a send whose payload was never built delivered something";
  inbox.send(inbox.pid(), 7);
  std::optional<int> after = inbox.receive<int>(wait_time);
  ASSERT_TRUE(after) << "sending stopped working after a payload threw";
  EXPECT_EQ(*after, 7);
}
