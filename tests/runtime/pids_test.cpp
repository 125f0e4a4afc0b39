// Pids (SEMANTICS.md 1.1): printed as <0.slot.generation>, and never naming a later process.
#include <set>
#include <sstream>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

TEST(Pids, PrintLikeAnOtpLocalPid) {
  const Pid p = Pid::from_parts(123, 4);
  EXPECT_EQ(p.to_string(), "<0.123.4>");
  std::ostringstream out;
  out << p;
  EXPECT_EQ(out.str(), "<0.123.4>");
}

TEST(Pids, ALiveProcessPrintsItsSlotAndGeneration) {
  Runtime rt(workers(2));
  const Pid a = rt.spawn<Puppet>();
  EXPECT_TRUE(a);
  EXPECT_NE(a.generation(), 0u);
  EXPECT_EQ(a.to_string(), "<0." + std::to_string(a.slot()) + "." + std::to_string(a.generation()) + ">");
}

TEST(Pids, NullPidNamesNobody) {
  EXPECT_FALSE(Pid{});
  Runtime rt(workers(2));
  EXPECT_FALSE(rt.alive(Pid{}));
}

// Slots are recycled, but with a new generation: a dead process's pid never reaches a new one.
TEST(Pids, APidIsNeverReusedForALaterProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  std::set<Pid> dead;
  for (int i = 0; i < 200; ++i) dead.insert(dead_pid(rt, inbox));
  ASSERT_EQ(dead.size(), 200u);
  std::vector<Pid> fresh;
  for (int i = 0; i < 200; ++i) {
    fresh.push_back(rt.spawn<Puppet>(inbox.pid()));
    EXPECT_EQ(dead.count(fresh.back()), 0u) << fresh.back() << " was the pid of a dead process";
  }
  // And a message to an old pid does not reach whoever took its slot.
  for (Pid old : dead) rt.send(old, 1);
  for (Pid p : fresh) ASSERT_TRUE(answers(inbox, p));  // each has handled what reached it
  EXPECT_FALSE(inbox.receive<SawInt>(0ms)) << "a message to a dead pid reached a later process";
}

TEST(Pids, AliveFollowsTheProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  EXPECT_TRUE(rt.alive(a));
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::normal()});
  ASSERT_TRUE(down_for(inbox, ref));
  EXPECT_FALSE(rt.alive(a));
}
