// Reports as data (coppice/report.hpp): each kind's line, the rate limit, and the delivery to
// the handler or the logger.
#include "otp/reports.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <typeinfo>

#include "coppice/process.hpp"
#include "coppice/service.hpp"
#include "runtime/demangle.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

std::string_view to_string(ReportKind kind) {
  switch (kind) {
    case ReportKind::crash: return "crash";
    case ReportKind::unexpected_message: return "unexpected_message";
    case ReportKind::child_started: return "child_started";
    case ReportKind::child_terminated: return "child_terminated";
    case ReportKind::shutdown_error: return "shutdown_error";
    case ReportKind::start_error: return "start_error";
    case ReportKind::reached_max_restart_intensity: return "reached_max_restart_intensity";
    case ReportKind::tree_died: return "tree_died";
    case ReportKind::reports_dropped: return "reports_dropped";
  }
  return "?";
}

namespace {

std::string dropped_line(std::uint64_t n) {
  return "coppice: " + std::to_string(n) + " reports dropped by the rate limit (RuntimeOptions::report_burst, reports_per_second)";
}

// "coppice: <behaviour> <pid>[ <name>] <what>": the start of a behaviour's line.
std::string head(const Report& r, std::string_view what) {
  std::string line = "coppice: ";
  line.append(r.behaviour);
  line.push_back(' ');
  line.append(r.pid.to_string());
  if (!r.name.empty()) {
    line.push_back(' ');
    line.append(r.name);
  }
  line.push_back(' ');
  line.append(what);
  return line;
}

// The child as a line names it: "child 'id' <pid>", "child <pid>" (no id), and a Parent's
// "anonymous child <pid>".
void append_child(std::string& line, const Report& r) {
  const ReportChild& c = *r.child;
  if (c.id.empty()) {
    line.append(r.parent ? "anonymous child " + c.pid.to_string() : std::string("child"));
    if (r.parent) return;
  } else {
    line.append("child '");
    line.append(c.id);
    line.push_back('\'');
  }
  if (c.pid) {
    line.push_back(' ');
    line.append(c.pid.to_string());
  }
}

}  // namespace

std::string Report::line() const {
  switch (kind) {
    case ReportKind::crash: {
      if (behaviour == "process") return "coppice: process " + pid.to_string() + " crashed: " + reason.to_string();
      std::string line = head(*this, "terminating");
      if (!context.empty()) {
        line.append(" in ");
        line.append(context);
      }
      line.append(": ");
      line.append(reason.to_string());
      return line;
    }
    case ReportKind::unexpected_message:
      return "coppice: " + behaviour + " " + pid.to_string() + " received an unexpected message of type " + context +
             " (no handler for it; dropped)";
    case ReportKind::reports_dropped:
      return dropped_line(dropped);
    case ReportKind::tree_died: {
      std::string line = head(*this, "tree_died: reason ");
      line.append(reason.to_string());
      if (!context.empty()) line.append(" (" + context + ")");
      return line;
    }
    default:
      break;
  }
  // The supervisor reports. A Parent words two of them as the `parent` library does.
  if (parent && kind == ReportKind::reached_max_restart_intensity && !child)
    return head(*this, "Too many restarts in parent process, stopping every child");
  if (!child) return head(*this, to_string(kind));
  if (parent && kind == ReportKind::start_error && context == "start_all_children") {
    std::string line = head(*this, "Error starting the ");
    append_child(line, *this);
    line.append(": ");
    line.append(reason.to_string());
    return line;
  }
  std::string line = head(*this, to_string(kind));
  line.append(": ");
  append_child(line, *this);
  if (kind == ReportKind::child_started) return line;
  line.append(" reason ");
  line.append(reason.to_string());
  if (!context.empty()) {
    line.append(" (");
    line.append(context);
    line.push_back(')');
  }
  return line;
}

