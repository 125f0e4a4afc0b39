// Timers: one thread, an indexed heap, generation-checked handles (see timers.hpp).
#include "runtime/timers.hpp"

#include "runtime/runtime_core.hpp"

namespace coppice::detail {

Timers::Timers(RuntimeCore& core) : core_(core) {}

Timers::~Timers() { stop(); }

void Timers::start() { thread_ = std::thread([this] { run(); }); }

void Timers::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (Entry& e : entries_) {
    if (e.active) free_envelope(e.envelope);
    e.active = false;
  }
  heap_.clear();
}

TimerRef Timers::start_timer(Clock::time_point when, Pid to, Envelope* e) {
  bool wake;  // earlier than the thread will wake on its own
  TimerRef ref;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      free_envelope(e);
      return {};
    }
    std::uint32_t i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else {
      i = static_cast<std::uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& entry = entries_[i];
    if (++entry.generation == 0) entry.generation = 1;
    entry.when = when;
    entry.to = to;
    entry.envelope = e;
    entry.active = true;
    entry.heap_index = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(i);
    sift_up(entry.heap_index);
    wake = when < waiting_until_;
    if (wake) woken_for_ = when;
    ref = TimerRef(i, entry.generation);
    ++started_;
  }
  if (wake) cv_.notify_one();
  return ref;
}

bool Timers::cancel(TimerRef timer) {
  Envelope* e = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!timer || timer.index() >= entries_.size()) return false;
    Entry& entry = entries_[timer.index()];
    if (!entry.active || entry.generation != timer.generation()) return false;
    heap_remove(entry.heap_index);
    entry.active = false;
    e = entry.envelope;
    entry.envelope = nullptr;
    free_.push_back(timer.index());
  }
  free_envelope(e);
  return true;
}

std::uint64_t Timers::wakeups() {
  std::lock_guard lock(mutex_);
  return wakeups_;
}

Timers::Counts Timers::counts() {
  std::lock_guard lock(mutex_);
  return {started_, fired_, heap_.size()};
}

std::size_t Timers::pending() {
  std::lock_guard lock(mutex_);
  return heap_.size();
}

void Timers::run() {
  std::vector<std::pair<Pid, Envelope*>> due;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto now = Clock::now();
    if (heap_.empty()) {
      // Woken for a timer that was cancelled before this thread took the lock (a reply that
      // beat its call's timeout): sleep on until that deadline, as if it still stood, so that
      // the next start (the next call's timeout, no earlier) wakes nobody. Waiting with none
      // would have every such start wake the thread again on a host slow to schedule it.
      if (woken_for_ > now) {
        waiting_until_ = woken_for_;
        cv_.wait_until(lock, woken_for_);
      } else {
        waiting_until_ = Clock::time_point::max();
        cv_.wait(lock);
      }
      waiting_until_ = Clock::time_point::min();
      ++wakeups_;
      continue;
    }
    // A copy: start_timer may grow entries_ while we wait with the lock released.
    const Clock::time_point first = entries_[heap_.front()].when;
    if (first > now) {
      waiting_until_ = first;
      cv_.wait_until(lock, first);
      waiting_until_ = Clock::time_point::min();
      ++wakeups_;
      continue;
    }
    while (!heap_.empty() && entries_[heap_.front()].when <= now) {
      const std::uint32_t i = heap_.front();
      heap_remove(0);
      Entry& entry = entries_[i];
      due.emplace_back(entry.to, entry.envelope);
      entry.active = false;
      entry.envelope = nullptr;
      free_.push_back(i);
      ++fired_;
    }
    lock.unlock();
    {
      ExternalGuard guard(core_.epoch);
      for (auto& [to, e] : due) core_.deliver(to, e);
    }
    due.clear();
    lock.lock();
  }
}

void Timers::heap_swap(std::uint32_t i, std::uint32_t j) {
  std::swap(heap_[i], heap_[j]);
  entries_[heap_[i]].heap_index = i;
  entries_[heap_[j]].heap_index = j;
}

void Timers::sift_up(std::uint32_t i) {
  while (i > 0) {
    const std::uint32_t parent = (i - 1) / 2;
    if (!less(heap_[i], heap_[parent])) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Timers::sift_down(std::uint32_t i) {
  const std::uint32_t n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t smallest = i;
    const std::uint32_t l = 2 * i + 1, r = 2 * i + 2;
    if (l < n && less(heap_[l], heap_[smallest])) smallest = l;
    if (r < n && less(heap_[r], heap_[smallest])) smallest = r;
    if (smallest == i) return;
    heap_swap(i, smallest);
    i = smallest;
  }
}

void Timers::heap_remove(std::uint32_t i) {
  const std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
  if (i != last) {
    heap_swap(i, last);
    heap_.pop_back();
    sift_down(i);
    sift_up(i);
  } else {
    heap_.pop_back();
  }
}

}  // namespace coppice::detail
