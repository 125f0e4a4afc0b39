// The process header: what the runtime keeps for each process, in two cache lines (the one
// other threads write, and the owner's), plus the parts allocated only when first used.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "runtime/flat_map.hpp"

namespace coppice::detail {

// Links, monitors, aliases: most processes never have any beyond their supervisor link, so
// they live here, allocated on first use, not in every header.
struct ProcessExtras {
  FlatMap links;         // peer pid bits -> 0
  FlatMap monitoring;    // monitor ref -> pid this process watches
  FlatMap monitored_by;  // monitor ref -> pid watching this process
  FlatMap aliases;       // active alias refs (calls awaiting a reply) -> 0
  // Monitors taken by registered name: the name their Down carries.
  std::vector<std::pair<std::uint64_t, std::string>> monitor_names;
};

enum ProcessFlag : std::uint16_t {
  trap_exit_flag = 1 << 0,
  started_flag = 1 << 1,   // init() has run
  exiting_flag = 1 << 2,   // runs no more user code
  body_flag = 1 << 3,      // the activity is the process's body: it exits when that returns
  inbox_flag = 1 << 4,     // an Inbox: "scheduling" it wakes its thread
  reported_flag = 1 << 5,  // a behaviour reported its crash itself (mark_crash_reported)
};

enum class ProcessKind : std::uint8_t { process, inbox };

// Allocated together with the Process object, 16-byte aligned: the two groups below are kept
// apart so that senders' writes and the owner's writes touch different words, and the whole
// header stays within two cache lines' worth of bytes.
struct ProcessHeader {
  // ---- First cache line: written by senders. ----
  // The mailbox's producer end: the newest envelope, tagged idle (nobody is running or has
  // scheduled this process) or closed (the process is gone; pushes fail).
  std::atomic<std::uintptr_t> head;
  // The mailbox's stub: the queue is never empty of nodes, so push is one CAS.
  Envelope stub;
  Pid pid;                          // set before the process is published, then read-only
  std::atomic<std::uint8_t> named{0};    // set by register_name; read at exit
  std::atomic<std::uint8_t> exiting{0};  // set once, as the process starts to exit
  // Set by a sender after pushing an exit signal: the next turn drains everything first, so
  // a kill is acted on at once; without it, a handler takes its mailbox one envelope at a
  // time and never walks a backlog twice.
  std::atomic<std::uint8_t> urgent{0};
  ProcessKind kind = ProcessKind::process;

  // ---- Second cache line: only the worker running the process touches these. ----
  Envelope* tail;  // the mailbox's consumer end
  Envelope* queue_head = nullptr;  // received, not yet handled, in arrival order
  Envelope* queue_tail = nullptr;
  Process* object = nullptr;
  ProcessExtras* extras = nullptr;
  ReceiveWait* waiter = nullptr;   // the receive the current activity is suspended in
  void* activity = nullptr;        // root coroutine frame of the current activity
  std::uint32_t queue_length = 0;
  std::uint16_t flags = 0;

  ProcessHeader() : head(reinterpret_cast<std::uintptr_t>(&stub)), tail(&stub) {}

  bool has(ProcessFlag f) const { return (flags & f) != 0; }
  void set(ProcessFlag f, bool on = true) { flags = on ? (flags | f) : (flags & ~f); }
  ProcessExtras& ensure_extras() {
    if (extras == nullptr) extras = new ProcessExtras;
    return *extras;
  }
};
static_assert(sizeof(ProcessHeader) <= 128, "the header fits in two cache lines");

// Where the Process object starts in the allocation that holds header and object.
constexpr std::size_t object_offset(std::size_t alignment) {
  return (sizeof(ProcessHeader) + alignment - 1) / alignment * alignment;
}

}  // namespace coppice::detail
