// The supervisors' counters and directory (supervisor_stats.hpp), the public queries
// (coppice/report.hpp), and the reports a supervisor makes through its record.
#include "otp/supervisor_stats.hpp"

#include <algorithm>

#include "coppice/process.hpp"
#include "coppice/runtime.hpp"
#include "coppice/service.hpp"
#include "otp/reports.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

namespace detail {

namespace {
SupervisorStats stats_of(const SupervisorEntry& e) {
  SupervisorStats s;
  s.pid = e.pid;
  s.name = e.name;
  s.behaviour = e.behaviour;
  s.top_level = e.top_level;
  s.restarts = e.restarts.load(std::memory_order_relaxed);
  s.intensity_trips = e.intensity_trips.load(std::memory_order_relaxed);
  s.start_failures = e.start_failures.load(std::memory_order_relaxed);
  s.children_started = e.children_started.load(std::memory_order_relaxed);
  return s;
}

void add_counts(SupervisorTotals& t, const SupervisorStats& s) {
  t.restarts += s.restarts;
  t.intensity_trips += s.intensity_trips;
  t.start_failures += s.start_failures;
  t.children_started += s.children_started;
}
}  // namespace

SupervisorEntry* SupervisorDirectory::join(Pid pid, std::string name, std::string_view behaviour, bool top_level) {
  auto entry = std::make_unique<SupervisorEntry>();
  entry->pid = pid;
  entry->name = std::move(name);
  entry->behaviour = std::string(behaviour);
  entry->top_level = top_level;
  SupervisorEntry* e = entry.get();
  std::lock_guard lock(mutex_);
  live_[pid.bits()] = std::move(entry);
  return e;
}

void SupervisorDirectory::leave(SupervisorEntry* entry) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(entry->pid.bits());
  if (it == live_.end() || it->second.get() != entry) return;
  add_counts(gone_, stats_of(*entry));
  live_.erase(it);
}

bool SupervisorDirectory::contains(Pid pid) {
  std::lock_guard lock(mutex_);
  return live_.contains(pid.bits());
}

void SupervisorDirectory::set_behaviour(Pid pid, std::string_view behaviour) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(pid.bits());
  if (it != live_.end()) it->second->behaviour = std::string(behaviour);
}

std::vector<SupervisorStats> SupervisorDirectory::stats() {
  std::lock_guard lock(mutex_);
  std::vector<SupervisorStats> out;
  out.reserve(live_.size());
  for (const auto& [bits, e] : live_) out.push_back(stats_of(*e));
  return out;
}

SupervisorTotals SupervisorDirectory::totals() {
  std::lock_guard lock(mutex_);
  SupervisorTotals t = gone_;
  t.supervisors = live_.size();
  for (const auto& [bits, e] : live_) add_counts(t, stats_of(*e));
  return t;
}

SupervisorDirectory& supervisor_directory(RuntimeCore& core) { return service<SupervisorDirectory>(core); }

// ---- The record ---------------------------------------------------------------------------

void SupervisorRecord::join(std::string_view behaviour, const ServerRef& name, const RestartIntensity* intensity, bool parent) {
  core_ = &current_core();
  directory_ = &supervisor_directory(*core_);
  desk_ = &report_desk(*core_);
  intensity_ = intensity;
  parent_ = parent;
  handler_ = has_report_handler(*core_);
  name_ = report_name(name);
  // Top-level: linked to no supervisor now, as its init runs (a supervisor's child is linked
  // to it from its spawn on; a tree started with `start`, or by a plain process, is not).
  bool top_level = true;
  for (Pid linked : self_info().links) {
    if (directory_->contains(linked)) {
      top_level = false;
      break;
    }
  }
  entry_ = directory_->join(self(), name_, behaviour, top_level);
}

SupervisorRecord::~SupervisorRecord() {
  if (entry_ == nullptr) return;
  if (entry_->top_level && running_) {
    // Died: gave up, ended abnormally, or ended without a stop (killed) while its runtime runs.
    std::optional<ExitReason> died;
    std::string context;
    if (gave_up_) {
      died = stop_reason_.value_or(ExitReason::shutdown());
      context = "gave up: restart intensity reached";
    } else if (stop_reason_) {
      if (!stop_reason_->is_clean()) died = *stop_reason_;
    } else if (!core_->stopping.load(std::memory_order_acquire)) {
      died = ExitReason::killed();
    }
    if (died) report(ReportKind::tree_died, std::nullopt, *died, context);
  }
  directory_->leave(entry_);
}

void SupervisorRecord::fill(Report& r) const {
  r.pid = entry_ ? entry_->pid : self();
  r.name = name_;
  // Only this supervisor writes its behaviour (under the directory's mutex): reading it here,
  // in its own process, races with nothing.
  r.behaviour = entry_ ? entry_->behaviour : std::string();
  r.parent = parent_;
  if (intensity_) {
    r.restarts = intensity_->in_window();
    r.intensity = intensity_->intensity();
    r.period = intensity_->period();
  }
}

void SupervisorRecord::report(ReportKind kind, const std::optional<ReportChild>& child, const ExitReason& reason,
                              std::string_view context) const {
  if (core_ == nullptr) return;
  std::optional<Report> r = open_report(*core_, *desk_, kind);
  if (!r) return;
  fill(*r);
  r->child = child;
  r->reason = reason;
  r->context = std::string(context);
  desk_->deliver(*core_, *r);
}

void SupervisorRecord::report_started(const ReportChild& child) const {
  std::optional<Report> r = open_report(*core_, *desk_, ReportKind::child_started);
  if (!r) return;
  fill(*r);
  r->child = child;
  desk_->deliver(*core_, *r);
}

}  // namespace detail

std::vector<SupervisorStats> supervisor_stats(Runtime& runtime) {
  return detail::supervisor_directory(detail::core_of(runtime)).stats();
}

namespace {
SupervisorTotals totals_of(detail::RuntimeCore& core) {
  SupervisorTotals t = detail::supervisor_directory(core).totals();
  detail::ReportDesk& desk = detail::report_desk(core);
  t.reports_delivered = desk.delivered();
  t.reports_dropped = desk.dropped_total();
  return t;
}
}  // namespace

SupervisorTotals supervisor_totals(Runtime& runtime) { return totals_of(detail::core_of(runtime)); }
std::vector<SupervisorStats> supervisor_stats() { return detail::supervisor_directory(detail::current_core()).stats(); }
SupervisorTotals supervisor_totals() { return totals_of(detail::current_core()); }

}  // namespace coppice
