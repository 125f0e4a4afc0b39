// W3 restart_latency and W3b restart_one_for_all_100: kill a supervised child and time until
// its replacement's init has reported, with every OTP semantic on the path (links, the
// supervisor's EXIT handling, restart intensity, a synchronous start, a registered name).
#include <cstdint>
#include <string>
#include <vector>

#include "workload.hpp"

namespace coppice::bench {
namespace {

struct Ready {
  Pid pid;
  int index;
};

// The supervised child: an idle GenServer whose init reports to the benchmark.
class Worker final : public GenServer<Worker> {
 public:
  Worker(Pid bench, int index) : bench_(bench), index_(index) {}
  void init() { coppice::send(bench_, Ready{self(), index_}); }

 private:
  Pid bench_;
  int index_;
};

// The benchmark's side, a process: starts the supervisor, then kills and waits, round after round.
Async<void> drive(Pid report_to, const char* name, Strategy strategy, int children, int rounds) {
  const Pid me = self();
  std::vector<ChildSpec> specs;
  for (int i = 0; i < children; ++i) {
    ChildSpec spec = child<Worker>("worker" + std::to_string(i), me, i);
    if (children == 1) spec.name("w3_worker");
    specs.push_back(std::move(spec));
  }
  SupervisorFlags flags;
  flags.strategy = strategy;
  flags.intensity = 1'000'000;
  flags.period = std::chrono::seconds(1);
  StartOptions options;
  auto start = Supervisor::start_link(std::move(specs), flags, options);
  Result<Pid> sup = co_await start;
  Report<LatencyFigures> report;
  if (!sup) {
    report.error = "restart_latency: the supervisor did not start: " + sup.error().to_string();
    coppice::send(report_to, std::move(report));
    co_return;
  }
  std::vector<Pid> pids(static_cast<std::size_t>(children));
  for (int i = 0; i < children; ++i) {
    Ready r = co_await receive<Ready>();
    pids[static_cast<std::size_t>(r.index)] = r.pid;
  }
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(rounds));
  for (int round = 0; round < rounds; ++round) {
    const std::size_t victim = static_cast<std::size_t>(round % children);
    const Clock::time_point before = Clock::now();
    coppice::exit(pids[victim], ExitReason::kill());
    for (int got = 0; got < children; ++got) {
      Ready r = co_await receive<Ready>();
      pids[static_cast<std::size_t>(r.index)] = r.pid;
      if (children == 1) break;
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - before).count());
  }
  write_latency_samples(name, us);
  report.figures = percentiles(std::move(us));
  coppice::unlink(*sup);
  ServerRef ref = *sup;
  auto stopping = coppice::stop(ref, ExitReason::shutdown());
  Status stopped = co_await stopping;
  if (!stopped) report.error = "restart_latency: stopping the supervisor: " + stopped.error().to_string();
  coppice::send(report_to, std::move(report));
}

void run(benchmark::State& state, const char* name, Strategy strategy, int children, int rounds,
         unsigned workers = 0) {
  for (auto _ : state) {
    RuntimeOptions o;
    if (workers != 0) o.workers = workers;
    o.logger = [](std::string_view) {};  // as the BEAM ran with its logger off
    Runtime runtime(o);
    Inbox inbox(runtime);
    runtime.spawn(drive, inbox.pid(), name, strategy, children, rounds);
    std::optional<LatencyFigures> f = await_report<LatencyFigures>(inbox, state);
    if (!f) return;
    report_latency(state, *f);
    // Where the restarts ran: processes taken by another worker, and workers put to sleep,
    // per restart (the start-up's few included). W3's chain is on one core when both are
    // near 0; steps that cross cores show here before they show in the latency.
    std::uint64_t steals = 0, parks = 0;
    for (const WorkerMetrics& w : metrics(runtime).workers) {
      steals += w.steals;
      parks += w.parks;
    }
    state.counters["steals_per_restart"] = static_cast<double>(steals) / rounds;
    state.counters["parks_per_restart"] = static_cast<double>(parks) / rounds;
  }
}

void W3_restart_latency(benchmark::State& state) {
  run(state, "W3_restart_latency", Strategy::one_for_one, 1, 10'000);
}
void W3b_restart_one_for_all_100(benchmark::State& state) {
  run(state, "W3b_restart_one_for_all_100", Strategy::one_for_all, 100, 1'000);
}

BENCHMARK(W3_restart_latency)->Iterations(1)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(W3b_restart_one_for_all_100)->Iterations(1)->UseManualTime()->Unit(benchmark::kMicrosecond);

// tools/bench --sweep: W3 and W3b on 1, 2, 16 and 64 workers.
void sweep_W3_restart_latency(benchmark::State& state) {
  run(state, "sweep_W3_restart_latency", Strategy::one_for_one, 1, 10'000, static_cast<unsigned>(state.range(0)));
}
void sweep_W3b_restart_one_for_all_100(benchmark::State& state) {
  run(state, "sweep_W3b_restart_one_for_all_100", Strategy::one_for_all, 100, 1'000,
      static_cast<unsigned>(state.range(0)));
}
BENCHMARK(sweep_W3_restart_latency)->Apply(on_worker_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(sweep_W3b_restart_one_for_all_100)->Apply(on_worker_counts)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace coppice::bench
