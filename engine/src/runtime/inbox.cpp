// Inbox: a mailbox with a pid for a plain thread, which waits on a condition variable where
// a process would be scheduled.
#include "coppice/inbox.hpp"

#include <condition_variable>
#include <mutex>

#include "runtime/allocation.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/plain_thread.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

struct InboxState : PlainThreadHeader {
  std::mutex mutex;
  std::condition_variable cv;
  bool notified = false;
};

void wake_inbox(ProcessHeader* p) {
  auto* h = static_cast<PlainThreadHeader*>(p);
  h->wake(h);
}

void free_inbox(ProcessHeader* p) noexcept {
  auto* h = static_cast<PlainThreadHeader*>(p);
  h->free(h);
}

namespace {
void wake_waiting_thread(PlainThreadHeader* p) {
  auto* s = static_cast<InboxState*>(p);
  {
    std::lock_guard lock(s->mutex);
    s->notified = true;
  }
  s->cv.notify_one();
}

void free_inbox_state(PlainThreadHeader* p) noexcept {
  auto* s = static_cast<InboxState*>(p);
  s->~InboxState();
  deallocate(s);
}

Error runtime_gone(std::string_view what) {
  return Error(ErrorKind::runtime_stopped, std::string(what) + ": the runtime of this inbox is gone");
}

bool match_call_reply(const ReceiveWait& w, Envelope& e) {
  if (e.addressing() == Addressing::alias) return e.ref == w.ref;
  return e.type() == &type_info_v<Down> && static_cast<Down*>(e.payload())->ref.bits() == w.ref;
}
}  // namespace

}  // namespace coppice::detail

namespace coppice {

using namespace detail;

Inbox::Inbox(Runtime& runtime) : runtime_(runtime), life_(detail::core_of(runtime).inbox_life) {
  RuntimeCore& core = detail::core_of(runtime);
  pid_ = core.table.allocate(nullptr);  // first: a full table throws before anything is allocated
  void* mem = allocate(sizeof(InboxState), alignof(InboxState));
  state_ = new (mem) InboxState;
  state_->kind = ProcessKind::inbox;
  state_->wake = &wake_waiting_thread;
  state_->free = &free_inbox_state;
  state_->pid = pid_;
  {
    // Known to the runtime before anyone can send to it: the stop wakes it, the runtime's
    // destructor closes it if it is still alive then.
    std::lock_guard lock(life_->mutex);
    life_->inboxes.insert(state_);
  }
  core.table.publish(state_);
}

Inbox::~Inbox() {
  InboxUse use(*life_);
  RuntimeCore* core = use.core();
  if (core == nullptr) return;  // the runtime closed and freed this inbox with itself
  {
    std::lock_guard lock(life_->mutex);
    life_->inboxes.erase(state_);
  }
  ExternalGuard guard(core->epoch);
  core->exit_process(nullptr, state_, ExitReason::normal());
}

void Inbox::send(Pid to, Message message) {
  plain_thread_send(*life_, pid_, to, std::move(message));
}

std::optional<Message> Inbox::receive_matching(ReceiveWait::Match match, const void* context,
                                               std::chrono::nanoseconds timeout) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return std::nullopt;
  RuntimeCore& core = *use.core();
  if (core.scheduler.current() != nullptr)
    throw std::logic_error("coppice: an Inbox blocks; a process receives with co_await instead");
  ReceiveWait w;
  w.match = match;
  w.context = context;
  if (auto* ref = static_cast<const std::uint64_t*>(context); match == &match_call_reply) w.ref = *ref;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::uintptr_t idle_stub = reinterpret_cast<std::uintptr_t>(&state_->stub) | idle_tag;
  for (;;) {
    {
      ExternalGuard guard(core.epoch);
      core.drain(state_);  // an inbox traps every exit signal: it never dies of one
    }
    if (Envelope* e = core.scan(state_, w)) return Message::adopt(e);
    // After the stop nothing more is coming: what has arrived is all. Acquire: pairs with
    // run_stop's release store; a stop that ends while we wait below sets `notified` under
    // our mutex after that store, so the wait ends and this load, next time round, sees it.
    if (life_->stopped.load(std::memory_order_acquire)) return std::nullopt;
    // Nothing yet: mark the mailbox idle, so the next sender wakes us, and wait.
    const bool idle =
        state_->head.load(std::memory_order_acquire) == idle_stub || mailbox_try_mark_idle(state_);
    if (!idle) continue;  // something is arriving
    std::unique_lock lock(state_->mutex);
    if (!state_->cv.wait_until(lock, deadline, [&] { return state_->notified; })) {
      lock.unlock();
      ExternalGuard guard(core.epoch);
      core.drain(state_);
      if (Envelope* e = core.scan(state_, w)) return Message::adopt(e);
      return std::nullopt;
    }
    state_->notified = false;
  }
}

