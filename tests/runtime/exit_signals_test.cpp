// Exit signals: SEMANTICS.md 1.4 row by row, then how a dying process's reason travels its links.
#include <atomic>
#include <future>
#include <memory>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Entered {};
// Tells `observer` it is inside the callback, waits until the test opens `gate`, then unlinks.
struct UnlinkWhenOpened {
  Pid peer;
  std::shared_future<void> gate;
  Pid observer;
};

class GatedUnlinker : public Puppet {
 public:
  using Puppet::Puppet;
  void handle(Message m) override {
    if (auto* u = m.get_if<UnlinkWhenOpened>()) {
      send(u->observer, Entered{});
      // Blocks this worker on purpose: the peer's exit signal must land in our mailbox
      // while we are inside a callback, before the unlink.
      u->gate.wait_for(wait_time);
      unlink(u->peer);
      return;
    }
    Puppet::handle(std::move(m));
  }
};

// Asks `sender` (a puppet) to send exit(to, reason); returns once it has.
void exit_via(Inbox& inbox, Pid sender, Pid to, ExitReason reason) {
  ASSERT_TRUE(inbox.call<Done>(sender, SendExit{to, std::move(reason)}, wait_time));
}

void link_puppets(Inbox& inbox, Pid a, Pid b) {
  Result<Outcome> r = inbox.call<Outcome>(a, LinkTo{b}, wait_time);
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->error.has_value()) << *r->error;
}

std::optional<SawExit> saw_exit(Inbox& inbox, std::chrono::nanoseconds timeout = wait_time) {
  return inbox.receive<SawExit>(timeout);
}

}  // namespace

// Row: link flag set, link already removed -> dropped.
TEST(ExitSignals, LinkedExitArrivingAfterUnlinkIsDropped) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<GatedUnlinker>(inbox.pid(), /*trap=*/true);
  const Pid b = rt.spawn<Puppet>();
  link_puppets(inbox, a, b);

  std::promise<void> gate;
  inbox.send(a, UnlinkWhenOpened{b, gate.get_future().share(), inbox.pid()});
  ASSERT_TRUE(inbox.receive<Entered>(wait_time));
  // b dies still linked to a; its exit signal waits in a's mailbox while a is in a callback.
  const Ref rb = inbox.monitor(b);
  inbox.send(b, Die{ExitReason::other("boom")});
  std::optional<Down> down_b = down_for(inbox, rb);
  ASSERT_TRUE(down_b);
  EXPECT_EQ(down_b->reason, ExitReason::other("boom"));
  gate.set_value();  // a unlinks b, then finds b's exit signal: the link is gone, so it is dropped

  ASSERT_TRUE(answers(inbox, a));  // a handled everything queued before the Ping
  EXPECT_FALSE(inbox.receive<SawExit>(0ms)) << "a trapping process got an Exit through a removed link";
}

// Row: explicit exit(P, kill) -> P dies with killed, trapping or not.
TEST(ExitSignals, ExplicitKillOfTrappingProcessDiesKilled) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid trapping = rt.spawn<Puppet>(inbox.pid(), true);
  const Pid plain = rt.spawn<Puppet>(inbox.pid(), false);
  const Pid sender = rt.spawn<Puppet>();
  ASSERT_TRUE(answers(inbox, trapping));  // init (trap_exit) has run

  const Ref rt_ref = inbox.monitor(trapping);
  const Ref rp_ref = inbox.monitor(plain);
  exit_via(inbox, sender, trapping, ExitReason::kill());
  rt.exit(plain, ExitReason::kill());

  std::optional<Down> dt = down_for(inbox, rt_ref);
  std::optional<Down> dp = down_for(inbox, rp_ref);
  ASSERT_TRUE(dt);
  ASSERT_TRUE(dp);
  EXPECT_EQ(dt->reason, ExitReason::killed());
  EXPECT_EQ(dp->reason, ExitReason::killed());
  EXPECT_FALSE(inbox.receive<SawExit>(0ms)) << "kill was trapped";
}

