// The process table: pid -> process header. Slots are reused with a new generation until the
// last one, then retired, so a runtime never hands out a pid twice; headers are freed through
// the epoch domain, so a lookup that raced with a death still reads valid (closed) memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
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

  // Takes a runtime tag from the program's pool (1-255): std::length_error when 255 runtimes
  // are alive. The destructor gives it back.
  ProcessTable();
  ~ProcessTable();
  ProcessTable(const ProcessTable&) = delete;
  ProcessTable& operator=(const ProcessTable&) = delete;

  // A fresh pid: a free slot with its generation advanced, or a slot never used before.
  // std::length_error when every slot is in use or retired (the table is full).
  Pid allocate(SlotCache* cache);
  // Makes the process reachable by its pid. Release: a lookup sees the initialised header.
  void publish(ProcessHeader* p);
  // The live-or-dying header for pid, or null if that process is gone from the table (or
  // the pid is another runtime's). The caller is online in the epoch domain.
  ProcessHeader* lookup(Pid pid) const;
  // Removes the process; its slot may be handed out again at once with the next generation,
  // or, after its last generation, never again (retired).
  void remove(Pid pid, SlotCache* cache);

  // This runtime's tag, carried in every pid it hands out.
  std::uint8_t tag() const { return tag_; }
  // A pid handed out by another runtime (or by none: tag 0). Pid{} is not foreign.
  bool foreign(Pid pid) const { return pid && pid.runtime_tag() != tag_; }
  // "<0.3.1> is a pid of runtime 2, not of this one (runtime 1)", for foreign_pid errors.
  std::string foreign_text(Pid pid) const;

  // Tests only (test_hooks::start_fresh_slots_at): slots never used before are handed out
  // from `slot` on (if no higher one was), starting at `generation` instead of 1. Pids
  // already in free-slot caches are not changed.
  void start_fresh_slots_at(std::uint32_t slot, std::uint32_t generation);

  // Calls f(header) for every published process. The caller is online. Chunks never
  // allocated (slots skipped by start_fresh_slots_at) are skipped whole.
  template <class F>
  void for_each(F&& f) const {
    for_each_from(0, ~std::uint64_t{0}, f);
  }
  // The same for slots from `first` on, until f has been called `limit` times: the slot to
  // go on from, or 0 when the walk reached the end. The caller is online for each call.
  template <class F>
  std::uint64_t for_each_from(std::uint64_t first, std::uint64_t limit, F&& f) const {
    const std::uint64_t end = std::min<std::uint64_t>(next_unused_.load(std::memory_order_acquire), slot_limit);
    for (std::uint64_t c = first >> chunk_bits; (c << chunk_bits) < end; ++c) {
      // Acquire: pairs with ensure_slot's release; the chunk's slots are initialised.
      Slot* chunk = chunks_[c].load(std::memory_order_acquire);
      if (chunk == nullptr) continue;
      const std::uint64_t last = std::min<std::uint64_t>(end - (c << chunk_bits), chunk_size);
      const std::uint64_t from = (c == first >> chunk_bits) ? (first & (chunk_size - 1)) : 0;
      for (std::uint64_t i = from; i < last; ++i) {
        if (ProcessHeader* p = chunk[i].process.load(std::memory_order_acquire)) {
          f(p);
          if (--limit == 0) return (c << chunk_bits) + i + 1;
        }
      }
    }
    return 0;
  }

 private:
  static constexpr std::uint32_t chunk_bits = 16;
  static constexpr std::uint32_t chunk_size = 1u << chunk_bits;
  // Slots 1 to Pid::max_slot: up to 2^28 - 1 processes at once, in 2^12 chunks.
  static constexpr std::uint64_t slot_limit = std::uint64_t{Pid::max_slot} + 1;
  static constexpr std::uint32_t max_chunks = static_cast<std::uint32_t>(slot_limit >> chunk_bits);
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
  // Up to `want` slots never used before, as [first, first + count); count 0: none left.
  std::uint32_t claim_fresh(std::uint32_t want, std::uint32_t& first);
  [[noreturn]] void full() const;

  const std::uint8_t tag_;
  std::unique_ptr<std::atomic<Slot*>[]> chunks_;
  std::mutex chunk_mutex_;
  // The first slot never handed out; slot 0 is never used. 64 bits, so that claims past the
  // end (each adds up to cache_batch) can never wrap it back into used slots.
  std::atomic<std::uint64_t> next_unused_{1};
  std::atomic<std::uint32_t> fresh_generation_{1};  // 1; tests move it (start_fresh_slots_at)
  std::mutex free_mutex_;
  std::vector<std::uint64_t> free_;  // next pids, as in SlotCache
};

}  // namespace coppice::detail
