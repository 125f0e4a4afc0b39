// RuntimeCore: everything a Runtime owns, and the operations every layer above builds on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/options.hpp"
#include "coppice/pid.hpp"
#include "coppice/signals.hpp"
#include "runtime/epoch.hpp"
#include "runtime/names.hpp"
#include "runtime/process_header.hpp"
#include "runtime/process_table.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/timers.hpp"

namespace coppice::detail {

// The part of a runtime that its inboxes share with it, and may outlive it by (an Inbox holds
// a shared_ptr to it). Every Inbox operation holds a use for its duration; the runtime's
// destructor sets `gone` and waits for the uses in progress, so an operation either ends
// before the runtime frees anything or sees `gone` and touches nothing.
struct InboxLife {
  static constexpr std::uint64_t gone = std::uint64_t{1} << 63;
  explicit InboxLife(RuntimeCore* c) : core(c) {}
  // Inbox operations in progress, plus `gone` once the runtime is being destroyed. One word,
  // so its read-modify-writes order every use against the fetch_or of `gone`.
  std::atomic<std::uint64_t> uses{0};
  // Set (under `mutex`) once stop() has ended every process: a receive no longer waits.
  // Release/acquire with the inbox's own mutex in between (see Inbox::receive_matching).
  std::atomic<bool> stopped{false};
  RuntimeCore* const core;
  std::mutex mutex;
  std::unordered_set<ProcessHeader*> inboxes;  // the live inboxes, to wake and to close
};

// The calling worker's counters (scheduler.cpp), null on any other thread.
extern constinit thread_local WorkerCounters* this_counters;

class RuntimeCore {
 public:
  explicit RuntimeCore(RuntimeOptions options);
  ~RuntimeCore();

  void start();
  // Idempotent and safe from any number of threads at once: each caller returns once the
  // runtime is stopped. From a worker of this runtime (a process, or a destructor run by a
  // kill) it begins the stop on a thread of its own and returns at once.
  void stop();

  // A spawn from a thread that is not a worker of this runtime announces itself while it
  // publishes (Dekker with stop(): either it sees `stopping` and refuses, or stop() waits for
  // it before killing what is in the table). False: refused, the runtime is stopping.
  bool begin_external_spawn();
  void end_external_spawn();
  // After the workers are joined: kills, on the calling thread, every process still in the
  // table (one whose spawn raced with the last round of kills and was never run).
  void kill_stranded();

  // ---- Delivery. `deliver` needs the caller online in the epoch domain; `send` goes
  // online itself when called from a plain thread. ----
  void deliver(Pid to, Envelope* e);
  // `deliver` to a process already looked up (and checked) by the caller.
  void push(ProcessHeader* p, Envelope* e);
  void send(Pid to, Envelope* e);
  void schedule(ProcessHeader* p);
  Ref make_ref();
  void log(std::string_view line);

  // ---- Operations of a process (or inbox) `self` on itself; the caller owns `self`. ----
  Status link(ProcessHeader* self, Pid pid);
  void unlink(ProcessHeader* self, Pid pid);
  Ref monitor(ProcessHeader* self, Pid pid);
  Ref monitor(ProcessHeader* self, std::string_view name);
  Ref exit_monitored(ProcessHeader* self, Pid pid, ExitReason reason);
  bool demonitor(ProcessHeader* self, Ref ref, bool flush);
  // Sends the request of a call by `self` to `to` (checked: not self, not foreign): a fresh
  // ref is both the monitor on `to` and the alias the reply comes to (in self's aliases).
  // The monitor travels in the request (Envelope::carries_monitor), not as a signal of its
  // own; a proxy, or a target already dead or exiting, gets the monitor as `monitor` does.
  Ref send_call(ProcessHeader* self, Pid to, Envelope* request);
  // Ends self's monitor `ref` with `answer` (coppice/detail/runtime_core.hpp's end_monitor).
  void end_monitor(ProcessHeader* self, const Message& answer, Ref ref);
  // Removes queued replies to the alias `ref` (a call that gave up must leave none behind).
  void drop_replies(ProcessHeader* self, Ref ref);
  // Ends a call by `self` (process or inbox): deactivates its alias, removes its monitor,
  // and turns what came (the reply, the server's DOWN, or nothing: a timeout) into the result.
  Result<Message> finish_call(ProcessHeader* self, Ref ref, std::optional<Message> answer, Pid to,
                              const std::string& target, std::int64_t timeout_ms);
  // Moves what has arrived into self's queue, acting on signals. False: self must exit,
  // with the reason in `pending_exit`. Each envelope taken counts in the process's
  // reductions (ProcessHeader::taken) and in messages_sent, which counts messages where they
  // are received, not in send: this form adds them to `taken`, for a turn to hand its
  // worker (run_turn); the other counts them at once, into the calling worker's counters
  // or, on a plain thread (an Inbox, a HostBridge), the plain threads' ones.
  bool drain(ProcessHeader* self, std::size_t limit, std::uint32_t& taken);
  bool drain(ProcessHeader* self, std::size_t limit = ~std::size_t{0});
  // Finds the first queued envelope matching `w` after what it already examined; removes it.
  Envelope* scan(ProcessHeader* self, ReceiveWait& w);
  Envelope* queue_pop(ProcessHeader* self);
  // `asker`: the monitor a process_info request set up to watch for our death, left out.
  ProcessInfo info_of(ProcessHeader* self, std::uint64_t asker = 0);
  // What info_of says of memory (the owner's view: it counts the tables and the queue).
  static std::size_t memory_of(const ProcessHeader* self);

