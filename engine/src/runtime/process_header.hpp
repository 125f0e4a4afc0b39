// The process header: what the runtime keeps for each process, in 112 bytes (the fields
// other threads write, then the owner's), plus the parts allocated only when first used.
// 112, so that a header and a 16-byte object (a vtable and a pid) fill one 128-byte block of
// the allocator, where 128 took a 160-byte one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "runtime/flat_map.hpp"

namespace coppice::detail {

// Links beyond the first, monitors, aliases: most processes never have any beyond their
// supervisor link (which the header holds), so they live here, allocated on first use and
// freed when empty again (at the end of a turn that leaves the process idle), not in every
// header.
struct ProcessExtras {
  FlatMap links;         // peer pid bits -> 0, once a process has more than one link
  FlatMap monitoring;    // monitor ref -> pid this process watches
  FlatMap monitored_by;  // monitor ref -> pid watching this process
  FlatMap aliases;       // active alias refs (calls awaiting a reply) -> 0
  // Monitors taken by registered name: the name their Down carries.
  std::vector<std::pair<std::uint64_t, std::string>> monitor_names;

  bool empty() const {
    return links.empty() && monitoring.empty() && monitored_by.empty() && aliases.empty() && monitor_names.empty();
  }
};

enum ProcessFlag : std::uint16_t {
  trap_exit_flag = 1 << 0,
  started_flag = 1 << 1,   // init() has run
  dead_flag = 1 << 2,      // exited: a turn only answers what arrived late (bounce_late)
  body_flag = 1 << 3,      // the activity is the process's body: it exits when that returns
  proxy_flag = 1 << 4,     // stands for a process of another node: told of its signals (proxy.hpp)
  reported_flag = 1 << 5,  // a behaviour reported its crash itself (mark_crash_reported)
  links_spilled_flag = 1 << 6,  // the links are in extras->links, not in the header's one slot
  labelled_flag = 1 << 7,  // has a label in RuntimeCore::labels (removed at exit)
  object_gone_flag = 1 << 8,  // the object has been destroyed (exit)
};

// What the listing shows of a process's class (coppice/observe.hpp), one constant per class,
// written into the header before the process is published and never changed.
struct ProcessDescriptor {
  std::string_view behaviour;   // "GenServer", "Supervisor", ..., "plain"
  const std::type_info* type;   // the class, or the server's class for a behaviour
  std::uint32_t bytes;          // header and object, as allocated
  std::uint32_t object_offset;  // from the header to the Process in the object (spawn.hpp)
  // The class's demangled name, made on the first listing that asks (spawn.cpp): the
  // descriptor lives as long as the program, and so does the name.
  std::string_view type_name() const;
  mutable std::atomic<const std::string*> demangled{nullptr};
};

enum class ProcessKind : std::uint8_t { process, inbox };

// Allocated together with the Process object, 16-byte aligned (not 64: see ARCHITECTURE.md,
// "The header is 16-byte aligned"), so a header may straddle three cache lines and no field
// is promised a line of its own. The two groups below are kept apart so that senders' writes
// and the owner's writes touch different words, and mostly different lines.
struct ProcessHeader {
  // ---- Written by senders (and by the owner's few read-modify-writes of `head`). ----
  // The mailbox's producer end: the newest envelope, tagged idle (nobody is running or has
  // scheduled this process); at death the close sets `closed` once (mailbox.hpp: the tag is
  // never read, the close's return value marks where reading stopped). A push never fails,
  // closed or not: what arrives after the close is answered by a turn of the dead process
  // (bounce_late; an inbox's at reclamation: mailbox.hpp).
  std::atomic<std::uintptr_t> head;
  // The mailbox's stub: the queue is never empty of nodes, so a push is one exchange. It
  // carries no message, so only its `next` is the mailbox's: its other three words hold what
  // the listing reads (observe.cpp) at no cost in bytes: `type_bits` the ProcessDescriptor
  // and `from` the spawner (both written before publication, then read-only), `ref` the
  // reductions (the owner's relaxed stores, read relaxed by the listing). See the accessors.
  Envelope stub;
  Pid pid;                          // set before the process is published, then read-only
  std::atomic<std::uint8_t> named{0};    // set by register_name; read at exit
  // Set once, when the dying process has run its last user code (the destructor) and is
  // about to close its mailbox: from then on link, monitor, register_name and is_alive see
  // it as gone. Release/seq_cst store; readers acquire (names.cpp: seq_cst, a Dekker pair).
  std::atomic<std::uint8_t> exiting{0};
  // Set by a sender after pushing an exit signal (release), cleared only by the owner's
  // exchange (acquire), so a second sender's set is never lost: the next round of the turn
  // drains everything first, so a kill is acted on at once; without it, a handler takes its
  // mailbox one envelope at a time and never walks a backlog twice.
  std::atomic<std::uint8_t> urgent{0};
  ProcessKind kind = ProcessKind::process;
  // Envelopes (messages and signals) taken from the mailbox, wrapping: the low part of the
  // process's reductions (see `reductions`). The owner's relaxed load and store, one per
  // envelope, in the padding before `tail`; read relaxed by the listing.
  std::atomic<std::uint32_t> taken{0};

