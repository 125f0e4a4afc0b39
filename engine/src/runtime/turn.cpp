// A turn: which process this thread runs, one turn of it (its messages, or its activity's
// resumes, within messages_per_turn), and the activities (coroutines) a turn resumes.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "coppice/process.hpp"
#include "otp/reports.hpp"
#include "runtime/demangle.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

constinit thread_local ProcessHeader* this_process = nullptr;
constinit thread_local RuntimeCore* this_core = nullptr;

namespace {
// Awaits the running process has completed without suspending since its turn began (or
// since it last yielded): its reductions. Reset by run_turn; owned by this thread.
thread_local unsigned awaits_at_once = 0;
}  // namespace

thread_local std::optional<ExitReason> RuntimeCore::pending_exit;

ProcessHeader* running_process() noexcept { return this_process; }
RuntimeCore* running_core() noexcept { return this_core; }

// True when the running process has spent its budget of awaits completed at once: the
// caller makes this await a yield. The budget is messages_per_turn, the same unit of work a
// turn of messages is allowed, so a spinning coroutine gives way as often as a busy handler.
bool spend_await_at_once() {
  this_process->add_reductions(1);  // an await completed at once is work done, as a resume is
  if (++awaits_at_once <= this_core->options.messages_per_turn) return false;
  awaits_at_once = 0;
  return true;
}

void throw_not_running(const char* plain_thread_uses) {
  throw std::logic_error(std::string("coppice: this function is for a running process (a plain thread uses ") +
                         plain_thread_uses + ")");
}

RuntimeCore& current_core() {
  require_running("Runtime or Inbox");
  return *this_core;
}
RuntimeCore* current_core_or_null() noexcept { return this_core; }

// ---- Activities (coroutines) ---------------------------------------------------------

void start_activity(std::coroutine_handle<> root, bool body) {
  ProcessHeader& p = require_running();
  if (p.activity != nullptr) {
    root.destroy();
    throw std::logic_error("coppice: the process is already awaiting an activity");
  }
  p.activity = root.address();
  p.set(body_flag, body);
  root.resume();
  finish_activity_if_done(p);
}

void request_exit(ExitReason reason) {
  // The first reason wins: a kill met while draining is not overridden by a later request.
  if (!RuntimeCore::pending_exit) RuntimeCore::pending_exit = std::move(reason);
}

void finish_activity_if_done(ProcessHeader& p) {
  RootHandle h = RootHandle::from_address(p.activity);
  if (!h.done()) return;
  std::exception_ptr ex = h.promise().exception;
  const bool body = p.has(body_flag);
  h.destroy();
  p.activity = nullptr;
  p.set(body_flag, false);
  if (ex) std::rethrow_exception(ex);
  if (body) request_exit(ExitReason::normal());  // the body returned: exit normal
}

void RuntimeCore::resume_activity(ProcessHeader* p) {
  ReceiveWait* w = p->waiter;
  p->waiter = nullptr;
  w->waiting = false;
  w->handle.resume();
  finish_activity_if_done(*p);
}

// ---- The private queue, as a turn pops it (the drain appends: signals.cpp) -----------

