// Seeing inside a running runtime: the process listing (OTP's processes/0 with process_info/2),
// labels (proc_lib:set_label), the supervision tree as data, and the runtime's metrics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/server_ref.hpp"

namespace coppice {

class Runtime;

// ---- Labels ------------------------------------------------------------------------------

// Labels the calling process (OTP 27's proc_lib:set_label): any short printable text, shown
// by the listing and the observer. Replaces an earlier label; an empty one removes it. At
// most 256 bytes: a longer label is cut there. Outside a process: std::logic_error.
void set_label(std::string label);
// The label of `pid` ("" if it has none or is gone), from any thread.
std::string label_of(Runtime& rt, Pid pid);

// ---- The listing -------------------------------------------------------------------------

enum class ProcessStatus : std::uint8_t {
  running,   // in a turn on a worker now
  runnable,  // has work and is queued for a worker
  waiting,   // idle: nothing to do until a message comes
  exiting,   // has run its last code, is leaving the table
};
std::string_view to_string(ProcessStatus status);

struct ProcessEntry {
  Pid pid;
  std::string registered_name;  // "" if none
  std::string label;            // "" if none (set_label)
  // "GenServer", "Supervisor", "DynamicSupervisor", "PartitionSupervisor", "Parent",
  // "Task", a behaviour's own name, "plain" for any other process class, and "inbox" for a
  // plain thread's mailbox (Inbox, HostBridge). Both texts are the program's for its whole
  // life (one per process class): an entry costs no allocation for them.
  std::string_view behaviour;
  std::string_view type;  // the C++ class (the server's class for a GenServer), demangled
  ProcessStatus status = ProcessStatus::waiting;
  // The process that spawned it (OTP 25's `parent`): a supervised child's supervisor. Pid{}
  // for a process spawned by a plain thread.
  Pid parent;
  // Received and not yet handled. Taken from outside: what the process has moved from its
  // mailbox into its queue; what has arrived since its last turn is not counted yet.
  std::size_t message_queue_len = 0;
  // Work done since it started (BEAM's reductions, in coppice's units): each message and
  // signal taken from its mailbox, counted as it is taken, and each await that completed
  // without suspending.
  std::uint64_t reductions = 0;
  // Bytes: the process's header and object; with details, plus its links, monitors and
  // queued messages.
  std::size_t memory = 0;

