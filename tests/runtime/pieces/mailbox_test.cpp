// The mailbox on its own (engine/src/runtime/mailbox.hpp): push, pop, the idle hand-off, close
// and drain, the dead and reclaimed marks, edge by edge; and producers racing one consumer.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/mailbox.hpp"
#include "stress/stress.hpp"

using coppice::detail::Envelope;
using coppice::detail::DeadMark;
using coppice::detail::idle_tag;
using coppice::detail::mailbox_close;
using coppice::detail::mailbox_drain_closed;
using coppice::detail::mailbox_for_each_late;
using coppice::detail::mailbox_pop;
using coppice::detail::mailbox_push;
using coppice::detail::mailbox_try_mark_idle;
using coppice::detail::mailbox_try_mark_idle_dead;
using coppice::detail::ProcessHeader;
using coppice::detail::reclaimed_tag;
using coppice::detail::untag;

namespace {

// Envelopes numbered by their `ref`; the mailbox only links them, so no payload is needed.
class Envelopes {
 public:
  explicit Envelopes(std::size_t n) : envelopes_(new Envelope[n]) {
    for (std::size_t i = 0; i < n; ++i) envelopes_[i].ref = i;
  }
  Envelope* operator[](std::size_t i) const { return &envelopes_[i]; }

 private:
  std::unique_ptr<Envelope[]> envelopes_;
};

std::vector<std::uint64_t> pop_all(ProcessHeader& p) {
  std::vector<std::uint64_t> refs;
  while (Envelope* e = mailbox_pop(&p)) refs.push_back(e->ref);
  return refs;
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

// A mailbox as an idle process has it: the next push must schedule it.
void make_idle(ProcessHeader& p) { ASSERT_TRUE(mailbox_try_mark_idle(&p)); }

// The first half of mailbox_push, as a sender preempted between its exchange and its link
// would leave the mailbox; link() is the second half. Written out here because that window
// is a few instructions wide and no test of the whole engine can stop a sender inside it.
class HalfPush {
 public:
  HalfPush(ProcessHeader& p, Envelope* e) : e_(e) {
    e->next.store(nullptr, std::memory_order_relaxed);
    old_ = p.head.exchange(reinterpret_cast<std::uintptr_t>(e), std::memory_order_acq_rel);
  }
  bool link() {
    untag(old_)->next.store(e_, std::memory_order_release);
    return (old_ & idle_tag) != 0;
  }

 private:
  Envelope* e_;
  std::uintptr_t old_;
};

TEST(Mailbox, AnEmptyMailboxPopsNothing) {
  ProcessHeader p;
  EXPECT_EQ(mailbox_pop(&p), nullptr);
  EXPECT_EQ(mailbox_pop(&p), nullptr);
}

// A new process is scheduled by its spawner, not by the first sender.
TEST(Mailbox, AFreshMailboxIsNotIdleSoAPushAsksNobodyToScheduleIt) {
  Envelopes e(1);
  ProcessHeader p;
  EXPECT_FALSE(mailbox_push(&p, e[0]));
  EXPECT_EQ(pop_all(p), range(0, 1));
}

TEST(Mailbox, OneEnvelopeIsPoppedOnceAndTheMailboxIsEmptyAgain) {
  Envelopes e(1);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  EXPECT_EQ(mailbox_pop(&p), e[0]);
  EXPECT_EQ(mailbox_pop(&p), nullptr);
  EXPECT_EQ(p.tail, &p.stub);  // the stub is back: the next push is one exchange again
}

TEST(Mailbox, PopHandsOutEnvelopesInTheOrderTheyWerePushed) {
  Envelopes e(10);
  ProcessHeader p;
  for (std::size_t i = 0; i < 10; ++i) mailbox_push(&p, e[i]);
  EXPECT_EQ(pop_all(p), range(0, 10));
}

// Pops that empty the mailbox put the stub back behind the last envelope; pushes and pops
// interleaved at every fill level keep the order all the same.
TEST(Mailbox, InterleavedPushesAndPopsKeepTheOrder) {
  constexpr std::size_t n = 2000;
  Envelopes e(n);
  ProcessHeader p;
  std::size_t pushed = 0;
  std::uint64_t expected = 0;
  for (int round = 0; pushed < n; ++round) {
    const std::size_t pushes = 1 + static_cast<std::size_t>(round) % 5;
    for (std::size_t i = 0; i < pushes && pushed < n; ++i) mailbox_push(&p, e[pushed++]);
    const std::size_t pops = 1 + static_cast<std::size_t>(round * 3) % 7;
    for (std::size_t i = 0; i < pops; ++i) {
      Envelope* got = mailbox_pop(&p);
      if (got == nullptr) break;
      ASSERT_EQ(got->ref, expected++);
    }
  }
  while (Envelope* got = mailbox_pop(&p)) ASSERT_EQ(got->ref, expected++);
  EXPECT_EQ(expected, n);
}

TEST(Mailbox, MarkIdleSucceedsOnlyWhenNothingIsQueued) {
  Envelopes e(2);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  mailbox_push(&p, e[1]);
  EXPECT_FALSE(mailbox_try_mark_idle(&p));  // two queued
  ASSERT_EQ(mailbox_pop(&p), e[0]);
  EXPECT_FALSE(mailbox_try_mark_idle(&p));  // one queued
  ASSERT_EQ(mailbox_pop(&p), e[1]);
  EXPECT_TRUE(mailbox_try_mark_idle(&p));
  EXPECT_EQ(p.head.load() & idle_tag, idle_tag);
}

// Exactly one sender schedules an idle process: the first push after each idle mark asks,
// the ones after it do not, until the owner marks it idle again.
TEST(Mailbox, OnlyTheFirstPushAfterEachIdleMarkAsksToSchedule) {
  Envelopes e(9);
  ProcessHeader p;
  std::uint64_t next = 0;
  for (int transition = 0; transition < 3; ++transition) {
    SCOPED_TRACE(transition);
    make_idle(p);
    EXPECT_TRUE(mailbox_push(&p, e[next++]));
    EXPECT_FALSE(mailbox_push(&p, e[next++]));
    EXPECT_FALSE(mailbox_push(&p, e[next++]));
    EXPECT_EQ(p.head.load() & idle_tag, 0u);
    EXPECT_EQ(pop_all(p), range(next - 3, next));
  }
}

// Marking idle twice with nothing in between changes nothing: still one schedule.
TEST(Mailbox, AnIdleMailboxStaysIdleUntilAPush) {
  Envelopes e(2);
  ProcessHeader p;
  make_idle(p);
  EXPECT_FALSE(mailbox_try_mark_idle(&p));  // already idle: the CAS finds the tag
  EXPECT_EQ(mailbox_pop(&p), nullptr);
  EXPECT_EQ(p.head.load() & idle_tag, idle_tag);
  EXPECT_TRUE(mailbox_push(&p, e[0]));
  EXPECT_FALSE(mailbox_push(&p, e[1]));
  EXPECT_EQ(pop_all(p), range(0, 2));
}

// An envelope is handed out only once its successor is linked: a sender between its exchange
// and its link holds the only way to the rest of the queue (tools/mutants:
// mailbox-pop-ignores-a-producer-between-exchange-and-link).
TEST(Mailbox, PopWaitsForASenderBetweenItsExchangeAndItsLink) {
  Envelopes e(2);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  HalfPush half(p, e[1]);
  EXPECT_EQ(mailbox_pop(&p), nullptr);  // e[0] is linked but e[1] is not yet
  EXPECT_FALSE(half.link());
  EXPECT_EQ(pop_all(p), range(0, 2));
}

// The same window with the mailbox looking empty: the owner must not mark it idle, or the
// sender (which found it busy) would not schedule it and the envelope would wait forever.
TEST(Mailbox, MarkIdleFailsWhileASenderIsBetweenItsExchangeAndItsLink) {
  Envelopes e(1);
  ProcessHeader p;
  HalfPush half(p, e[0]);
  EXPECT_EQ(mailbox_pop(&p), nullptr);
  EXPECT_FALSE(mailbox_try_mark_idle(&p));
  EXPECT_FALSE(half.link());
  EXPECT_EQ(pop_all(p), range(0, 1));
  EXPECT_TRUE(mailbox_try_mark_idle(&p));
}

TEST(Mailbox, ClosingAnEmptyMailboxLeavesNothingToDrain) {
  ProcessHeader p;
  Envelope* last = mailbox_close(&p);
  EXPECT_EQ(last, &p.stub);
  int drained = 0;
  mailbox_drain_closed(&p, last, [&](Envelope*) { ++drained; });
  EXPECT_EQ(drained, 0);
}

TEST(Mailbox, CloseReturnsTheNewestEnvelopeAndTheDrainTakesEverythingUpToItInOrder) {
  Envelopes e(5);
  ProcessHeader p;
  for (std::size_t i = 0; i < 5; ++i) mailbox_push(&p, e[i]);
  ASSERT_EQ(mailbox_pop(&p), e[0]);  // taken before the process died
  Envelope* last = mailbox_close(&p);
  EXPECT_EQ(last, e[4]);
  std::vector<std::uint64_t> drained;
  mailbox_drain_closed(&p, last, [&](Envelope* got) { drained.push_back(got->ref); });
  EXPECT_EQ(drained, range(1, 5));
  EXPECT_EQ(mailbox_pop(&p), nullptr);
}

// A push to a closed mailbox does not fail (an exchange cannot be refused): the envelope is
// queued behind the close, the drain stops before it, and it is found among the late ones.
// A closed mailbox is not idle, so that push asks nobody to schedule the process.
TEST(Mailbox, APushAfterTheCloseIsQueuedBehindItAndLeftForTheLateAnswer) {
  Envelopes e(4);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  mailbox_push(&p, e[1]);
  Envelope* last = mailbox_close(&p);
  ASSERT_EQ(last, e[1]);
  EXPECT_FALSE(mailbox_push(&p, e[2]));
  EXPECT_FALSE(mailbox_push(&p, e[3]));
  std::vector<std::uint64_t> drained;
  mailbox_drain_closed(&p, last, [&](Envelope* got) { drained.push_back(got->ref); });
  EXPECT_EQ(drained, range(0, 2));
  std::vector<std::uint64_t> late;
  mailbox_for_each_late(&p, [&](Envelope* got) { late.push_back(got->ref); });
  EXPECT_EQ(late, range(2, 4));
}

// When the drain empties the mailbox it puts the stub back; what comes later follows the
// stub, and the late walk skips it.
TEST(Mailbox, LateEnvelopesAfterADrainThatEmptiedTheMailboxAreFoundPastTheStub) {
  Envelopes e(3);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  Envelope* last = mailbox_close(&p);
  std::vector<std::uint64_t> drained;
  mailbox_drain_closed(&p, last, [&](Envelope* got) { drained.push_back(got->ref); });
  EXPECT_EQ(drained, range(0, 1));
  EXPECT_EQ(p.tail, &p.stub);
  EXPECT_FALSE(mailbox_push(&p, e[1]));
  EXPECT_FALSE(mailbox_push(&p, e[2]));
  std::vector<std::uint64_t> late;
  mailbox_for_each_late(&p, [&](Envelope* got) { late.push_back(got->ref); });
  EXPECT_EQ(late, range(1, 3));
}

// The drain takes exactly what was pushed before the close, even an envelope whose sender
// had swung `head` but not linked when the close came: the drain waits for its link.
TEST(Mailbox, TheDrainWaitsForASenderThatSwungHeadBeforeTheClose) {
  // A lost envelope leaves the drain waiting for it forever: fail with a name instead.
  coppice::stress::Watchdog watchdog("Mailbox.TheDrainWaitsForASenderThatSwungHeadBeforeTheClose",
                                     coppice::stress::patience);
  Envelopes e(2);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  HalfPush half(p, e[1]);
  Envelope* last = mailbox_close(&p);
  ASSERT_EQ(last, e[1]);
  std::thread sender([&] { EXPECT_FALSE(half.link()); });
  std::vector<std::uint64_t> drained;
  mailbox_drain_closed(&p, last, [&](Envelope* got) { drained.push_back(got->ref); });
  sender.join();
  EXPECT_EQ(drained, range(0, 2));
}

// After the drain, a dead process's mailbox goes back to idle: the next sender schedules it
// like a live one, and its turn marks it idle again once it has answered.
TEST(Mailbox, ADrainedDeadMailboxIsMarkedIdleAndTheNextPushSchedulesIt) {
  Envelopes e(3);
  ProcessHeader p;
  mailbox_push(&p, e[0]);
  Envelope* last = mailbox_close(&p);
  mailbox_drain_closed(&p, last, [](Envelope*) {});
  ASSERT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
  EXPECT_TRUE(mailbox_push(&p, e[1]));
  EXPECT_FALSE(mailbox_push(&p, e[2]));
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::busy);  // two to answer first
  EXPECT_EQ(pop_all(p), range(1, 3));
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
}

TEST(Mailbox, ADeadMailboxIsBusyWhileASenderIsBetweenItsExchangeAndItsLink) {
  Envelopes e(1);
  ProcessHeader p;
  mailbox_drain_closed(&p, mailbox_close(&p), [](Envelope*) {});
  HalfPush half(p, e[0]);
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::busy);
  EXPECT_FALSE(half.link());
  EXPECT_EQ(pop_all(p), range(0, 1));
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
}

