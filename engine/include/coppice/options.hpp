// Every tunable of a Runtime, with its default and the reason for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace coppice {

struct Report;  // coppice/report.hpp

struct RuntimeOptions {
  // Worker threads. 0: one per CPU this process may use: the CPUs of its affinity mask
  // (sched_getaffinity, so taskset and cpusets count), no more than its cgroup's CPU quota
  // allows (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, rounded up), less
  // host_cores; at least one. Runtime::worker_count says what it came to.
  unsigned workers = 0;
  // Cores the host keeps for its own threads (an event loop, an acceptor, a pool), taken off
  // the default worker count; ignored when `workers` is set. 0 by default: most programs
  // built on coppice run everything in processes, and the runtime cannot know how busy the
  // host's threads are. A server whose I/O thread is busy sets 1 (one per busy thread), so
  // that workers and its threads do not share cores (see README, "Running inside a server").
  unsigned host_cores = 0;
  // Pin worker i to cpus[i % cpus.size()]; empty: no pinning.
  std::vector<int> cpus{};
  // The longest an idle worker keeps looking for work before it parks. Waking a parked
  // worker costs tens of microseconds on a virtual machine, so under steady load the spin
  // pays; each worker adapts its own below this (halved after a spin that found nothing,
  // doubled after one that found work or a park soon ended by a wake-up), so that between
  // sparse requests it parks at once and gives the CPU back. 0: never spin.
  std::chrono::microseconds spin_before_park{50};
  // Fairness, like BEAM's reductions: a busy process goes to the back of the queue after
  // handling this many messages in one turn, or after this many awaits (receive, call) that
  // completed without suspending (a loop of calls to a dead pid would otherwise never give
  // its worker back).
  unsigned messages_per_turn = 100;
  // Called on each worker thread when it starts and before it stops (name it, pin it,
  // set up thread-local state). Receives the worker's index.
  std::function<void(unsigned)> on_worker_start{};
  std::function<void(unsigned)> on_worker_stop{};
  // Where reports go (a process that crashed with an exception, say): one line each.
  // Empty: standard error.
  std::function<void(std::string_view)> logger{};
  // Where the OTP behaviours' reports go, as typed values (coppice/report.hpp): crashes,
  // supervisor reports, child_started, tree_died. Empty: each report's line() goes to
  // `logger` (or standard error), except child_started, which is not printed (OTP filters
  // progress reports). Set, it receives every report and `logger` none of them.
  std::function<void(const Report&)> report_handler{};
  // The reports' rate limit, a token bucket per runtime, so that a restart storm cannot flood
  // the host: up to `report_burst` at once, refilled at `reports_per_second`. What it drops
  // is counted: the next report delivered carries the count (Report::dropped), and a runtime
  // that stops with drops not yet told delivers a reports_dropped summary. 100 and 100/s: a
  // person reading a log still sees every report of an ordinary failure, and a storm of a
  // million restarts a second costs the host a hundred lines a second. 0 (either): no limit.
  unsigned report_burst = 100;
  unsigned reports_per_second = 100;
};

}  // namespace coppice
