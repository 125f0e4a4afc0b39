// Monitors of registered names and process aliases (SEMANTICS.md 1.5).
#include <gtest/gtest.h>

#include "coppice/coppice.hpp"

using namespace coppice;
using namespace std::chrono_literals;

namespace {
struct Stop {};
struct Named : Process {
  void handle(Message m) override {
    if (m.is<Stop>()) stop_self(ExitReason::other("stopped"));
  }
};
}  // namespace

TEST(MonitorByName, DownNamesTheRegisteredNameAndCarriesThePid) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  const Pid p = rt.spawn<Named>();
  ASSERT_TRUE(rt.register_name("server", p));
  const Ref ref = inbox.monitor("server");
  inbox.send(p, Stop{});
  std::optional<Down> down = inbox.receive<Down>(5s);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, ref);
  EXPECT_EQ(down->name, "server");
  EXPECT_EQ(down->pid, p);
  EXPECT_EQ(down->reason, ExitReason::other("stopped"));
}

TEST(MonitorByName, ANameNobodyHoldsGivesDownNoprocAtOnce) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  const Ref ref = inbox.monitor("nobody");
  std::optional<Down> down = inbox.receive<Down>(5s);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, ref);
  EXPECT_EQ(down->name, "nobody");
  EXPECT_FALSE(down->pid);
  EXPECT_EQ(down->reason, ExitReason::noproc());
}

TEST(MonitorByName, FromAProcessAndDemonitoredLeavesNoDown) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  const Pid p = rt.spawn<Named>();
  ASSERT_TRUE(rt.register_name("victim", p));
  rt.spawn([](Pid observer, Pid victim) -> Async<void> {
    Ref dropped = monitor("victim");
    bool was_active = demonitor(dropped);
    Ref kept = monitor("victim");
    send(victim, Stop{});
    Down d = co_await receive<Down>();
    std::optional<Message> more = co_await receive_any(0ms);
    const bool ok = was_active && d.ref == kept && d.name == "victim" && !more.has_value();
    send(observer, ok);
  }, inbox.pid(), p);
  std::optional<bool> ok = inbox.receive<bool>(5s);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

TEST(Alias, RepliesReachAnActiveAliasAndAreDroppedAfterUnalias) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  // Replies twice to each From it is given, with a marker after each pair.
  const Pid replier = rt.spawn([]() -> Async<void> {
    for (;;) {
      From to = co_await receive<From>();
      reply(to, 1);
      reply(to, 2);
      send(to.pid, std::string("pair sent"));
    }
  });
  rt.spawn([](Pid observer, Pid replier) -> Async<void> {
    From a = alias();
    send(replier, a);
    int first = co_await receive<int>();
    int second = co_await receive<int>();
    (void)co_await receive<std::string>();
    const bool was_active = unalias(a.ref);
    send(replier, a);  // replies to a dead alias are dropped before the mailbox
    std::string marker = co_await receive<std::string>();
    std::optional<Message> left = co_await receive_any(0ms);
    send(observer, first == 1 && second == 2 && was_active && marker == "pair sent" && !left.has_value() &&
                       !unalias(a.ref));
  }, inbox.pid(), replier);
  std::optional<bool> ok = inbox.receive<bool>(5s);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}