  // ---- Only the worker running the process touches these. ----
  Envelope* tail;  // the mailbox's consumer end
  // Received, not yet handled, in arrival order: a ring through its tail (the tail's next is
  // the head), so that one pointer holds it. Null when empty.
  Envelope* queue_tail = nullptr;
  ProcessExtras* extras = nullptr;
  ReceiveWait* waiter = nullptr;   // the receive the current activity is suspended in
  void* activity = nullptr;        // root coroutine frame of the current activity
  // The one link most processes have (to their supervisor), as pid bits (0: none); once a
  // second link comes, every link moves to extras->links (links_spilled_flag).
  std::uint64_t link = 0;
  // Received, not yet handled. The owner's relaxed load and store (no read-modify-write: it
  // alone writes), so that the listing may read it from another thread.
  std::atomic<std::uint32_t> queue_length{0};
  std::uint16_t flags = 0;

  ProcessHeader() : head(reinterpret_cast<std::uintptr_t>(&stub)), tail(&stub) {}

  void add_queued(int delta) {
    queue_length.store(queue_length.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  // ---- What the listing reads (kept in the stub's free words, see `stub`) ----
  void describe(const ProcessDescriptor* d, Pid spawner) {
    stub.type_bits = reinterpret_cast<std::uintptr_t>(d);
    stub.from = spawner;
  }
  const ProcessDescriptor* descriptor() const { return reinterpret_cast<const ProcessDescriptor*>(stub.type_bits); }
  // The process's object, built right after the header (allocate_process); null for an
  // inbox, which has none, and once exit has destroyed it.
  Process* object() {
    const ProcessDescriptor* d = descriptor();
    if (d == nullptr || has(object_gone_flag)) return nullptr;
    return reinterpret_cast<Process*>(reinterpret_cast<char*>(this) + d->object_offset);
  }
  Pid spawner() const { return stub.from; }
  // Reductions (coppice/observe.hpp): the envelopes taken from the mailbox, counted in
  // `taken` as they are taken, plus the stub's `ref` word, which holds awaits completed at
  // once and 2^32 for each time `taken` wraps. (Not added up at the end of a turn: a store
  // there made W5 2-3% slower, ARCHITECTURE "What the counters cost".) A listing that reads while
  // `taken` wraps sees 2^32 too few, for that moment.
  void count_taken() {
    const std::uint32_t n = taken.load(std::memory_order_relaxed) + 1;
    taken.store(n, std::memory_order_relaxed);
    if (n == 0) add_reductions(std::uint64_t{1} << 32);
  }
  void add_reductions(std::uint64_t n) {
    std::atomic_ref<std::uint64_t> r(stub.ref);
    r.store(r.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t reductions() const {
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(stub.ref)).load(std::memory_order_relaxed) +
           taken.load(std::memory_order_relaxed);
  }

  bool has(ProcessFlag f) const { return (flags & f) != 0; }
  void set(ProcessFlag f, bool on = true) { flags = on ? (flags | f) : (flags & ~f); }
  ProcessExtras& ensure_extras() {
    if (extras == nullptr) extras = new ProcessExtras;
    return *extras;
  }
  // Called by the owner at the end of a turn, before it marks the process idle, when no
  // reference into extras is held.
  void release_extras_if_empty() {
    if (extras == nullptr || !extras->empty()) return;
    delete extras;
    extras = nullptr;
    set(links_spilled_flag, false);
  }

  // ---- Links (owner only) ----
  bool has_link(std::uint64_t peer) const {
    if (!has(links_spilled_flag)) return peer != 0 && link == peer;
    return extras->links.contains(peer);
  }
  // True if the link is new.
  bool add_link(std::uint64_t peer) {
    if (!has(links_spilled_flag)) {
      if (link == 0) {
        link = peer;
        return true;
      }
      if (link == peer) return false;
      ProcessExtras& x = ensure_extras();
      x.links.insert(peer, 0);
      x.links.insert(link, 0);
      link = 0;
      set(links_spilled_flag);
      return true;
    }
    return extras->links.insert(peer, 0);
  }
  // True if the link was there.
  bool remove_link(std::uint64_t peer) {
    if (!has(links_spilled_flag)) {
      if (peer == 0 || link != peer) return false;
      link = 0;
      return true;
    }
    return extras->links.erase(peer);
  }
  template <class F>
  void for_each_link(F&& f) const {
    if (!has(links_spilled_flag)) {
      if (link != 0) f(link);
      return;
    }
    extras->links.for_each([&](std::uint64_t peer, std::uint64_t) { f(peer); });
  }
};
static_assert(sizeof(ProcessHeader) <= 112, "the header is 112 bytes at most (see the top of this file)");

// Where the Process object starts in the allocation that holds header and object.
constexpr std::size_t object_offset(std::size_t alignment) {
  return (sizeof(ProcessHeader) + alignment - 1) / alignment * alignment;
}

}  // namespace coppice::detail