Envelope* RuntimeCore::queue_pop(ProcessHeader* self) {
  Envelope* const tail = self->queue_tail;
  if (tail == nullptr) return nullptr;
  Envelope* e = tail->next.load(std::memory_order_relaxed);  // the head: the queue is a ring
  if (e == tail) {
    self->queue_tail = nullptr;
  } else {
    tail->next.store(e->next.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  self->add_queued(-1);
  return e;
}

// ---- A turn --------------------------------------------------------------------------

// A process this turn woke waits in the worker's next slot, where only a thief that has
// seen this worker stuck in one turn for a while may take it. When the turn goes on to
// another message (whose callback might hold the worker), it moves to the run queue, where
// any worker can. A turn of one message, the common case of a ping-pong, keeps it next.
inline void RuntimeCore::hand_off_next(Worker& w) {
  if (w.next.load(std::memory_order_relaxed) != nullptr) scheduler.release_next(w);
}

RuntimeCore::TurnEnd RuntimeCore::run_turn(Worker& w, ProcessHeader* p) {
  if (p->has(dead_flag)) {  // a sender found a dead process idle: answer what it sent
    bounce_late(p);
    return {false, 0};
  }
  RunningScope scope(p, this);
  unsigned budget = options.messages_per_turn;
  awaits_at_once = 0;
  // Messages are counted where they are received: the envelopes this turn takes from the
  // mailbox, counted in a register, are returned to the worker, which adds them to its
  // messages_sent (Scheduler::run). Not in send: a thread-local and a branch per send cost
  // W5 on one worker 2%. Nor by a store or a load of the header at the turn's start or end:
  // W5 measured 1-2 ns for one (ARCHITECTURE "What the counters cost"). The process's own
  // count (its reductions) is stored as each envelope is taken, beside the drain's writes.
  std::uint32_t taken = 0;
  // Drains until one message is queued (acting on the signals met on the way).
  auto drain_until_message = [&]() -> bool {
    while (p->queue_tail == nullptr) {
      Envelope* e = mailbox_pop(p);
      if (e == nullptr) return true;
      p->count_taken();
      ++taken;
      if (!arrival(p, e)) return false;
    }
    return true;
  };
  std::optional<ExitReason> reason;
  try {
    if (!p->has(started_flag)) {
      p->set(started_flag);
      p->object()->init();
    }
    for (unsigned idle_rounds = 0;;) {
      if (pending_exit) {  // stop_self in init, or a body that returned at once
        reason = std::move(pending_exit);
        pending_exit.reset();
        break;
      }
      // Drain everything first when an exit signal is waiting (it acts now, not after the
      // backlog) or when an activity waits (selective receive scans the whole queue).
      // The first is complete (a kill acts now); the second is bounded, so a flooded process
      // that waits for one particular message does not hold its worker: the rest waits for
      // its next turn.
      // Relaxed first, so a plain turn pays no read-modify-write. Then an exchange, not a
      // load and a store: a second sender's set between the two would be overwritten and its
      // kill would wait behind the backlog. Acquire: pairs with the senders' release set, so
      // the drain below finds the signal of every set it consumed; a set after the exchange
      // stays for the next round. Between two checks a turn handles at most
      // messages_per_turn messages: that bounds how long an exit signal waits.
      const bool urgent = p->urgent.load(std::memory_order_relaxed) != 0 &&
                          p->urgent.exchange(0, std::memory_order_acquire) != 0;
      const std::size_t limit = urgent ? ~std::size_t{0} : std::size_t{16} * options.messages_per_turn;
      if ((urgent || p->activity != nullptr) && !drain(p, limit, taken)) {
        reason = std::move(pending_exit);
        pending_exit.reset();
        break;
      }
      bool handled = false;
      while (budget > 0) {
        if (p->activity != nullptr) {
          ReceiveWait* waiter = p->waiter;
          if (waiter == nullptr) break;
          if (waiter->yielded) {
            // It gave the worker back (done_or_yield): behind everyone else in the queue,
            // then resumed first thing in its next turn, after the drain above has acted on
            // any signal (a kill takes effect here).
            if (handled) return {true, taken};
            waiter->yielded = false;
          } else if (!waiter->timed_out) {
            Envelope* e = scan(p, *waiter);
            if (e == nullptr) break;
            if (handled) hand_off_next(w);
            waiter->result = e;
            if (waiter->timer) {
              timers.cancel(waiter->timer);
              waiter->timer = {};
            }
          }
          resume_activity(p);
        } else {
          if (p->queue_tail == nullptr && !drain_until_message()) break;  // a fatal signal
          Envelope* e = queue_pop(p);
          if (e == nullptr) break;
          if (handled) hand_off_next(w);
          p->object()->handle(Message::adopt(e));
        }
        --budget;
        handled = true;
        if (pending_exit) break;  // stop_self, a body that returned, or a fatal signal met in a receive
      }
      if (pending_exit) {
        reason = std::move(pending_exit);
        pending_exit.reset();
        break;
      }
      // Before the mark: once idle, another worker may run this process.
      if (budget == 0) return {true, taken};  // fairness: back of the queue
      p->release_extras_if_empty();
      if (mailbox_try_mark_idle(p)) return {false, taken};
      // Something is arriving. Go round again unless it keeps not showing up (a producer
      // preempted between its exchange and its link): then let others run meanwhile.
      if (!handled && ++idle_rounds > 2) return {true, taken};
    }
  } catch (ProcessExit& e) {
    reason = pending_exit ? std::move(*pending_exit) : std::move(e.reason);
  } catch (const std::exception& e) {
    reason = ExitReason::error(demangle(typeid(e).name()), e.what());
  } catch (...) {
    reason = ExitReason::error("unknown", "an exception not derived from std::exception");
  }
  pending_exit.reset();
  // An exception that escaped is reported here; a process that chose its exit (stop_self,
  // as the OTP behaviours do after their own crash report) is not reported twice.
  if (reason->kind() == ExitReason::Kind::error && !p->has(reported_flag)) {
    report_process_crash(*this, p->pid, *reason);  // a crash report (otp/reports.cpp)
  }
  exit_process(&w, p, *reason);
  return {false, taken};
}

}  // namespace coppice::detail