// Reclamation sets the reclaimed tag as RuntimeCore::reclaim does. On an idle mailbox it
// finds the idle tag: nobody holds the header, the reclaimer frees it.
TEST(Mailbox, ReclaimingAnIdleDeadMailboxFindsItIdle) {
  ProcessHeader p;
  mailbox_drain_closed(&p, mailbox_close(&p), [](Envelope*) {});
  ASSERT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
  EXPECT_NE(p.head.fetch_or(reclaimed_tag, std::memory_order_acq_rel) & idle_tag, 0u);
}

// On a mailbox a worker holds (answering late envelopes), reclamation finds it busy and
// leaves the freeing to that worker, whose next try to mark it idle says `reclaimed`; the
// pop that empties the mailbox keeps the tag when it puts the stub back.
TEST(Mailbox, ReclaimingAHeldDeadMailboxLeavesTheFreeingToItsHolder) {
  Envelopes e(2);
  ProcessHeader p;
  mailbox_drain_closed(&p, mailbox_close(&p), [](Envelope*) {});
  ASSERT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
  ASSERT_TRUE(mailbox_push(&p, e[0]));  // a late request: this "worker" now holds p
  mailbox_push(&p, e[1]);
  EXPECT_EQ(p.head.fetch_or(reclaimed_tag, std::memory_order_acq_rel) & idle_tag, 0u);
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::busy);  // answer these first
  EXPECT_EQ(pop_all(p), range(0, 2));
  EXPECT_NE(p.head.load() & reclaimed_tag, 0u);  // kept by the pop that put the stub back
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::reclaimed);
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::reclaimed);  // and it stays so
}

