// Timers: send_after, cancel_timer and receive timeouts. One thread per runtime sleeps until
// the earliest deadline; entries sit in an indexed binary heap so that a cancel removes its
// entry at once (a million outstanding timers cost a million small entries, and cancelled
// ones cost nothing), and a TimerRef carries a generation so a stale cancel is harmless.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/timer.hpp"

namespace coppice::detail {

class RuntimeCore;

class Timers {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Timers(RuntimeCore& core);
  ~Timers();

  void start();
  void stop();  // joins the thread and frees the envelopes of timers that never fired

  // Sends `e` to `to` at `when` (takes ownership of e).
  TimerRef start_timer(Clock::time_point when, Pid to, Envelope* e);
  // True if the timer was pending and is now cancelled (its envelope freed).
  bool cancel(TimerRef timer);
  std::size_t pending();
  std::uint64_t wakeups();  // test_hooks::timer_thread_wakeups
  struct Counts {
    std::uint64_t started = 0;
    std::uint64_t fired = 0;
    std::size_t pending = 0;
  };
  Counts counts();  // metrics()

 private:
  struct Entry {
    Clock::time_point when;
    Pid to;
    Envelope* envelope = nullptr;
    std::uint32_t generation = 0;
    std::uint32_t heap_index = 0;
    bool active = false;
  };
  void run();
  bool less(std::uint32_t a, std::uint32_t b) const { return entries_[a].when < entries_[b].when; }
  void heap_swap(std::uint32_t i, std::uint32_t j);
  void sift_up(std::uint32_t i);
  void sift_down(std::uint32_t i);
  void heap_remove(std::uint32_t i);

  RuntimeCore& core_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> heap_;  // entry indices, earliest first
  bool stopping_ = false;
  // When the thread wakes on its own: the deadline it waits for, max() when it waits with
  // none, min() while it is not waiting (it looks at the heap before it waits again). A start
  // notifies only for a deadline earlier than this: a timeout started and cancelled while an
  // earlier or equal deadline stands (a server's 5 s call timeout, request after request)
  // costs the thread nothing; it wakes at the old deadline and sleeps on to the next.
  Clock::time_point waiting_until_ = Clock::time_point::min();
  // The deadline of the last start that woke the thread: with the heap empty, the thread
  // sleeps until it rather than with none (see run).
  Clock::time_point woken_for_ = Clock::time_point::min();
  std::uint64_t wakeups_ = 0;
  std::uint64_t started_ = 0;  // under mutex_, which a start and a firing hold anyway
  std::uint64_t fired_ = 0;
  std::thread thread_;
};

}  // namespace coppice::detail
