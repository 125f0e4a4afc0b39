// Reports as data: what the OTP behaviours tell the host (a crash, a child started, stopped or
// failing, a supervisor giving up, a supervision tree that died), handed as typed values to
// RuntimeOptions::report_handler, as OTP's logger receives reports; and the supervisors'
// counters (restarts, intensity trips, start failures, children started).
//
//   coppice::RuntimeOptions o;
//   o.report_handler = [](const coppice::Report& r) {
//     if (r.kind == coppice::ReportKind::tree_died) alert(r.pid, r.reason);
//     std::clog << r.line() << "\n";
//   };
//
// The handler runs on the thread of the process that reports (a worker), synchronously, as
// RuntimeOptions::logger does: it should be quick, and must not block on the runtime. It may
// be called from several workers at once. A handler that throws is caught; one line goes to
// standard error and the runtime carries on.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/child_spec.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"

namespace coppice {

class Runtime;

// OTP's report names where OTP has one (supervisor reports, progress reports).
enum class ReportKind : std::uint8_t {
  crash,               // a GenServer (or any behaviour) or a plain process terminated abnormally
  unexpected_message,  // a server without handle_info(Message) got a message it does not handle
  child_started,       // OTP's progress report: not printed by the default handler, as OTP filters it
  child_terminated,    // a child exited abnormally (what the supervisor did about it: `context`)
  shutdown_error,      // a child did not stop as its shutdown asked
  start_error,         // a child failed to start (or restart)
  reached_max_restart_intensity,  // the supervisor gives up: more restarts than its intensity
  tree_died,           // a top-level supervisor ended abnormally (see below)
  reports_dropped,     // a summary: `dropped` reports were dropped by the rate limit, none came since
};

std::string_view to_string(ReportKind kind);

// The child a supervisor report is about, with the fields of its spec a tool needs.
struct ReportChild {
  std::string id;  // empty: no id (a DynamicSupervisor's child, a Parent's anonymous child)
  Pid pid;         // Pid{} when there is none (a start that failed)
  Restart restart = Restart::permanent;
  Shutdown shutdown = Shutdown::infinity();
  ChildType type = ChildType::worker;
};

// One report. Who made it (`pid`, `name`, `behaviour`), about which child, why (`reason`),
// the counts of the restart intensity where they apply, and when.
//
// tree_died: a top-level supervisor (Supervisor, DynamicSupervisor, PartitionSupervisor, Parent)
// ended with a reason other than normal or shutdown, was killed, or gave up after reaching its
// restart intensity (it then exits with shutdown, as OTP's supervisor does; `context` says
// "gave up: restart intensity reached"). A supervisor is top-level when, as its init runs, it is
// linked to no supervisor of its runtime: started with `start` (from a plain thread, or
// unlinked), or with `start_link` by a process that is not a supervisor. A supervisor under
// another one dies into its parent, which reports child_terminated; a runtime that stops ends
// its trees without this report.
struct Report {
  ReportKind kind = ReportKind::crash;
  std::chrono::system_clock::time_point time;
  Pid pid;                // the reporter: the supervisor, the server, the process
  std::string name;       // its registered name (as ServerRef::to_string), empty if none
  std::string behaviour;  // "Supervisor", "DynamicSupervisor", "PartitionSupervisor", "Parent",
                          // "GenServer" (or the server's own behaviour name), "process"
  std::optional<ReportChild> child;  // the child of a supervisor report
  // The reason: the child's exit reason (child_terminated, shutdown_error, a Supervisor's
  // reached_max_restart_intensity), the start's error as text (start_error), the crash's
  // reason, the reason the tree ended with (tree_died).
  ExitReason reason;
  // crash: where ("init", "terminate", the type of the message being handled, or empty);
  // unexpected_message: the message's type; child reports: what the supervisor did
  // ("restarted", "not restarted", "giving up", "shutting down", "while restarting", a
  // Parent's "restarting in 100 ms"); tree_died: why, when it is not the reason itself.
  std::string context;
  // The restart intensity, for child_terminated, reached_max_restart_intensity and tree_died:
  // restarts in the current window, and the limit (more than `intensity` within `period`).
  std::size_t restarts = 0;
  int intensity = 0;
  std::chrono::milliseconds period{0};
  // How many reports the rate limit dropped just before this one (RuntimeOptions::report_burst).
  std::uint64_t dropped = 0;
  // True for a Parent's report: its lines are worded as the `parent` library's.
  bool parent = false;

  // The one-line text, as the default handler writes it (byte for byte the line coppice has
  // always logged for the kinds it logged).
  std::string line() const;
};

// ---- Supervisor metrics ------------------------------------------------------------------

// One running supervisor's counts since it started. Counted by the supervisor itself whether
// or not a report is dropped.
struct SupervisorStats {
  Pid pid;
  std::string name;
  std::string behaviour;  // "Supervisor", "DynamicSupervisor", "PartitionSupervisor", "Parent", ...
  bool top_level = false;  // see Report, tree_died
  std::uint64_t restarts = 0;          // restarts begun (within the intensity); one_for_all counts one
  std::uint64_t intensity_trips = 0;   // times the restart intensity was exceeded
  std::uint64_t start_failures = 0;    // child starts that failed (start_child, restarts, init)
  std::uint64_t children_started = 0;  // child starts that returned a pid (restarts included)
};

// A runtime's totals: the counts of every supervisor that ran in it, live or gone, and the
// reports delivered and dropped.
struct SupervisorTotals {
  std::uint64_t supervisors = 0;  // running now
  std::uint64_t restarts = 0;
  std::uint64_t intensity_trips = 0;
  std::uint64_t start_failures = 0;
  std::uint64_t children_started = 0;
  std::uint64_t reports_delivered = 0;  // handed to the handler (or the default one)
  std::uint64_t reports_dropped = 0;    // dropped by the rate limit
};

// The supervisors running in `runtime` now, in no particular order. Takes one lock that only
// supervisors' starts and exits take; reads each one's counters without stopping it.
std::vector<SupervisorStats> supervisor_stats(Runtime& runtime);
SupervisorTotals supervisor_totals(Runtime& runtime);
// The same for the runtime of the running process.
std::vector<SupervisorStats> supervisor_stats();
SupervisorTotals supervisor_totals();

}  // namespace coppice
