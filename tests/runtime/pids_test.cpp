// Pids (SEMANTICS.md 1.1): printed as <0.slot.generation>, and never naming a later process.
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "coppice/test_hooks.hpp"

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

// A slot whose generation reaches the end of its range is retired for good (SEMANTICS.md 1.1:
// a pid is never reused within a runtime's life). The hook starts fresh slots one generation
// before the last, as 2^28 - 2 spawns through one slot would have left it; one worker, and
// each child dies before the next spawn, so that the worker's free-slot cache would hand the
// same slot straight back.
TEST(Pids, ASlotIsRetiredAfterItsLastGeneration) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  test_hooks::start_fresh_slots_at(rt, 1000, Pid::last_generation - 1);
  rt.spawn([](Pid observer) -> Async<void> {
    for (int i = 0; i < 6; ++i) {
      // Not a structured binding: clang 14 cannot capture one in the lambda below.
      const std::pair<Pid, Ref> started = spawn_monitor([]() -> Async<void> { co_return; });
      const Pid child = started.first;
      const Ref ref = started.second;
      co_await receive_if([ref](const Message& m) { return m.is<Down>() && m.get_if<Down>()->ref == ref; });
      send(observer, child);
    }
  }, inbox.pid());
  std::vector<Pid> children;
  for (int i = 0; i < 6; ++i) {
    std::optional<Pid> child = inbox.receive<Pid>(wait_time);
    ASSERT_TRUE(child);
    children.push_back(*child);
  }
  // The first child's slot (a fresh one, after the spawner's) gives its last two
  // generations, then never again.
  const std::uint32_t first = children[0].slot();
  EXPECT_GT(first, 1000u);
  EXPECT_EQ(children[0], Pid::from_parts(first, Pid::last_generation - 1, children[0].runtime_tag()));
  EXPECT_EQ(children[1], Pid::from_parts(first, Pid::last_generation, children[0].runtime_tag()));
  std::set<std::uint32_t> later_slots;
  for (std::size_t i = 2; i < children.size(); ++i) {
    EXPECT_NE(children[i].slot(), first) << children[i] << ": a slot handed out after its last generation";
    EXPECT_GE(children[i].generation(), Pid::last_generation - 1) << children[i] << " reuses a generation";
    later_slots.insert(children[i].slot());
  }
  // Each later slot also starts one before the end: it serves two children, then retires.
  EXPECT_EQ(later_slots.size(), 2u);
}

// The table is full only once every slot is retired or in use: a spawn then fails with a
// clear error (std::length_error), and the refused process is destroyed, not leaked.
TEST(Pids, AFullTableRefusesASpawnWithAClearError) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  test_hooks::start_fresh_slots_at(rt, Pid::max_slot - 1, Pid::last_generation);
  const Pid a = rt.spawn<Puppet>();
  const Pid b = rt.spawn<Puppet>();
  EXPECT_EQ(a.slot(), Pid::max_slot - 1);
  EXPECT_EQ(b.slot(), Pid::max_slot);
  try {
    rt.spawn<Puppet>();
    ADD_FAILURE() << "a spawn succeeded with every slot in use";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("process table is full"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Inbox{rt}, std::length_error) << "an inbox takes a slot too";
  EXPECT_TRUE(answers(inbox, a));
  EXPECT_TRUE(answers(inbox, b));
}
