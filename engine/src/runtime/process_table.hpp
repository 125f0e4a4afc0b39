// The process table: pid -> process header. Slots are reused with a new generation, so a
// stale pid never finds a later process; headers are freed through the epoch domain, so a
// lookup that raced with a death still reads valid (closed) memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "coppice/pid.hpp"
#include "runtime/process_header.hpp"

namespace coppice::detail {

class ProcessTable {
 public:
  // Per-thread cache of free slots, so that spawns and exits on a worker take no lock.
  // Entries are the next pid of a free slot (the slot with its next generation), so that
  // allocating never touches the slot's cold cache line.
  struct SlotCache {
    std::vector<std::uint64_t> free;
  };

  ProcessTable();
  ~ProcessTable();

  // A fresh pid: a free slot with its generation advanced. Throws when the table is full.
  Pid allocate(SlotCache* cache);
  // Makes the process reachable by its pid. Release: a lookup sees the initialised header.
  void publish(ProcessHeader* p);
  // The live-or-dying header for pid, or null if that process is gone from the table.
  // The caller is online in the epoch domain.
  ProcessHeader* lookup(Pid pid) const;
  // Removes the process; its slot may be handed out again at once (with a new generation).
  void remove(Pid pid, SlotCache* cache);

  // Calls f(header) for every published process. The caller is online.
  template <class F>
  void for_each(F&& f) const {
    const std::uint32_t end = next_unused_.load(std::memory_order_acquire);
    for (std::uint32_t s = 1; s < end; ++s) {
      Slot* slot = slot_at(s);
      if (slot == nullptr) continue;
      if (ProcessHeader* p = slot->process.load(std::memory_order_acquire)) f(p);
    }
  }

 private:
  static constexpr std::uint32_t chunk_bits = 16;
  static constexpr std::uint32_t chunk_size = 1u << chunk_bits;
  static constexpr std::uint32_t max_chunks = 1u << 14;  // up to 2^30 processes at once
  static constexpr std::uint32_t cache_batch = 256;

  struct Slot {
    std::atomic<ProcessHeader*> process{nullptr};
  };

  Slot* slot_at(std::uint32_t s) const {
    Slot* chunk = chunks_[s >> chunk_bits].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[s & (chunk_size - 1)];
  }
  Slot* ensure_slot(std::uint32_t s);
  void refill(SlotCache* cache);

  std::unique_ptr<std::atomic<Slot*>[]> chunks_;
  std::mutex chunk_mutex_;
  std::atomic<std::uint32_t> next_unused_{1};  // slot 0 is never used: Pid{} names nobody
  std::mutex free_mutex_;
  std::vector<std::uint64_t> free_;  // next pids, as in SlotCache
};

}  // namespace coppice::detail