namespace detail {

bool ReportDesk::admit(RuntimeCore& core, std::uint64_t& dropped) {
  const unsigned burst = core.options.report_burst;
  const unsigned rate = core.options.reports_per_second;
  if (burst == 0 || rate == 0) {
    dropped = 0;
    return true;
  }
  // One token every `interval`; `burst` of them may go at once.
  const std::int64_t interval = std::max<std::int64_t>(1, 1'000'000'000 / rate);
  const std::int64_t tolerance = static_cast<std::int64_t>(burst - 1) * interval;
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t arrival = arrival_.load(std::memory_order_relaxed);
  for (;;) {
    const std::int64_t from = std::max(arrival, now);  // an empty past refills the bucket
    if (from - now > tolerance) break;                 // no token left
    if (arrival_.compare_exchange_weak(arrival, from + interval, std::memory_order_relaxed)) {
      dropped = untold_.exchange(0, std::memory_order_relaxed);
      return true;
    }
  }
  untold_.fetch_add(1, std::memory_order_relaxed);
  dropped_.fetch_add(1, std::memory_order_relaxed);
  // The first drop arms the summary at stop. The desk lives as long as the runtime's
  // services, which outlive the stop hooks.
  if (!flush_armed_.exchange(true, std::memory_order_relaxed)) core.at_stop([this, &core] { flush(core); });
  return false;
}

void ReportDesk::deliver(RuntimeCore& core, Report& report) {
  delivered_.fetch_add(1, std::memory_order_relaxed);
  if (const auto& handler = core.options.report_handler) {
    try {
      handler(report);
    } catch (...) {
      std::string what = "an exception not derived from std::exception";
      try {
        throw;
      } catch (const std::exception& e) {
        what = demangle(typeid(e).name()) + ": " + e.what();
      } catch (...) {
      }
      const std::string line = "coppice: the report handler threw (" + what + ") on a " + std::string(to_string(report.kind)) +
                               " report; the runtime carries on\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
    return;
  }
  if (report.kind == ReportKind::child_started) return;  // a progress report: filtered, as OTP's logger does
  if (report.dropped > 0 && report.kind != ReportKind::reports_dropped) core.log(dropped_line(report.dropped));
  core.log(report.line());
}

void ReportDesk::flush(RuntimeCore& core) {
  const std::uint64_t n = untold_.exchange(0, std::memory_order_relaxed);
  if (n == 0) return;
  Report r;
  r.kind = ReportKind::reports_dropped;
  r.time = std::chrono::system_clock::now();
  r.dropped = n;
  deliver(core, r);
}

std::uint64_t ReportDesk::delivered() { return delivered_.load(std::memory_order_relaxed); }
std::uint64_t ReportDesk::dropped_total() { return dropped_.load(std::memory_order_relaxed); }

ReportDesk& report_desk(RuntimeCore& core) { return service<ReportDesk>(core); }

bool has_report_handler(RuntimeCore& core) { return static_cast<bool>(core.options.report_handler); }

std::optional<Report> open_report(RuntimeCore& core, ReportKind kind) {
  if (kind == ReportKind::child_started && !has_report_handler(core)) return std::nullopt;
  return open_report(core, report_desk(core), kind);
}

std::optional<Report> open_report(RuntimeCore& core, ReportDesk& desk, ReportKind kind) {
  if (kind == ReportKind::child_started && !has_report_handler(core)) return std::nullopt;
  std::uint64_t dropped = 0;
  if (!desk.admit(core, dropped)) return std::nullopt;
  std::optional<Report> r(std::in_place);
  r->kind = kind;
  r->time = std::chrono::system_clock::now();
  r->dropped = dropped;
  return r;
}

void identify(Report& report, std::string_view behaviour, const ServerRef& name) {
  report.pid = self();
  report.name = report_name(name);
  report.behaviour = std::string(behaviour);
}

void send_report(RuntimeCore& core, Report& report) { report_desk(core).deliver(core, report); }

std::string report_name(const ServerRef& name) {
  if (name.is_local_name() || name.is_registry_name()) return name.to_string();
  return {};
}

void report_process_crash(RuntimeCore& core, Pid pid, const ExitReason& reason) {
  std::optional<Report> r = open_report(core, ReportKind::crash);
  if (!r) return;
  r->pid = pid;
  r->behaviour = "process";
  r->reason = reason;
  send_report(core, *r);
}

}  // namespace detail
}  // namespace coppice
