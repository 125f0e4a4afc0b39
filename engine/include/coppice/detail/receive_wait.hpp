// One pending receive of the running process (ReceiveWait), its matches and its timeout.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <utility>

#include "coppice/message.hpp"
#include "coppice/timer.hpp"

namespace coppice::detail {

// One pending receive of the running process: what it matches and where it resumes.
struct ReceiveWait {
  using Match = bool (*)(const ReceiveWait&, Envelope&);
  Match match = nullptr;
  const void* context = nullptr;
  std::uint64_t ref = 0;           // for matches on a reference
  std::int64_t timeout_ns = -1;    // < 0: wait forever
  std::coroutine_handle<> handle;
  Envelope* result = nullptr;      // the matched envelope, removed from the queue
  Envelope* scanned = nullptr;     // last queued envelope already examined
  TimerRef timer;
  std::uint64_t timer_token = 0;
  bool timed_out = false;
  bool waiting = false;
  // Done at once, but suspended anyway to give the worker back (done_or_yield): the turn
  // ends here and the process's next turn resumes it first, with the result already in.
  bool yielded = false;

  ReceiveWait() = default;
  // Moved only before it is awaited (awaiters are returned by value from receive()).
  ReceiveWait(ReceiveWait&& o) noexcept
      : match(o.match), context(o.context), ref(o.ref), timeout_ns(o.timeout_ns),
        result(std::exchange(o.result, nullptr)) {}
  ReceiveWait& operator=(ReceiveWait&&) = delete;
  ~ReceiveWait();

  bool ready();                          // drains and scans; true if done (matched or timed out)
  // What an awaiter's await_ready returns for an await that is `done` at once: true, unless
  // the running process has completed RuntimeOptions::messages_per_turn awaits at once in
  // this turn; then false with `yielded` set, and suspend() makes it a yield, as the BEAM
  // preempts a process whose reductions are spent (a loop of failing calls never suspends
  // otherwise, and would hold its worker for ever).
  bool done_or_yield(bool done);
  void suspend(std::coroutine_handle<> h);
  Message take() { return Message::adopt(std::exchange(result, nullptr)); }
};

template <class T>
bool match_type(const ReceiveWait&, Envelope& e) {
  return e.type() == &type_info_v<T>;
}
template <class Pred>
bool match_predicate(const ReceiveWait& w, Envelope& e) {
  Message m = Message::adopt(&e);
  bool ok = (*static_cast<const Pred*>(w.context))(static_cast<const Message&>(m));
  m.release();
  return ok;
}
inline bool match_any(const ReceiveWait&, Envelope&) { return true; }
// A reply to the alias w.ref, or the DOWN of the monitor w.ref.
bool match_reply(const ReceiveWait& w, Envelope& e);

std::int64_t to_timeout_ns(std::chrono::nanoseconds timeout);
// Where the runtime counts in whole milliseconds (an Inbox's call, a timer, process_info), a
// timeout or delay is rounded up: it never ends before the time asked for.
inline std::chrono::milliseconds whole_milliseconds(std::chrono::nanoseconds t) {
  return std::chrono::ceil<std::chrono::milliseconds>(t);
}

}  // namespace coppice::detail
