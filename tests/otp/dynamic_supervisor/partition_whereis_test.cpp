// PartitionSupervisor::whereis while partitions crash and restart: it never hands out a pid
// that was already dead (its header: noproc while the partition restarts).
#include <array>
#include <atomic>
#include <thread>

#include "coppice/partition_supervisor.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Inbox;
using coppice::PartitionSupervisor;
using coppice::PartitionSupervisorOptions;
using coppice::Pid;
using coppice::Result;

struct Which {};

class Shard : public coppice::GenServer<Shard> {
 public:
  using calls = coppice::Protocol<Which>;
  int handle_call(Which) { return 1; }
};

PartitionSupervisorOptions shards(std::size_t n) {
  PartitionSupervisorOptions o;
  o.child = coppice::child<Shard>("shard");
  o.partitions = n;
  o.intensity = 1000000;  // the crashes are not meant to trip the intensity
  return o;
}

// Between a partition's death and its restart, whereis answers noproc, never the dead pid:
// the supervisor is held (suspended) with the partition's EXIT in its mailbox, so the window
// stays open as long as the test looks.
TEST(PartitionSupervisorWhereis, NeverAnswersADeadPartitionWhileItRestarts) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = PartitionSupervisor::start(rt, shards(2)).value();
  const Pid before = PartitionSupervisor::whereis(rt, sup, 1).value();
  const Pid other = PartitionSupervisor::whereis(rt, sup, 0).value();
  ASSERT_TRUE(coppice::sys::suspend(rt, sup));
  const coppice::Ref ref = inbox.monitor(before);
  rt.exit(before, ExitReason::kill());
  ASSERT_TRUE(down_for(inbox, ref));
  Result<Pid> during = PartitionSupervisor::whereis(rt, sup, 1);
  ASSERT_FALSE(during) << "handed out " << during.value() << ", dead since its DOWN came";
  EXPECT_EQ(during.error().kind(), ErrorKind::noproc);
  EXPECT_EQ(PartitionSupervisor::whereis(rt, sup, 0).value(), other) << "the other partition still routes";
  ASSERT_TRUE(coppice::sys::resume(rt, sup));
  // The supervisor has restarted the partition before it answers our next request.
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value(), (coppice::ChildCounts{2, 2, 0, 2}));
  const Pid after = PartitionSupervisor::whereis(rt, sup, 1).value();
  EXPECT_NE(after, before);
  EXPECT_TRUE(Shard::call(rt, after, Which{}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::size_t crashes = 100;  // the sanitizers run 5-20x slower
#else
constexpr std::size_t crashes = 400;
#endif
constexpr std::size_t partitions = 4;

// The chaos thread kills one partition at a time and, once its DOWN came, records it as dead.
// Two threads resolve keys all along: a lookup that began after a partition's DOWN must not
// return that partition (pids are never reused, so equal bits are the same dead process).
TEST(PartitionSupervisorWhereis, ResolversNeverGetAPartitionKnownDeadUnderCrashes) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = PartitionSupervisor::start(rt, shards(partitions)).value();
  // Release (chaos, after the DOWN) / acquire (resolvers, before the lookup).
  std::array<std::atomic<std::uint64_t>, partitions> dead{};
  std::atomic<bool> crashing{true};  // relaxed: only ends the resolvers' loops
  std::atomic<std::size_t> stale{0}, resolved{0}, refused{0};
  auto resolve = [&](unsigned seed) {
    std::size_t key = seed;
    while (crashing.load(std::memory_order_relaxed)) {
      const std::size_t i = ++key % partitions;
      const std::uint64_t known_dead = dead[i].load(std::memory_order_acquire);
      Result<Pid> p = PartitionSupervisor::whereis(rt, sup, i);
      if (!p) {
        EXPECT_EQ(p.error().kind(), ErrorKind::noproc);
        refused.fetch_add(1, std::memory_order_relaxed);
      } else if (known_dead != 0 && p->bits() == known_dead) {
        stale.fetch_add(1, std::memory_order_relaxed);
      } else {
        resolved.fetch_add(1, std::memory_order_relaxed);
      }
      std::this_thread::yield();  // leave the workers their share of a small machine
    }
  };
  std::thread r1(resolve, 0), r2(resolve, 1);
  for (std::size_t n = 0; n < crashes; ++n) {
    const std::size_t i = n % partitions;
    // The partition's current pid, from the supervisor (it answers after any restart it owes).
    Pid victim;
    const std::vector<coppice::ChildInfo> children = PartitionSupervisor::which_children(rt, sup).value();
    for (const auto& c : children)
      if (c.id == std::to_string(i)) victim = c.pid;
    ASSERT_TRUE(victim) << "partition " << i << " not running";
    const coppice::Ref ref = inbox.monitor(victim);
    rt.exit(victim, ExitReason::kill());
    ASSERT_TRUE(down_for(inbox, ref));
    dead[i].store(victim.bits(), std::memory_order_release);
  }
  crashing.store(false, std::memory_order_relaxed);
  r1.join();
  r2.join();
  EXPECT_EQ(stale.load(), 0u) << "lookups that returned a partition already known dead (" << resolved.load()
                              << " live, " << refused.load() << " noproc, over " << crashes << " crashes)";
  EXPECT_GT(resolved.load(), 0u);
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

}  // namespace
}  // namespace coppice_test