TEST(ExitSignals, KillSentToSelfIsUntrappableToo) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid trapping = rt.spawn<Puppet>(inbox.pid(), true);
  const Ref ref = inbox.monitor(trapping);
  inbox.send(trapping, SendExit{trapping, ExitReason::kill()});
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::killed());
}

// Row: link-caused, reason kill, receiver not trapping -> dies with kill (not killed).
TEST(ExitSignals, LinkedKillKillsNonTrappingPeerWithKillNotKilled) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  link_puppets(inbox, a, b);
  const Ref ra = inbox.monitor(a);
  const Ref rb = inbox.monitor(b);
  inbox.send(b, Die{ExitReason::kill()});  // b itself exits with reason kill

  std::optional<Down> db = down_for(inbox, rb);
  std::optional<Down> da = down_for(inbox, ra);
  ASSERT_TRUE(db);
  ASSERT_TRUE(da);
  EXPECT_EQ(db->reason, ExitReason::kill());
  EXPECT_EQ(da->reason, ExitReason::kill());
}

// Row: link-caused, reason kill, receiver trapping -> Exit{From, kill} message.
TEST(ExitSignals, LinkedKillIsTrappable) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  const Pid b = rt.spawn<Puppet>();
  link_puppets(inbox, a, b);
  inbox.send(b, Die{ExitReason::kill()});

  std::optional<SawExit> seen = saw_exit(inbox);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, a);
  EXPECT_EQ(seen->exit.from, b);
  EXPECT_EQ(seen->exit.reason, ExitReason::kill());
  EXPECT_TRUE(answers(inbox, a));
}

// Row: reason normal, sender != receiver, not trapping -> dropped.
TEST(ExitSignals, NormalFromAnotherProcessIsIgnoredWhenNotTrapping) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid sender = rt.spawn<Puppet>();
  const Ref ref = inbox.monitor(a);
  exit_via(inbox, sender, a, ExitReason::normal());
  rt.exit(a, ExitReason::normal());  // from a plain thread: not from a itself either

  ASSERT_TRUE(answers(inbox, a));  // a got both signals before this Ping, and lives
  EXPECT_FALSE(down_for(inbox, ref, 0ms));
}

// Row: reason normal, sender != receiver, not trapping -> dropped, for the link-caused
// signal: a linked peer that ends normal does not take a non-trapping process with it, and
// the link is gone.
TEST(ExitSignals, ALinkedPeerEndingNormalDoesNotKillANonTrappingProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  link_puppets(inbox, a, b);
  const Ref ref_a = inbox.monitor(a);
  const Ref ref_b = inbox.monitor(b);
  inbox.send(b, Die{ExitReason::normal()});
  std::optional<Down> d = down_for(inbox, ref_b);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::normal());
  // b's link signal went into a's mailbox before b's DOWN into ours: a has it before this Ping.
  ASSERT_TRUE(answers(inbox, a)) << "a died of its linked peer's normal exit";
  EXPECT_FALSE(down_for(inbox, ref_a, 0ms));
  Result<ProcessInfo> info = rt.process_info(a);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->links.empty());
}

// The same rule from the other side: a non-trapping process whose spawn_link'ed child returns
// (reason normal) keeps running. The child's link signal is queued before its DOWN to the
// same process, so when the DOWN is taken the signal has been acted on.
TEST(ExitSignals, ANonTrappingProcessOutlivesItsLinkedChildEndingNormal) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid parent = rt.spawn([](Pid observer) -> Async<void> {
    const Pid child = spawn_link([]() -> Async<void> {
      co_await receive<std::string>();  // "go", once monitored; then it returns: reason normal
    });
    const Ref ref = monitor(child);
    send(child, std::string("go"));
    auto is_it = [ref](const Message& m) {
      const Down* d = m.get_if<Down>();
      return d != nullptr && d->ref == ref;
    };
    Message down = co_await receive_if(is_it);
    send(observer, std::string("still running after the child's ") + down.get<Down>().reason.to_string());
    send(observer, self_info().links.size());
  }, inbox.pid());
  std::optional<std::string> said = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(said) << "the parent died with its linked child's normal exit";
  EXPECT_EQ(*said, "still running after the child's " + ExitReason::normal().to_string());
  std::optional<std::size_t> links = inbox.receive<std::size_t>(wait_time);
  ASSERT_TRUE(links);
  EXPECT_EQ(*links, 0u);
  (void)parent;
}

