// HostBridge under load: host threads call through one bridge, two threads drain its fd,
// servers crash and are restarted, and the runtime stops in the middle. Every call must
// complete exactly once: a lost wake-up leaves one pending (the bounded wait fails), a
// duplicated reply completes one twice.
#include <sys/eventfd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace host_test;

namespace {

constexpr int servers = 4;
constexpr int callers = 3;
constexpr int calls_per_caller = 3000;
constexpr int total_calls = callers * calls_per_caller;

std::string server_name(int i) { return "stress_server_" + std::to_string(i); }

// Counts completions, per call and in all, and lets the test wait for them.
struct Ledger {
  std::array<std::atomic<int>, total_calls> times{};
  std::atomic<int> doubled{0};
  std::atomic<int> unexpected{0};
  std::array<std::atomic<int>, 8> by_kind{};  // 0 reply, then timeout noproc exited runtime_stopped
  std::mutex mutex;
  std::condition_variable changed;
  int completed = 0;

  void complete(int id, const Result<int>& r) {
    if (times[id].fetch_add(1) != 0) doubled.fetch_add(1);
    if (r) {
      by_kind[0].fetch_add(1);
    } else {
      switch (r.error().kind()) {
        case ErrorKind::timeout: by_kind[1].fetch_add(1); break;
        case ErrorKind::noproc: by_kind[2].fetch_add(1); break;
        case ErrorKind::exited: by_kind[3].fetch_add(1); break;
        case ErrorKind::runtime_stopped: by_kind[4].fetch_add(1); break;
        default:
          unexpected.fetch_add(1);
          ADD_FAILURE() << "call " << id << ": " << r.error();
      }
    }
    std::lock_guard lock(mutex);
    ++completed;
    changed.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, wait_time, [&] { return completed >= n; });
  }
};

// Restarts what crashed, and kills a server every 300 completions, until told to stop or
// the runtime stops under it.
void restart_servers(Runtime& rt, Ledger& ledger, const std::atomic<bool>& stop) {
  Inbox inbox(rt);
  std::minstd_rand random(7);
  int next_kill = 300;
  while (!stop.load()) {
    for (int i = 0; i < servers; ++i) {
      if (rt.whereis(server_name(i))) continue;
      const Pid fresh = rt.spawn<Server>();
      if (!fresh) return;  // the runtime is stopping
      (void)rt.register_name(server_name(i), fresh);
    }
    {
      std::unique_lock lock(ledger.mutex);
      if (!ledger.changed.wait_for(lock, wait_time, [&] { return ledger.completed >= next_kill || stop.load(); }))
        return;
    }
    next_kill += 300;
    if (const Pid old = rt.whereis(server_name(static_cast<int>(random() % servers)))) {
      const Ref ref = inbox.monitor(old);
      rt.exit(old, ExitReason::kill());
      if (!inbox.receive_if([&](const Message& m) { return m.is<Down>() && m.get<Down>().ref == ref; }, wait_time))
        return;  // the runtime stopped
    }
  }
}

// Drains the bridge whenever its fd is readable, until `quit` (another eventfd) is.
void drain_until_quit(HostBridge& bridge, int quit) {
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = bridge.fd();
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, bridge.fd(), &ev);
  ev.data.fd = quit;
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, quit, &ev);
  for (;;) {
    epoll_event got[2];
    const int n = ::epoll_wait(epoll, got, 2, -1);
    bool done = false;
    for (int k = 0; k < n; ++k) {
      if (got[k].data.fd == quit) done = true;
      else bridge.drain();
    }
    if (done) break;
  }
  ::close(epoll);
}

}  // namespace

TEST(HostBridgeStress, EveryCallCompletesOnceWhileServersCrashAndTheRuntimeStops) {
  auto ledger = std::make_unique<Ledger>();
  Runtime rt(quiet(workers(2)));
  for (int i = 0; i < servers; ++i) ASSERT_TRUE(rt.register_name(server_name(i), rt.spawn<Server>()));
  HostBridge bridge(rt);
  const int quit = ::eventfd(0, EFD_CLOEXEC);
  std::atomic<bool> stop_restarting{false};

  std::vector<std::thread> drainers;
  for (int d = 0; d < 2; ++d) drainers.emplace_back(drain_until_quit, std::ref(bridge), quit);
  std::thread restarter(restart_servers, std::ref(rt), std::ref(*ledger), std::cref(stop_restarting));
  std::vector<std::thread> calling;
  for (int c = 0; c < callers; ++c) {
    calling.emplace_back([&, c] {
      std::minstd_rand random(c + 1);
      for (int k = 0; k < calls_per_caller; ++k) {
        const int id = c * calls_per_caller + k;
        auto done = [&ledger, id](Result<int> r) { ledger->complete(id, r); };
        const std::string name = server_name(static_cast<int>(random() % servers));
        const unsigned pick = random() % 100;
        if (pick < 8) {  // held: ends by its timeout, or by the server's death
          bridge.call<int>(name, Hold{}, std::chrono::milliseconds(1 + random() % 5), done);
        } else if (pick < 10) {  // crashes the server mid-request: exited (noproc if already gone)
          bridge.call<int>(name, CrashOnCall{ExitReason::other("crash")}, wait_time, done);
        } else if (pick < 20) {  // by pid, which may be dead by the time the request arrives
          bridge.call<int>(rt.whereis(name), Ask{id}, wait_time, done);
        } else {
          bridge.call<int>(name, Ask{id}, wait_time, done);
        }
      }
    });
  }

  // Stop the runtime while calls are still being made and answered.
  ASSERT_TRUE(ledger->wait_for(total_calls * 2 / 3)) << "stuck at " << ledger->completed << " of " << total_calls;
  rt.stop();
  for (std::thread& t : calling) t.join();
  {
    std::lock_guard lock(ledger->mutex);
    stop_restarting = true;
    ledger->changed.notify_all();
  }
  restarter.join();
  const bool all = ledger->wait_for(total_calls);
  EXPECT_TRUE(all) << "calls never completed: " << total_calls - ledger->completed << " (outstanding "
                   << bridge.outstanding() << ")";
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(quit, &one, sizeof one), 8);
  for (std::thread& t : drainers) t.join();
  ::close(quit);

  EXPECT_EQ(ledger->doubled.load(), 0) << "calls completed twice";
  EXPECT_EQ(ledger->unexpected.load(), 0);
  for (int id = 0; id < total_calls; ++id) ASSERT_EQ(ledger->times[id].load(), 1) << "call " << id;
  EXPECT_EQ(bridge.outstanding(), 0u);
  EXPECT_GT(ledger->by_kind[0].load(), 0) << "no call got a reply";
  RecordProperty("replies", ledger->by_kind[0].load());
  RecordProperty("timeouts", ledger->by_kind[1].load());
  RecordProperty("noproc", ledger->by_kind[2].load());
  RecordProperty("exited", ledger->by_kind[3].load());
  RecordProperty("runtime_stopped", ledger->by_kind[4].load());
}