TEST(Mailbox, ReclaimedWithNothingQueuedTheHolderSeesReclaimedAtOnce) {
  Envelopes e(1);
  ProcessHeader p;
  mailbox_drain_closed(&p, mailbox_close(&p), [](Envelope*) {});
  ASSERT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::idle);
  ASSERT_TRUE(mailbox_push(&p, e[0]));
  EXPECT_EQ(pop_all(p), range(0, 1));
  p.head.fetch_or(reclaimed_tag, std::memory_order_acq_rel);
  EXPECT_EQ(mailbox_try_mark_idle_dead(&p), DeadMark::reclaimed);
}

// Three senders and one owner that marks its mailbox idle whenever it finds it empty and then
// waits to be scheduled: every envelope arrives exactly once, each sender's in its order, and
// each idle mark is answered by exactly one push that asks to schedule.
TEST(Mailbox, SendersAndOneOwnerDeliverEveryEnvelopeOnceInOrderWithOneSchedulePerIdleMark) {
  constexpr unsigned senders = 3;
  constexpr std::size_t per_sender = coppice::stress::sanitized ? 5'000 : 50'000;
  coppice::stress::Watchdog watchdog("Mailbox.SendersAndOneOwner...", coppice::stress::patience);
  Envelopes e(senders * per_sender);  // ref = sender * per_sender + sequence
  ProcessHeader p;
  std::atomic<std::uint64_t> schedules{0};  // pushes that found the mailbox idle
  std::atomic<unsigned> senders_ready{0};
  std::vector<std::thread> threads;
  for (unsigned s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      senders_ready.fetch_add(1, std::memory_order_relaxed);
      while (senders_ready.load(std::memory_order_relaxed) < senders) std::this_thread::yield();
      for (std::size_t i = 0; i < per_sender; ++i) {
        // Now and then a pause, so that the owner empties the mailbox and marks it idle.
        if (i % 64 == 0) std::this_thread::yield();
        // Release: the owner that sees the count sees the push before it.
        if (mailbox_push(&p, e[s * per_sender + i])) schedules.fetch_add(1, std::memory_order_release);
      }
    });
  }

  std::vector<std::size_t> next(senders, 0);
  std::size_t received = 0;
  std::uint64_t idle_marks = 0;
  bool in_order = true;
  bool scheduled_twice = false;
  while (received < senders * per_sender) {
    if (Envelope* got = mailbox_pop(&p)) {
      const std::size_t s = got->ref / per_sender;
      in_order = in_order && got->ref % per_sender == next[s];
      ++next[s];
      ++received;
      continue;
    }
    if (!mailbox_try_mark_idle(&p)) continue;  // something is on its way: pop again
    ++idle_marks;
    // Idle: only the sender that finds the tag may wake us, and exactly one does.
    std::uint64_t seen;
    while ((seen = schedules.load(std::memory_order_acquire)) < idle_marks) std::this_thread::yield();
    scheduled_twice = scheduled_twice || seen != idle_marks;
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(in_order);
  EXPECT_FALSE(scheduled_twice) << "two senders scheduled one idle mailbox";
  EXPECT_EQ(schedules.load(), idle_marks);
  EXPECT_EQ(mailbox_pop(&p), nullptr);
  for (std::size_t s = 0; s < senders; ++s) EXPECT_EQ(next[s], per_sender) << "sender " << s;
}

