// The process table: pid -> process header, slots recycled with a new generation.
#include "runtime/process_table.hpp"

#include <algorithm>
#include <stdexcept>

namespace coppice::detail {

ProcessTable::ProcessTable() : chunks_(new std::atomic<Slot*>[max_chunks]) {
  for (std::uint32_t i = 0; i < max_chunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

ProcessTable::~ProcessTable() {
  for (std::uint32_t i = 0; i < max_chunks; ++i) delete[] chunks_[i].load(std::memory_order_relaxed);
}

ProcessTable::Slot* ProcessTable::ensure_slot(std::uint32_t s) {
  const std::uint32_t c = s >> chunk_bits;
  if (c >= max_chunks) throw std::length_error("coppice: the process table is full");
  Slot* chunk = chunks_[c].load(std::memory_order_acquire);
  if (chunk == nullptr) {
    std::lock_guard lock(chunk_mutex_);
    chunk = chunks_[c].load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunk = new Slot[chunk_size];
      // Release: a lookup that finds the chunk sees its slots initialised.
      chunks_[c].store(chunk, std::memory_order_release);
    }
  }
  return &chunk[s & (chunk_size - 1)];
}

void ProcessTable::refill(SlotCache* cache) {
  {
    std::lock_guard lock(free_mutex_);
    const std::size_t take = std::min<std::size_t>(free_.size(), cache_batch);
    cache->free.insert(cache->free.end(), free_.end() - take, free_.end());
    free_.resize(free_.size() - take);
  }
  if (!cache->free.empty()) return;
  const std::uint32_t first = next_unused_.fetch_add(cache_batch, std::memory_order_relaxed);
  for (std::uint32_t s = first + cache_batch; s > first; --s) {
    ensure_slot(s - 1);
    cache->free.push_back(Pid::from_parts(s - 1, 1).bits());
  }
}

namespace {
// The pid the slot gets next time: same slot, next generation (0 is never handed out).
std::uint64_t next_of(Pid pid) {
  std::uint32_t g = pid.generation() + 1;
  if (g == 0) g = 1;
  return Pid::from_parts(pid.slot(), g).bits();
}
}  // namespace

Pid ProcessTable::allocate(SlotCache* cache) {
  std::uint64_t next;
  if (cache != nullptr) {
    if (cache->free.empty()) refill(cache);
    next = cache->free.back();
    cache->free.pop_back();
  } else {
    std::unique_lock lock(free_mutex_);
    if (!free_.empty()) {
      next = free_.back();
      free_.pop_back();
    } else {
      lock.unlock();
      const std::uint32_t s = next_unused_.fetch_add(1, std::memory_order_relaxed);
      ensure_slot(s);
      next = Pid::from_parts(s, 1).bits();
    }
  }
  return Pid::from_bits(next);
}

void ProcessTable::publish(ProcessHeader* p) {
  slot_at(p->pid.slot())->process.store(p, std::memory_order_release);
}

ProcessHeader* ProcessTable::lookup(Pid pid) const {
  if (!pid || (pid.slot() >> chunk_bits) >= max_chunks) return nullptr;
  Slot* slot = slot_at(pid.slot());
  if (slot == nullptr) return nullptr;
  // Acquire: pairs with publish; the header's fields are initialised.
  ProcessHeader* p = slot->process.load(std::memory_order_acquire);
  return (p != nullptr && p->pid == pid) ? p : nullptr;
}

void ProcessTable::remove(Pid pid, SlotCache* cache) {
  Slot* slot = slot_at(pid.slot());
  slot->process.store(nullptr, std::memory_order_release);
  const std::uint64_t next = next_of(pid);
  if (cache != nullptr && cache->free.size() < 2 * cache_batch) {
    cache->free.push_back(next);
    return;
  }
  std::lock_guard lock(free_mutex_);
  if (cache != nullptr) {
    free_.insert(free_.end(), cache->free.begin() + cache_batch, cache->free.end());
    cache->free.resize(cache_batch);
    cache->free.push_back(next);
  } else {
    free_.push_back(next);
  }
}

}  // namespace coppice::detail