  // ---- The scheduler's entry: one turn of process p. ----
  // `again`: run it again later. `taken`: the envelopes the turn took from the mailbox, which
  // the worker adds to its messages_sent (Scheduler::run: in a register, published every
  // few turns), so that a turn stores nothing more for the metrics.
  struct TurnEnd {
    bool again;
    std::uint32_t taken;
  };
  TurnEnd run_turn(Worker& w, ProcessHeader* p);
  void hand_off_next(Worker& w);
  void exit_process(Worker* w, ProcessHeader* p, const ExitReason& reason);
  // A turn of a dead process: answers what reached its mailbox after the final drain (as a
  // dead process does: noproc), then marks it idle again, or frees it if reclamation came.
  void bounce_late(ProcessHeader* p);
  // Frees a dead process's memory once no thread can hold it, or leaves that to the worker
  // holding its mailbox (bounce_late); an inbox's late envelopes are answered here.
  void reclaim(ProcessHeader* p) noexcept;
  void free_header(ProcessHeader* p) noexcept;

  // start_process is not a member: spawn's templates call it (coppice/process.hpp; defined
  // in spawn.cpp).
  // Live-process accounting, per worker so that spawns and exits touch no shared line.
  void count_live(Worker* w, std::int64_t delta);
  // Adds n to a counter of coppice/observe.hpp's metrics: the calling worker's own, or, on
  // a plain thread (or a worker of another runtime), the shared one for plain threads.
  void count(std::atomic<std::uint64_t> WorkerCounters::*counter, std::uint64_t n = 1) {
    WorkerCounters* c = this_counters;
    if (c != nullptr && c->core == this) {
      WorkerCounters::add(c->*counter, n);
    } else {
      (external_counters.*counter).fetch_add(n, std::memory_order_relaxed);
    }
  }
  WorkerCounters external_counters;  // plain threads' (read-modify-writes: several threads)
  // Labels (coppice/observe.hpp's set_label), by pid bits: a side table, since most
  // processes have none; an entry goes when its process exits (labelled_flag).
  std::mutex labels_mutex;
  std::unordered_map<std::uint64_t, std::string> labels;
  std::size_t live_processes();

  RuntimeOptions options;
  EpochDomain epoch;
  ProcessTable table;
  Names names;
  Timers timers;
  Scheduler scheduler;
  // Set once at the start of stop(). seq_cst store: pairs with begin_external_spawn's
  // seq_cst load (Dekker). A worker's spawn reads it with acquire and refuses once it sees it.
  std::atomic<bool> stopping{false};
  std::shared_ptr<InboxLife> inbox_life;
  // Per-runtime objects of the layers above (see coppice/service.hpp).
  std::shared_ptr<void> service(const std::type_info& type, std::shared_ptr<void> (*make)());
  // Runs `hook` during stop(), once every process has exited and before the workers stop
  // (the sockets' poller ends there). False, and nothing kept, when the stop has run them.
  bool at_stop(std::function<void()> hook);
  // The reason the process running on this thread must exit with, acted on by its turn: set
  // by a fatal signal met while draining, by stop_self, or when its body returns.
  static thread_local std::optional<ExitReason> pending_exit;

 private:
  bool arrival(ProcessHeader* self, Envelope* e);
  bool proxy_arrival(ProcessHeader* self, Envelope* e);  // a proxy's signals (proxy.cpp)
  bool apply_exit(ProcessHeader* self, Envelope* e, bool linked);
  void final_arrival(ProcessHeader* self, Envelope* e, const ExitReason& reason);
  void bounce(Pid to, Envelope* e);
  void enqueue(ProcessHeader* self, Envelope* e);
  void resume_activity(ProcessHeader* p);

  void run_stop();
  void run_stop_hooks();
  void close_inboxes();

  std::atomic<std::uint64_t> external_refs_{1};
  std::atomic<std::int64_t> external_live_{0};  // spawned by plain threads
  // Spawns from plain threads between their check of `stopping` and their publish: seq_cst
  // increment before the check (Dekker with stop's store of `stopping`), release decrement
  // after the publish (stop's acquire load of zero then sees the process in the table).
  std::atomic<std::uint32_t> external_spawns_{0};
  std::mutex exit_mutex_;
  std::condition_variable all_exited_;
  // The stop's state machine, under stop_mutex_: running -> stopping -> stopped.
  enum class StopState { running, stopping, stopped };
  std::mutex stop_mutex_;
  std::condition_variable stop_done_;  // stopped, or the last caller left stop()
  StopState stop_state_ = StopState::running;
  unsigned stop_callers_ = 0;  // threads inside stop(): the destructor waits for them
  std::thread stop_thread_;    // the stop a process began (joined by the destructor)
  bool tearing_down_ = false;  // the workers are gone: reclamation only frees
  std::mutex services_mutex_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> services_;
  std::vector<std::function<void()>> stop_hooks_;  // under services_mutex_
  bool stop_hooks_ran_ = false;
};

// Building signal envelopes.
struct NoPayload {};
Envelope* make_signal(SignalKind kind, Pid from, std::uint64_t ref);
Envelope* make_exit_signal(SignalKind kind, Pid from, ExitReason reason);
Envelope* make_down_signal(Pid dead, Ref ref, ExitReason reason);
inline SignalKind kind_of(const Envelope* e) { return e->type()->kind; }

// The process the calling thread is running, and its runtime (null outside a process).
ProcessHeader* running_process() noexcept;
RuntimeCore* running_core() noexcept;

// 'name', for error messages (built with append: g++ 12 warns falsely on "'" + string).
inline std::string quoted(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s.push_back('\'');
  s.append(name);
  s.push_back('\'');
  return s;
}

// Mailboxes of plain threads (Inbox, HostBridge: plain_thread.hpp): "scheduling" one wakes its owner.
void wake_inbox(ProcessHeader* p);
void free_inbox(ProcessHeader* p) noexcept;

}  // namespace coppice::detail
