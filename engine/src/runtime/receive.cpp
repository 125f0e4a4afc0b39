// Receiving inside a process: selective receive, timeouts, and calls (request + monitor +
// alias, so that a late reply is dropped and a dead server is noticed).
#include <chrono>

#include "coppice/process.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

void request_exit(ExitReason reason);
bool spend_await_at_once();

namespace {
ProcessHeader& require_running() {
  ProcessHeader* p = running_process();
  if (p == nullptr || p->kind != ProcessKind::process)
    throw std::logic_error("coppice: receive and call are for a running process (a plain thread uses an Inbox)");
  return *p;
}
}  // namespace

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
  const Ref ref = core.monitor(&p, to);  // the monitor also says "the server is gone"
  p.ensure_extras().aliases.insert(ref.bits(), 0);
  Envelope* e = std::exchange(request, nullptr);
  e->from = p.pid;
  e->ref = ref.bits();
  if (kind_of(e) == SignalKind::message) e->set_type(e->type(), Addressing::request);
  core.deliver(to, e);
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

}  // namespace coppice::detail

namespace coppice {

using namespace detail;

namespace {
ProcessHeader& running() {
  ProcessHeader* p = running_process();
  if (p == nullptr || p->kind != ProcessKind::process)
    throw std::logic_error("coppice: this function is for a running process (a plain thread uses an Inbox)");
  return *p;
}
}  // namespace

Pid self() {
  ProcessHeader* p = running_process();
  return p ? p->pid : Pid{};
}

bool trapping_exits() { return running().has(trap_exit_flag); }

bool trap_exit(bool on) {
  ProcessHeader& p = running();
  const bool was = p.has(trap_exit_flag);
  p.set(trap_exit_flag, on);
  return was;
}

Status link(Pid pid) { return running_core()->link(&running(), pid); }
void unlink(Pid pid) { running_core()->unlink(&running(), pid); }
Ref monitor(Pid pid) { return running_core()->monitor(&running(), pid); }
Ref monitor(std::string_view name) { return running_core()->monitor(&running(), name); }
Ref detail::exit_monitored(Pid pid, ExitReason reason) {
  return running_core()->exit_monitored(&running(), pid, std::move(reason));
}

From alias() {
  ProcessHeader& p = running();
  const Ref ref = running_core()->make_ref();
  p.ensure_extras().aliases.insert(ref.bits(), 0);
  return From{p.pid, ref};
}

bool unalias(Ref ref) {
  ProcessHeader& p = running();
  return p.extras != nullptr && p.extras->aliases.erase(ref.bits());
}
bool demonitor(Ref ref, DemonitorOptions options) {
  ProcessHeader& p = running();
  RuntimeCore& core = *running_core();
  if (options.flush && !core.drain(&p)) {
    // A fatal signal arrived while flushing: the process ends at its next scheduling point.
    core.demonitor(&p, ref, true);
    return false;
  }
  return core.demonitor(&p, ref, options.flush);
}

void exit(Pid pid, ExitReason reason) {
  ProcessHeader& p = running();
  running_core()->deliver(pid, make_exit_signal(SignalKind::exit_explicit, p.pid, std::move(reason)));
}

void exit(ExitReason reason) {
  running();
  throw ProcessExit{std::move(reason)};
}

void stop_self(ExitReason reason) {
  running();
  detail::request_exit(std::move(reason));
}

namespace detail {
void mark_crash_reported() { require_running().set(reported_flag); }
}  // namespace detail

Status register_name(std::string name, Pid pid) { return current_core().names.register_name(std::move(name), pid); }
Status unregister_name(std::string_view name) { return current_core().names.unregister_name(name); }
Pid whereis(std::string_view name) { return current_core().names.whereis(name); }
Ref make_ref() { return current_core().make_ref(); }
bool cancel_timer(TimerRef timer) { return current_core().timers.cancel(timer); }

CallAwaiter<ProcessInfo> process_info(Pid pid, std::chrono::milliseconds timeout) {
  CallAwaiter<ProcessInfo> a;
  a.c.to = pid;
  a.c.request = make_signal(SignalKind::info_request, Pid{}, 0);
  a.c.wait.timeout_ns = to_timeout_ns(timeout);
  return a;
}

ProcessInfo self_info() { return running_core()->info_of(&running()); }

namespace detail {
TimerRef start_timer(RuntimeCore& core, std::chrono::milliseconds delay, Pid to, Envelope* e) {
  if (!e->from) {
    if (ProcessHeader* p = running_process(); p != nullptr && running_core() == &core) e->from = p->pid;
  }
  return core.timers.start_timer(Timers::Clock::now() + delay, to, e);
}
bool cancel_timer(RuntimeCore& core, TimerRef timer) { return core.timers.cancel(timer); }
}  // namespace detail

}  // namespace coppice
