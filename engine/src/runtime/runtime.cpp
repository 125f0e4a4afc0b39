// Runtime: construction, shutdown, and the calls a plain thread makes.
#include "coppice/runtime.hpp"

#include "coppice/inbox.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

RuntimeCore::RuntimeCore(RuntimeOptions opts)
    : options(std::move(opts)), names(*this), timers(*this), scheduler(*this, options) {}

RuntimeCore::~RuntimeCore() {
  stop();
  // Every worker and the timer thread are gone: free what is still retired while the table
  // and the rest are alive (answers to late arrivals would go nowhere, so none are sent).
  tearing_down_ = true;
  epoch.free_all();
}

std::shared_ptr<void> RuntimeCore::service(const std::type_info& type, std::shared_ptr<void> (*make)()) {
  std::lock_guard lock(services_mutex_);
  auto& slot = services_[std::type_index(type)];
  if (!slot) slot = make();
  return slot;
}

void RuntimeCore::start() {
  timers.start();
  scheduler.start();
}

void RuntimeCore::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping.store(true, std::memory_order_release);
  // Kill every process, again for any spawned meanwhile, until none is left. Each dies as a
  // killed process does: destructor, name released, links and monitors told.
  // The table, not the per-worker counts, says when none is left: it is exact.
  for (;;) {
    std::size_t alive = 0;
    {
      ExternalGuard guard(epoch);
      table.for_each([&](ProcessHeader* p) {
        if (p->kind != ProcessKind::process) return;
        ++alive;
        deliver(p->pid, make_exit_signal(SignalKind::exit_explicit, Pid{}, ExitReason::kill()));
      });
    }
    if (alive == 0) break;
    std::unique_lock lock(exit_mutex_);
    all_exited_.wait_for(lock, std::chrono::milliseconds(100), [&] { return live_processes() == 0; });
  }
  scheduler.stop();
  timers.stop();
}

}  // namespace coppice::detail

namespace coppice {

using namespace detail;

Runtime::Runtime(RuntimeOptions options) : core_(std::make_unique<RuntimeCore>(std::move(options))) {
  core_->start();
}

Runtime::~Runtime() { core_->stop(); }

void Runtime::stop() { core_->stop(); }

void Runtime::exit(Pid pid, ExitReason reason) {
  Pid from = running_core() == core_.get() ? self() : Pid{};
  core_->send(pid, make_exit_signal(SignalKind::exit_explicit, from, std::move(reason)));
}

Status Runtime::register_name(std::string name, Pid pid) {
  if (core_->scheduler.current() != nullptr) return core_->names.register_name(std::move(name), pid);
  ExternalGuard guard(core_->epoch);
  return core_->names.register_name(std::move(name), pid);
}
Status Runtime::unregister_name(std::string_view name) { return core_->names.unregister_name(name); }
Pid Runtime::whereis(std::string_view name) const { return core_->names.whereis(name); }
bool Runtime::cancel_timer(TimerRef timer) { return core_->timers.cancel(timer); }

bool Runtime::alive(Pid pid) const { return detail::is_alive(*core_, pid); }

namespace detail {
bool is_alive(RuntimeCore& core, Pid pid) {
  auto check = [&] {
    ProcessHeader* p = core.table.lookup(pid);
    return p != nullptr && p->exiting.load(std::memory_order_acquire) == 0;
  };
  if (core.scheduler.current() != nullptr) return check();
  ExternalGuard guard(core.epoch);
  return check();
}
void log(RuntimeCore& core, std::string_view line) { core.log(line); }
Pid whereis(RuntimeCore& core, std::string_view name) { return core.names.whereis(name); }
std::shared_ptr<void> runtime_service(RuntimeCore& core, const std::type_info& type, std::shared_ptr<void> (*make)()) {
  return core.service(type, make);
}
}  // namespace detail

bool is_alive(Pid pid) { return detail::is_alive(detail::current_core(), pid); }
void log(std::string_view line) { detail::current_core().log(line); }

Result<ProcessInfo> Runtime::process_info(Pid pid, std::chrono::milliseconds timeout) {
  if (core_->scheduler.current() != nullptr)
    return Error(ErrorKind::blocking_in_process, "Runtime::process_info blocks; a process uses co_await process_info");
  Inbox inbox(*this);
  Result<Message> reply =
      inbox.call_message(pid, {}, Message::adopt(make_signal(SignalKind::info_request, Pid{}, 0)), timeout);
  if (!reply) return reply.error();
  return reply->take<ProcessInfo>();
}

std::size_t Runtime::process_count() const { return core_->live_processes(); }
unsigned Runtime::worker_count() const { return core_->scheduler.worker_count(); }
const RuntimeOptions& Runtime::options() const { return core_->options; }

}  // namespace coppice
