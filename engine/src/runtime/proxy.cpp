// Proxies (proxy.hpp): a proxy's signals as its code sees them, and the signals its node applies
// in its name.
#include "runtime/proxy.hpp"

#include "coppice/runtime.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

namespace {
// A link or unlink the node applies for the wire: the proxy keeps it but is not told, since it
// came from the remote process. Never a ref's value (make_ref's are multiples of 4096 or more).
constexpr std::uint64_t from_the_wire = 1;
}  // namespace

bool RuntimeCore::proxy_arrival(ProcessHeader* self, Envelope* e) {
  using K = ProxySignal::Kind;
  ProxySignal s{K::link, e->from, Ref::from_bits(e->ref), {}};
  switch (kind_of(e)) {
    case SignalKind::link:
      self->add_link(e->from.bits());
      if (e->ref == from_the_wire) {
        free_envelope(e);
        return true;
      }
      s.ref = {};
      break;
    case SignalKind::unlink:
      self->remove_link(e->from.bits());
      if (e->ref == from_the_wire) {
        free_envelope(e);
        return true;
      }
      s.kind = K::unlink;
      s.ref = {};
      break;
    case SignalKind::monitor:
      self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
      s.kind = K::monitor;
      break;
    case SignalKind::demonitor:
      if (self->extras != nullptr) self->extras->monitored_by.erase(e->ref);
      s.kind = K::demonitor;
      break;
    case SignalKind::exit_linked:
      if (!self->remove_link(e->from.bits())) {
        free_envelope(e);  // the link was removed: signals through it are dropped
        return true;
      }
      s.kind = K::exit_linked;
      s.reason = static_cast<Exit*>(e->payload())->reason;
      s.ref = {};
      break;
    case SignalKind::exit_explicit:
      // The runtime's stop kills every process, a proxy too (a kill from no process, once the
      // stop has begun: stop() and its spawns are refused from then on).
      if (!e->from && stopping.load(std::memory_order_acquire)) return apply_exit(self, e, false);
      // exit_monitored (a supervisor's shutdown of a proxy): its monitor is kept, as for any.
      if (e->ref != 0) {
        if (e->addressing() == unlinks_receiver) self->remove_link(e->from.bits());
        self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
      }
      s.kind = K::exit;
      s.reason = static_cast<Exit*>(e->payload())->reason;
      s.ref = {};
      break;
    case SignalKind::down:
      s.kind = K::down;
      s.reason = static_cast<Down*>(e->payload())->reason;
      break;
    default: return arrival(self, e);  // not a proxy's own: as for any process
  }
  free_envelope(e);
  const Pid from = s.from;
  Envelope* note = make_envelope<ProxySignal>(&type_info_v<ProxySignal>, std::move(s));
  note->from = from;
  enqueue(self, note);
  return true;
}

namespace {
void signal(RuntimeCore& core, Pid to, Envelope* e) { core.send(to, e); }
}  // namespace

void proxy_link(Runtime& runtime, Pid proxy, Pid local) {
  RuntimeCore& core = core_of(runtime);
  // The proxy first: a `local` that is gone answers the proxy's link with exit_linked noproc,
  // which must find the link there.
  signal(core, proxy, make_signal(SignalKind::link, local, from_the_wire));
  signal(core, local, make_signal(SignalKind::link, proxy, 0));
}

void proxy_unlink(Runtime& runtime, Pid proxy, Pid local) {
  RuntimeCore& core = core_of(runtime);
  signal(core, local, make_signal(SignalKind::unlink, proxy, 0));
  signal(core, proxy, make_signal(SignalKind::unlink, local, from_the_wire));
}

void proxy_exit(Runtime& runtime, Pid proxy, Pid local, ExitReason reason, bool linked) {
  signal(core_of(runtime), local,
         make_exit_signal(linked ? SignalKind::exit_linked : SignalKind::exit_explicit, proxy, std::move(reason)));
}

void proxy_monitor(Runtime& runtime, Pid proxy, Pid local, Ref ref) {
  signal(core_of(runtime), local, make_signal(SignalKind::monitor, proxy, ref.bits()));
}

void proxy_demonitor(Runtime& runtime, Pid proxy, Pid local, Ref ref) {
  signal(core_of(runtime), local, make_signal(SignalKind::demonitor, proxy, ref.bits()));
}

void proxy_request(Runtime& runtime, Pid proxy, Pid local, Ref ref, Message request) {
  Envelope* e = request.release();
  e->from = proxy;
  e->ref = ref.bits();
  e->set_type(e->type(), Addressing::request);
  signal(core_of(runtime), local, e);
}

void proxy_cast(Runtime& runtime, Pid local, Message message) {
  Envelope* e = message.release();
  e->set_type(e->type(), Addressing::cast);
  signal(core_of(runtime), local, e);
}

Ref proxy_make_ref(Runtime& runtime) { return core_of(runtime).make_ref(); }

bool proxy_more_queued() {
  ProcessHeader* p = this_process;
  if (p == nullptr) return false;
  // Relaxed: a hint; whatever it misses, the proxy's own flush message covers.
  return p->queue_tail != nullptr || p->tail != &p->stub || untag(p->head.load(std::memory_order_relaxed)) != &p->stub;
}

void link_both(Runtime& runtime, Pid a, Pid b) {
  RuntimeCore& core = core_of(runtime);
  signal(core, a, make_signal(SignalKind::link, b, 0));
  signal(core, b, make_signal(SignalKind::link, a, 0));
}

}  // namespace coppice::detail
