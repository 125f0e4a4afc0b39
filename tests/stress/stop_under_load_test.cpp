// Stopping a runtime while its processes flood each other: no crash, no hang, no leak, no
// use after free (the ASan pass checks the last two; the counters catch leaks anywhere).
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::Pid;
using coppice::stress::Counted;
using coppice::stress::patience;
using coppice::stress::Random;

namespace {

struct Flood {
  Counted payload;
};
struct Peers {
  std::shared_ptr<const std::vector<Pid>> pids;
};
struct Ping {
  Counted payload;
};
struct Pong {
  Counted payload;
};

struct Traffic {
  std::atomic<std::uint64_t> handled{0};
  std::atomic<long> live_processes{0};
};

// Each message handled sends two more (a few in flight grow into a flood), spawns linked
// children now and then, and its destructor sends too: all of it still going on when the
// runtime is told to stop.
struct Flooder : coppice::Process {
  Flooder(Traffic* traffic, std::uint64_t seed) : traffic_(traffic), random_(seed) {
    traffic_->live_processes.fetch_add(1, std::memory_order_relaxed);
  }
  ~Flooder() override {
    if (peers_) coppice::send(pick(), Flood{});  // a destructor may still send
    traffic_->live_processes.fetch_sub(1, std::memory_order_relaxed);
  }
  void handle(coppice::Message m) override {
    if (auto* p = m.get_if<Peers>()) {
      peers_ = p->pids;
      coppice::send(pick(), Flood{});
      return;
    }
    if (!peers_) return;
    traffic_->handled.fetch_add(1, std::memory_order_relaxed);
    if (m.is<Flood>()) {
      // Bounded growth: two sends while the flood is young, one after.
      const unsigned fanout = traffic_->handled.load(std::memory_order_relaxed) < 20000 ? 2 : 1;
      for (unsigned i = 0; i < fanout; ++i) coppice::send(pick(), Flood{});
      // An idle linked child, killed only by the stop; and a short-lived one that floods
      // from its destructor.
      if (random_.below(64) == 0) coppice::spawn_link<Flooder>(traffic_, random_.next());
      if (random_.below(32) == 0) {
        Pid child = coppice::spawn<Flooder>(traffic_, random_.next());
        coppice::send(child, Peers{peers_});
        coppice::exit(child, coppice::ExitReason::shutdown());
      }
    } else if (auto* ping = m.get_if<Ping>()) {
      if (auto from = m.reply_to()) coppice::reply(*from, Pong{std::move(ping->payload)});
    }
  }
  Pid pick() { return (*peers_)[random_.below(peers_->size())]; }
  Traffic* traffic_;
  Random random_;
  std::shared_ptr<const std::vector<Pid>> peers_;
};

// A coroutine process in the middle of calls and timed receives when the stop comes.
coppice::Async<void> caller(std::shared_ptr<const std::vector<Pid>> peers, std::uint64_t seed) {
  Random r(seed);
  for (;;) {
    // Named locals, not temporaries inside co_await: g++ 12 destroys such temporaries twice
    // (see README, "Known limits").
    Ping ping;
    auto reply = co_await coppice::call<Pong>((*peers)[r.below(peers->size())], std::move(ping), 1000ms);
    (void)reply;
    auto late = co_await coppice::receive<Pong>(std::chrono::milliseconds(r.below(2)));
    (void)late;
    coppice::send_after(5ms, (*peers)[r.below(peers->size())], Flood{});
  }
}

struct World {
  std::shared_ptr<std::vector<Pid>> flooders = std::make_shared<std::vector<Pid>>();
};

World populate(coppice::Runtime& rt, Traffic& traffic, std::uint32_t flooders, std::uint32_t callers, std::uint64_t seed) {
  World world;
  for (std::uint32_t i = 0; i < flooders; ++i) world.flooders->push_back(rt.spawn<Flooder>(&traffic, seed * 1000 + i));
  for (Pid p : *world.flooders) rt.send(p, Peers{world.flooders});
  for (std::uint32_t i = 0; i < callers; ++i)
    rt.spawn(caller, std::shared_ptr<const std::vector<Pid>>(world.flooders), seed * 1000 + i);
  return world;
}

bool heavy_traffic(Traffic& traffic, std::uint64_t messages) {
  return coppice::stress::eventually([&] { return traffic.handled.load(std::memory_order_relaxed) >= messages; });
}

}  // namespace

TEST(StopStress, DestroyingTheRuntimeDuringAFloodStopsEverything) {
  const int rounds = 2 * coppice::stress::scale;
  for (int round = 0; round < rounds; ++round) {
    Traffic traffic;
    {
      coppice::stress::Watchdog watchdog("DestroyingTheRuntimeDuringAFloodStopsEverything", patience);
      coppice::Runtime rt(coppice::stress::options(2 + round % 3, std::chrono::microseconds(round % 2 * 50)));
      populate(rt, traffic, 64, 8, round);
      ASSERT_TRUE(heavy_traffic(traffic, 2000 + round * 500)) << "round " << round << ": no traffic";
    }  // ~Runtime with everything in flight
    EXPECT_EQ(traffic.live_processes.load(), 0) << "round " << round << ": a process object was never destroyed";
    EXPECT_EQ(Counted::live.load(), 0) << "round " << round << ": a message was never freed";
  }
}

// Plain threads keep sending, calling and linking through the stop, and after it.
TEST(StopStress, StoppingWhilePlainThreadsSend) {
  const int rounds = coppice::stress::scale;
  for (int round = 0; round < rounds; ++round) {
    Traffic traffic;
    {
      coppice::stress::Watchdog watchdog("StoppingWhilePlainThreadsSend", patience);
      coppice::Runtime rt(coppice::stress::options(2));
      World world = populate(rt, traffic, 48, 4, round + 100);
      std::atomic<bool> quit{false};
      std::vector<std::thread> threads;
      for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&, t] {
          coppice::Inbox inbox(rt);
          Random r(round * 10 + t);
          const auto& pids = *world.flooders;
          while (!quit.load(std::memory_order_relaxed)) {
            const Pid to = pids[r.below(pids.size())];
            switch (r.below(4)) {
              case 0:
                rt.send(to, Flood{});
                break;
              case 1:
                inbox.send(to, Flood{});
                break;
              case 2:
                (void)inbox.call<Pong>(to, Ping{}, 20ms);
                break;
              default:
                if (inbox.link(to)) inbox.monitor(to);
                while (inbox.receive_any(0ms)) {
                }
            }
          }
        });
      }
      ASSERT_TRUE(heavy_traffic(traffic, 3000)) << "round " << round << ": no traffic";
      rt.stop();  // the threads are still at it
      quit.store(true);
      for (auto& t : threads) t.join();
      EXPECT_EQ(rt.process_count(), 0u);
    }
    EXPECT_EQ(traffic.live_processes.load(), 0) << "round " << round << ": a process object was never destroyed";
    EXPECT_EQ(Counted::live.load(), 0) << "round " << round << ": a message was never freed";
  }
}
