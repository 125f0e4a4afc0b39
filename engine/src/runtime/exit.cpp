// Exit: a process's end (its user code, the final drain that answers link and monitor
// requests, its name, its exit signals and DOWNs), what a dead process answers, its reclamation.
#include <mutex>
#include <thread>

#include "coppice/process.hpp"
#include "runtime/allocation.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// ---- Exit ----------------------------------------------------------------------------

void RuntimeCore::final_arrival(ProcessHeader* self, Envelope* e, const ExitReason& reason) {
  ProcessExtras* x = self->extras;
  switch (kind_of(e)) {
    case SignalKind::link:
      // Linked to a process that is exiting: the linker gets our exit reason.
      deliver(e->from, make_exit_signal(SignalKind::exit_linked, self->pid, reason));
      break;
    case SignalKind::monitor:
      deliver(e->from, make_down_signal(self->pid, Ref::from_bits(e->ref), reason));
      break;
    case SignalKind::exit_explicit:
      if (e->ref != 0) deliver(e->from, make_down_signal(self->pid, Ref::from_bits(e->ref), reason));
      break;
    case SignalKind::exit_linked:
    case SignalKind::unlink:
      self->remove_link(e->from.bits());
      break;
    case SignalKind::demonitor:
      if (x) x->monitored_by.erase(e->ref);
      break;
    case SignalKind::message:  // a call's request with its monitor: the DOWN, as for a monitor
      if (e->carries_monitor() && e->addressing() == Addressing::request)
        deliver(e->from, make_down_signal(self->pid, Ref::from_bits(e->ref), reason));
      break;
    default:
      break;
  }
  free_envelope(e);
}

void RuntimeCore::kill_stranded() {
  ExternalGuard guard(epoch);
  table.for_each([&](ProcessHeader* p) {
    if (p->kind != ProcessKind::process) return;
    // As its worker would run its exit: its destructor may send, which needs a running process.
    RunningScope scope(p, this);
    exit_process(nullptr, p, ExitReason::killed());
    pending_exit.reset();
  });
}

namespace {
void reclaim_process(void* p, void* core) noexcept {
  static_cast<RuntimeCore*>(core)->reclaim(static_cast<ProcessHeader*>(p));
}
}  // namespace

