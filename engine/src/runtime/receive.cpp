// Receiving inside a process: selective receive over the private queue, and its timeout.
// (A call's wait is a receive too: call.cpp.)
#include <chrono>

#include "coppice/process.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

std::int64_t to_timeout_ns(std::chrono::nanoseconds timeout) { return timeout.count() < 0 ? 0 : timeout.count(); }

ReceiveWait::~ReceiveWait() {
  if (waiting) {
    if (RuntimeCore* core = running_core()) {
      if (timer) core->timers.cancel(timer);
      if (ProcessHeader* p = running_process(); p != nullptr && p->waiter == this) p->waiter = nullptr;
    }
  }
  if (result != nullptr) free_envelope(result);
}

bool ReceiveWait::ready() {
  ProcessHeader& p = require_running();
  RuntimeCore& core = *running_core();
  if (!core.drain(&p)) return false;  // a fatal signal: suspend, and the worker ends the process
  scanned = nullptr;
  if (Envelope* e = core.scan(&p, *this)) {
    result = e;
    return true;
  }
  if (timeout_ns == 0) {
    timed_out = true;
    return true;
  }
  return false;
}

bool ReceiveWait::done_or_yield(bool done) {
  if (!done || !spend_await_at_once()) return done;
  yielded = true;
  return false;
}

void ReceiveWait::suspend(std::coroutine_handle<> h) {
  ProcessHeader& p = require_running();
  RuntimeCore& core = *running_core();
  handle = h;
  waiting = true;
  p.waiter = this;
  if (yielded) return;  // a yield: the result is in, nothing to wait for (no timer)
  if (timeout_ns > 0 && !RuntimeCore::pending_exit) {
    timer_token = core.make_ref().bits();
    timer = core.timers.start_timer(Timers::Clock::now() + std::chrono::nanoseconds(timeout_ns), p.pid,
                                    make_signal(SignalKind::receive_timeout, p.pid, timer_token));
  }
}

// ---- The private queue, as a receive scans it (a turn pops it: turn.cpp) -------------

Envelope* RuntimeCore::scan(ProcessHeader* self, ReceiveWait& w) {
  // The queue is a ring through its tail (ProcessHeader::queue_tail): the head is the tail's
  // next, and the scan ends at the tail it started with. A match predicate must not take
  // from this queue itself (a receive inside it): the tail it removed would never be met.
  Envelope* const tail = self->queue_tail;
  if (tail == nullptr || w.scanned == tail) return nullptr;  // empty, or nothing new since the last scan
  Envelope* prev = w.scanned;
  Envelope* e = (prev != nullptr ? prev : tail)->next.load(std::memory_order_relaxed);
  for (;; prev = e, e = e->next.load(std::memory_order_relaxed)) {
    if (w.match(w, *e)) {
      Envelope* after = e->next.load(std::memory_order_relaxed);
      if (e == after) {
        self->queue_tail = nullptr;  // it was the only one
      } else {
        (prev != nullptr ? prev : tail)->next.store(after, std::memory_order_relaxed);
        if (e == tail) self->queue_tail = prev;
      }
      self->add_queued(-1);
      w.scanned = nullptr;
      return e;
    }
    if (e == tail) break;
  }
  w.scanned = e;  // next time, start after what was examined (the tail, unless more came)
  return nullptr;
}

}  // namespace coppice::detail
