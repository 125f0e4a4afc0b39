// A worker's bounded run queue: the owner pushes at the bottom, everyone (owner included)
// takes from the top, thieves take about half at once.
//
// It is Chase-Lev's array and indices (Le et al. 2013 for the orders) with one change: the
// owner does not pop LIFO from the bottom but takes FIFO from the top like a thief, so a
// process that used up its turn waits behind the others instead of running again at once
// (the fairness Go and Tokio get the same way). LIFO locality comes from the worker's
// "next" slot instead. The indices are 64-bit and only grow, so a CAS on `top` has no ABA.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>

#include "runtime/process_header.hpp"

namespace coppice::detail {

class RunQueue {
 public:
  // Power of two. 256 as in Tokio: big enough that overflow to the global queue is rare,
  // small enough (2 KiB) that stealing half is a short copy.
  static constexpr std::uint32_t capacity = 256;

  // Owner only. False when full (the caller moves work to the global queue). *size_before
  // gets how many entries the queue held (as far as the owner can tell). `backlog`: p used
  // its whole turn and has messages left (backlog_at).
  bool push(ProcessHeader* p, std::uint64_t* size_before = nullptr, bool backlog = false) {
    const std::uint64_t b = bottom_.load(std::memory_order_relaxed);
    // Acquire: slots below `top` have been read by whoever took them before we overwrite.
    const std::uint64_t t = top_.load(std::memory_order_acquire);
    if (size_before != nullptr) *size_before = b - t;
    if (b - t >= capacity) return false;
    // Before the release of `bottom` below: a reader that sees this entry sees its mark.
    if (backlog) backlog_at_.store(b, std::memory_order_relaxed);
    slots_[b & (capacity - 1)].store(p, std::memory_order_relaxed);
    // Release: a taker that sees the new bottom sees the slot.
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  // Any thread: the oldest entry, or null.
  ProcessHeader* take() {
    std::uint64_t t = top_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t b = bottom_.load(std::memory_order_acquire);
      if (t >= b) return nullptr;
      ProcessHeader* p = slots_[t & (capacity - 1)].load(std::memory_order_relaxed);
      // Success means nobody took slot t before us, so the owner cannot have reused it.
      if (top_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return p;
    }
  }

  // Thief: moves about half of this queue into `into` (the thief's own, empty, queue) and
  // returns one of them to run now, or null if there was nothing to take.
  ProcessHeader* steal_half_into(RunQueue& into) {
    std::uint64_t t = top_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t b = bottom_.load(std::memory_order_acquire);
      if (t >= b) return nullptr;
      std::uint64_t n = b - t;
      n -= n / 2;
      if (n > capacity / 2) n = capacity / 2;
      ProcessHeader* taken[capacity / 2];
      for (std::uint64_t i = 0; i < n; ++i) taken[i] = slots_[(t + i) & (capacity - 1)].load(std::memory_order_relaxed);
      if (!top_.compare_exchange_weak(t, t + n, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      for (std::uint64_t i = 1; i < n; ++i) {
        // `into` has room: the caller's rule is that it is empty (search and the watcher
        // steal only into an empty queue). A full one would lose processes: loud in debug.
        [[maybe_unused]] const bool pushed = into.push(taken[i]);
        assert(pushed);
      }
      return taken[0];
    }
  }

  // Owner: takes about half of the queue into `out` (room for capacity / 2); returns how many.
  std::uint32_t take_half(ProcessHeader** out) {
    std::uint32_t moved = 0;
    const std::uint64_t n = size() / 2;
    while (moved < n) {
      ProcessHeader* p = take();
      if (p == nullptr) break;
      out[moved++] = p;
    }
    return moved;
  }

  std::uint64_t size() const {
    const std::uint64_t t = top_.load(std::memory_order_acquire);
    const std::uint64_t b = bottom_.load(std::memory_order_acquire);
    return b > t ? b - t : 0;
  }
  bool empty() const { return size() == 0; }
  // Any thread: true when the queue holds exactly one entry, with *top set to its index. The
  // indices only grow, so the same index seen lone twice is the same entry, still waiting.
  bool lone(std::uint64_t* top) const {
    const std::uint64_t t = top_.load(std::memory_order_acquire);
    const std::uint64_t b = bottom_.load(std::memory_order_acquire);
    *top = t;
    return b - t == 1;
  }
  // Any thread, after lone() gave `top`: true if that entry was the last one pushed as a
  // backlog (a process requeued with messages left after its whole turn), not woken,
  // spawned or displaced. Only the last is remembered, so an older backlog reads false. A
  // hint: read after the `bottom` that showed the entry, so never older than its mark.
  bool backlog_at(std::uint64_t top) const { return backlog_at_.load(std::memory_order_relaxed) == top; }

 private:
  alignas(64) std::atomic<std::uint64_t> top_{0};
  alignas(64) std::atomic<std::uint64_t> bottom_{0};
  // The index of the last entry pushed as a backlog (on bottom's line: the owner writes that
  // line at every push anyway, and a searcher reads it with bottom).
  std::atomic<std::uint64_t> backlog_at_{~std::uint64_t{0}};
  alignas(64) std::atomic<ProcessHeader*> slots_[capacity]{};
};

}  // namespace coppice::detail
