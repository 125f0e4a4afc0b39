// The process-context API (coppice/process.hpp): what a running process calls about itself,
// each a thin step into the room that does the work.
#include <chrono>

#include "coppice/process.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

using namespace detail;

void Process::await(Async<void> work) { detail::start_activity(work.release(), false); }

Pid self() {
  ProcessHeader* p = running_process();
  return p ? p->pid : Pid{};
}

bool trapping_exits() { return require_running().has(trap_exit_flag); }

bool trap_exit(bool on) {
  ProcessHeader& p = require_running();
  const bool was = p.has(trap_exit_flag);
  p.set(trap_exit_flag, on);
  return was;
}

Status link(Pid pid) { return running_core()->link(&require_running(), pid); }
void unlink(Pid pid) { running_core()->unlink(&require_running(), pid); }
Ref monitor(Pid pid) { return running_core()->monitor(&require_running(), pid); }
Ref monitor(std::string_view name) { return running_core()->monitor(&require_running(), name); }
Ref detail::exit_monitored(Pid pid, ExitReason reason) {
  return running_core()->exit_monitored(&require_running(), pid, std::move(reason));
}

From alias() {
  ProcessHeader& p = require_running();
  const Ref ref = running_core()->make_ref();
  p.ensure_extras().aliases.insert(ref.bits(), 0);
  return From{p.pid, ref};
}

bool unalias(Ref ref) {
  ProcessHeader& p = require_running();
  return p.extras != nullptr && p.extras->aliases.erase(ref.bits());
}
bool demonitor(Ref ref, DemonitorOptions options) {
  ProcessHeader& p = require_running();
  RuntimeCore& core = *running_core();
  if (options.flush && !core.drain(&p)) {
    // A fatal signal arrived while flushing: the process ends at its next scheduling point.
    core.demonitor(&p, ref, true);
    return false;
  }
  return core.demonitor(&p, ref, options.flush);
}

void exit(Pid pid, ExitReason reason) {
  ProcessHeader& p = require_running();
  running_core()->deliver(pid, make_exit_signal(SignalKind::exit_explicit, p.pid, std::move(reason)));
}

void exit(ExitReason reason) {
  require_running();
  throw ProcessExit{std::move(reason)};
}

void stop_self(ExitReason reason) {
  require_running();
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

ProcessInfo self_info() { return running_core()->info_of(&require_running()); }

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
