// The process table: pid -> process header, slots recycled with a new generation and retired
// after their last; the program-wide pool of runtime tags.
#include "runtime/process_table.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

namespace coppice::detail {

namespace {

// The tags of the runtimes alive in the program. Least recently freed first, so that a pid
// kept from a destroyed runtime names a later runtime only after 254 others were created
// (and even then names nobody unless that runtime reaches the same slot and generation).
class RuntimeTags {
 public:
  RuntimeTags() {
    for (unsigned t = 1; t <= 255; ++t) free_.push_back(static_cast<std::uint8_t>(t));
  }
  std::uint8_t acquire() {
    std::lock_guard lock(mutex_);
    if (free_.empty())
      throw std::length_error(
          "coppice: 255 runtimes are alive in this program, the most pids can tell apart "
          "(a pid carries an 8-bit runtime tag); destroy one before creating another");
    const std::uint8_t t = free_.front();
    free_.pop_front();
    return t;
  }
  void release(std::uint8_t t) {
    std::lock_guard lock(mutex_);
    free_.push_back(t);
  }

 private:
  std::mutex mutex_;
  std::deque<std::uint8_t> free_;
};

// A function-local static: built by the first runtime, so destroyed after the last one
// (even a runtime with static storage duration).
RuntimeTags& runtime_tags() {
  static RuntimeTags tags;
  return tags;
}

// The pid the slot gets next time, or 0 when it has served its last generation: retired.
std::uint64_t next_of(Pid pid) {
  if (pid.generation() >= Pid::last_generation) return 0;
  return Pid::from_parts(pid.slot(), pid.generation() + 1, pid.runtime_tag()).bits();
}

}  // namespace

ProcessTable::ProcessTable() : tag_(runtime_tags().acquire()), chunks_(new std::atomic<Slot*>[max_chunks]) {
  for (std::uint32_t i = 0; i < max_chunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

ProcessTable::~ProcessTable() {
  for (std::uint32_t i = 0; i < max_chunks; ++i) delete[] chunks_[i].load(std::memory_order_relaxed);
  runtime_tags().release(tag_);
}

std::string ProcessTable::foreign_text(Pid pid) const {
  std::string s = pid.to_string();
  if (pid.runtime_tag() == 0) {
    s += " is a pid of no runtime";
  } else {
    s += " is a pid of runtime " + std::to_string(pid.runtime_tag());
  }
  s += ", not of this one (runtime " + std::to_string(tag_) + ")";
  return s;
}

void ProcessTable::full() const {
  throw std::length_error("coppice: the process table is full: each of its " + std::to_string(Pid::max_slot) +
                          " slots holds a live process or has served all its generations");
}

ProcessTable::Slot* ProcessTable::ensure_slot(std::uint32_t s) {
  const std::uint32_t c = s >> chunk_bits;
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

std::uint32_t ProcessTable::claim_fresh(std::uint32_t want, std::uint32_t& first) {
  // Relaxed: the counter only hands out disjoint ranges; a slot's chunk is published by
  // ensure_slot, and its header by publish.
  const std::uint64_t start = next_unused_.fetch_add(want, std::memory_order_relaxed);
  if (start >= slot_limit) return 0;
  first = static_cast<std::uint32_t>(start);
  const std::uint32_t count = static_cast<std::uint32_t>(std::min<std::uint64_t>(want, slot_limit - start));
  for (std::uint32_t s = first; s < first + count; ++s) ensure_slot(s);
  return count;
}

void ProcessTable::refill(SlotCache* cache) {
  {
    std::lock_guard lock(free_mutex_);
    const std::size_t take = std::min<std::size_t>(free_.size(), cache_batch);
    cache->free.insert(cache->free.end(), free_.end() - take, free_.end());
    free_.resize(free_.size() - take);
  }
  if (!cache->free.empty()) return;
  std::uint32_t first = 0;
  const std::uint32_t count = claim_fresh(cache_batch, first);
  if (count == 0) full();
  // Relaxed: a tests-only setting, made before the spawns it is for.
  const std::uint32_t g = fresh_generation_.load(std::memory_order_relaxed);
  for (std::uint32_t s = first + count; s > first; --s) cache->free.push_back(Pid::from_parts(s - 1, g, tag_).bits());
}

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
      std::uint32_t s = 0;
      if (claim_fresh(1, s) == 0) full();
      next = Pid::from_parts(s, fresh_generation_.load(std::memory_order_relaxed), tag_).bits();
    }
  }
  return Pid::from_bits(next);
}

void ProcessTable::publish(ProcessHeader* p) {
  slot_at(p->pid.slot())->process.store(p, std::memory_order_release);
}

ProcessHeader* ProcessTable::lookup(Pid pid) const {
  // Another runtime's pid (or Pid{}) names nobody here, whatever this slot holds.
  if (pid.runtime_tag() != tag_) return nullptr;
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
  if (next == 0) return;  // retired: in no free list, so never handed out again
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

void ProcessTable::start_fresh_slots_at(std::uint32_t slot, std::uint32_t generation) {
  fresh_generation_.store(std::clamp<std::uint32_t>(generation, 1, Pid::last_generation), std::memory_order_relaxed);
  std::uint64_t current = next_unused_.load(std::memory_order_relaxed);
  while (slot > current && !next_unused_.compare_exchange_weak(current, slot, std::memory_order_relaxed)) {
  }
}

}  // namespace coppice::detail
