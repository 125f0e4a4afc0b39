// A process's life: spawn, turns, signals acted on as they arrive, receives, calls, exit.
#include <cxxabi.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "coppice/process.hpp"
#include "coppice/runtime.hpp"
#include "coppice/test_hooks.hpp"
#include "runtime/allocation.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

namespace {
thread_local ProcessHeader* this_process = nullptr;
thread_local RuntimeCore* this_core = nullptr;
// Awaits the running process has completed without suspending since its turn began (or
// since it last yielded): its reductions. Reset by run_turn; owned by this thread.
thread_local unsigned awaits_at_once = 0;

// Sets the running process for the scope of a turn (or of an inbox operation).
struct RunningScope {
  ProcessHeader* saved_process;
  RuntimeCore* saved_core;
  RunningScope(ProcessHeader* p, RuntimeCore* c) : saved_process(this_process), saved_core(this_core) {
    this_process = p;
    this_core = c;
  }
  ~RunningScope() {
    this_process = saved_process;
    this_core = saved_core;
  }
};

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d != nullptr) ? d : name;
  std::free(d);
  return out;
}

ProcessHeader& require_process() {
  if (this_process == nullptr || this_process->kind != ProcessKind::process)
    throw std::logic_error("coppice: this function is for a running process (a plain thread uses an Inbox)");
  return *this_process;
}

bool trapping(const ProcessHeader* p) { return p->has(trap_exit_flag) || p->kind == ProcessKind::inbox; }

using RootHandle = std::coroutine_handle<Async<void>::promise_type>;
}  // namespace

thread_local std::optional<ExitReason> RuntimeCore::pending_exit;

ProcessHeader* running_process() noexcept { return this_process; }
RuntimeCore* running_core() noexcept { return this_core; }

// True when the running process has spent its budget of awaits completed at once: the
// caller makes this await a yield. The budget is messages_per_turn, the same unit of work a
// turn of messages is allowed, so a spinning coroutine gives way as often as a busy handler.
bool spend_await_at_once() {
  if (++awaits_at_once <= this_core->options.messages_per_turn) return false;
  awaits_at_once = 0;
  return true;
}

RuntimeCore& current_core() {
  if (this_core == nullptr) throw std::logic_error("coppice: not inside a process (a plain thread uses Runtime or Inbox)");
  return *this_core;
}
RuntimeCore* current_core_or_null() noexcept { return this_core; }

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
  // A process that is exiting still takes the envelope; its reclamation answers it.
  const bool was_idle = mailbox_push(p, e);
  if (kind == SignalKind::exit_explicit || kind == SignalKind::exit_linked) {
    // Release: a receiver whose exchange reads the flag (acquire) finds the signal in its
    // mailbox. Never cleared but by that exchange, so no set is lost (run_turn).
    p->urgent.store(1, std::memory_order_release);
  }
  if (was_idle) schedule(p);
}

namespace {
// On an exit_monitored signal (an exit_explicit with a monitor ref): the sender dropped a link
// it had to the receiver, so the receiver drops its side before acting on the exit. Signals
// are not messages, so the addressing bits are free; apply_exit's set_type clears them.
constexpr Addressing unlinks_receiver = Addressing::request;

// Tests only (coppice/test_hooks.hpp): runs between a link, monitor or exit_monitored's check
// that the target is alive and the push of its request, to widen that window at will.
std::atomic<void (*)(Pid)> signal_push_hook{nullptr};

void before_signal_push(Pid target) {
  if (auto* hook = signal_push_hook.load(std::memory_order_acquire)) hook(target);
}
}  // namespace

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
    default:
      break;
  }
  free_envelope(e);
}

