// The way out of every report (coppice/report.hpp): the runtime's rate limit, then the
// handler, or the default that writes the line as coppice always has.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"
#include "coppice/report.hpp"
#include "coppice/server_ref.hpp"

namespace coppice::detail {

class RuntimeCore;

// One per runtime (a service): the token bucket of RuntimeOptions::report_burst and
// reports_per_second, and the counts. The bucket is kept as GCRA does (the generic cell rate
// algorithm, equivalent to a token bucket): one atomic, the theoretical arrival time of the
// next report, moved on by a compare-and-swap for each report that goes. So a report takes no
// lock, and in a storm the bucket says no before anything is built. It keeps no thread: time
// passed is what refills it.
class ReportDesk {
 public:
  // Whether a report may go now. When it may, `dropped` is how many were dropped since the
  // last one went (the report carries it); when it may not, the report is counted as dropped.
  bool admit(RuntimeCore& core, std::uint64_t& dropped);
  // To the handler, or to the logger (standard error) as a line; a throwing handler is caught.
  void deliver(RuntimeCore& core, Report& report);
  // At stop: drops that no later report told of are delivered as a reports_dropped summary.
  void flush(RuntimeCore& core);
  std::uint64_t delivered();
  std::uint64_t dropped_total();

 private:
  // Nanoseconds of the steady clock: when the bucket will next be full to the last token
  // (a report may go while this is at most (burst - 1) intervals ahead of now). Relaxed: it
  // publishes nothing; the compare-and-swap alone decides who takes the token.
  std::atomic<std::int64_t> arrival_{0};
  // Dropped since the last report that went: a drop adds one, a report that goes takes all
  // (exchange), so every drop is told exactly once (the RMWs on one atomic are one order).
  std::atomic<std::uint64_t> untold_{0};
  // Relaxed counters: statistics, read by supervisor_totals, ordered with nothing.
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> flush_armed_{false};  // the stop hook that delivers the summary is registered
};

ReportDesk& report_desk(RuntimeCore& core);

// Whether the runtime has a report handler (child_started is built only then).
bool has_report_handler(RuntimeCore& core);

// A report of `kind`, with the rate limit asked first: nullopt when it says no (then build
// nothing more). Once one is opened, send it (the drops it carries are told only by it).
// child_started opens only when the runtime has a handler.
std::optional<Report> open_report(RuntimeCore& core, ReportKind kind);
// The same through a desk found before (a supervisor keeps its runtime's: no service lookup).
std::optional<Report> open_report(RuntimeCore& core, ReportDesk& desk, ReportKind kind);
// The reporter is the running process, `behaviour`, registered as `name` (if at all).
void identify(Report& report, std::string_view behaviour, const ServerRef& name);
void send_report(RuntimeCore& core, Report& report);

// The name as a report shows it: a registered name or a Registry key; empty otherwise.
std::string report_name(const ServerRef& name);

// A plain process's crash (the runtime's hook, turn.cpp): "coppice: process <pid> crashed: ...".
void report_process_crash(RuntimeCore& core, Pid pid, const ExitReason& reason);

}  // namespace coppice::detail
