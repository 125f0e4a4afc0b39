// Signals on arrival: the drain moves the mailbox into the private queue and acts on each
// signal as it meets it (link, monitor, exit signals judged by SEMANTICS.md 1.4, DOWNs, replies).
#include <string>

#include "coppice/process.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// ---- The private queue, as the drain appends to it (a turn pops: turn.cpp) -----------

void RuntimeCore::enqueue(ProcessHeader* self, Envelope* e) {
  // A ring through the tail: the new tail points at the head.
  if (Envelope* tail = self->queue_tail) {
    e->next.store(tail->next.load(std::memory_order_relaxed), std::memory_order_relaxed);
    tail->next.store(e, std::memory_order_relaxed);
  } else {
    e->next.store(e, std::memory_order_relaxed);
  }
  self->queue_tail = e;
  self->add_queued(1);
}

// ---- Signals, as the receiver drains them --------------------------------------------

bool RuntimeCore::drain(ProcessHeader* self, std::size_t limit, std::uint32_t& taken) {
  for (; limit > 0; --limit) {
    Envelope* e = mailbox_pop(self);
    if (e == nullptr) break;
    self->count_taken();
    ++taken;
    if (!arrival(self, e)) return false;
  }
  return true;
}

bool RuntimeCore::drain(ProcessHeader* self, std::size_t limit) {
  std::uint32_t taken = 0;
  const bool alive = drain(self, limit, taken);
  if (taken != 0) count(&WorkerCounters::sent, taken);
  return alive;
}

bool RuntimeCore::arrival(ProcessHeader* self, Envelope* e) {
  ProcessExtras* x = self->extras;
  switch (kind_of(e)) {
    case SignalKind::message:
      if (e->addressing() == Addressing::alias && (x == nullptr || !x->aliases.contains(e->ref)) &&
          !self->has(proxy_flag)) {
        free_envelope(e);  // a reply whose call gave up: dropped, as a deactivated alias is
      } else {
        // A call's request with its monitor: placed as the request is taken in (a reply's bit
        // means the opposite). A proxy's monitors go on the wire: it is handed the monitor
        // as the signal this bit replaces, before the request.
        if (e->carries_monitor() && e->addressing() == Addressing::request) {
          if (self->has(proxy_flag)) {
            if (!proxy_arrival(self, make_signal(SignalKind::monitor, e->from, e->ref))) {
              free_envelope(e);
              return false;
            }
          } else {
            self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
          }
        }
        enqueue(self, e);
      }
      return true;
    case SignalKind::exit_linked:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      if (!self->remove_link(e->from.bits())) {
        free_envelope(e);  // the link was removed: signals through it are dropped
        return true;
      }
      return apply_exit(self, e, true);
    case SignalKind::exit_explicit:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      if (e->ref != 0) {  // exit_monitored: a monitor (and maybe an unlink) come with the signal
        if (e->addressing() == unlinks_receiver) self->remove_link(e->from.bits());
        self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
        e->ref = 0;
      }
      return apply_exit(self, e, false);
    case SignalKind::link:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      self->add_link(e->from.bits());
      break;
    case SignalKind::unlink:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      self->remove_link(e->from.bits());
      break;
    case SignalKind::monitor:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
      break;
    case SignalKind::demonitor:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      if (x) x->monitored_by.erase(e->ref);
      break;
    case SignalKind::down:
      if (self->has(proxy_flag)) return proxy_arrival(self, e);
      if (x != nullptr && x->monitoring.erase(e->ref)) {
        for (auto it = x->monitor_names.begin(); it != x->monitor_names.end(); ++it) {
          if (it->first != e->ref) continue;
          static_cast<Down*>(e->payload())->name = std::move(it->second);
          x->monitor_names.erase(it);
          break;
        }
        e->set_type(&type_info_v<Down>);
        enqueue(self, e);
        return true;
      }
      break;  // demonitored: no DOWN is added after demonitor returns
    case SignalKind::receive_timeout:
      if (self->waiter != nullptr && self->waiter->timer_token == e->ref) {
        self->waiter->timed_out = true;
        self->waiter->timer = {};
      }
      break;
    case SignalKind::info_request: {
      Envelope* reply = make_envelope<ProcessInfo>(&type_info_v<ProcessInfo>, info_of(self, e->ref));
      reply->set_type(reply->type(), Addressing::alias);
      reply->ref = e->ref;
      reply->from = self->pid;
      deliver(e->from, reply);
      break;
    }
    case SignalKind::wake:
      break;
  }
  free_envelope(e);
  return true;
}

bool RuntimeCore::apply_exit(ProcessHeader* self, Envelope* e, bool linked) {
  // SEMANTICS.md 1.4, row by row.
  Exit& x = *static_cast<Exit*>(e->payload());
  const bool traps = trapping(self);
  auto die = [&](ExitReason r) {
    pending_exit = std::move(r);
    free_envelope(e);
    return false;
  };
  auto as_message = [&] {
    e->set_type(&type_info_v<Exit>);
    enqueue(self, e);
    return true;
  };
  if (!linked && x.reason.is_kill()) {
    if (self->kind == ProcessKind::inbox) return as_message();
    return die(ExitReason::killed());  // untrappable
  }
  if (x.reason.is_normal()) {
    if (!linked && x.from == self->pid) return traps ? as_message() : die(ExitReason::normal());
    if (traps) return as_message();
    free_envelope(e);
    return true;
  }
  return traps ? as_message() : die(x.reason);
}

ProcessInfo RuntimeCore::info_of(ProcessHeader* self, std::uint64_t asker) {
  ProcessInfo info;
  info.pid = self->pid;
  info.message_queue_len = self->queue_length.load(std::memory_order_relaxed);
  info.trap_exit = self->has(trap_exit_flag);
  self->for_each_link([&](std::uint64_t k) { info.links.push_back(Pid::from_bits(k)); });
  if (ProcessExtras* x = self->extras) {
    x->monitoring.for_each([&](std::uint64_t, std::uint64_t v) { info.monitors.push_back(Pid::from_bits(v)); });
    x->monitored_by.for_each([&](std::uint64_t ref, std::uint64_t v) {
      if (ref != asker) info.monitored_by.push_back(Pid::from_bits(v));
    });
  }
  if (self->named.load(std::memory_order_acquire)) info.registered_name = names.name_of(self->pid);
  info.memory = memory_of(self);
  return info;
}

}  // namespace coppice::detail
