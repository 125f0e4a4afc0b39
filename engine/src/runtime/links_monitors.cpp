// Links and monitors: link, unlink, monitor (by pid or name), exit_monitored and demonitor,
// as the process that makes them does its side and sends the other its request.
#include <string>

#include "coppice/process.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

std::atomic<void (*)(Pid)> signal_push_hook{nullptr};

namespace {
void before_signal_push(Pid target) {
  if (auto* hook = signal_push_hook.load(std::memory_order_acquire)) hook(target);
}
}  // namespace

// ---- Links and monitors --------------------------------------------------------------

Status RuntimeCore::link(ProcessHeader* self, Pid pid) {
  if (pid == self->pid) return {};
  if (!pid) return Error(ErrorKind::invalid_argument, "link: no pid given");
  if (table.foreign(pid)) return Error(ErrorKind::foreign_pid, "link: " + table.foreign_text(pid), pid);
  if (self->has_link(pid.bits())) return {};
  // A closed mailbox is dead too: a dying process stays in the table for a moment after
  // its DOWNs went out, and a link to it must not succeed then.
  ProcessHeader* target = table.lookup(pid);
  if (target == nullptr || target->exiting.load(std::memory_order_acquire) != 0) {
    if (!trapping(self)) return Error(ErrorKind::noproc, "link: " + pid.to_string() + " is not alive", pid);
    self->add_link(pid.bits());
    deliver(self->pid, make_exit_signal(SignalKind::exit_linked, pid, ExitReason::noproc()));
    return {};
  }
  self->add_link(pid.bits());
  before_signal_push(pid);
  push(target, make_signal(SignalKind::link, self->pid, 0));
  return {};
}

void RuntimeCore::unlink(ProcessHeader* self, Pid pid) {
  if (!self->remove_link(pid.bits())) return;
  deliver(pid, make_signal(SignalKind::unlink, self->pid, 0));
}

Ref RuntimeCore::monitor(ProcessHeader* self, Pid pid) {
  Ref ref = make_ref();
  // monitor(self()): a reference and nothing else, as ERTS does (SEMANTICS.md 9): a process
  // cannot see its own DOWN, so a monitor would only grow its extras (a loop of them did).
  if (pid == self->pid) return ref;
  self->ensure_extras().monitoring.insert(ref.bits(), pid.bits());
  if (table.foreign(pid)) {
    // Another runtime's pid: a DOWN noconnection at once, as OTP gives for a pid of a node
    // it cannot reach.
    deliver(self->pid, make_down_signal(pid, ref, ExitReason::other("noconnection")));
    return ref;
  }
  ProcessHeader* target = table.lookup(pid);
  if (target == nullptr || target->exiting.load(std::memory_order_acquire) != 0) {
    // Gone, or going: the DOWN comes at once (a request would be answered only when the
    // dying process's memory is reclaimed).
    deliver(self->pid, make_down_signal(pid, ref, ExitReason::noproc()));
    return ref;
  }
  before_signal_push(pid);
  push(target, make_signal(SignalKind::monitor, self->pid, ref.bits()));
  return ref;
}

Ref RuntimeCore::monitor(ProcessHeader* self, std::string_view name) {
  const Pid pid = names.whereis(name);
  if (!pid) {
    // Nobody holds the name: a DOWN noproc at once, naming it.
    Ref ref = make_ref();
    ProcessExtras& x = self->ensure_extras();
    x.monitoring.insert(ref.bits(), 0);
    x.monitor_names.emplace_back(ref.bits(), std::string(name));
    deliver(self->pid, make_down_signal(Pid{}, ref, ExitReason::noproc()));
    return ref;
  }
  Ref ref = monitor(self, pid);
  if (pid == self->pid) return ref;  // its own name: nothing stored (above)
  self->ensure_extras().monitor_names.emplace_back(ref.bits(), std::string(name));
  return ref;
}

Ref RuntimeCore::exit_monitored(ProcessHeader* self, Pid pid, ExitReason reason) {
  Ref ref = make_ref();
  self->ensure_extras().monitoring.insert(ref.bits(), pid.bits());
  const bool had_link = self->remove_link(pid.bits());
  if (table.foreign(pid)) {  // as monitor: another runtime's pid is out of reach
    deliver(self->pid, make_down_signal(pid, ref, ExitReason::other("noconnection")));
    return ref;
  }
  ProcessHeader* target = table.lookup(pid);
  if (target == nullptr || target->exiting.load(std::memory_order_acquire) != 0) {
    deliver(self->pid, make_down_signal(pid, ref, ExitReason::noproc()));
    return ref;
  }
  Envelope* e = make_exit_signal(SignalKind::exit_explicit, self->pid, std::move(reason));
  e->ref = ref.bits();
  // Only an unlink of a link we had tells the receiver to drop its side (as OTP's unlink
  // sends a signal only for an existing link): a link the child is making right now, which
  // crosses this signal, must survive on both sides.
  if (had_link) e->set_type(e->type(), unlinks_receiver);
  before_signal_push(pid);
  push(target, e);
  return ref;
}

bool RuntimeCore::demonitor(ProcessHeader* self, Ref ref, bool flush) {
  std::uint64_t target = 0;
  const bool active = self->extras != nullptr && self->extras->monitoring.erase(ref.bits(), &target);
  if (active) {
    auto& names_of = self->extras->monitor_names;
    for (auto it = names_of.begin(); it != names_of.end(); ++it)
      if (it->first == ref.bits()) {
        names_of.erase(it);
        break;
      }
  }
  if (active) deliver(Pid::from_bits(target), make_signal(SignalKind::demonitor, self->pid, ref.bits()));
  if (flush) {
    // A DOWN can only already be in the private queue: any still in the mailbox will be
    // dropped on arrival, the monitor being gone.
    ReceiveWait w;
    w.ref = ref.bits();
    w.match = [](const ReceiveWait& rw, Envelope& e) {
      return e.type() == &type_info_v<Down> && static_cast<Down*>(e.payload())->ref.bits() == rw.ref;
    };
    if (Envelope* e = scan(self, w)) free_envelope(e);
  }
  return active;
}

}  // namespace coppice::detail