namespace {
// Counts the ints it handles; the first one blocks its callback until `gate` opens, so that a
// backlog and a kill can pile up in its mailbox meanwhile.
class Backlogged : public coppice::Process {
 public:
  Backlogged(std::shared_ptr<std::atomic<int>> handled, std::shared_future<void> gate, Pid observer)
      : handled_(std::move(handled)), gate_(std::move(gate)), observer_(observer) {}
  void handle(Message m) override {
    if (!m.is<int>()) return;
    if (handled_->fetch_add(1, std::memory_order_relaxed) == 0) {
      send(observer_, Entered{});
      gate_.wait_for(wait_time);  // blocks this worker on purpose
    }
  }

 private:
  std::shared_ptr<std::atomic<int>> handled_;
  std::shared_future<void> gate_;
  Pid observer_;
};
}  // namespace

// SEMANTICS.md 0 ("a kill takes effect at the process's next scheduling point") and 1.4
// (exit signals act at any point, not in mailbox order): a kill queued behind a backlog of
// 20,000 messages ends the process at the end of its current turn (at most messages_per_turn
// callbacks), not after the backlog has been handled.
TEST(ExitSignals, AKillActsAtTheNextTurnNotAfterTheBacklog) {
  constexpr int backlog = 20000;
  constexpr unsigned per_turn = 100;
  Runtime rt(workers(2, per_turn));
  Inbox inbox(rt);
  auto handled = std::make_shared<std::atomic<int>>(0);
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  const Pid p = rt.spawn<Backlogged>(handled, gate, inbox.pid());
  const Ref ref = inbox.monitor(p);
  inbox.send(p, 0);
  ASSERT_TRUE(inbox.receive<Entered>(wait_time));
  for (int i = 1; i <= backlog; ++i) inbox.send(p, i);
  rt.exit(p, ExitReason::kill());
  open.set_value();
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::killed());
  // The DOWN went out after the process's last callback: the count is final.
  EXPECT_LE(handled->load(std::memory_order_relaxed), static_cast<int>(2 * per_turn))
      << "the kill waited behind the backlog";
}

// Row: reason normal, sender == receiver, not trapping -> terminates with normal.
TEST(ExitSignals, ExitSelfNormalTerminatesNonTrappingProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    co_await receive<std::string>();  // "go"
    coppice::exit(self(), ExitReason::normal());
    // The body would wait here forever: only the signal can end it.
    int never = co_await receive<int>();
    send(observer, never);
  }, inbox.pid());
  const Ref ref = inbox.monitor(a);
  inbox.send(a, std::string("go"));
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::normal());
}

// Row: reason normal, sender == receiver, trapping -> Exit{self, normal} message.
TEST(ExitSignals, ExitSelfNormalWhenTrappingBecomesExitMessageFromSelf) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  exit_via(inbox, a, a, ExitReason::normal());
  std::optional<SawExit> seen = saw_exit(inbox);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, a);
  EXPECT_EQ(seen->exit.from, a);
  EXPECT_EQ(seen->exit.reason, ExitReason::normal());
  EXPECT_TRUE(answers(inbox, a));
}

// Row: reason normal, trapping -> Exit{From, normal} message.
TEST(ExitSignals, NormalToTrappingProcessBecomesExitMessage) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  const Pid sender = rt.spawn<Puppet>();
  exit_via(inbox, sender, a, ExitReason::normal());
  std::optional<SawExit> seen = saw_exit(inbox);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->exit.from, sender);
  EXPECT_EQ(seen->exit.reason, ExitReason::normal());
  EXPECT_TRUE(answers(inbox, a));
}

