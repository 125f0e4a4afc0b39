// on_exit: a process that monitors one pid and hands its Down to the host's callback.
#include "coppice/on_exit.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <utility>

#include "coppice/process.hpp"
#include "coppice/runtime.hpp"
#include "coppice/signals.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

namespace {

class ExitWatcher final : public Process {
 public:
  ExitWatcher(Pid watched, std::function<void(Pid, const ExitReason&)> callback,
              std::shared_ptr<std::promise<void>> monitoring)
      : watched_(watched), callback_(std::move(callback)), monitoring_(std::move(monitoring)) {}

  void init() override {
    ref_ = monitor(watched_);
    if (monitoring_) monitoring_->set_value();
    monitoring_.reset();
  }

  void handle(Message message) override {
    const Down* down = message.get_if<Down>();
    if (down == nullptr || down->ref != ref_) return;
    // A stop sets `stopping` before it sends its first kill, and the kill, the death and
    // this Down each pass through a mailbox (release, then acquire): a Down that a stop
    // caused finds the flag set. Acquire is all this load needs.
    if (!detail::current_core().stopping.load(std::memory_order_acquire)) callback_(down->pid, down->reason);
    stop_self();
  }

 private:
  Pid watched_;
  Ref ref_;
  std::function<void(Pid, const ExitReason&)> callback_;
  // Set once the monitor is in place; dropped unset (a broken promise, which also ends the
  // wait) when the watcher dies without running init.
  std::shared_ptr<std::promise<void>> monitoring_;
};

}  // namespace

Pid on_exit(Runtime& rt, Pid pid, std::function<void(Pid, const ExitReason&)> callback) {
  if (self()) {
    // Inside a process: no waiting (the watcher may need this very worker to run).
    return rt.spawn<ExitWatcher>(pid, std::move(callback), nullptr);
  }
  // A plain thread waits for the monitor, so that a death right after on_exit returns is
  // reported with its reason, not as noproc.
  auto monitoring = std::make_shared<std::promise<void>>();
  std::future<void> monitored = monitoring->get_future();
  Pid watcher = rt.spawn<ExitWatcher>(pid, std::move(callback), std::move(monitoring));
  monitored.wait();
  return watcher;
}

}  // namespace coppice
