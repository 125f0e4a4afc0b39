// Pids of dying processes whose slots are reused at once: a message sent to an old pid never
// reaches the slot's new process, and a send racing a death never touches freed memory.
#include <gtest/gtest.h>

#include <array>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::Pid;
using coppice::stress::patience;
using coppice::stress::Random;

namespace {

// Every message names the pid it was sent to; the receiver compares it with self().
struct Addressed {
  Pid to;
};
struct Stop {};
struct Churn {
  std::uint32_t rounds;
};

// Recently spawned pids, overwritten as new ones come: senders pick from here, so most of
// what they send goes to processes that are dying or already replaced.
struct PidRing {
  static constexpr std::size_t size = 64;
  std::array<std::atomic<std::uint64_t>, size> slots{};
  Pid pick(Random& r) const { return Pid::from_bits(slots[r.below(size)].load(std::memory_order_relaxed)); }
};

struct Tally {
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> misdelivered{0};
  std::atomic<std::uint64_t> reused_slots{0};
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> first_wrong_to{0};
  std::atomic<std::uint64_t> first_wrong_self{0};
};

// Lives for a few messages, or until stopped or killed.
struct Victim : coppice::Process {
  Victim(Tally* tally, std::uint32_t lifetime) : tally_(tally), lifetime_(lifetime) {}
  void handle(coppice::Message m) override {
    if (auto* a = m.get_if<Addressed>()) {
      if (a->to != coppice::self()) {
        if (tally_->misdelivered.fetch_add(1) == 0) {
          tally_->first_wrong_to.store(a->to.bits());
          tally_->first_wrong_self.store(coppice::self().bits());
        }
      } else {
        tally_->delivered.fetch_add(1, std::memory_order_relaxed);
      }
      if (--lifetime_ == 0) coppice::exit(coppice::ExitReason::normal());
    } else if (m.is<Stop>()) {
      coppice::exit(coppice::ExitReason::shutdown());
    }
  }
  Tally* tally_;
  std::uint32_t lifetime_;
};

// Spawns victims into the ring, and ends whoever it evicts (a stop message, a kill, or
// nothing: some die of old age). Its slot cache hands freed slots straight back.
struct Churner : coppice::Process {
  Churner(PidRing* ring, Tally* tally, Pid done_to, std::uint64_t seed)
      : ring_(ring), tally_(tally), done_to_(done_to), random_(seed) {}
  void handle(coppice::Message m) override {
    auto* c = m.get_if<Churn>();
    if (c == nullptr) return;
    for (int i = 0; i < 16; ++i) {
      const Pid p = coppice::spawn<Victim>(tally_, 1 + static_cast<std::uint32_t>(random_.below(4)));
      tally_->spawned.fetch_add(1, std::memory_order_relaxed);
      if (p.generation() > 1) tally_->reused_slots.fetch_add(1, std::memory_order_relaxed);
      const Pid old = Pid::from_bits(ring_->slots[random_.below(PidRing::size)].exchange(p.bits()));
      if (!old) continue;
      switch (random_.below(3)) {
        case 0:
          coppice::send(old, Stop{});
          break;
        case 1:
          coppice::exit(old, coppice::ExitReason::kill());
          break;
        default:
          coppice::send(old, Addressed{old});
      }
    }
    if (c->rounds > 1) {
      coppice::send(coppice::self(), Churn{c->rounds - 1});
    } else {
      coppice::send(done_to_, Stop{});
    }
  }
  PidRing* ring_;
  Tally* tally_;
  Pid done_to_;
  Random random_;
};

// A process that sends to ring pids in chunks until told to stop.
struct Sprayer : coppice::Process {
  struct Go {};
  Sprayer(PidRing* ring, std::uint64_t seed) : ring_(ring), random_(seed) {}
  void init() override { coppice::send(coppice::self(), Go{}); }
  void handle(coppice::Message m) override {
    if (m.is<Stop>()) coppice::exit(coppice::ExitReason::normal());
    if (!m.is<Go>()) return;
    for (int i = 0; i < 32; ++i) {
      const Pid p = ring_->pick(random_);
      if (p) coppice::send(p, Addressed{p});
    }
    // Bounded, like the plain threads below: unbounded spraying on an overloaded machine
    // grows victims' mailboxes to millions (a flood test, not this one's subject).
    if (++rounds_ < max_rounds) coppice::send(coppice::self(), Go{});
  }
  static constexpr int max_rounds = 4000 * coppice::stress::scale;
  PidRing* ring_;
  Random random_;
  int rounds_ = 0;
};

}  // namespace

TEST(PidReuseStress, MessagesToStalePidsNeverReachTheSlotsNewProcess) {
  coppice::stress::Watchdog watchdog("MessagesToStalePidsNeverReachTheSlotsNewProcess", 2 * patience);
  PidRing ring;
  Tally tally;
  bool churned = true;
  {
    coppice::Runtime rt(coppice::stress::options(3));
    coppice::Inbox main(rt);
    std::vector<Pid> churners, sprayers;
    for (int c = 0; c < 3; ++c) churners.push_back(rt.spawn<Churner>(&ring, &tally, main.pid(), c + 1));
    for (int s = 0; s < 2; ++s) sprayers.push_back(rt.spawn<Sprayer>(&ring, 100 + s));
    std::atomic<bool> churning{true};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        Random r(1000 + t);
        coppice::Inbox inbox(rt);
        // Bounded, and yielding now and then: at full speed two threads can outpace a
        // victim's drain (see FloodStress), which is not what this test is about.
        for (int n = 0; churning.load(std::memory_order_relaxed) && n < 50000 * coppice::stress::scale; ++n) {
          if (n % 8 == 0) std::this_thread::yield();
          const Pid p = ring.pick(r);
          if (!p) continue;
          if (t == 0) {
            rt.send(p, Addressed{p});
          } else {
            inbox.send(p, Addressed{p});
          }
        }
      });
    }
    const std::uint32_t rounds = coppice::stress::sanitized ? 300 : 2000;  // enough spawns to recycle slots
    for (Pid c : churners) rt.send(c, Churn{rounds});
    for (std::size_t c = 0; c < churners.size(); ++c) churned = churned && main.receive<Stop>(patience).has_value();
    churning.store(false);
    for (auto& t : threads) t.join();
    for (Pid s : sprayers) rt.send(s, Stop{});
  }  // the runtime goes with victims still alive and messages still in flight
  EXPECT_TRUE(churned) << "a churner never finished";
  EXPECT_EQ(tally.misdelivered.load(), 0u)
      << "first: a message for " << Pid::from_bits(tally.first_wrong_to.load()) << " reached "
      << Pid::from_bits(tally.first_wrong_self.load());
  EXPECT_GT(tally.reused_slots.load(), 0u) << "no slot was reused: the test tested nothing";
  EXPECT_GT(tally.delivered.load(), 0u);
}