Result<Message> Inbox::call_message(Pid to, std::string_view name, Message request,
                                    std::chrono::milliseconds timeout) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return runtime_gone("call");
  RuntimeCore& core = *use.core();
  if (core.scheduler.current() != nullptr)
    return Error(ErrorKind::blocking_in_process, "Inbox::call blocks; a process uses co_await call instead");
  // Acquire: pairs with run_stop's release store (nothing would answer: no process is left).
  if (life_->stopped.load(std::memory_order_acquire))
    return Error(ErrorKind::runtime_stopped, "call: the runtime is stopped");
  const std::string target = name.empty() ? to.to_string() : quoted(name);
  if (!name.empty()) {
    to = core.names.whereis(name);
    if (!to) return Error(ErrorKind::noproc, "call: no process is registered as " + target);
  }
  if (to == pid_) return Error(ErrorKind::calling_self, "call: an inbox cannot call itself", to);
  if (core.table.foreign(to)) return Error(ErrorKind::foreign_pid, "call: " + core.table.foreign_text(to), to);
  Ref ref;
  {
    ExternalGuard guard(core.epoch);
    ref = core.send_call(state_, to, request.release());
  }
  const std::uint64_t ref_bits = ref.bits();
  std::optional<Message> reply = receive_matching(&match_call_reply, &ref_bits, timeout);
  ExternalGuard guard(core.epoch);
  Result<Message> result = core.finish_call(state_, ref, std::move(reply), to, target, timeout.count());
  // No answer because the runtime stopped while we waited (the receive no longer waits then).
  if (!result && result.error().kind() == ErrorKind::timeout && life_->stopped.load(std::memory_order_acquire))
    return Error(ErrorKind::runtime_stopped, "call: the runtime stopped before " + target + " answered", to);
  return result;
}

void Inbox::exit(Pid pid, ExitReason reason) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return;  // dropped, as a send is
  use.core()->send(pid, make_exit_signal(SignalKind::exit_explicit, pid_, std::move(reason)));
}

Status Inbox::link(Pid pid) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return runtime_gone("link");
  ExternalGuard guard(use.core()->epoch);
  return use.core()->link(state_, pid);
}
void Inbox::unlink(Pid pid) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return;
  ExternalGuard guard(use.core()->epoch);
  use.core()->unlink(state_, pid);
}
Ref Inbox::monitor(Pid pid) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return Ref{};
  ExternalGuard guard(use.core()->epoch);
  return use.core()->monitor(state_, pid);
}
Ref Inbox::monitor(std::string_view name) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return Ref{};
  ExternalGuard guard(use.core()->epoch);
  return use.core()->monitor(state_, name);
}
bool Inbox::demonitor(Ref ref, DemonitorOptions options) {
  InboxUse use(*life_);
  if (use.core() == nullptr) return false;
  ExternalGuard guard(use.core()->epoch);
  if (options.flush) use.core()->drain(state_);
  return use.core()->demonitor(state_, ref, options.flush);
}
std::size_t Inbox::queued() {
  InboxUse use(*life_);
  if (use.core() == nullptr) return 0;
  ExternalGuard guard(use.core()->epoch);
  use.core()->drain(state_);
  return state_->queue_length.load(std::memory_order_relaxed);
}

}  // namespace coppice
