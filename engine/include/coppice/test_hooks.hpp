// Hooks for coppice's own race tests. Not for applications: they widen the windows that the
// runtime's memory-order arguments close, so that a test can show a window is closed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "coppice/pid.hpp"

namespace coppice {
class Runtime;
}

namespace coppice::test_hooks {

// `hook(target)` runs on the calling thread inside link, monitor and a supervisor's
// exit-and-monitor, after the check that `target` is alive and before the request is pushed
// into its mailbox. Null (the default) removes it. One hook for the whole program.
void set_signal_push_hook(void (*hook)(Pid target)) noexcept;

// `hook(pid)` runs on a worker of `runtime` each time it is about to take process `pid` from
// its next slot, between seeing it there and taking it (a preemption there is what the next
// slot's asymmetric fence must survive). Only on runtimes of two or more workers where
// membarrier is available. Null (the default) removes it.
void set_next_take_hook(Runtime& runtime, void (*hook)(Pid pid));

// Workers of `runtime` asleep at this moment (parked: nothing to run, nothing to collect).
std::size_t parked_workers(Runtime& runtime);

// Slots of `runtime` never used before are handed out from `slot` on (when no higher slot
// was) and start at `generation` instead of 1, as if each had served generation - 1 processes
// already: a test drives a slot to the end of its range (Pid::last_generation) in a few spawns.
// Pids already in the free-slot caches keep theirs. Lower slots skipped stay unused.
void start_fresh_slots_at(Runtime& runtime, std::uint32_t slot, std::uint32_t generation);

// Times the timer thread of `runtime` has come out of a wait (woken by a start, by a
// deadline, or spuriously) since the runtime started.
std::uint64_t timer_thread_wakeups(Runtime& runtime);

}  // namespace coppice::test_hooks
