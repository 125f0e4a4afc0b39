// What every workload (W1-W7, P1-P2) shares: the clock, the resident set size, restart
// latency percentiles, and how the plain thread that runs a benchmark waits for the report of
// the process that did the work.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <coppice/coppice.hpp>

namespace coppice::bench {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The resident set size of this program, in bytes (the second field of /proc/self/statm).
inline std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int read = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// The restart latencies of W3, W3b and P1, in microseconds.
struct LatencyFigures {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

inline LatencyFigures percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))]; };
  return {at(0.50), at(0.90), at(0.99), at(0.999), us.back()};
}

// When COPPICE_LATENCY_SAMPLES_DIR names a directory, writes every latency sample (µs, one
// per line, in the order measured) to <dir>/<benchmark>.txt: tools/plot draws the whole
// distribution from it (tools/bench --peers sets it, and the peers write theirs beside it).
inline void write_latency_samples(const char* benchmark, const std::vector<double>& us) {
  const char* dir = std::getenv("COPPICE_LATENCY_SAMPLES_DIR");
  if (dir == nullptr || *dir == '\0') return;
  const std::string path = std::string(dir) + "/" + benchmark + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write latency samples to %s\n", path.c_str());
    return;
  }
  for (double v : us) std::fprintf(f, "%.3f\n", v);
  std::fclose(f);
}

// The counters W3, W3b and P1 report (BENCHMARKS.md); the iteration time is the median.
inline void report_latency(benchmark::State& state, const LatencyFigures& f) {
  state.SetIterationTime(f.p50 / 1e6);
  state.counters["p50_us"] = f.p50;
  state.counters["p90_us"] = f.p90;
  state.counters["p99_us"] = f.p99;
  state.counters["p999_us"] = f.p999;
  state.counters["max_us"] = f.max;
}

// A workload's driver process ends by sending one of these (R holds its figures) to the
// inbox of the thread that started it; `error` is empty when the work checked out.
template <class Figures>
struct Report {
  Figures figures;
  std::string error;
};

// Longer than any workload takes even on a slow build: a lost report is a hang, not a figure.
inline constexpr std::chrono::seconds report_timeout{120};

// Waits for the driver's report; on a timeout or a failed check, marks the benchmark as
// failed (SkipWithError, which main.cpp turns into a non-zero exit) and returns nothing.
//
// Test hook: when COPPICE_BENCH_FAIL is set and not empty, every workload check of the program
// fails, its text being the reason ("forced by COPPICE_BENCH_FAIL: <text>"); run it with a
// --benchmark_filter that selects the benchmark to fail (Google Benchmark 1.7's State does not
// know its benchmark's name). tests/regress uses it to see coppice_bench exit non-zero.
template <class Figures>
std::optional<Figures> await_report(Inbox& inbox, benchmark::State& state) {
  std::optional<Report<Figures>> report = inbox.receive<Report<Figures>>(report_timeout);
  if (!report) {
    state.SkipWithError("no report from the workload's driver process within 120 s");
    return std::nullopt;
  }
  if (const char* forced = std::getenv("COPPICE_BENCH_FAIL"); forced != nullptr && *forced != '\0')
    report->error = std::string("forced by COPPICE_BENCH_FAIL: ") + forced;
  if (!report->error.empty()) {
    state.SkipWithError(report->error.c_str());
    return std::nullopt;
  }
  return report->figures;
}

// How tools/bench --sweep runs a workload on 1, 2, 16 and 64 workers: state.range(0) is the
// number of workers; one iteration, timed by the workload. Used as ->Apply(on_worker_counts).
// 16 and 64 oversubscribe a host of a few cores (issue 17 item 7): what is measured there is
// that nothing collapses when workers outnumber cores (searching, parking and waking, the
// epoch's participants, the global queue), not how far a 64-core host would scale.
inline void on_worker_counts(benchmark::internal::Benchmark* b) {
  b->ArgName("workers")->Arg(1)->Arg(2)->Arg(16)->Arg(64)->Iterations(1)->UseManualTime();
}

// The ping-pong of W5 and W7: a Ponger answers every Ping with a Pong to its sender.
struct Ping {};
struct Pong {};
class Ponger final : public Process {
 public:
  void handle(Message message) override { coppice::send(message.from(), Pong{}); }
};

}  // namespace coppice::bench
