// A stress test: count_children against which_children after a storm of kills, exit signals
// with random reasons (to children and to the supervisor itself) and calls to the children.
//
// Bounded: about a second in a release build; smaller under the sanitizers (see `scale`).
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "coppice/dynamic_supervisor.hpp"
#include "coppice/registry.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::DynamicSupervisor;
using coppice::DynamicSupervisorOptions;
using coppice::ExitReason;
using coppice::Init;
using coppice::Pid;
using coppice::Result;
using Counts = DynamicSupervisor::ChildCounts;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::size_t scale = 4;  // the sanitizers run 5-20x slower: a quarter of the storm
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr std::size_t scale = 4;
#else
constexpr std::size_t scale = 1;
#endif
#else
constexpr std::size_t scale = 1;
#endif

constexpr std::string_view registry_name = "count_storm";

struct Ping {};

// A child that registers itself in the registry (as the chaos load's children did), so its
// deaths also go through a registry partition's cleanup.
class Registered : public coppice::GenServer<Registered> {
 public:
  using calls = coppice::Protocol<Ping>;
  explicit Registered(const std::vector<std::any>&) {}
  Init init() {
    Result<Pid> r = coppice::Registry::register_key(registry_name, coppice::self().to_string());
    if (!r) return error(ExitReason::other(r.error().message()));
    return ok();
  }
  int handle_call(Ping) { return 1; }
};

// Waits (bounded) for the storm to settle: every child restarted and alive, none restarting.
// Nothing changes after that, so one count_children then must agree with which_children.
std::vector<DynamicSupervisor::ChildInfo> settled_children(coppice::Runtime& rt, Pid sup, std::size_t n) {
  std::vector<DynamicSupervisor::ChildInfo> children;
  for (int attempt = 0; attempt < 100000; ++attempt) {
    children = DynamicSupervisor::which_children(rt, sup).value();
    bool settled = children.size() == n;
    for (const auto& c : children) settled = settled && !c.restarting && rt.alive(c.pid);
    if (settled) return children;
    std::this_thread::yield();
  }
  ADD_FAILURE() << "the supervisor never settled back to " << n << " live children; it has " << children.size();
  return children;
}

// [issue 12 item 12] Kills every few microseconds for a while, with random reasons, at the
// children and at the supervisor (which traps exits and ignores signals from strangers, a
// plain thread included), while clients call the children. Afterwards count_children says
// what which_children lists: `n` specs, `n` active, `n` workers (SEMANTICS.md 4).
TEST(DynamicSupervisorStorm, CountChildrenMatchesWhichChildrenAfterAStorm) {
  CapturedLog log;  // the crash reports of the storm
  coppice::Runtime rt(log.options());
  ASSERT_TRUE(coppice::Registry::start(rt, coppice::RegistryOptions{std::string(registry_name)}));
  DynamicSupervisorOptions options;
  options.intensity = 1000000;  // the storm is not meant to trip the intensity
  Pid sup = DynamicSupervisor::start(rt, options).value();
  const std::size_t n = 400 / scale;
  auto spec = DynamicSupervisor::share(coppice::child<Registered>("registered"));
  for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(DynamicSupervisor::start_child(rt, sup, spec));

  std::atomic<bool> storming{true};  // relaxed: only tells the clients when to stop
  std::thread client([&] {
    while (storming.load(std::memory_order_relaxed)) {
      auto children = DynamicSupervisor::which_children(rt, sup).value();
      for (const auto& c : children)
        if (!c.restarting) (void)Registered::call(rt, c.pid, Ping{}, std::chrono::milliseconds(100));
    }
  });
  std::mt19937 random(12);
  const ExitReason reasons[] = {ExitReason::kill(), ExitReason::other("chaos"), ExitReason::shutdown(),
                                ExitReason::normal(), ExitReason::error("chaos", "storm")};
  const std::size_t rounds = 3000 / scale;
  std::size_t at_supervisor = 0;
  for (std::size_t round = 0; round < rounds; ++round) {
    if (round % 10 == 0) {
      // A trappable signal at the supervisor: an EXIT from nobody it knows, ignored.
      rt.exit(sup, reasons[1 + random() % 4]);
      ++at_supervisor;
      continue;
    }
    auto children = DynamicSupervisor::which_children(rt, sup).value();
    if (children.empty()) continue;
    const auto& victim = children[random() % children.size()];
    if (!victim.restarting) rt.exit(victim.pid, reasons[random() % std::size(reasons)]);
  }
  storming.store(false, std::memory_order_relaxed);
  client.join();
  ASSERT_TRUE(rt.alive(sup)) << "the supervisor died in the storm";

  std::vector<DynamicSupervisor::ChildInfo> children = settled_children(rt, sup, n);
  std::set<Pid> distinct;
  for (const auto& c : children) distinct.insert(c.pid);
  EXPECT_EQ(distinct.size(), n);
  EXPECT_EQ(DynamicSupervisor::count_children(rt, sup).value(), (Counts{n, n, 0, n}))
      << "after " << rounds << " rounds, " << at_supervisor << " exit signals at the supervisor";
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

}  // namespace
}  // namespace coppice_test
