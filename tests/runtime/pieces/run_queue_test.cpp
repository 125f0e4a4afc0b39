// The run queue on its own (engine/src/runtime/run_queue.hpp): the contract its comments state,
// edge by edge, and one owner with two thieves taking every entry exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/run_queue.hpp"
#include "stress/stress.hpp"

using coppice::detail::ProcessHeader;
using coppice::detail::RunQueue;

namespace {

constexpr std::uint32_t capacity = RunQueue::capacity;

// Headers to queue: the run queue only stores the pointers, so their contents do not matter.
class Headers {
 public:
  explicit Headers(std::size_t n) : n_(n), headers_(new ProcessHeader[n]) {}
  ProcessHeader* operator[](std::size_t i) const { return &headers_[i]; }
  std::size_t index(const ProcessHeader* p) const { return static_cast<std::size_t>(p - headers_.get()); }
  std::size_t size() const { return n_; }

 private:
  std::size_t n_;
  std::unique_ptr<ProcessHeader[]> headers_;
};

// Pushes headers[from, to) and expects each push to succeed.
void push_range(RunQueue& q, const Headers& h, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) ASSERT_TRUE(q.push(h[i])) << "push " << i;
}

// Takes everything left, oldest first, as indices into h.
std::vector<std::size_t> take_all(RunQueue& q, const Headers& h) {
  std::vector<std::size_t> taken;
  while (ProcessHeader* p = q.take()) taken.push_back(h.index(p));
  return taken;
}