void RuntimeCore::send(Pid to, Envelope* e) {
  if (this_core == this && this_process != nullptr && !e->from) e->from = this_process->pid;
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

Ref RuntimeCore::make_ref() {
  // Worker refs: a per-worker counter and the worker's index; plain threads: a shared one.
  if (Worker* w = scheduler.current()) return Ref::from_bits((++w->ref_counter << 12) | (w->index + 1));
  return Ref::from_bits(external_refs_.fetch_add(1, std::memory_order_relaxed) << 12);
}

void RuntimeCore::log(std::string_view line) {
  if (options.logger) {
    options.logger(line);
  } else {
    std::string out(line);
    out.push_back('\n');
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
}

void send_envelope(RuntimeCore& core, Pid to, Envelope* e) { core.send(to, e); }

Status send_envelope_to_name(RuntimeCore& core, std::string_view name, Envelope* e) {
  Pid to = core.names.whereis(name);
  if (!to) {
    free_envelope(e);
    return Error(ErrorKind::unknown_name, "send: no process is registered as '" + std::string(name) + "'");
  }
  core.send(to, e);
  return {};
}

// ---- The private queue ---------------------------------------------------------------

void RuntimeCore::enqueue(ProcessHeader* self, Envelope* e) {
  e->next.store(nullptr, std::memory_order_relaxed);
  if (self->queue_tail != nullptr) {
    self->queue_tail->next.store(e, std::memory_order_relaxed);
  } else {
    self->queue_head = e;
  }
  self->queue_tail = e;
  ++self->queue_length;
}

Envelope* RuntimeCore::queue_pop(ProcessHeader* self) {
  Envelope* e = self->queue_head;
  if (e == nullptr) return nullptr;
  self->queue_head = e->next.load(std::memory_order_relaxed);
  if (self->queue_head == nullptr) self->queue_tail = nullptr;
  --self->queue_length;
  return e;
}

Envelope* RuntimeCore::scan(ProcessHeader* self, ReceiveWait& w) {
  Envelope* prev = w.scanned;
  Envelope* e = prev ? prev->next.load(std::memory_order_relaxed) : self->queue_head;
  for (; e != nullptr; prev = e, e = e->next.load(std::memory_order_relaxed)) {
    if (!w.match(w, *e)) continue;
    Envelope* after = e->next.load(std::memory_order_relaxed);
    if (prev != nullptr) {
      prev->next.store(after, std::memory_order_relaxed);
    } else {
      self->queue_head = after;
    }
    if (self->queue_tail == e) self->queue_tail = prev;
    --self->queue_length;
    w.scanned = nullptr;
    return e;
  }
  w.scanned = prev;  // next time, start after what was examined
  return nullptr;
}

// ---- Signals, as the receiver drains them --------------------------------------------

bool RuntimeCore::drain(ProcessHeader* self, std::size_t limit) {
  for (; limit > 0; --limit) {
    Envelope* e = mailbox_pop(self);
    if (e == nullptr) break;
    if (!arrival(self, e)) return false;
  }
  return true;
}

bool RuntimeCore::drain_until_message(ProcessHeader* self) {
  while (self->queue_head == nullptr) {
    Envelope* e = mailbox_pop(self);
    if (e == nullptr) return true;
    if (!arrival(self, e)) return false;
  }
  return true;
}

bool RuntimeCore::arrival(ProcessHeader* self, Envelope* e) {
  ProcessExtras* x = self->extras;
  switch (kind_of(e)) {
    case SignalKind::message:
      if (e->addressing() == Addressing::alias && (x == nullptr || !x->aliases.contains(e->ref))) {
        free_envelope(e);  // a reply whose call gave up: dropped, as a deactivated alias is
      } else {
        enqueue(self, e);
      }
      return true;
    case SignalKind::exit_linked:
      if (!self->remove_link(e->from.bits())) {
        free_envelope(e);  // the link was removed: signals through it are dropped
        return true;
      }
      return apply_exit(self, e, true);
    case SignalKind::exit_explicit:
      if (e->ref != 0) {  // exit_monitored: a monitor (and maybe an unlink) come with the signal
        if (e->addressing() == unlinks_receiver) self->remove_link(e->from.bits());
        self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
        e->ref = 0;
      }
      return apply_exit(self, e, false);
    case SignalKind::link:
      self->add_link(e->from.bits());
      break;
    case SignalKind::unlink:
      self->remove_link(e->from.bits());
      break;
    case SignalKind::monitor:
      self->ensure_extras().monitored_by.insert(e->ref, e->from.bits());
      break;
    case SignalKind::demonitor:
      if (x) x->monitored_by.erase(e->ref);
      break;
    case SignalKind::down:
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
  info.message_queue_len = self->queue_length;
  info.trap_exit = self->has(trap_exit_flag);
  self->for_each_link([&](std::uint64_t k) { info.links.push_back(Pid::from_bits(k)); });
  if (ProcessExtras* x = self->extras) {
    x->monitoring.for_each([&](std::uint64_t, std::uint64_t v) { info.monitors.push_back(Pid::from_bits(v)); });
    x->monitored_by.for_each([&](std::uint64_t ref, std::uint64_t v) {
      if (ref != asker) info.monitored_by.push_back(Pid::from_bits(v));
    });
  }
  if (self->named.load(std::memory_order_acquire)) info.registered_name = names.name_of(self->pid);
  return info;
}

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
  demonitor(self, ref, true);
  return std::move(*answer);
}

// ---- Spawn ---------------------------------------------------------------------------

void RuntimeCore::count_live(Worker* w, std::int64_t delta) {
  if (w != nullptr) {
    w->live.store(w->live.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  } else {
    external_live_.fetch_add(delta, std::memory_order_relaxed);
  }
}

std::size_t RuntimeCore::live_processes() {
  std::int64_t n = external_live_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < scheduler.worker_count(); ++i) n += scheduler.worker(i).live.load(std::memory_order_relaxed);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

ProcessMemory allocate_process(std::size_t object_size, std::size_t object_alignment) {
  const std::size_t align = object_alignment > alignof(ProcessHeader) ? object_alignment : alignof(ProcessHeader);
  void* mem = allocate(object_offset(align) + object_size, align);
  auto* header = new (mem) ProcessHeader;
  return {header, static_cast<char*>(mem) + object_offset(align)};
}

void abandon_process(ProcessMemory memory) noexcept {
  memory.header->~ProcessHeader();
  deallocate(memory.header);
}

void RuntimeCore::bounce_late(ProcessHeader* p) {
  for (unsigned spins = 0;;) {
    while (Envelope* e = mailbox_pop(p)) bounce(p->pid, e);
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

namespace {
void reclaim_process(void* p, void* core) noexcept {
  static_cast<RuntimeCore*>(core)->reclaim(static_cast<ProcessHeader*>(p));
}
}  // namespace

Pid start_process(RuntimeCore& core, ProcessMemory memory, Process* object, const SpawnOptions& options) {
  ProcessHeader* p = memory.header;
  p->object = object;
  ProcessHeader* parent = (this_core == &core) ? this_process : nullptr;
  if ((options.link || options.monitor) && (parent == nullptr || parent->kind != ProcessKind::process)) {
    object->~Process();
    abandon_process(memory);
    throw std::logic_error("coppice: spawn_link and spawn_monitor are for a running process");
  }
  Worker* w = core.scheduler.current();
  // Once the stop has begun, a spawn is refused (so that the stop ends): the object is
  // destroyed here, on the spawning thread, and the caller gets Pid{}. A worker's spawn reads
  // the flag with acquire (pairs with run_stop's store); one that reads it late is killed by
  // the next round of the stop or, after the last, by kill_stranded. A plain thread's spawn
  // is announced to the stop until it is published (begin_external_spawn).
  const bool refused = w != nullptr ? core.stopping.load(std::memory_order_acquire) : !core.begin_external_spawn();
  if (refused) {
    object->~Process();
    abandon_process(memory);
    return Pid{};
  }
  struct Announced {  // ends a plain thread's announcement however this function is left
    RuntimeCore* core;
    ~Announced() {
      if (core != nullptr) core->end_external_spawn();
    }
  } announced{w == nullptr ? &core : nullptr};
  try {
    p->pid = core.table.allocate(w ? &w->slots : nullptr);
  } catch (...) {  // the table is full: the spawn is refused, the process destroyed here
    object->~Process();
    abandon_process(memory);
    throw;
  }
  // Link or monitor before anyone can see the child: it cannot die unobserved.
  if (options.link) {
    p->add_link(parent->pid.bits());
    parent->add_link(p->pid.bits());
  }
  if (options.monitor) {
    Ref ref = core.make_ref();
    p->ensure_extras().monitored_by.insert(ref.bits(), parent->pid.bits());
    parent->ensure_extras().monitoring.insert(ref.bits(), p->pid.bits());
    *options.monitor_ref = ref;
  }
  core.count_live(w, 1);
  // Once scheduled, the child may run, exit and be freed before we return (a plain thread
  // holds no epoch guard here): take its pid first, and touch p no more.
  const Pid pid = p->pid;
  core.table.publish(p);
  core.scheduler.schedule_new(p);
  return pid;
}

// ---- Activities (coroutines) ---------------------------------------------------------

void finish_activity_if_done(ProcessHeader& p);
void request_exit(ExitReason reason);

void start_activity(std::coroutine_handle<> root, bool body) {
  ProcessHeader& p = require_process();
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

}  // namespace coppice::detail

namespace coppice {

void Process::await(Async<void> work) { detail::start_activity(work.release(), false); }

}  // namespace coppice

namespace coppice::detail {

// ---- A turn --------------------------------------------------------------------------

// A process this turn woke waits in the worker's next slot, where only a thief that has
// seen this worker stuck in one turn for a while may take it. When the turn goes on to
// another message (whose callback might hold the worker), it moves to the run queue, where
// any worker can. A turn of one message, the common case of a ping-pong, keeps it next.
inline void RuntimeCore::hand_off_next(Worker& w) {
  if (w.next.load(std::memory_order_relaxed) != nullptr) scheduler.release_next(w);
}

bool RuntimeCore::run_turn(Worker& w, ProcessHeader* p) {
  if (p->has(dead_flag)) {  // a sender found a dead process idle: answer what it sent
    bounce_late(p);
    return false;
  }
  RunningScope scope(p, this);
  unsigned budget = options.messages_per_turn;
  awaits_at_once = 0;
  std::optional<ExitReason> reason;
  try {
    if (!p->has(started_flag)) {
      p->set(started_flag);
      p->object->init();
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
      if ((urgent || p->activity != nullptr) && !drain(p, limit)) {
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
            if (handled) return true;
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
          if (p->queue_head == nullptr && !drain_until_message(p)) break;  // a fatal signal
          Envelope* e = queue_pop(p);
          if (e == nullptr) break;
          if (handled) hand_off_next(w);
          p->object->handle(Message::adopt(e));
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
      if (budget == 0) return true;  // fairness: back of the queue
      // Before the mark: once idle, another worker may run this process.
      p->release_extras_if_empty();
      if (mailbox_try_mark_idle(p)) return false;
      // Something is arriving. Go round again unless it keeps not showing up (a producer
      // preempted between its exchange and its link): then let others run meanwhile.
      if (!handled && ++idle_rounds > 2) return true;
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
    log("coppice: process " + p->pid.to_string() + " crashed: " + reason->to_string());
  }
  exit_process(&w, p, *reason);
  return false;
}

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

void RuntimeCore::exit_process(Worker* w, ProcessHeader* p, const ExitReason& reason) {
  const bool is_process = p->kind == ProcessKind::process;
  // Counted out before anyone hears of the death, so a process_count read after a DOWN
  // does not include this process.
  if (is_process) count_live(w, -1);
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
  if (p->object != nullptr) {
    p->object->~Process();
    p->object = nullptr;
  }
  // seq_cst: register_name sets `named` and then reads this (Dekker; see names.cpp), so a
  // name the destructor registered is removed below, by us or by register_name.
  p->exiting.store(1, std::memory_order_seq_cst);
  // 2. Close the mailbox; answer link and monitor requests that made it in.
  Envelope* last = mailbox_close(p);
  mailbox_drain_closed(p, last, [&](Envelope* e) { final_arrival(p, e, reason); });
  while (Envelope* e = queue_pop(p)) free_envelope(e);
  // 3. The name goes before anyone hears of the death.
  if (p->named.load(std::memory_order_seq_cst)) names.remove_process(p->pid);
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

}  // namespace coppice::detail

namespace coppice::test_hooks {
void set_signal_push_hook(void (*hook)(Pid target)) noexcept {
  detail::signal_push_hook.store(hook, std::memory_order_release);
}
std::size_t parked_workers(Runtime& runtime) { return runtime.core().scheduler.parked(); }
void start_fresh_slots_at(Runtime& runtime, std::uint32_t slot, std::uint32_t generation) {
  runtime.core().table.start_fresh_slots_at(slot, generation);
}
}  // namespace coppice::test_hooks
