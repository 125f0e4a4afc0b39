// Links (SEMANTICS.md 1.3): bidirectional, at most one, either side unlinks, spawn_link is atomic, links to dead pids.
#include <algorithm>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

std::optional<Error> link_error(Inbox& inbox, Pid from, Pid to) {
  Result<Outcome> r = inbox.call<Outcome>(from, LinkTo{to}, wait_time);
  EXPECT_TRUE(r) << "the puppet did not answer";
  return r ? r->error : std::nullopt;
}

std::vector<Pid> links_of(Runtime& rt, Pid pid) {
  Result<ProcessInfo> info = rt.process_info(pid);
  EXPECT_TRUE(info) << info.error();
  return info ? info->links : std::vector<Pid>{};
}

}  // namespace

TEST(Links, DeathOfTheLinkedPeerKillsTheLinker) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  const Ref ra = inbox.monitor(a);
  inbox.send(b, Die{ExitReason::other("boom")});
  std::optional<Down> d = down_for(inbox, ra);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::other("boom"));
}

TEST(Links, DeathOfTheLinkerKillsTheLinkedPeer) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  const Ref rb = inbox.monitor(b);
  inbox.send(a, Die{ExitReason::other("boom")});
  std::optional<Down> d = down_for(inbox, rb);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::other("boom"));
}

TEST(Links, BothSidesSeeTheLink) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  EXPECT_EQ(links_of(rt, a), std::vector<Pid>{b});
  EXPECT_EQ(links_of(rt, b), std::vector<Pid>{a});
}

// At most one link between two processes: linking twice, then unlinking once, leaves none.
TEST(Links, RepeatedLinkIsANoOpAndOneUnlinkRemovesIt) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  ASSERT_FALSE(link_error(inbox, a, b));
  ASSERT_FALSE(link_error(inbox, b, a));  // from the other side, too
  EXPECT_EQ(links_of(rt, a), std::vector<Pid>{b});
  EXPECT_EQ(links_of(rt, b), std::vector<Pid>{a});

  ASSERT_TRUE(inbox.call<Done>(a, UnlinkFrom{b}, wait_time));
  EXPECT_TRUE(links_of(rt, a).empty());
  EXPECT_TRUE(links_of(rt, b).empty());

  const Ref rb = inbox.monitor(b);
  inbox.send(b, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, rb));
  EXPECT_TRUE(answers(inbox, a)) << "a died through a link that one unlink should have removed";
}

// The side that did not create the link may remove it.
TEST(Links, EitherSideMayUnlink) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  ASSERT_TRUE(inbox.call<Done>(b, UnlinkFrom{a}, wait_time));
  EXPECT_TRUE(links_of(rt, a).empty());
  EXPECT_TRUE(links_of(rt, b).empty());

  const Ref ra = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, ra));
  EXPECT_TRUE(answers(inbox, b)) << "b died through a link it had removed";
}

TEST(Links, UnlinkOfAPidNotLinkedIsHarmless) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.call<Done>(a, UnlinkFrom{b}, wait_time));
  EXPECT_TRUE(answers(inbox, a));
  EXPECT_TRUE(answers(inbox, b));
}

// After unlink returns, a trapping process hears nothing of the former peer's death.
TEST(Links, AfterUnlinkTheFormerPeersDeathIsNotSeen) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  const Pid b = rt.spawn<Puppet>();
  ASSERT_FALSE(link_error(inbox, a, b));
  ASSERT_TRUE(inbox.call<Done>(a, UnlinkFrom{b}, wait_time));
  // a monitors b: the Down comes after any exit signal b sends a (same pair, in order).
  Result<Ref> ref = inbox.call<Ref>(a, MonitorOf{b}, wait_time);
  ASSERT_TRUE(ref);
  inbox.send(b, Die{ExitReason::other("boom")});
  std::optional<SawDown> down = inbox.receive<SawDown>(wait_time);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->down.ref, *ref);
  EXPECT_FALSE(inbox.receive<SawExit>(0ms));
}

// spawn_link links before the child runs: a child that dies at once is still seen with its reason.
TEST(Links, SpawnLinkIsAtomicForATrappingParent) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid observer) -> Async<void> {
    trap_exit(true);
    const Pid child = spawn_link([]() -> Async<void> {
      throw PuppetError("died at once");
      co_return;
    });
    Exit e = co_await receive<Exit>();
    send(observer, SawExit{child, e});
  }, inbox.pid());
  std::optional<SawExit> seen = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->exit.from, seen->by);
  EXPECT_EQ(seen->exit.reason.kind(), ExitReason::Kind::error) << seen->exit.reason;
  EXPECT_EQ(seen->exit.reason.detail(), "died at once");
}

TEST(Links, SpawnLinkedChildThatDiesAtOnceTakesANonTrappingParentWithIt) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid parent = rt.spawn([]() -> Async<void> {
    co_await receive<std::string>();  // "go", once the test monitors us
    spawn_link([]() -> Async<void> {
      coppice::exit(ExitReason::other("child died"));
      co_return;
    });
    co_await receive<int>();  // never sent: only the link can end us
  });
  const Ref ref = inbox.monitor(parent);
  inbox.send(parent, std::string("go"));
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::other("child died"));
}

TEST(Links, LinkToDeadPidFailsWithNoprocWhenNotTrapping) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), false);
  std::optional<Error> err = link_error(inbox, a, dead);
  ASSERT_TRUE(err) << "link to a dead pid succeeded";
  EXPECT_EQ(err->kind(), ErrorKind::noproc) << *err;
  EXPECT_EQ(err->pid(), dead);
  EXPECT_NE(err->message().find(dead.to_string()), std::string::npos) << err->message();
  EXPECT_TRUE(answers(inbox, a)) << "a failed link must not kill the caller";
  EXPECT_TRUE(links_of(rt, a).empty());
}

TEST(Links, LinkToDeadPidWhenTrappingGivesExitNoprocFromThatPid) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  EXPECT_FALSE(link_error(inbox, a, dead));
  std::optional<SawExit> seen = inbox.receive<SawExit>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, a);
  EXPECT_EQ(seen->exit.from, dead);
  EXPECT_EQ(seen->exit.reason, ExitReason::noproc());
  EXPECT_TRUE(answers(inbox, a));
}

// An inbox traps exits, so it takes the trapping branch.
TEST(Links, InboxLinkToDeadPidGivesExitNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  EXPECT_TRUE(inbox.link(dead));
  std::optional<Exit> e = exit_from(inbox, dead);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, ExitReason::noproc());
}

TEST(Links, InboxLinkedToACrashingProcessGetsItsExit) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  inbox.send(a, Die{ExitReason::other("boom")});
  std::optional<Exit> e = exit_from(inbox, a);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, ExitReason::other("boom"));
}

TEST(Links, LinkToSelfIsANoOp) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  EXPECT_FALSE(link_error(inbox, a, a));
  EXPECT_TRUE(links_of(rt, a).empty());
}
