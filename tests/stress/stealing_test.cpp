// Stealing under load: messages bounce among many processes across workers that steal from
// one another, and every message is accounted for exactly.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::Pid;
using coppice::stress::patience;
using coppice::stress::Random;

namespace {

struct Token {
  std::uint32_t id;
  std::uint32_t hops_left;
};
struct Done {
  std::uint32_t id;
};
struct Peers {
  std::shared_ptr<const std::vector<Pid>> pids;
};
struct Seed {
  std::uint32_t first_id;
  std::uint32_t count;
  std::uint32_t hops;
};
struct Burn {};

struct Tally {
  std::atomic<std::uint64_t> handled{0};
  std::atomic<std::uint64_t> strays{0};
  std::atomic<std::uint64_t> double_runs{0};  // one process running on two workers at once
};

// Passes each token on to a random peer until its hops run out, then reports it done. A
// token with hops left sometimes makes its holder burn a little CPU, so that queues grow
// unevenly and idle workers have something to steal.
struct Bouncer : coppice::Process {
  Bouncer(Pid collector, Tally* tally, std::uint64_t seed) : collector_(collector), tally_(tally), random_(seed) {}
  void handle(coppice::Message m) override {
    // A process taken by two workers at once (a steal racing a take) runs twice at once.
    if (running_.exchange(true, std::memory_order_acquire)) tally_->double_runs.fetch_add(1);
    on(m);
    running_.store(false, std::memory_order_release);
  }
  void on(coppice::Message& m) {
    if (auto* t = m.get_if<Token>()) {
      tally_->handled.fetch_add(1, std::memory_order_relaxed);
      if (t->hops_left == 0) {
        coppice::send(collector_, Done{t->id});
        return;
      }
      if (random_.below(16) == 0) {
        volatile std::uint64_t x = 0;
        for (int i = 0; i < 2000; ++i) x = x + i;
      }
      coppice::send((*peers_)[random_.below(peers_->size())], Token{t->id, t->hops_left - 1});
    } else if (auto* p = m.get_if<Peers>()) {
      peers_ = p->pids;
    } else if (auto* s = m.get_if<Seed>()) {
      // One process starts a whole wave: every receiver lands on this worker's queue, and
      // the other workers have to steal them.
      for (std::uint32_t i = 0; i < s->count; ++i)
        coppice::send((*peers_)[random_.below(peers_->size())], Token{s->first_id + i, s->hops});
    } else {
      tally_->strays.fetch_add(1, std::memory_order_relaxed);
    }
  }
  Pid collector_;
  Tally* tally_;
  Random random_;
  std::shared_ptr<const std::vector<Pid>> peers_;
  std::atomic<bool> running_{false};
};

void run_bounce(unsigned workers, unsigned messages_per_turn, std::uint32_t processes, std::uint32_t tokens,
                std::uint32_t hops, std::uint32_t waves) {
  Tally tally;
  coppice::Runtime rt(coppice::stress::options(workers, 0us, messages_per_turn));
  coppice::Inbox collector(rt);
  auto pids = std::make_shared<std::vector<Pid>>();
  for (std::uint32_t i = 0; i < processes; ++i) pids->push_back(rt.spawn<Bouncer>(collector.pid(), &tally, i + 1));
  for (Pid p : *pids) rt.send(p, Peers{pids});
  // Waves seeded by a few processes, plus tokens injected straight from this thread.
  const std::uint32_t per_wave = tokens / (waves + 1);
  std::uint32_t next_id = 0;
  for (std::uint32_t w = 0; w < waves; ++w, next_id += per_wave)
    rt.send((*pids)[w * 7919 % processes], Seed{next_id, per_wave, hops});
  for (Random r(99); next_id < tokens; ++next_id) rt.send((*pids)[r.below(processes)], Token{next_id, hops});

  std::vector<std::uint8_t> seen(tokens, 0);
  std::uint64_t duplicates = 0;
  for (std::uint32_t got = 0; got < tokens; ++got) {
    auto done = collector.receive<Done>(patience);
    ASSERT_TRUE(done) << got << " of " << tokens << " tokens came back; the rest are lost";
    ASSERT_LT(done->id, tokens);
    if (seen[done->id]++ != 0) ++duplicates;
  }
  EXPECT_EQ(duplicates, 0u);
  // Nothing more is on its way: one more Done would be a duplicate.
  EXPECT_FALSE(collector.receive<Done>(0ms));
  EXPECT_EQ(tally.handled.load(), std::uint64_t{tokens} * (hops + 1));
  EXPECT_EQ(tally.strays.load(), 0u);
  EXPECT_EQ(tally.double_runs.load(), 0u) << "a process ran on two workers at once";
}

}  // namespace

TEST(StealingStress, BouncingTokensAreAllAccountedFor) {
  coppice::stress::Watchdog watchdog("BouncingTokensAreAllAccountedFor", 2 * patience);
  const std::uint32_t tokens = 2000 * coppice::stress::scale;
  run_bounce(2, 100, 1000, tokens, 20, 8);
  run_bounce(4, 3, 300, tokens, 20, 8);  // more workers than cores; short turns: constant requeues
}

// Many waves, each waking hundreds of processes from one worker at once, with one message
// per turn: run queues are long and thieves take from them all the time while their owners
// take too.
TEST(StealingStress, ThievesAndOwnersNeverTakeTheSameProcess) {
  coppice::stress::Watchdog watchdog("ThievesAndOwnersNeverTakeTheSameProcess", 2 * patience);
  const std::uint32_t tokens = 3000 * coppice::stress::scale;
  run_bounce(4, 1, 2000, tokens, 6, 60);
}

// Overflow: one process wakes far more receivers than a run queue holds (256), so half of the
// queue moves to the global queue while thieves take from it.
TEST(StealingStress, OverflowingRunQueueLosesNothing) {
  coppice::stress::Watchdog watchdog("OverflowingRunQueueLosesNothing", 2 * patience);
  const std::uint32_t tokens = 1500 * coppice::stress::scale;
  run_bounce(3, 1, 3000, tokens, 4, 1);
}