void RuntimeCore::exit_process(Worker* w, ProcessHeader* p, const ExitReason& reason) {
  const bool is_process = p->kind == ProcessKind::process;
  // Counted out before anyone hears of the death, so a process_count read after a DOWN
  // does not include this process.
  if (is_process) {
    count_live(w, -1);
    // The reason's class, for metrics(): normal, shutdown, killed, the rest.
    using K = ExitReason::Kind;
    const K k = reason.kind();
    auto exits = k == K::normal ? &WorkerCounters::exits_normal
                 : k == K::shutdown ? &WorkerCounters::exits_shutdown
                 : (k == K::killed || k == K::kill) ? &WorkerCounters::exits_killed
                                                     : &WorkerCounters::exits_error;
    count(exits);
  }
  // 1. User code ends: the activity's frames, then the object (whose destructor may still
  //    send: what it sends goes out before the exit signals below). Until it has, the
  //    process is alive to everyone (`exiting` is still 0): a monitor placed meanwhile is
  //    pushed, answered by the final drain with the real reason, and so comes after
  //    whatever the destructor sent (SEMANTICS.md 1.2). Setting `exiting` first would
  //    answer it at once with noproc, overtaking the destructor's messages.
  if (p->activity != nullptr) {
    RootHandle::from_address(p->activity).destroy();
    p->activity = nullptr;
    p->waiter = nullptr;
  }
  if (Process* object = p->object()) {
    object->~Process();
    p->set(object_gone_flag);
  }
  // seq_cst: register_name sets `named` and then reads this (Dekker; see names.cpp), so a
  // name the destructor registered is removed below, by us or by register_name.
  p->exiting.store(1, std::memory_order_seq_cst);
  // 2. Close the mailbox; answer link and monitor requests that made it in.
  Envelope* last = mailbox_close(p);
  std::uint64_t taken = 0;  // for messages_sent, as a turn counts what it takes
  mailbox_drain_closed(p, last, [&](Envelope* e) {
    ++taken;
    final_arrival(p, e, reason);
  });
  if (taken != 0) count(&WorkerCounters::sent, taken);
  while (Envelope* e = queue_pop(p)) free_envelope(e);
  // 3. The name (and the label) go before anyone hears of the death.
  if (p->named.load(std::memory_order_seq_cst)) names.remove_process(p->pid);
  if (p->has(labelled_flag)) {
    std::lock_guard lock(labels_mutex);
    labels.erase(p->pid.bits());
  }
  // 4. Links, monitors, and monitors this process held.
  p->for_each_link([&](std::uint64_t peer) {
    deliver(Pid::from_bits(peer), make_exit_signal(SignalKind::exit_linked, p->pid, reason));
  });
  p->link = 0;
  if (ProcessExtras* x = p->extras) {
    x->monitored_by.for_each([&](std::uint64_t ref, std::uint64_t watcher) {
      deliver(Pid::from_bits(watcher), make_down_signal(p->pid, Ref::from_bits(ref), reason));
    });
    x->monitoring.for_each([&](std::uint64_t ref, std::uint64_t target) {
      deliver(Pid::from_bits(target), make_signal(SignalKind::demonitor, p->pid, ref));
    });
    delete x;
    p->extras = nullptr;
    p->set(links_spilled_flag, false);  // the links went with the extras
  }
  // 5. Free the slot now, the memory once no thread can hold the header. What reached the
  //    mailbox after the close is answered now, and whatever comes later by the next free
  //    worker: the mailbox goes back to idle, so the sender of a late request schedules the
  //    dead process, whose turn answers it (bounce_late). An inbox has no turns: its late
  //    envelopes wait for reclamation.
  table.remove(p->pid, w ? &w->slots : nullptr);
  p->set(dead_flag);
  epoch.retire(w ? w->participant : nullptr, p, &reclaim_process, this);
  if (is_process) bounce_late(p);  // touch p no more after this
  if (is_process && stopping.load(std::memory_order_acquire) && live_processes() == 0) {
    std::lock_guard lock(exit_mutex_);
    all_exited_.notify_all();
  }
}


// ---- After the exit: late envelopes and reclamation ----------------------------------

void RuntimeCore::bounce_late(ProcessHeader* p) {
  for (unsigned spins = 0;;) {
    std::uint64_t taken = 0;
    while (Envelope* e = mailbox_pop(p)) {
      ++taken;
      bounce(p->pid, e);
    }
    if (taken != 0) count(&WorkerCounters::sent, taken);
    switch (mailbox_try_mark_idle_dead(p)) {
      case DeadMark::idle:
        return;  // touch p no more: the next sender to find it idle schedules it
      case DeadMark::reclaimed:
        free_header(p);
        return;
      case DeadMark::busy:
        if (++spins > 64) std::this_thread::yield();
        break;
    }
  }
}

void RuntimeCore::reclaim(ProcessHeader* p) noexcept {
  // No thread holds p any more, so every push into it has finished. A process's mailbox is
  // idle unless a worker holds it to answer late envelopes (bounce_late): the tag tells that
  // worker to free p itself. acq_rel: we see the last holder's writes if it was idle, and
  // the holder that reads our tag sees every push before it.
  if (p->kind == ProcessKind::process && !tearing_down_) {
    if ((p->head.fetch_or(reclaimed_tag, std::memory_order_acq_rel) & idle_tag) == 0) return;
  }
  free_header(p);
}

void RuntimeCore::free_header(ProcessHeader* p) noexcept {
  // What came after the close (an inbox; or anything at teardown) gets the answer a dead
  // process gives (a link: exit noproc; a monitor: DOWN noproc).
  mailbox_for_each_late(p, [&](Envelope* e) {
    if (tearing_down_) {
      free_envelope(e);
    } else {
      count(&WorkerCounters::sent);
      bounce(p->pid, e);
    }
  });
  if (p->kind == ProcessKind::inbox) {
    free_inbox(p);
  } else {
    p->~ProcessHeader();
    deallocate(p);
  }
}

}  // namespace coppice::detail
