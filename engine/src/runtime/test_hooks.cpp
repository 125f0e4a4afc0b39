// The hooks of coppice/test_hooks.hpp: windows the tests widen, and state they read.
#include "coppice/runtime.hpp"
#include "coppice/test_hooks.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::test_hooks {
void set_signal_push_hook(void (*hook)(Pid target)) noexcept {
  detail::signal_push_hook.store(hook, std::memory_order_release);
}
void set_next_take_hook(Runtime& runtime, void (*hook)(Pid pid)) { detail::core_of(runtime).scheduler.set_take_hook(hook); }
std::size_t parked_workers(Runtime& runtime) { return detail::core_of(runtime).scheduler.parked(); }
std::uint64_t timer_thread_wakeups(Runtime& runtime) { return detail::core_of(runtime).timers.wakeups(); }
void start_fresh_slots_at(Runtime& runtime, std::uint32_t slot, std::uint32_t generation) {
  detail::core_of(runtime).table.start_fresh_slots_at(slot, generation);
}
}  // namespace coppice::test_hooks
