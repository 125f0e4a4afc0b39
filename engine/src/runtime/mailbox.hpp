// The lock-free queue through which every process receives messages and signals.
//
// An intrusive multi-producer, single-consumer queue after Vyukov, with two tags in the
// producer end: `idle` says no worker runs or has scheduled the process; `closed` is set as
// the process dies (mailbox_close), but where it stopped reading is what that close returns,
// the newest envelope at that moment: the tag itself is never read, and the first push after
// the close replaces it. A send is one exchange that appends and, in the
// same step, learns whether it found the process idle, so exactly one sender schedules an
// idle process and the others do nothing more; an exchange never fails, so senders flooding
// one receiver from several cores cost one cache-line transfer each, not a retry loop.
// After the close and the final drain, a dead process's mailbox goes back to *idle*: a
// sender that finds it idle schedules the dead process like a live one, and a turn of a dead
// process answers what arrived (RuntimeCore::bounce_late) and marks it idle again, so a late
// link or monitor request is answered by the next free worker. Reclamation, once no sender
// can still hold the header, sets the *reclaimed* tag: if the mailbox was idle nobody holds
// it and the memory is freed at once; otherwise the worker holding it frees it when it
// fails to mark it idle (an inbox has no turns: what came after its close is answered at
// reclamation, when every sender has finished linking).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "coppice/message.hpp"
#include "runtime/process_header.hpp"

namespace coppice::detail {

inline constexpr std::uintptr_t idle_tag = 1;
inline constexpr std::uintptr_t closed_tag = 2;
// Set by reclamation on a dead process's head, when no sender can push any more.
inline constexpr std::uintptr_t reclaimed_tag = 4;
inline constexpr std::uintptr_t tag_mask = 7;
static_assert(alignof(Envelope) >= 8, "three tag bits in an envelope pointer");

inline Envelope* untag(std::uintptr_t bits) { return reinterpret_cast<Envelope*>(bits & ~tag_mask); }

// Any thread. True: the process was idle, and the caller must schedule it.
inline bool mailbox_push(ProcessHeader* p, Envelope* e) {
  e->next.store(nullptr, std::memory_order_relaxed);
  // Acquire: when we find the idle tag we take over scheduling, and must see everything the
  // last worker that ran the process wrote before it set the tag.
  // Release: a consumer that reaches our envelope sees its contents.
  const std::uintptr_t old = p->head.exchange(reinterpret_cast<std::uintptr_t>(e), std::memory_order_acq_rel);
  // Release: the consumer's acquire load of `next` must see the envelope we just wrote.
  untag(old)->next.store(e, std::memory_order_release);
  return (old & idle_tag) != 0;
}

// The owner only. The oldest envelope not yet taken, or null when none is visible yet (the
// queue is empty, or a producer has swung `head` but not yet linked its envelope).
inline Envelope* mailbox_pop(ProcessHeader* p) {
  Envelope* stub = &p->stub;
  Envelope* t = p->tail;
  // Acquire: pairs with the producer's release store of `next`.
  Envelope* next = t->next.load(std::memory_order_acquire);
  if (t == stub) {
    if (next == nullptr) return nullptr;
    p->tail = next;
    t = next;
    next = t->next.load(std::memory_order_acquire);
  }
  if (next != nullptr) {
    p->tail = next;
    return t;
  }
  // t is the newest linked envelope. If it is also the newest pushed, put the stub back
  // behind it, so that t can be handed out while the queue still holds a node.
  std::uintptr_t head = p->head.load(std::memory_order_acquire);
  if (untag(head) != t) return nullptr;  // a producer is between its exchange and its link
  stub->next.store(nullptr, std::memory_order_relaxed);
  std::uintptr_t expected = head;
  // The reclaimed tag stays (only a dead process has it, and no producer is left then).
  const std::uintptr_t with_stub = reinterpret_cast<std::uintptr_t>(stub) | (head & reclaimed_tag);
  // Release: a producer that links after the stub must see stub->next == nullptr first.
  if (!p->head.compare_exchange_strong(expected, with_stub, std::memory_order_acq_rel, std::memory_order_relaxed))
    return nullptr;  // a producer got in first; its link to t->next will show up
  t->next.store(stub, std::memory_order_release);
  p->tail = stub;
  return t;
}

// The owner, at the end of a turn: marks the process idle if nothing is queued. False when
// something arrived meanwhile (the process must run again).
inline bool mailbox_try_mark_idle(ProcessHeader* p) {
  Envelope* stub = &p->stub;
  if (p->tail != stub || stub->next.load(std::memory_order_acquire) != nullptr) return false;
  std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(stub);
  // Release: the sender that clears the tag (acquire) and schedules the process hands our
  // writes to the next worker that runs it.
  return p->head.compare_exchange_strong(expected, expected | idle_tag, std::memory_order_acq_rel,
                                         std::memory_order_relaxed);
}

enum class DeadMark { idle, reclaimed, busy };

// The worker holding a dead process's mailbox, once it has answered everything it could
// take: idle (the next sender schedules it again), reclaimed (reclamation came meanwhile; no
// sender is left, nothing is queued: the caller frees the header), or busy (something
// arrived, or a producer is between its exchange and its link: take it and try again).
inline DeadMark mailbox_try_mark_idle_dead(ProcessHeader* p) {
  Envelope* stub = &p->stub;
  if (p->tail != stub || stub->next.load(std::memory_order_acquire) != nullptr) return DeadMark::busy;
  // Acquire: a reclaimed tag read here comes after every sender's push (reclaim's release).
  std::uintptr_t head = p->head.load(std::memory_order_acquire);
  if (untag(head) != stub) return DeadMark::busy;
  if ((head & reclaimed_tag) != 0) return DeadMark::reclaimed;
  // Release: the sender that clears the tag (acquire) and schedules the dead process hands
  // our writes to the next worker that answers for it, as for a live process. Acquire on
  // failure: the value may carry reclamation's tag.
  if (p->head.compare_exchange_strong(head, head | idle_tag, std::memory_order_acq_rel, std::memory_order_acquire))
    return DeadMark::idle;
  return (head & reclaimed_tag) != 0 && untag(head) == stub ? DeadMark::reclaimed : DeadMark::busy;
}

// The owner, as the process dies: marks the newest envelope that made it in (the stub if
// none did since it was last put back); the final drain stops there.
inline Envelope* mailbox_close(ProcessHeader* p) {
  return untag(p->head.fetch_or(closed_tag, std::memory_order_acq_rel));
}

// The owner, after mailbox_close: takes exactly the envelopes pushed before the close,
// waiting out producers that swung `head` but have not linked yet (a few instructions away).
template <class F>
void mailbox_drain_closed(ProcessHeader* p, Envelope* last, F&& f) {
  Envelope* stub = &p->stub;
  for (unsigned spins = 0;;) {
    if (last == stub && p->tail == stub) return;  // everything up to the stub is taken
    Envelope* e = mailbox_pop(p);
    if (e == nullptr) {
      if (++spins > 64) std::this_thread::yield();
      continue;
    }
    f(e);
    if (e == last) return;
  }
}

// After the grace period: the envelopes that arrived after the close, oldest first.
template <class F>
void mailbox_for_each_late(ProcessHeader* p, F&& f) {
  Envelope* e = p->tail == &p->stub ? p->stub.next.load(std::memory_order_acquire) : p->tail;
  while (e != nullptr) {
    Envelope* next = e->next.load(std::memory_order_acquire);
    if (e != &p->stub) f(e);
    e = next;
  }
}

}  // namespace coppice::detail
