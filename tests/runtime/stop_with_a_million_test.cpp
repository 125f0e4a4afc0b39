// Destroying a runtime with a million live processes: every process is stopped, every
// destructor runs, nothing leaks (the ASan pass checks the last with its leak check).
#include <gtest/gtest.h>

#include <atomic>

#include "coppice/coppice.hpp"

using namespace coppice;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr long processes = 200'000;  // TSan's shadow memory and speed: a fifth of the load
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr long processes = 200'000;
#else
constexpr long processes = 1'000'000;
#endif
#else
constexpr long processes = 1'000'000;
#endif

std::atomic<long> started{0};
std::atomic<long> destroyed{0};

struct AllStarted {};

// Idle until stopped. Some hold a pending timer; the last to start tells the test.
struct Idle : Process {
  Pid report;
  long index;
  Idle(Pid r, long i) : report(r), index(i) {}
  ~Idle() override { destroyed.fetch_add(1, std::memory_order_relaxed); }
  void init() override {
    if (index % 1000 == 0) send_after(std::chrono::hours(1), self(), 1);
    if (started.fetch_add(1, std::memory_order_relaxed) + 1 == processes) send(report, AllStarted{});
  }
  void handle(Message) override {}
};

// Spawns them all: every hundredth monitored, every seventh sent a message it will never read.
struct Spawner : Process {
  Pid report;
  explicit Spawner(Pid r) : report(r) {}
  void init() override {
    for (long i = 0; i < processes; ++i) {
      Pid child = (i % 100 == 0) ? spawn_monitor<Idle>(report, i).first : spawn<Idle>(report, i);
      if (i % 7 == 0) send(child, i);
    }
  }
  void handle(Message) override {}
};

}  // namespace

TEST(RuntimeLifecycle, DestroyingTheRuntimeWithAMillionLiveProcessesStopsEveryOne) {
  started = 0;
  destroyed = 0;
  {
    Runtime rt;
    Inbox inbox(rt);
    rt.spawn<Spawner>(inbox.pid());
    ASSERT_TRUE(inbox.receive<AllStarted>(120s)) << started.load() << " of " << processes << " started";
    EXPECT_GE(rt.process_count(), static_cast<std::size_t>(processes));
  }  // ~Inbox, then ~Runtime: kills all of them and joins every thread
  EXPECT_EQ(destroyed.load(), processes);
}
