// Runtime: construction, shutdown, and the calls a plain thread makes.
#include "coppice/runtime.hpp"

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "coppice/inbox.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

namespace {
// The runtime whose stop this thread is running: a destructor that the stop runs here and
// that calls stop() again must not wait for itself.
thread_local RuntimeCore* stopping_here = nullptr;
}  // namespace

RuntimeCore::RuntimeCore(RuntimeOptions opts)
    : options(std::move(opts)),
      names(*this),
      timers(*this),
      scheduler(*this, options),
      inbox_life(std::make_shared<InboxLife>(this)) {}

RuntimeCore::~RuntimeCore() {
  if (scheduler.current() != nullptr) {
    // A worker cannot join itself, and the process running here would be freed under it.
    std::fputs("coppice: fatal: a Runtime destroyed by one of its own processes (use stop(), which a process may call)\n",
               stderr);
    std::abort();
  }
  if (stopping_here == this) {
    // A destructor that this runtime's own stop ran (say, of an object holding the last owner
    // of the Runtime) would wait for itself.
    std::fputs("coppice: fatal: a Runtime destroyed by a destructor that its own stop() runs\n", stderr);
    std::abort();
  }
  stop();
  {
    // Callers of stop() that entered before us may still be on their way out.
    std::unique_lock lock(stop_mutex_);
    stop_done_.wait(lock, [&] { return stop_callers_ == 0; });
  }
  if (stop_thread_.joinable()) stop_thread_.join();
  close_inboxes();
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

bool RuntimeCore::at_stop(std::function<void()> hook) {
  std::lock_guard lock(services_mutex_);
  if (stop_hooks_ran_) return false;
  stop_hooks_.push_back(std::move(hook));
  return true;
}

void RuntimeCore::run_stop_hooks() {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(services_mutex_);
    stop_hooks_ran_ = true;
    hooks.swap(stop_hooks_);
  }
  for (auto& hook : hooks) hook();
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

void RuntimeCore::start() {
  timers.start();
  scheduler.start();
}

bool RuntimeCore::begin_external_spawn() {
  // Relaxed: once the stop is known, refusing needs no ordering, and the counter stays quiet.
  if (stopping.load(std::memory_order_relaxed)) return false;
  // seq_cst increment, then seq_cst load: with run_stop's seq_cst store of `stopping` and
  // load of the count, at least one side sees the other.
  external_spawns_.fetch_add(1, std::memory_order_seq_cst);
  if (stopping.load(std::memory_order_seq_cst)) {
    end_external_spawn();
    return false;
  }
  return true;
}

void RuntimeCore::end_external_spawn() {
  // Release: run_stop's acquire load that sees the count drop finds the process published.
  external_spawns_.fetch_sub(1, std::memory_order_release);
}

void RuntimeCore::stop() {
  if (stopping_here == this) return;  // a destructor run by this stop
  std::unique_lock lock(stop_mutex_);
  if (scheduler.current() != nullptr) {
    // A process (or a destructor a kill runs on a worker): it cannot wait for the workers,
    // its own among them, to end. Begin the stop elsewhere; the caller dies with the rest.
    if (stop_state_ == StopState::running) {
      stop_state_ = StopState::stopping;
      stop_thread_ = std::thread([this] { run_stop(); });
    }
    return;
  }
  ++stop_callers_;
  if (stop_state_ == StopState::running) {
    stop_state_ = StopState::stopping;
    lock.unlock();
    run_stop();
    lock.lock();
  } else {
    stop_done_.wait(lock, [&] { return stop_state_ == StopState::stopped; });
  }
  if (--stop_callers_ == 0) stop_done_.notify_all();
}

void RuntimeCore::run_stop() {
  stopping_here = this;
  // seq_cst: the other half of begin_external_spawn's Dekker pair. From here on every spawn
  // is refused, on a worker as soon as it sees the flag.
  stopping.store(true, std::memory_order_seq_cst);
  // Spawns from plain threads that passed their check before the flag: each is a few stores
  // from its publish, and no new one can start, so this wait is short and bounded.
  while (external_spawns_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  // Kill every process, again for any spawned meanwhile, until none is left. Each dies as a
  // killed process does: destructor, name released, links and monitors told.
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
  run_stop_hooks();
  scheduler.stop();
  // A worker's spawn that raced with the last round (it read `stopping` before the store
  // reached it and published after the table was read) left a process no worker will run.
  kill_stranded();
  timers.stop();
  {
    // Every process is gone and told its links and monitors: wake the inboxes that wait,
    // which now take what has arrived and wait no more. Release: pairs with the acquire
    // load in Inbox::receive_matching, made after the inbox's own mutex (locked below).
    std::lock_guard lock(inbox_life->mutex);
    inbox_life->stopped.store(true, std::memory_order_release);
    for (ProcessHeader* p : inbox_life->inboxes) wake_inbox(p);
  }
  stopping_here = nullptr;
  std::lock_guard lock(stop_mutex_);
  stop_state_ = StopState::stopped;
  stop_done_.notify_all();
}

void RuntimeCore::close_inboxes() {
  // Ends every inbox operation in progress and makes later ones see `gone`. acq_rel: the
  // uses' release decrements before it are seen (they are done with the runtime).
  inbox_life->uses.fetch_or(InboxLife::gone, std::memory_order_acq_rel);
  // A use in progress is short: the stop woke every receive, and none waits after it.
  while ((inbox_life->uses.load(std::memory_order_acquire) & ~InboxLife::gone) != 0) std::this_thread::yield();
  // The inboxes still alive close as their destructors would have; their owners find `gone`.
  std::unordered_set<ProcessHeader*> left;
  {
    std::lock_guard lock(inbox_life->mutex);
    left.swap(inbox_life->inboxes);
  }
  ExternalGuard guard(epoch);
  for (ProcessHeader* p : left) exit_process(nullptr, p, ExitReason::normal());
}

}  // namespace coppice::detail

namespace coppice {

using namespace detail;

Runtime::Runtime(RuntimeOptions options) : core_(std::make_unique<RuntimeCore>(std::move(options))) {
  core_->start();
}

// Stops first, with core_ still set for other threads inside stop(); ~RuntimeCore then waits
// for them to leave (and is a fatal error on a worker of this runtime: see runtime.hpp).
Runtime::~Runtime() {
  if (core_->scheduler.current() == nullptr) core_->stop();
}

void Runtime::stop() { core_->stop(); }

Result<Pid> Runtime::spawned(Pid pid) {
  if (!pid) return Error(ErrorKind::runtime_stopped, "spawn: the runtime is stopping; the process was not started");
  return pid;
}

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
RuntimeCore& core_of(Runtime& runtime) { return *runtime.core_; }

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
