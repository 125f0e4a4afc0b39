// HostBridge: a plain thread's mailbox whose wake writes an eventfd, and calls that complete
// through callbacks run by drain() (the call machinery is an Inbox's: call.cpp's finish_call).
#include "coppice/host.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "runtime/allocation.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/plain_thread.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// The eventfd, shared by the bridge and its header: the host keeps watching it after the
// runtime freed the header, and a late sender may wake the header after the bridge is gone.
struct HostWakeup {
  explicit HostWakeup(int f) : fd(f) {}
  ~HostWakeup() { ::close(fd); }
  HostWakeup(const HostWakeup&) = delete;
  HostWakeup& operator=(const HostWakeup&) = delete;
  void signal() const {
    const std::uint64_t one = 1;
    // Only EAGAIN can fail it, at a counter of 2^64 - 2: readable already.
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
  }
  const int fd;
};

struct HostState : PlainThreadHeader {
  std::shared_ptr<HostWakeup> wakeup;
};

// A call's deadline: a runtime timer sends it to the bridge, as a process's receive timeout
// is a timer that sends to the process, so the eventfd wakes without the host polling.
struct HostDeadline {
  std::uint64_t ref;
};

namespace {
void wake_host(PlainThreadHeader* p) { static_cast<HostState*>(p)->wakeup->signal(); }

void free_host(PlainThreadHeader* p) noexcept {
  auto* s = static_cast<HostState*>(p);
  s->~HostState();
  deallocate(s);
}

void refuse_on_worker(RuntimeCore& core, const char* what) {
  if (core.scheduler.current() != nullptr)
    throw std::logic_error(std::string("coppice: HostBridge::") + what +
                           " on a worker thread; a bridge is for the host's threads (a process uses co_await)");
}
}  // namespace

}  // namespace coppice::detail

namespace coppice {

using namespace detail;

struct HostBridge::Shared {
  struct Pending {
    std::unique_ptr<HostCompletion> done;
    Pid to;
    std::string name;  // when called by name
    std::int64_t timeout_ms;
    TimerRef timer;
  };
  // A completion or a handler's message, run once drain() has let go of the lock.
  struct Ready {
    Ready(std::unique_ptr<HostCompletion> d, Result<Message> r) : done(std::move(d)), result(std::move(r)) {}
    explicit Ready(Message m) : result(std::move(m)) {}
    std::unique_ptr<HostCompletion> done;  // null: the message goes to a handler
    Result<Message> result;
  };

  std::shared_ptr<HostWakeup> wakeup;
  HostHandlers handlers;
  // Orders the operations of several host threads: it guards the header's owner side (the
  // mailbox's consumer end, the queue, extras) and everything below.
  mutable std::mutex mutex;
  std::unordered_map<std::uint64_t, Pending> pending;  // by the call's monitor ref (its alias)
  std::vector<Ready> refused;  // calls that failed at once: run by the next drain

  std::string target(const Pending& p) const { return p.name.empty() ? p.to.to_string() : quoted(p.name); }
};

HostBridge::HostBridge(Runtime& runtime, HostHandlers handlers)
    : life_(core_of(runtime).inbox_life), shared_(std::make_unique<Shared>()) {
  shared_->handlers = std::move(handlers);
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "coppice: HostBridge: eventfd");
  shared_->wakeup = std::make_shared<HostWakeup>(fd);
  RuntimeCore& core = core_of(runtime);
  pid_ = core.table.allocate(nullptr);  // first: a full table throws before the header exists
  void* mem = allocate(sizeof(HostState), alignof(HostState));
  state_ = new (mem) HostState;
  state_->kind = ProcessKind::inbox;
  state_->wake = &wake_host;
  state_->free = &free_host;
  state_->wakeup = shared_->wakeup;
  state_->pid = pid_;
  // Idle from the start, so that the first sender wakes the eventfd (the mailbox is empty:
  // this cannot fail).
  mailbox_try_mark_idle(state_);
  {
    // Known to the runtime before anyone can send to it: the stop wakes it, the runtime's
    // destructor closes it if it is still alive then.
    std::lock_guard lock(life_->mutex);
    life_->inboxes.insert(state_);
  }
  core.table.publish(state_);
}