std::vector<std::size_t> range(std::size_t from, std::size_t to) {
  std::vector<std::size_t> v;
  for (std::size_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

TEST(RunQueue, AnEmptyQueueHasNothingToTakeStealOrHalve) {
  RunQueue q;
  RunQueue into;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.take(), nullptr);
  EXPECT_EQ(q.steal_half_into(into), nullptr);
  EXPECT_TRUE(into.empty());
  ProcessHeader* out[capacity / 2];
  EXPECT_EQ(q.take_half(out), 0u);
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, OneEntryIsTakenOnceThenTheQueueIsEmptyAgain) {
  Headers h(1);
  RunQueue q;
  std::uint64_t before = 99;
  ASSERT_TRUE(q.push(h[0], &before));
  EXPECT_EQ(before, 0u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.take(), h[0]);
  EXPECT_EQ(q.take(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, PushReportsHowManyEntriesWereQueuedBeforeIt) {
  Headers h(10);
  RunQueue q;
  for (std::size_t i = 0; i < 5; ++i) {
    std::uint64_t before = 99;
    ASSERT_TRUE(q.push(h[i], &before));
    EXPECT_EQ(before, i);
  }
  ASSERT_NE(q.take(), nullptr);
  ASSERT_NE(q.take(), nullptr);
  std::uint64_t before = 99;
  ASSERT_TRUE(q.push(h[5], &before));
  EXPECT_EQ(before, 3u);  // five pushed, two taken
  // Without a place to report to, push still works.
  EXPECT_TRUE(q.push(h[6]));
  EXPECT_EQ(q.size(), 5u);
}

TEST(RunQueue, TakeHandsOutTheOldestEntryFirst) {
  Headers h(10);
  RunQueue q;
  push_range(q, h, 0, 10);
  EXPECT_EQ(take_all(q, h), range(0, 10));
}

TEST(RunQueue, HoldsExactlyCapacityEntriesAndRefusesTheNextReportingAFullQueue) {
  Headers h(capacity + 1);
  RunQueue q;
  for (std::size_t i = 0; i < capacity; ++i) {
    std::uint64_t before = 0;
    ASSERT_TRUE(q.push(h[i], &before)) << "push " << i << " of " << capacity;
    ASSERT_EQ(before, i);
  }
  EXPECT_EQ(q.size(), capacity);
  std::uint64_t before = 0;
  EXPECT_FALSE(q.push(h[capacity], &before));
  EXPECT_EQ(before, capacity);  // the caller learns the queue was full
  EXPECT_EQ(q.size(), capacity);
  // The refused entry is not in the queue; nothing else was disturbed.
  EXPECT_EQ(take_all(q, h), range(0, capacity));
}

TEST(RunQueue, AFullQueueTakesOneMoreAfterOneIsTaken) {
  Headers h(capacity + 2);
  RunQueue q;
  push_range(q, h, 0, capacity);
  ASSERT_FALSE(q.push(h[capacity]));
  ASSERT_EQ(q.take(), h[0]);
  EXPECT_TRUE(q.push(h[capacity + 1]));
  EXPECT_FALSE(q.push(h[capacity]));
  std::vector<std::size_t> expected = range(1, capacity);
  expected.push_back(capacity + 1);
  EXPECT_EQ(take_all(q, h), expected);
}

// The overflow path (Scheduler: a full local queue moves half to the global queue): take_half
// of a full queue moves the oldest half, in order, and leaves room for as many pushes.
TEST(RunQueue, TakeHalfOfAFullQueueMovesTheOldestHalfAndMakesRoom) {
  Headers h(capacity + capacity / 2);
  RunQueue q;
  push_range(q, h, 0, capacity);
  ProcessHeader* out[capacity / 2];
  ASSERT_EQ(q.take_half(out), capacity / 2);
  for (std::size_t i = 0; i < capacity / 2; ++i) EXPECT_EQ(out[i], h[i]) << i;
  EXPECT_EQ(q.size(), capacity / 2);
  push_range(q, h, capacity, capacity + capacity / 2);
  EXPECT_FALSE(q.push(h[0]));
  EXPECT_EQ(take_all(q, h), range(capacity / 2, capacity + capacity / 2));
}

// take_half moves size / 2, rounded down: one entry stays where it is.
TEST(RunQueue, TakeHalfRoundsDown) {
  for (std::size_t n = 0; n <= 9; ++n) {
    SCOPED_TRACE(n);
    Headers h(n);
    RunQueue q;
    push_range(q, h, 0, n);
    ProcessHeader* out[capacity / 2];
    const std::uint32_t moved = q.take_half(out);
    ASSERT_EQ(moved, n / 2);
    for (std::size_t i = 0; i < moved; ++i) EXPECT_EQ(out[i], h[i]);
    EXPECT_EQ(take_all(q, h), range(n / 2, n));
  }
}

// A thief takes the oldest half, rounded up (so a single entry can be stolen): the oldest of
// them to run now, the rest into its own queue in order; the victim keeps the newest.
TEST(RunQueue, StealHalfTakesTheOldestHalfRoundedUpAndRunsTheOldest) {
  for (std::size_t n = 1; n <= 9; ++n) {
    SCOPED_TRACE(n);
    Headers h(n);
    RunQueue victim;
    RunQueue thief;
    push_range(victim, h, 0, n);
    const std::size_t stolen = n - n / 2;
    EXPECT_EQ(victim.steal_half_into(thief), h[0]);
    EXPECT_EQ(thief.size(), stolen - 1);
    EXPECT_EQ(take_all(thief, h), range(1, stolen));
    EXPECT_EQ(take_all(victim, h), range(stolen, n));
  }
}

TEST(RunQueue, StealFromAFullQueueTakesHalfTheCapacity) {
  Headers h(capacity);
  RunQueue victim;
  RunQueue thief;
  push_range(victim, h, 0, capacity);
  EXPECT_EQ(victim.steal_half_into(thief), h[0]);
  EXPECT_EQ(thief.size(), capacity / 2 - 1);
  EXPECT_EQ(victim.size(), capacity / 2);
  EXPECT_EQ(take_all(thief, h), range(1, capacity / 2));
  EXPECT_EQ(take_all(victim, h), range(capacity / 2, capacity));
}

// The owner's take and a thief's steal both come from the top: whatever the mix, entries
// leave in the order they were pushed.
TEST(RunQueue, TakesAndStealsInterleavedKeepPushOrder) {
  Headers h(20);
  RunQueue victim;
  push_range(victim, h, 0, 20);
  std::vector<std::size_t> order;
  order.push_back(h.index(victim.take()));  // 0
  RunQueue thief;
  order.push_back(h.index(victim.steal_half_into(thief)));  // 1; thief gets 2..10
  std::vector<std::size_t> stolen = take_all(thief, h);
  order.insert(order.end(), stolen.begin(), stolen.end());
  order.push_back(h.index(victim.take()));  // 11
  RunQueue thief2;
  order.push_back(h.index(victim.steal_half_into(thief2)));  // 12; thief2 gets 13..15
  stolen = take_all(thief2, h);
  order.insert(order.end(), stolen.begin(), stolen.end());
  std::vector<std::size_t> rest = take_all(victim, h);
  order.insert(order.end(), rest.begin(), rest.end());
  EXPECT_EQ(order, range(0, 20));
}

// The indices only grow and index the slots modulo the capacity: whatever slot the queue
// starts at, it holds exactly capacity entries in order, and a steal across the end of the
// array keeps the order too. (The indices are 64-bit and start at 0 with no way to seed them,
// so their own wrap, 2^64 pushes away, cannot be reached here; the slot index wraps every
// capacity pushes and is what these cycles exercise.)
TEST(RunQueue, EveryStartingSlotHoldsExactlyCapacityInOrderAcrossTheEndOfTheArray) {
  Headers h(capacity + 1);
  RunQueue q;
  for (std::size_t offset = 0; offset < capacity; ++offset) {
    SCOPED_TRACE(offset);
    // Moves the queue one slot on, then fills it from there.
    ASSERT_TRUE(q.push(h[0]));
    ASSERT_EQ(q.take(), h[0]);
    push_range(q, h, 0, capacity);
    ASSERT_FALSE(q.push(h[capacity]));
    if (offset % 2 == 0) {
      ASSERT_EQ(take_all(q, h), range(0, capacity));
    } else {
      RunQueue thief;
      ASSERT_EQ(q.steal_half_into(thief), h[0]);
      ASSERT_EQ(take_all(thief, h), range(1, capacity / 2));
      ASSERT_EQ(take_all(q, h), range(capacity / 2, capacity));
    }
  }
}

TEST(RunQueue, ManyPushTakeCyclesNeitherLoseNorReorderEntries) {
  Headers h(capacity);
  RunQueue q;
  std::size_t next_in = 0;
  std::size_t next_out = 0;
  // Uneven batches so that the fill level and the slot index drift through every value.
  for (int round = 0; round < 2000; ++round) {
    const std::size_t pushes = 1 + static_cast<std::size_t>(round * 7) % 37;
    for (std::size_t i = 0; i < pushes && q.size() < capacity; ++i) {
      ASSERT_TRUE(q.push(h[next_in % capacity]));
      ++next_in;
    }
    const std::size_t takes = 1 + static_cast<std::size_t>(round * 5) % 31;
    for (std::size_t i = 0; i < takes; ++i) {
      ProcessHeader* p = q.take();
      if (p == nullptr) break;
      ASSERT_EQ(p, h[next_out % capacity]) << "entry " << next_out;
      ++next_out;
    }
    ASSERT_EQ(q.size(), next_in - next_out);
  }
  EXPECT_GT(next_out, 100 * static_cast<std::size_t>(capacity));  // the slots went round many times
}

// One owner pushes (moving half out when full, as the scheduler does, and taking some
// itself) while two thieves steal halves into their own queues and also take from the
// owner's directly: every entry comes out exactly once.
TEST(RunQueue, AnOwnerAndTwoThievesTakeEveryEntryExactlyOnce) {
  constexpr std::size_t n = coppice::stress::sanitized ? 20'000 : 100'000;
  coppice::stress::Watchdog watchdog("RunQueue.AnOwnerAndTwoThievesTakeEveryEntryExactlyOnce",
                                     coppice::stress::patience);
  Headers h(n);
  std::unique_ptr<std::atomic<std::uint32_t>[]> seen(new std::atomic<std::uint32_t>[n]);
  for (std::size_t i = 0; i < n; ++i) seen[i].store(0, std::memory_order_relaxed);
  auto record = [&](ProcessHeader* p) { seen[h.index(p)].fetch_add(1, std::memory_order_relaxed); };

  RunQueue owner_queue;
  std::atomic<bool> owner_done{false};
  std::atomic<unsigned> thieves_ready{0};
  auto thief = [&](bool steal_first) {
    thieves_ready.fetch_add(1, std::memory_order_relaxed);
    RunQueue mine;  // empty at every steal: the thief drains it before stealing again
    for (unsigned round = 0;; ++round) {
      const bool done = owner_done.load(std::memory_order_acquire);
      ProcessHeader* p = (round % 2 == 0) == steal_first ? owner_queue.steal_half_into(mine) : owner_queue.take();
      if (p != nullptr) {
        record(p);
        while (ProcessHeader* q = mine.take()) record(q);
        std::this_thread::yield();  // let the other thief at it too
      } else if (done && owner_queue.empty()) {
        return;
      } else {
        std::this_thread::yield();
      }
    }
  };
  std::thread thief1(thief, true);
  std::thread thief2(thief, false);
  while (thieves_ready.load(std::memory_order_relaxed) < 2) std::this_thread::yield();

  for (std::size_t i = 0; i < n; ++i) {
    // Now and then a pause, so that the thieves find the queue at every fill level.
    if (i % 64 == 0) std::this_thread::yield();
    if (!owner_queue.push(h[i])) {
      ProcessHeader* half[capacity / 2];
      const std::uint32_t moved = owner_queue.take_half(half);
      for (std::uint32_t k = 0; k < moved; ++k) record(half[k]);
      EXPECT_TRUE(owner_queue.push(h[i]));  // room now: taken by us or by a thief
    }
    if (i % 3 == 0) {
      if (ProcessHeader* p = owner_queue.take()) record(p);
    }
  }
  while (ProcessHeader* p = owner_queue.take()) record(p);
  owner_done.store(true, std::memory_order_release);
  thief1.join();
  thief2.join();

  std::size_t missing = 0;
  std::size_t duplicated = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t times = seen[i].load(std::memory_order_relaxed);
    if (times == 0) ++missing;
    if (times > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
}

}  // namespace
