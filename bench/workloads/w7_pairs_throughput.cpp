// W7 pairs_throughput: a thousand independent ping-pong pairs, ten thousand round trips
// each, all at once. Figures: round trips per second, wall time.
#include <cstdint>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr std::uint32_t pairs = 1'000;
constexpr std::uint32_t round_trips_per_pair = 10'000;
constexpr double round_trips = double{pairs} * round_trips_per_pair;

struct PairDone {
  std::uint32_t round_trips;
};

struct PairsFigures {
  double wall_ms = 0;
};


// One side of a pair: spawns its partner, plays its round trips, tells the driver.
class Pinger final : public Process {
 public:
  explicit Pinger(Pid driver) : driver_(driver) {}

  void init() override {
    partner_ = coppice::spawn<Ponger>();
    coppice::send(partner_, Ping{});
  }

  void handle(Message message) override {
    if (!message.is<Pong>()) return;
    if (++round_trips_ < round_trips_per_pair) {
      coppice::send(partner_, Ping{});
      return;
    }
    coppice::send(driver_, PairDone{round_trips_});
  }

 private:
  Pid driver_;
  Pid partner_;
  std::uint32_t round_trips_ = 0;
};

// Starts every pair and waits for all to finish; the clock runs from the first spawn to the
// last pair's report.
class Driver final : public Process {
 public:
  explicit Driver(Pid report_to) : report_to_(report_to) {}

  void init() override {
    start_ = Clock::now();
    for (std::uint32_t i = 0; i < pairs; ++i) coppice::spawn<Pinger>(self());
  }

  void handle(Message message) override {
    const PairDone* done = message.get_if<PairDone>();
    if (done == nullptr) return;
    total_ += done->round_trips;
    if (++done_ < pairs) return;
    Report<PairsFigures> report{{ms_between(start_, Clock::now())}, {}};
    if (total_ != round_trips)
      report.error = "pairs: " + std::to_string(total_) + " round trips, not " + std::to_string(round_trips);
    coppice::send(report_to_, std::move(report));
  }

 private:
  Pid report_to_;
  Clock::time_point start_;
  std::uint32_t done_ = 0;
  std::uint64_t total_ = 0;
};

void run_W7_pairs_throughput(benchmark::State& state, unsigned workers) {
  for (auto _ : state) {
    RuntimeOptions options;
    if (workers != 0) options.workers = workers;
    Runtime runtime(std::move(options));
    Inbox inbox(runtime);
    runtime.spawn<Driver>(inbox.pid());
    std::optional<PairsFigures> figures = await_report<PairsFigures>(inbox, state);
    if (!figures) return;
    state.SetIterationTime(figures->wall_ms / 1e3);
    state.counters["wall_ms"] = figures->wall_ms;
    state.counters["round_trips_per_s"] = round_trips / (figures->wall_ms / 1e3);
  }
}

// BENCHMARKS.md's figure: the runtime's defaults (a worker per core).
void W7_pairs_throughput(benchmark::State& state) { run_W7_pairs_throughput(state, 0); }
BENCHMARK(W7_pairs_throughput)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// tools/bench --sweep: the same with 1 and with 2 workers.
void sweep_W7_pairs_throughput(benchmark::State& state) { run_W7_pairs_throughput(state, static_cast<unsigned>(state.range(0))); }
BENCHMARK(sweep_W7_pairs_throughput)->Apply(on_worker_counts)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
