// A supervisor's record: its counters (restarts, intensity trips, start failures, children
// started), its entry in the runtime's directory of supervisors (supervisor_stats), and the
// reports it makes about its children and about its own death (tree_died). Supervisor,
// DynamicSupervisor (so TaskSupervisor), PartitionSupervisor (a Supervisor) and Parent keep one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coppice/child_spec.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"
#include "coppice/report.hpp"
#include "coppice/server_ref.hpp"

namespace coppice::detail {

class RuntimeCore;
class ReportDesk;

// A running supervisor's line in the directory. The counters are written by the supervisor
// alone (one process: its turns are ordered, whatever worker runs them) and read by anyone:
// relaxed atomics, incremented by a load and a store (no locked instruction), since there is
// no second writer to lose an update to.
struct SupervisorEntry {
  Pid pid;
  std::string name;
  std::string behaviour;  // written under the directory's mutex, by the supervisor only
  bool top_level = false;
  std::atomic<std::uint64_t> restarts{0};
  std::atomic<std::uint64_t> intensity_trips{0};
  std::atomic<std::uint64_t> start_failures{0};
  std::atomic<std::uint64_t> children_started{0};

  static void bump(std::atomic<std::uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

// The supervisors of one runtime (a service). Its mutex is taken when a supervisor starts or
// exits and by the queries; never on a restart.
class SupervisorDirectory {
 public:
  SupervisorEntry* join(Pid pid, std::string name, std::string_view behaviour, bool top_level);
  // Removes the entry; its counts go to the runtime's totals.
  void leave(SupervisorEntry* entry);
  bool contains(Pid pid);
  // A PartitionSupervisor's Supervisor names itself so (its init runs inside the Supervisor).
  void set_behaviour(Pid pid, std::string_view behaviour);
  std::vector<SupervisorStats> stats();
  SupervisorTotals totals();

 private:
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::unique_ptr<SupervisorEntry>> live_;
  SupervisorTotals gone_;  // the counts of supervisors that have exited
};

SupervisorDirectory& supervisor_directory(RuntimeCore& core);

// The record a supervisor keeps (a member of its state, built before its process has run).
// join() in init; destroyed with the supervisor, it leaves the directory, and a top-level
// supervisor that died reports tree_died first.
class SupervisorRecord {
 public:
  SupervisorRecord() = default;
  SupervisorRecord(const SupervisorRecord&) = delete;
  SupervisorRecord& operator=(const SupervisorRecord&) = delete;
  ~SupervisorRecord();

  // In the supervisor's init: its behaviour and name, the intensity its reports count with,
  // and whether it is top-level (linked to no supervisor of this runtime now).
  void join(std::string_view behaviour, const ServerRef& name, const RestartIntensity* intensity, bool parent = false);
  // Init is done: from now on an abnormal end is a dead tree.
  void running() { running_ = true; }
  // The reason it stops with (terminate, or a Parent stopping its children).
  void stopping(const ExitReason& reason) { stop_reason_ = reason; }

  // ---- Counted, reported or not ----
  void restarted() {
    if (entry_) SupervisorEntry::bump(entry_->restarts);
  }
  // Over the intensity: counted, and a top-level supervisor's end is then a dead tree.
  void gave_up() {
    gave_up_ = true;
    if (entry_) SupervisorEntry::bump(entry_->intensity_trips);
  }
  void start_failed() {
    if (entry_) SupervisorEntry::bump(entry_->start_failures);
  }
  // A child started: counted; reported (child_started) only when the runtime has a handler.
  void started(const ReportChild& child) {
    if (entry_) SupervisorEntry::bump(entry_->children_started);
    if (handler_) report_started(child);
  }

  // A report about `child` (or about the supervisor itself, without one), if the rate
  // limit lets it through; `reason` and `context` as in Report.
  void report(ReportKind kind, const std::optional<ReportChild>& child, const ExitReason& reason,
              std::string_view context = {}) const;

 private:
  void report_started(const ReportChild& child) const;
  void fill(Report& r) const;

  RuntimeCore* core_ = nullptr;
  SupervisorDirectory* directory_ = nullptr;
  ReportDesk* desk_ = nullptr;  // the runtime's, found once
  SupervisorEntry* entry_ = nullptr;
  const RestartIntensity* intensity_ = nullptr;
  std::string name_;
  bool parent_ = false;
  bool handler_ = false;
  bool running_ = false;
  bool gave_up_ = false;
  std::optional<ExitReason> stop_reason_;
};

}  // namespace coppice::detail