HostBridge::~HostBridge() {
  std::unordered_map<std::uint64_t, Shared::Pending> left;  // destroyed last, with no lock held
  {
    InboxUse use(*life_);
    RuntimeCore* core = use.core();
    std::lock_guard lock(shared_->mutex);
    left.swap(shared_->pending);
    if (core != nullptr) {
      for (auto& [ref, p] : left)
        if (p.timer) core->timers.cancel(p.timer);
      {
        std::lock_guard life_lock(life_->mutex);
        life_->inboxes.erase(state_);
      }
      ExternalGuard guard(core->epoch);
      core->exit_process(nullptr, state_, ExitReason::normal());
    }
    // Else the runtime closed and freed the header with itself.
  }
}

int HostBridge::fd() const { return shared_->wakeup->fd; }

std::size_t HostBridge::outstanding() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->pending.size() + shared_->refused.size();
}

void HostBridge::start_call(Pid to, std::string_view name, Message request, std::chrono::nanoseconds timeout,
                            std::unique_ptr<HostCompletion> done) {
  // -1: no deadline; a timeout of zero or less is a deadline already passed.
  const std::int64_t timeout_ms =
      timeout == no_timeout ? -1 : std::max<std::int64_t>(0, whole_milliseconds(timeout).count());
  InboxUse use(*life_);
  RuntimeCore* core = use.core();
  auto refuse = [&](Error error) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->refused.emplace_back(std::move(done), std::move(error));
    }
    shared_->wakeup->signal();
  };
  if (core == nullptr) return refuse(Error(ErrorKind::runtime_stopped, "call: the runtime of this bridge is gone"));
  refuse_on_worker(*core, "call");
  // Acquire: pairs with run_stop's release store (nothing would answer: no process is left).
  if (life_->stopped.load(std::memory_order_acquire))
    return refuse(Error(ErrorKind::runtime_stopped, "call: the runtime is stopped"));
  if (!name.empty()) {
    to = core->names.whereis(name);
    if (!to) return refuse(Error(ErrorKind::noproc, "call: no process is registered as " + quoted(name)));
  }
  if (to == pid_) return refuse(Error(ErrorKind::calling_self, "call: a bridge cannot call itself", to));
  if (core->table.foreign(to)) return refuse(Error(ErrorKind::foreign_pid, "call: " + core->table.foreign_text(to), to));
  {
    ExternalGuard guard(core->epoch);
    std::lock_guard lock(shared_->mutex);
    // As an Inbox's call: a monitor (it also says "the server is gone") whose ref is the
    // alias the reply comes to. Registered as pending under the mutex every drain takes, so
    // that no drain can meet its answer first.
    const Ref ref = core->send_call(state_, to, request.release());
    TimerRef timer;
    if (timeout_ms >= 0)
      timer = core->timers.start_timer(Timers::Clock::now() + std::chrono::milliseconds(timeout_ms), pid_,
                                       Message::of(HostDeadline{ref.bits()}).release());
    shared_->pending.emplace(ref.bits(),
                             Shared::Pending{std::move(done), to, std::string(name), timeout_ms, timer});
  }
  // A stop that ended while we sent: its wake may have come before our request was pending,
  // and no timer runs after it; the next drain completes it (runtime_stopped). Acquire: as above.
  if (life_->stopped.load(std::memory_order_acquire)) shared_->wakeup->signal();
}