// Row: any other reason, not trapping -> dies with the same reason.
TEST(ExitSignals, OtherReasonKillsNonTrappingProcessWithThatReason) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid sender = rt.spawn<Puppet>();
  for (const ExitReason& reason : {ExitReason::shutdown(), ExitReason::shutdown("detail"), ExitReason::other("boom"),
                                   ExitReason::timeout(), ExitReason::error("Oops", "it broke")}) {
    SCOPED_TRACE(reason.to_string());
    const Pid a = rt.spawn<Puppet>();
    const Ref ref = inbox.monitor(a);
    exit_via(inbox, sender, a, reason);
    std::optional<Down> d = down_for(inbox, ref);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, reason);
  }
}

// Row: any other reason, trapping -> Exit{From, Reason} message.
TEST(ExitSignals, OtherReasonToTrappingProcessBecomesExitMessage) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), true);
  const Pid sender = rt.spawn<Puppet>();
  for (const ExitReason& reason : {ExitReason::shutdown(), ExitReason::shutdown("detail"), ExitReason::other("boom")}) {
    SCOPED_TRACE(reason.to_string());
    exit_via(inbox, sender, a, reason);
    std::optional<SawExit> seen = saw_exit(inbox);
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->exit.from, sender);
    EXPECT_EQ(seen->exit.reason, reason);
  }
  EXPECT_TRUE(answers(inbox, a));
}

// shutdown and {shutdown, T} through a link kill a non-trapping process like any abnormal reason.
TEST(ExitSignals, LinkedShutdownKillsNonTrappingPeer) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  for (const ExitReason& reason : {ExitReason::shutdown(), ExitReason::shutdown("detail")}) {
    SCOPED_TRACE(reason.to_string());
    const Pid a = rt.spawn<Puppet>();
    const Pid b = rt.spawn<Puppet>();
    link_puppets(inbox, a, b);
    const Ref ra = inbox.monitor(a);
    inbox.send(b, Die{reason});
    std::optional<Down> d = down_for(inbox, ra);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, reason);
  }
}

TEST(ExitSignals, KilledProcessPropagatesKilledToItsLinks) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid victim = rt.spawn<Puppet>();
  const Pid plain_peer = rt.spawn<Puppet>();
  const Pid trapping_peer = rt.spawn<Puppet>(inbox.pid(), true);
  link_puppets(inbox, plain_peer, victim);
  link_puppets(inbox, trapping_peer, victim);
  const Ref rp = inbox.monitor(plain_peer);
  rt.exit(victim, ExitReason::kill());

  std::optional<Down> dp = down_for(inbox, rp);
  ASSERT_TRUE(dp);
  EXPECT_EQ(dp->reason, ExitReason::killed());
  std::optional<SawExit> seen = saw_exit(inbox);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->exit.from, victim);
  EXPECT_EQ(seen->exit.reason, ExitReason::killed());
}

// Exit signals are acted on at any point, not only where the process receives them.
TEST(ExitSignals, ActOnAProcessWaitingInASelectiveReceive) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn([]() -> Async<void> {
    co_await receive<std::string>();  // never sent
  });
  const Ref ref = inbox.monitor(a);
  inbox.send(a, 1);  // queued, not matched: a stays suspended
  rt.exit(a, ExitReason::other("boom"));
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::other("boom"));
}

TEST(ExitSignals, ProcessRunsNoUserCodeAfterAFatalSignal) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid(), false);
  const Ref ref = inbox.monitor(a);
  rt.exit(a, ExitReason::other("boom"));
  inbox.send(a, 7);  // behind the exit signal: must never be handled
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::other("boom"));
  // Anything a forwarded would have reached us before its Down.
  EXPECT_FALSE(inbox.receive<SawInt>(0ms));
}

// An inbox traps exits, kill included: it is never killed by a signal.
TEST(ExitSignals, InboxReceivesEvenAKillAsAnExitMessage) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid sender = rt.spawn<Puppet>();
  exit_via(inbox, sender, inbox.pid(), ExitReason::kill());
  std::optional<Exit> e = exit_from(inbox, sender);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, ExitReason::kill());
}
