// A call from a process: the request sent with a monitor and an alias, the reply matched by
// its alias (or the server's DOWN), and the end of the call, shared with an Inbox's (inbox.cpp).
#include <string>

#include "coppice/process.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

bool match_reply(const ReceiveWait& w, Envelope& e) {
  if (e.addressing() == Addressing::alias) return e.ref == w.ref;
  return e.type() == &type_info_v<Down> && static_cast<Down*>(e.payload())->ref.bits() == w.ref;
}

namespace {
std::string target_text(const CallWait& c) {
  return c.name.empty() ? c.to.to_string() : quoted(c.name);
}
}  // namespace

CallWait::~CallWait() {
  if (request != nullptr) free_envelope(request);
}

bool CallWait::start() {
  if (!send_now()) return true;
  return wait.ready();
}

bool CallWait::send_now() {
  ProcessHeader& p = require_running();
  RuntimeCore& core = *running_core();
  started = true;
  if (!name.empty()) {
    to = core.names.whereis(name);
    if (!to) {
      failed_early = true;
      early = Error(ErrorKind::noproc, "call: no process is registered as " + quoted(name));
      return false;
    }
  }
  if (to == p.pid) {
    failed_early = true;
    early = Error(ErrorKind::calling_self, "call: a process cannot call itself", to);
    return false;
  }
  if (core.table.foreign(to)) {
    failed_early = true;
    early = Error(ErrorKind::foreign_pid, "call: " + core.table.foreign_text(to), to);
    return false;
  }
  const Ref ref = core.send_call(&p, to, std::exchange(request, nullptr));
  wait.match = &match_reply;
  wait.ref = ref.bits();
  return true;
}

RequestId send_request_envelope(Pid to, Envelope* request) {
  CallWait c;
  c.to = to;
  c.request = request;
  if (!c.send_now()) return RequestId{Ref{}, to, c.early};
  return RequestId{Ref::from_bits(c.wait.ref), to, std::nullopt};
}

Result<Message> CallWait::finish() {
  if (failed_early) return early;
  ProcessHeader& p = require_running();
  std::optional<Message> answer;
  if (wait.result != nullptr) answer = wait.take();
  return running_core()->finish_call(&p, Ref::from_bits(wait.ref), std::move(answer), to, target_text(*this),
                                     wait.timeout_ns / 1000000);
}

Ref RuntimeCore::send_call(ProcessHeader* self, Pid to, Envelope* e) {
  ProcessExtras& x = self->ensure_extras();
  const bool message = kind_of(e) == SignalKind::message;
  ProcessHeader* target = message ? table.lookup(to) : nullptr;
  Ref ref;
  if (target != nullptr && target->exiting.load(std::memory_order_acquire) == 0) {
    // One envelope: the receiver's arrival places the monitor as it takes the request in (a
    // request that meets the receiver's exit instead gets the DOWN an early monitor would; a
    // proxy's arrival is handed the monitor as the signal it replaces). The target's flags
    // are its owner's, not ours to read, so a proxy is not told apart here.
    ref = make_ref();
    x.monitoring.insert(ref.bits(), to.bits());
    e->set_type(e->type(), Addressing::request);
    e->mark_monitor();
  } else {
    // Dead, exiting, or a process_info request: the monitor first (a DOWN noproc at once for
    // the dead), then the request, as `monitor` and `deliver` do.
    ref = monitor(self, to);
    target = nullptr;
    if (message) e->set_type(e->type(), Addressing::request);
  }
  x.aliases.insert(ref.bits(), 0);
  e->from = self->pid;
  e->ref = ref.bits();
  if (target != nullptr) {
    push(target, e);
  } else {
    deliver(to, e);
  }
  return ref;
}

void RuntimeCore::end_monitor(ProcessHeader* self, const Message& answer, Ref ref) {
  const Envelope* e = answer.envelope();
  if (e != nullptr && e->carries_monitor() && e->addressing() == Addressing::alias) {
    // The server dropped our monitor as it answered: no demonitor to send, and no DOWN of
    // this monitor can come after the answer.
    if (self->extras != nullptr) self->extras->monitoring.erase(ref.bits());
  } else {
    demonitor(self, ref, true);
  }
}

void end_monitor(const Message& answer, Ref ref) {
  running_core()->end_monitor(&require_running(), answer, ref);
}

void RuntimeCore::drop_replies(ProcessHeader* self, Ref ref) {
  ReceiveWait w;
  w.ref = ref.bits();
  w.match = [](const ReceiveWait& rw, Envelope& e) {
    return e.addressing() == Addressing::alias && e.ref == rw.ref;
  };
  while (Envelope* e = scan(self, w)) free_envelope(e);
}

Result<Message> RuntimeCore::finish_call(ProcessHeader* self, Ref ref, std::optional<Message> answer, Pid to,
                                         const std::string& target, std::int64_t timeout_ms) {
  if (self->extras != nullptr) self->extras->aliases.erase(ref.bits());
  if (!answer) {
    demonitor(self, ref, true);
    drop_replies(self, ref);  // drained with the timeout, while the alias was still active
    return Error(ErrorKind::timeout, "call to " + target + " timed out after " + std::to_string(timeout_ms) + " ms", to);
  }
  if (const Down* down = answer->get_if<Down>()) {
    if (down->reason.kind() == ExitReason::Kind::noproc)
      return Error(ErrorKind::noproc, "call: " + target + " is not alive", to, down->reason);
    return Error(ErrorKind::exited, "call: " + target + " exited: " + down->reason.to_string(), to, down->reason);
  }
  end_monitor(self, *answer, ref);
  return std::move(*answer);
}

}  // namespace coppice::detail
