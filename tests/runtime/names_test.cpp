// Registered names (SEMANTICS.md 1.6): resolve and send, released before DOWN, and the errors that name the holder.
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

TEST(Names, RegisteredNameResolvesAndReceives) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid());
  ASSERT_TRUE(rt.register_name("alpha", a));
  EXPECT_EQ(rt.whereis("alpha"), a);
  ASSERT_TRUE(rt.send("alpha", 5));
  std::optional<SawInt> seen = inbox.receive<SawInt>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->by, a);
  EXPECT_EQ(seen->value, 5);
  Result<Pong> pong = inbox.call<Pong>("alpha", Ping{}, wait_time);
  ASSERT_TRUE(pong) << pong.error();
  EXPECT_EQ(pong->pid, a);
}

TEST(Names, ProcessRegistersItselfAndIsFoundByOthers) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Registered {
    bool ok;
    Pid whereis;
  };
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    Status s = register_name("beta");
    send(observer, Registered{s.has_value(), whereis("beta")});
    co_await receive<std::string>();
  }, inbox.pid());
  std::optional<Registered> r = inbox.receive<Registered>(wait_time);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->whereis, a);
  EXPECT_EQ(rt.whereis("beta"), a);
}

// Names go before the DOWN: in the DOWN handler the name is free and can be taken again.
TEST(Names, NameIsReleasedBeforeTheDownIsSent) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("gamma", a));
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, ref));
  EXPECT_EQ(rt.whereis("gamma"), Pid{});
  const Pid b = rt.spawn<Puppet>();
  Status s = rt.register_name("gamma", b);
  EXPECT_TRUE(s) << s.error();
  EXPECT_EQ(rt.whereis("gamma"), b);
}

// ... and before the link exit, which a trapping linked process gets first.
TEST(Names, NameIsReleasedBeforeTheLinkExitIsSent) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("delta", a));
  ASSERT_TRUE(inbox.link(a));
  inbox.send(a, Die{ExitReason::other("boom")});
  ASSERT_TRUE(exit_from(inbox, a));
  EXPECT_EQ(rt.whereis("delta"), Pid{});
}

// SEMANTICS.md 1.5/1.6 again, with the dying process's other last signals made many: it holds
// 100,000 monitors, whose demonitors it also sends as it dies. Whoever gets the DOWN and
// looks the name up at once must find it gone, however long the rest of the death takes.
// (The test above cannot tell "before" from "a few instructions after".)
TEST(Names, ANameIsGoneWhenTheDownArrivesHoweverLongTheRestOfTheDeathTakes) {
  constexpr int held_monitors = 100000;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid target = rt.spawn<Puppet>();
  const Pid doomed = rt.spawn([](Pid observer, Pid target) -> Async<void> {
    if (!register_name("doomed")) coppice::exit(ExitReason::other("could not register"));
    for (int i = 0; i < held_monitors; ++i) monitor(target);
    send(observer, std::string("ready"));
    co_await receive<Die>();
    coppice::exit(ExitReason::other("boom"));
  }, inbox.pid(), target);
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  EXPECT_EQ(rt.whereis("doomed"), doomed);
  const Ref ref = inbox.monitor(doomed);
  inbox.send(doomed, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, ref));
  EXPECT_EQ(rt.whereis("doomed"), Pid{}) << "the name was still registered when the DOWN arrived";
}

TEST(Names, TakenNameFailsWithNameTakenNamingTheHolder) {
  Runtime rt(workers(2));
  const Pid holder = rt.spawn<Puppet>();
  const Pid other = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("taken", holder));
  Status s = rt.register_name("taken", other);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::name_taken);
  EXPECT_EQ(s.error().pid(), holder);
  EXPECT_NE(s.error().message().find("taken"), std::string::npos) << s.error();
  EXPECT_NE(s.error().message().find(holder.to_string()), std::string::npos) << s.error();
  EXPECT_EQ(rt.whereis("taken"), holder);
}

TEST(Names, SecondNameForTheSameProcessFailsWithAlreadyNamed) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("first", a));
  Status s = rt.register_name("second", a);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::already_named);
  EXPECT_EQ(s.error().pid(), a);
  EXPECT_NE(s.error().message().find("first"), std::string::npos) << s.error();
  EXPECT_EQ(rt.whereis("second"), Pid{});
  EXPECT_EQ(rt.whereis("first"), a);
}

TEST(Names, RegisteringTheSameNameTwiceForTheHolderIsStillNameTaken) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("once", a));
  Status s = rt.register_name("once", a);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::name_taken);
}

TEST(Names, UnregisterOfAnUnknownNameFailsWithNotRegistered) {
  Runtime rt(workers(2));
  Status s = rt.unregister_name("nobody");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::not_registered);
  EXPECT_NE(s.error().message().find("nobody"), std::string::npos) << s.error();
}

TEST(Names, UnregisterFreesTheNameAndTheProcessForANewName) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("epsilon", a));
  ASSERT_TRUE(rt.unregister_name("epsilon"));
  EXPECT_EQ(rt.whereis("epsilon"), Pid{});
  EXPECT_TRUE(rt.register_name("epsilon", b));
  EXPECT_TRUE(rt.register_name("zeta", a)) << "a kept its old name after unregister";
}

TEST(Names, RegisteringADeadPidFailsWithNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  Status s = rt.register_name("ghost", dead);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::noproc);
  EXPECT_EQ(rt.whereis("ghost"), Pid{});
}

TEST(Names, EmptyNameIsRejected) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  Status s = rt.register_name("", a);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::invalid_argument);
}

TEST(Names, SendToAnUnknownNameFailsNamingIt) {
  Runtime rt(workers(2));
  Status s = rt.send("missing", 1);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::unknown_name);
  EXPECT_NE(s.error().message().find("missing"), std::string::npos) << s.error();
}

TEST(Names, ProcessInfoShowsTheRegisteredName) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("eta", a));
  Result<ProcessInfo> info = rt.process_info(a);
  ASSERT_TRUE(info) << info.error();
  EXPECT_EQ(info->registered_name, "eta");
}
