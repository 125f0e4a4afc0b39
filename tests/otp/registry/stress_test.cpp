// Registry under load: many processes registering, unregistering, fighting over unique keys
// and dying in every way at once, across partitions; afterwards nothing of them is left.
#include <string>
#include <vector>

#include "otp/registry/registry_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::ExitReason;
using coppice::Pid;
using coppice::Registry;
using coppice::RegistryKeys;

struct Ready {};
struct Never {};

constexpr int processes = 400;
constexpr int keys_each = 12;
constexpr int contested_keys = 40;  // unique keys many processes try to take

// One registrant's life: registers (some unique keys are contested, some duplicate keys are
// shared, a few registered twice), unregisters some, reads, then ends as `i % 4` says.
// It starts on Go, once the test monitors it: a monitor set on a process already exiting
// gives its DOWN at once, possibly before the process's EXIT has reached the partitions.
Async<void> churn(int i, Pid observer) {
  Go go = co_await coppice::receive<Go>();
  (void)go;
  for (int j = 0; j < keys_each; ++j) {
    const std::string contested = "c" + std::to_string((i * 7 + j) % contested_keys);
    (void)Registry::register_key("stress_unique", contested, i);  // already_registered is fine
    (void)Registry::register_key("stress_unique", "own" + std::to_string(i) + "_" + std::to_string(j), j);
    (void)Registry::register_key("stress_dup", "topic" + std::to_string(j % 3), i);
    (void)Registry::register_key("stress_dup_key", "topic" + std::to_string(j % 5), i);
    if (j % 3 == 0) {
      (void)Registry::unregister("stress_unique", contested);
      (void)Registry::unregister("stress_dup", "topic" + std::to_string(j % 3));
    }
    (void)Registry::lookup("stress_dup", "topic1");
    (void)Registry::whereis_name("stress_unique", contested);
  }
  coppice::send(observer, Ready{});
  switch (i % 4) {
    case 0:
      co_return;  // normal exit, keys still held
    case 1:
      throw std::runtime_error("registrant crashed");
    case 2:
      coppice::exit(ExitReason::other("gave up"));
    default: {
      Never n = co_await coppice::receive<Never>();  // killed by the test
      (void)n;
    }
  }
}

TEST(RegistryStress, EverythingADeadRegistrantHeldIsGoneAfterTheirDownsAndASync) {
  coppice::Runtime rt(quiet(workers(2)));
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_unique", RegistryKeys::unique, 4)).has_value());
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_dup", RegistryKeys::duplicate, 3)).has_value());
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_dup_key", RegistryKeys::duplicate_by_key, 2)).has_value());
  coppice::Inbox inbox(rt);

  std::vector<Pid> pids;
  std::vector<coppice::Ref> watches;
  for (int i = 0; i < processes; ++i) {
    const Pid p = rt.spawn(churn, i, inbox.pid());
    pids.push_back(p);
    watches.push_back(inbox.monitor(p));
  }
  for (Pid p : pids) inbox.send(p, Go{});
  for (int i = 0; i < processes; ++i) ASSERT_TRUE(inbox.receive<Ready>(wait_time).has_value()) << "ready " << i;
  for (int i = 3; i < processes; i += 4) inbox.exit(pids[i], ExitReason::kill());
  for (std::size_t i = 0; i < watches.size(); ++i) ASSERT_TRUE(down_for(inbox, watches[i]).has_value()) << "down " << i;

  for (const char* name : {"stress_unique", "stress_dup", "stress_dup_key"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(Registry::sync(rt, name).has_value());
    EXPECT_EQ(Registry::count(rt, name).value(), 0u);
    for (Pid p : pids) ASSERT_TRUE(Registry::keys(rt, name, p).value().empty()) << p;
    // No partition is still linked to a dead registrant.
    const std::vector<Pid> partitions = Registry::partitions(rt, name).value();
    for (Pid partition : partitions) {
      coppice::Result<coppice::ProcessInfo> info = rt.process_info(partition);
      ASSERT_TRUE(info.has_value());
      EXPECT_EQ(info->links.size(), 1u) << "only the registry's top";
    }
  }
}

// Registrants come and go while others look up: a lookup from another thread sees whole
// entries, and whereis_name only ever returns a live process.
TEST(RegistryStress, ReadersOnPlainThreadsRunAlongsideWriters) {
  coppice::Runtime rt(quiet(workers(2)));
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_unique", RegistryKeys::unique, 2)).has_value());
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_dup", RegistryKeys::duplicate, 2)).has_value());
  ASSERT_TRUE(Registry::start(rt, registry_options("stress_dup_key", RegistryKeys::duplicate_by_key, 2)).has_value());
  coppice::Inbox inbox(rt);
  std::vector<coppice::Ref> watches;
  for (int i = 0; i < 100; ++i) {
    const Pid p = rt.spawn(churn, i * 4, inbox.pid());  // i * 4: each ends normally
    watches.push_back(inbox.monitor(p));
    inbox.send(p, Go{});
  }
  std::size_t reads = 0;
  for (std::size_t done = 0; done < watches.size();) {
    for (int c = 0; c < contested_keys; ++c) {
      const std::string key = "c" + std::to_string(c);
      const Pid holder = Registry::whereis_name(rt, "stress_unique", key);
      if (holder) {
        auto entries = Registry::lookup<int>(rt, "stress_unique", key);
        ASSERT_TRUE(entries.has_value());
      }
      ++reads;
    }
    if (down_for(inbox, watches[done], std::chrono::nanoseconds(0))) ++done;
  }
  EXPECT_GT(reads, 0u);
  ASSERT_TRUE(Registry::sync(rt, "stress_unique").has_value());
  EXPECT_EQ(Registry::count(rt, "stress_unique").value(), 0u);
}

}  // namespace
}  // namespace coppice_test
