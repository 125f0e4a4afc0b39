// Sending: signal envelopes, delivery to a pid (lookup, push, schedule), and the answer a
// dead pid gives to what was sent to it (bounce).
#include <string>

#include "coppice/process.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// ---- Signal envelopes ----------------------------------------------------------------

Envelope* make_signal(SignalKind kind, Pid from, std::uint64_t ref) {
  static constexpr TypeInfo infos[] = {
      type_info_v<NoPayload, SignalKind::message>,         type_info_v<NoPayload, SignalKind::exit_linked>,
      type_info_v<NoPayload, SignalKind::exit_explicit>,   type_info_v<NoPayload, SignalKind::link>,
      type_info_v<NoPayload, SignalKind::unlink>,          type_info_v<NoPayload, SignalKind::monitor>,
      type_info_v<NoPayload, SignalKind::demonitor>,       type_info_v<NoPayload, SignalKind::down>,
      type_info_v<NoPayload, SignalKind::receive_timeout>, type_info_v<NoPayload, SignalKind::info_request>,
      type_info_v<NoPayload, SignalKind::wake>,
  };
  Envelope* e = make_envelope<NoPayload>(&infos[static_cast<int>(kind)]);
  e->from = from;
  e->ref = ref;
  return e;
}

Envelope* make_exit_signal(SignalKind kind, Pid from, ExitReason reason) {
  const TypeInfo* info = kind == SignalKind::exit_linked ? &type_info_v<Exit, SignalKind::exit_linked>
                                                         : &type_info_v<Exit, SignalKind::exit_explicit>;
  Envelope* e = make_envelope<Exit>(info, Exit{from, std::move(reason)});
  e->from = from;
  return e;
}

Envelope* make_down_signal(Pid dead, Ref ref, ExitReason reason) {
  Envelope* e = make_envelope<Down>(&type_info_v<Down, SignalKind::down>, Down{ref, dead, std::move(reason), {}});
  e->from = dead;
  e->ref = ref.bits();
  return e;
}

// ---- Delivery ------------------------------------------------------------------------

void RuntimeCore::deliver(Pid to, Envelope* e) {
  if (ProcessHeader* p = table.lookup(to)) {
    push(p, e);
    return;
  }
  bounce(to, e);
}

void RuntimeCore::push(ProcessHeader* p, Envelope* e) {
  const SignalKind kind = kind_of(e);  // e belongs to the receiver once pushed
  // A process that is exiting still takes the envelope: its final drain answers it, or,
  // once that drain is over, the dead process's next turn (bounce_late), scheduled by
  // whichever sender finds its mailbox idle again (an Inbox's: reclamation, or teardown).
  const bool was_idle = mailbox_push(p, e);  // counted when received (run_turn)
  if (kind == SignalKind::exit_explicit || kind == SignalKind::exit_linked) {
    // Release: a receiver whose exchange reads the flag (acquire) finds the signal in its
    // mailbox. Never cleared but by that exchange, so no set is lost (run_turn).
    p->urgent.store(1, std::memory_order_release);
  }
  if (was_idle) schedule(p);
}

void RuntimeCore::bounce(Pid to, Envelope* e) {
  // The receiver is gone. A request that expects an answer gets the one a dead process
  // gives (OTP: noproc); everything else is dropped, as a send to a dead pid is.
  switch (kind_of(e)) {
    case SignalKind::link:
      deliver(e->from, make_exit_signal(SignalKind::exit_linked, to, ExitReason::noproc()));
      break;
    case SignalKind::monitor:
      deliver(e->from, make_down_signal(to, Ref::from_bits(e->ref), ExitReason::noproc()));
      break;
    case SignalKind::exit_explicit:
      if (e->ref != 0) deliver(e->from, make_down_signal(to, Ref::from_bits(e->ref), ExitReason::noproc()));
      break;
    case SignalKind::message:  // a call's request with its monitor
      if (e->carries_monitor() && e->addressing() == Addressing::request)
        deliver(e->from, make_down_signal(to, Ref::from_bits(e->ref), ExitReason::noproc()));
      break;
    default:
      break;
  }
  free_envelope(e);
}

void RuntimeCore::send(Pid to, Envelope* e) {
  if (this_core == this && this_process != nullptr && !e->from) e->from = this_process->pid;
  // A received request sent on as it is keeps its `From` (the new receiver may reply to the
  // caller), but not the caller's monitor: that stays on the process the caller called.
  if (e->carries_monitor() && e->addressing() == Addressing::request) e->clear_monitor();
  if (scheduler.current() != nullptr) {
    deliver(to, e);
  } else {
    ExternalGuard guard(epoch);
    deliver(to, e);
  }
}

void RuntimeCore::schedule(ProcessHeader* p) {
  if (p->kind == ProcessKind::inbox) {
    wake_inbox(p);
  } else {
    scheduler.schedule(p);
  }
}

void send_envelope(RuntimeCore& core, Pid to, Envelope* e) { core.send(to, e); }

void send_reply_envelope(RuntimeCore& core, const From& to, Envelope* e) {
  e->set_type(e->type(), Addressing::alias);
  e->ref = to.ref.bits();
  // The server replying itself holds the caller's monitor under the call's ref (placed when
  // the request, or the monitor sent before it, arrived): it goes now, as the demonitor that
  // would follow the reply would take it, and no DOWN for this call can follow the reply.
  // A reply from anyone else (a From handed on, a thread) leaves the monitor to the caller.
  ProcessHeader* self = this_core == &core ? this_process : nullptr;
  if (self != nullptr && self->extras != nullptr) {
    const std::uint64_t* watcher = self->extras->monitored_by.find(e->ref);
    if (watcher != nullptr && *watcher == to.pid.bits()) {
      self->extras->monitored_by.erase(e->ref);
      e->mark_monitor();
    }
  }
  core.send(to.pid, e);
}

Status send_envelope_to_name(RuntimeCore& core, std::string_view name, Envelope* e) {
  Pid to = core.names.whereis(name);
  if (!to) {
    free_envelope(e);
    return Error(ErrorKind::unknown_name, "send: no process is registered as '" + std::string(name) + "'");
  }
  core.send(to, e);
  return {};
}

}  // namespace coppice::detail