  // ---- With ListOptions::details (answered by the process itself, between its turns). ----
  bool detailed = false;  // false: the fields below are empty (no details asked, or no answer in time)
  std::vector<Pid> links;
  std::vector<Pid> monitors;      // processes this one monitors
  std::vector<Pid> monitored_by;  // processes that monitor this one
  bool trap_exit = false;
};

struct ListOptions {
  // Also ask every process for its links, monitors, trap_exit and its exact memory and
  // queue length (a process_info signal each, answered between turns): two messages per
  // process. A process in a long callback answers late; after `timeout` the listing returns
  // with `detailed` false for it.
  bool details = false;
  std::chrono::milliseconds timeout{1000};
};

// OTP's processes/0 with process_info/2. A snapshot of every live process of `rt`, in
// pid-slot order, taken while it runs: a walk of the process table that disturbs no process
// (without details). A process spawned or gone during the walk may or may not be in it; every
// entry was alive when it was read. The snapshot holds an entry per process (about 200
// bytes: at a million processes most of its cost is the kernel's first touch of those pages;
// README "Seeing inside" has the figures). From a plain thread or a process; with details,
// from a plain thread only (std::logic_error in a process: it would block its worker while
// the others answer).
std::vector<ProcessEntry> list_processes(Runtime& rt, ListOptions options = {});
// The same walk without the snapshot (OTP 28's processes iterator): `visit` sees each live
// process's entry (no details) in turn, a few thousand at a time, called outside the walk
// (it may call into the runtime; it should not take long). One batch's memory whatever the
// count: what a periodic figure over every process (mailbox_depths, say) wants.
void for_each_process(Runtime& rt, const std::function<void(const ProcessEntry&)>& visit);
// The entry of one process; Error noproc if it is gone or exiting (as is_alive), foreign_pid
// for another runtime's pid.
Result<ProcessEntry> process_entry(Runtime& rt, Pid pid, ListOptions options = {});

// ---- The supervision tree ----------------------------------------------------------------

// One node of a supervision tree: a supervisor with its children (which_children, all the way
// down), or a worker.
struct TreeNode {
  std::string id;  // the child's id in its supervisor ("" for the root)
  Pid pid;         // Pid{} for a child that is not running (or restarting)
  bool restarting = false;
  ChildType type = ChildType::worker;
  std::string registered_name;
  std::string label;
  std::string behaviour;  // as in ProcessEntry ("" when not running)
  std::vector<TreeNode> children;
  std::string error;  // a supervisor that did not answer which_children: why
};

// The tree under `root` (a Supervisor, DynamicSupervisor, PartitionSupervisor or Parent),
// asking each supervisor for its children in turn. A child that dies meanwhile is listed as
// its supervisor gave it; a supervisor below the root that cannot answer has `error` set and
// no children. The root's own failure is the result's error: noproc (nobody is `root`), the
// error a process that is not a supervisor answers which_children with, or timeout. The
// timeout bounds the whole walk; supervisors it did not reach have `error` set.
// From a plain thread; in a process, co_await supervision_tree(root).
Result<TreeNode> supervision_tree(Runtime& rt, const ServerRef& root,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
Async<Result<TreeNode>> supervision_tree(ServerRef root, std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

// ---- Metrics -----------------------------------------------------------------------------

// Counted by each worker on its own cache lines, summed when asked.
struct WorkerMetrics {
  unsigned index = 0;
  std::uint64_t turns = 0;     // processes run
  std::uint64_t steals = 0;    // successful steals from another worker's queue
  std::uint64_t parks = 0;     // times it went to sleep
  std::uint64_t wakeups = 0;   // times another thread woke it
  std::chrono::nanoseconds parked{0};  // time asleep
  std::chrono::nanoseconds alive{0};   // since it started
  std::size_t run_queue = 0;   // processes in its run queue now
  double utilisation() const {
    return alive.count() > 0 ? 1.0 - static_cast<double>(parked.count()) / static_cast<double>(alive.count()) : 0.0;
  }
};

struct RuntimeMetrics {
  std::vector<WorkerMetrics> workers;
  std::size_t processes = 0;        // alive now
  std::uint64_t spawns = 0;         // since the runtime started
  std::uint64_t exits = 0;
  // Exits by reason class: normal, shutdown (with or without a detail), killed, and the rest
  // (errors, and any other reason: what a supervisor would restart a transient child for).
  std::uint64_t exits_normal = 0;
  std::uint64_t exits_shutdown = 0;
  std::uint64_t exits_killed = 0;
  std::uint64_t exits_error = 0;
  // Messages and signals put into mailboxes, counted as their receivers take them (so what is
  // in flight is not counted yet). A busy worker adds what its turns took every 64 turns and
  // before it parks: the figure may lag by that much.
  std::uint64_t messages_sent = 0;
  std::uint64_t timers_started = 0;
  std::uint64_t timers_fired = 0;
  std::size_t timers_pending = 0;
  std::size_t global_queue = 0;     // processes queued for any worker
};

// The runtime's counters now. Cheap: reads each worker's counters, no process is asked.
RuntimeMetrics metrics(Runtime& rt);

// How many processes have a queue of each length: buckets 0, 1, 2-3, 4-7, ... (powers of
// two), `upper` giving each bucket's largest length. From a listing, or one queue length at a
// time (add, from for_each_process).
struct MailboxDepths {
  std::vector<std::size_t> upper{0};   // 0, 1, 3, 7, 15, ...
  std::vector<std::size_t> counts{0};  // processes in each bucket
  std::size_t max = 0;
  void add(std::size_t queue_length);
};
MailboxDepths mailbox_depths(const std::vector<ProcessEntry>& listing);

}  // namespace coppice
