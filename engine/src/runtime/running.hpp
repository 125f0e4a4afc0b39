// The running process: which process and runtime this thread runs, and what the rooms of a
// process's life (spawn, turn, signals, links and monitors, exit, call) share about it.
#pragma once

#include <atomic>
#include <coroutine>

#include "coppice/async.hpp"
#include "coppice/process.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// Set for the scope of a turn (turn.cpp) and of a stranded process's kill (exit.cpp); defined
// in turn.cpp. constinit: the other rooms read them directly, with no thread-local wrapper call.
extern constinit thread_local ProcessHeader* this_process;
extern constinit thread_local RuntimeCore* this_core;

// Sets the running process for the scope of a turn (or of a stranded process's kill).
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

// The process this thread is running, for the functions that only a process may call; on a
// thread that runs none, std::logic_error, naming what such a thread uses instead.
[[noreturn]] void throw_not_running(const char* plain_thread_uses);
inline ProcessHeader& require_running(const char* plain_thread_uses = "an Inbox") {
  if (this_process == nullptr || this_process->kind != ProcessKind::process) throw_not_running(plain_thread_uses);
  return *this_process;
}

inline bool trapping(const ProcessHeader* p) { return p->has(trap_exit_flag) || p->kind == ProcessKind::inbox; }

using RootHandle = std::coroutine_handle<Async<void>::promise_type>;

// On an exit_monitored signal (an exit_explicit with a monitor ref): the sender dropped a link
// it had to the receiver, so the receiver drops its side before acting on the exit. Signals
// are not messages, so the addressing bits are free; apply_exit's set_type clears them.
inline constexpr Addressing unlinks_receiver = Addressing::request;

// Tests only (coppice/test_hooks.hpp): runs between a link, monitor or exit_monitored's check
// that the target is alive and the push of its request, to widen that window at will.
// Set by test_hooks.cpp, run by links_monitors.cpp.
extern std::atomic<void (*)(Pid)> signal_push_hook;

// Activities, and the budget of awaits completed at once (turn.cpp).
void request_exit(ExitReason reason);
void finish_activity_if_done(ProcessHeader& p);
bool spend_await_at_once();

}  // namespace coppice::detail
