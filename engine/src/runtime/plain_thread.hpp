// What an Inbox and a HostBridge share: a process header owned by a plain thread, woken its
// own way, and the hold an operation of theirs keeps on a runtime they may outlive.
#pragma once

#include <cstdint>

#include "runtime/process_header.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// The header of a mailbox that a plain thread owns (ProcessKind::inbox): "scheduling" it
// calls `wake` (wake_inbox), freeing it calls `free` (free_inbox), so each kind of owner
// (a blocking Inbox, a HostBridge's eventfd) says how it is told and how it is freed.
struct PlainThreadHeader : ProcessHeader {
  void (*wake)(PlainThreadHeader*) = nullptr;
  void (*free)(PlainThreadHeader*) noexcept = nullptr;
};

// One operation's hold on the runtime of an Inbox or HostBridge: core() is null once the
// runtime is gone, and while it is not, the runtime frees nothing until this use ends
// (close_inboxes waits).
class InboxUse {
 public:
  explicit InboxUse(InboxLife& life) : life_(life) {
    // Acquire, and one word with `gone`: either this increment comes first in the word's
    // order and the runtime waits for our release decrement, or we see `gone`.
    const std::uint64_t before = life.uses.fetch_add(1, std::memory_order_acquire);
    core_ = (before & InboxLife::gone) != 0 ? nullptr : life.core;
  }
  ~InboxUse() {
    // Release: close_inboxes' acquire load of zero sees everything this use did.
    life_.uses.fetch_sub(1, std::memory_order_release);
  }
  InboxUse(const InboxUse&) = delete;
  InboxUse& operator=(const InboxUse&) = delete;
  RuntimeCore* core() const { return core_; }

 private:
  InboxLife& life_;
  RuntimeCore* core_;
};

// A send from a plain thread's pid (an Inbox's or a HostBridge's): to a runtime that is gone,
// dropped, as a send to a dead pid is.
inline void plain_thread_send(InboxLife& life, Pid from, Pid to, Message message) {
  Envelope* e = message.release();
  if (e == nullptr) return;
  InboxUse use(life);
  if (use.core() == nullptr) {
    free_envelope(e);
    return;
  }
  e->from = from;
  use.core()->send(to, e);
}

}  // namespace coppice::detail