std::size_t HostBridge::drain() {
  std::vector<Shared::Ready> ready;
  {
    // Read first: a wake that comes after this read is for something our drain below may
    // not see, and leaves the eventfd readable for the next one.
    std::uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(shared_->wakeup->fd, &count, sizeof count);
    InboxUse use(*life_);
    RuntimeCore* core = use.core();
    if (core != nullptr) refuse_on_worker(*core, "drain");
    std::lock_guard lock(shared_->mutex);
    ready.swap(shared_->refused);
    if (core == nullptr) {
      // The runtime is gone, and the header with it: nothing more can come.
      for (auto& [ref, p] : shared_->pending)
        ready.emplace_back(std::move(p.done), Error(ErrorKind::runtime_stopped,
                                                  "call: the runtime was destroyed before " + shared_->target(p) +
                                                      " answered",
                                                  p.to));
      shared_->pending.clear();
    } else {
      ExternalGuard guard(core->epoch);
      core->drain(state_);  // a bridge traps every exit signal: it never dies of one
      while (Envelope* e = core->queue_pop(state_)) {
        Message m = Message::adopt(e);
        std::uint64_t ref = 0;
        if (e->addressing() == Addressing::alias) {
          ref = e->ref;  // a reply (a late one was dropped on arrival: its alias was gone)
        } else if (const Down* down = m.get_if<Down>()) {
          ref = down->ref.bits();
        } else if (const HostDeadline* deadline = m.get_if<HostDeadline>()) {
          auto it = shared_->pending.find(deadline->ref);
          if (it == shared_->pending.end()) continue;  // answered first: the timer lost the race
          Shared::Pending p = std::move(it->second);
          shared_->pending.erase(it);
          ready.emplace_back(std::move(p.done), core->finish_call(state_, Ref::from_bits(deadline->ref), std::nullopt,
                                                               p.to, shared_->target(p), p.timeout_ms));
          continue;
        }
        if (ref != 0) {
          if (auto it = shared_->pending.find(ref); it != shared_->pending.end()) {
            Shared::Pending p = std::move(it->second);
            shared_->pending.erase(it);
            if (p.timer) core->timers.cancel(p.timer);
            // A plain reply needs no text: spare it the string.
            const std::string target = m.is<Down>() ? shared_->target(p) : std::string();
            ready.emplace_back(std::move(p.done), core->finish_call(state_, Ref::from_bits(ref), std::move(m), p.to,
                                                                 target, p.timeout_ms));
            continue;
          }
          if (e->addressing() == Addressing::alias) continue;  // no call waits for it
        }
        ready.emplace_back(std::move(m));  // a plain message, an Exit, a monitor's Down
      }
      // After the stop nothing more is coming (no process is left, no timer runs): what is
      // still pending ends as an Inbox call does then. Acquire: pairs with run_stop's release.
      if (life_->stopped.load(std::memory_order_acquire)) {
        for (auto& [ref, p] : shared_->pending) {
          Result<Message> r = core->finish_call(state_, Ref::from_bits(ref), std::nullopt, p.to, {}, p.timeout_ms);
          (void)r;
          ready.emplace_back(std::move(p.done), Error(ErrorKind::runtime_stopped,
                                                    "call: the runtime stopped before " + shared_->target(p) +
                                                        " answered",
                                                    p.to));
        }
        shared_->pending.clear();
      }
      // Idle again, so the next sender wakes the eventfd; if something came meanwhile, wake
      // it ourselves (the mailbox is not idle: no sender will).
      const std::uintptr_t idle_stub = reinterpret_cast<std::uintptr_t>(&state_->stub) | idle_tag;
      if (state_->head.load(std::memory_order_acquire) != idle_stub && !mailbox_try_mark_idle(state_))
        shared_->wakeup->signal();
    }
  }
  // Every callback runs, even after one throws: the first exception is rethrown at the end.
  std::exception_ptr thrown;
  for (Shared::Ready& r : ready) {
    try {
      if (r.done) {
        r.done->complete(std::move(r.result));
      } else {
        Message& m = *r.result;
        if (const Down* down = m.get_if<Down>(); down != nullptr && shared_->handlers.on_down) {
          shared_->handlers.on_down(*down);
        } else if (shared_->handlers.on_message) {
          shared_->handlers.on_message(std::move(m));
        }
      }
    } catch (...) {
      if (!thrown) thrown = std::current_exception();
    }
  }
  if (thrown) std::rethrow_exception(thrown);
  return ready.size();
}

void HostBridge::send(Pid to, Message message) {
  plain_thread_send(*life_, pid_, to, std::move(message));
}

Ref HostBridge::monitor(Pid pid) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return Ref{};
  refuse_on_worker(*use.core(), "monitor");
  ExternalGuard guard(use.core()->epoch);
  std::lock_guard lock(shared_->mutex);
  return use.core()->monitor(state_, pid);
}

Ref HostBridge::monitor(std::string_view name) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return Ref{};
  refuse_on_worker(*use.core(), "monitor");
  ExternalGuard guard(use.core()->epoch);
  std::lock_guard lock(shared_->mutex);
  return use.core()->monitor(state_, name);
}

bool HostBridge::demonitor(Ref ref) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return false;
  refuse_on_worker(*use.core(), "demonitor");
  ExternalGuard guard(use.core()->epoch);
  std::lock_guard lock(shared_->mutex);
  use.core()->drain(state_);
  return use.core()->demonitor(state_, ref, true);
}

}  // namespace coppice
