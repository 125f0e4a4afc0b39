// RuntimeCore: everything a Runtime owns, and the operations every layer above builds on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>

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

class RuntimeCore {
 public:
  explicit RuntimeCore(RuntimeOptions options);
  ~RuntimeCore();

  void start();
  void stop();

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
  // Removes queued replies to the alias `ref` (a call that gave up must leave none behind).
  void drop_replies(ProcessHeader* self, Ref ref);
  // Ends a call by `self` (process or inbox): deactivates its alias, removes its monitor,
  // and turns what came (the reply, the server's DOWN, or nothing: a timeout) into the result.
  Result<Message> finish_call(ProcessHeader* self, Ref ref, std::optional<Message> answer, Pid to,
                              const std::string& target, std::int64_t timeout_ms);
  // Moves what has arrived into self's queue, acting on signals. False: self must exit,
  // with the reason in `pending_exit`.
  bool drain(ProcessHeader* self, std::size_t limit = ~std::size_t{0});
  // Drains only until one message is queued (acting on the signals met on the way).
  bool drain_until_message(ProcessHeader* self);
  // Finds the first queued envelope matching `w` after what it already examined; removes it.
  Envelope* scan(ProcessHeader* self, ReceiveWait& w);
  Envelope* queue_pop(ProcessHeader* self);
  // `asker`: the monitor a process_info request set up to watch for our death, left out.
  ProcessInfo info_of(ProcessHeader* self, std::uint64_t asker = 0);

  // ---- The scheduler's entry: one turn of process p. True: run it again later. ----
  bool run_turn(Worker& w, ProcessHeader* p);
  void hand_off_next(Worker& w);
  void exit_process(Worker* w, ProcessHeader* p, const ExitReason& reason);
  // A turn of a dead process: answers what reached its mailbox after the final drain (as a
  // dead process does: noproc), then marks it idle again, or frees it if reclamation came.
  void bounce_late(ProcessHeader* p);
  // Frees a dead process's memory once no thread can hold it, or leaves that to the worker
  // holding its mailbox (bounce_late); an inbox's late envelopes are answered here.
  void reclaim(ProcessHeader* p) noexcept;
  void free_header(ProcessHeader* p) noexcept;

  // Pid start_process(...) lives in process.cpp as a free function of the public detail API.
  // Live-process accounting, per worker so that spawns and exits touch no shared line.
  void count_live(Worker* w, std::int64_t delta);
  std::size_t live_processes();

  RuntimeOptions options;
  EpochDomain epoch;
  ProcessTable table;
  Names names;
  Timers timers;
  Scheduler scheduler;
  std::atomic<bool> stopping{false};
  // Per-runtime objects of the layers above (see coppice/service.hpp).
  std::shared_ptr<void> service(const std::type_info& type, std::shared_ptr<void> (*make)());
  // Set by a signal that kills the process being drained on this thread.
  static thread_local std::optional<ExitReason> pending_exit;

 private:
  bool arrival(ProcessHeader* self, Envelope* e);
  bool apply_exit(ProcessHeader* self, Envelope* e, bool linked);
  void final_arrival(ProcessHeader* self, Envelope* e, const ExitReason& reason);
  void bounce(Pid to, Envelope* e);
  void enqueue(ProcessHeader* self, Envelope* e);
  void resume_activity(ProcessHeader* p);

  std::atomic<std::uint64_t> external_refs_{1};
  std::atomic<std::int64_t> external_live_{0};  // spawned by plain threads
  std::mutex exit_mutex_;
  std::condition_variable all_exited_;
  bool stopped_ = false;
  bool tearing_down_ = false;  // the workers are gone: reclamation only frees
  std::mutex services_mutex_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> services_;
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

// Inboxes: "scheduling" one wakes the thread that waits on it.
void wake_inbox(ProcessHeader* p);
void free_inbox(ProcessHeader* p) noexcept;

}  // namespace coppice::detail
