// on_exit: the host is told, through a callback, when a process (a top-level supervisor) dies.
#pragma once

#include <functional>

#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"

namespace coppice {

class Runtime;

// Calls `callback(pid, reason)` once, when `pid` exits; at once with noproc if it is already
// gone. For a host that must learn that its supervision tree gave up (a Supervisor whose
// restart intensity is reached exits with shutdown) and react: restart it, report, exit.
//
// A small process monitors `pid` and runs the callback on a worker thread of `rt`, as one of
// its callbacks, then ends: keep it short and do not block (hand the news to the host's own
// thread: post to its event loop, set a flag, write an eventfd), and do not destroy `rt` from
// it. An exception from the callback ends that process with the error, which is logged.
// A death caused by Runtime::stop is not reported (the host asked for it); nor is anything
// once the returned watcher is gone: `rt.exit(watcher, ExitReason::shutdown())` cancels.
// Returns the watcher's pid, or Pid{} when the runtime is stopping (no callback then).
// From a plain thread it returns once the monitor is in place (one turn of the watcher), so
// a death that follows is reported with its reason. Inside a process it returns at once and
// the monitor is made in the watcher's first turn: a death before that is reported as noproc.
Pid on_exit(Runtime& rt, Pid pid, std::function<void(Pid, const ExitReason&)> callback);

}  // namespace coppice