// Senders keep pushing while the owner takes some, closes and drains, and push a while more
// after they see the close (each at most per_sender): what the drain took and what came late together are every envelope
// pushed, exactly once, and for each sender the drained ones are exactly its first ones.
TEST(Mailbox, ACloseAmidSendersSplitsEveryEnvelopeIntoDrainedThenLate) {
  constexpr unsigned senders = 3;
  constexpr std::size_t per_sender = coppice::stress::sanitized ? 10'000 : 50'000;  // at most
  constexpr std::size_t taken_before_close = 1'000;
  constexpr std::size_t pushed_after_close_seen = 100;
  coppice::stress::Watchdog watchdog("Mailbox.ACloseAmidSenders...", coppice::stress::patience);
  Envelopes e(senders * per_sender);
  ProcessHeader p;
  std::atomic<bool> closed{false};
  constexpr std::size_t window = 64;
  std::atomic<std::size_t> pushed_total{0};
  std::atomic<std::size_t> taken{0};  // by the owner, before the close
  std::vector<std::size_t> pushed(senders, 0);  // each written by its sender, read after join
  std::vector<std::thread> threads;
  for (unsigned s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      std::size_t i = 0;
      std::size_t after = 0;
      for (; i < per_sender && after < pushed_after_close_seen; ++i) {
        // Paced to stay a little ahead of the owner, so that the close falls amid the pushes.
        while (!closed.load(std::memory_order_relaxed) &&
               pushed_total.load(std::memory_order_relaxed) > taken.load(std::memory_order_relaxed) + window) {
          std::this_thread::yield();
        }
        if (closed.load(std::memory_order_relaxed)) ++after;
        (void)mailbox_push(&p, e[s * per_sender + i]);
        pushed_total.fetch_add(1, std::memory_order_relaxed);
      }
      pushed[s] = i;
    });
  }

  std::vector<std::size_t> next(senders, 0);
  bool in_order = true;
  auto take = [&](Envelope* got) {
    const std::size_t s = got->ref / per_sender;
    in_order = in_order && got->ref % per_sender == next[s];
    ++next[s];
  };
  while (taken.load(std::memory_order_relaxed) < taken_before_close) {
    if (Envelope* got = mailbox_pop(&p)) {
      take(got);
      taken.fetch_add(1, std::memory_order_relaxed);
    }
  }
  Envelope* last = mailbox_close(&p);
  closed.store(true, std::memory_order_relaxed);
  mailbox_drain_closed(&p, last, take);
  const std::vector<std::size_t> drained = next;
  for (std::thread& t : threads) t.join();  // the grace period: no sender is left
  mailbox_for_each_late(&p, take);

  EXPECT_TRUE(in_order) << "an envelope came out of its sender's order, twice, or after a later one";
  for (std::size_t s = 0; s < senders; ++s) {
    EXPECT_EQ(next[s], pushed[s]) << "sender " << s << " (drained " << drained[s] << ")";
  }
}

}  // namespace
