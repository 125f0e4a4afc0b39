// W4 skynet_1m: a tree of processes ten wide and six levels deep, a million leaves; leaf i
// replies i, each parent sums its ten children's replies, the root must get 499999500000.
#include <cstdint>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr std::uint64_t leaves = 1'000'000;
constexpr std::uint64_t fan_out = 10;
constexpr std::uint64_t expected_sum = leaves * (leaves - 1) / 2;

struct SkynetFigures {
  double wall_ms = 0;
};

// Ends the running node when its callback returns, without unwinding (exit(normal) throws,
// and a million throws cost several times the rest of the workload).
inline void finish() { coppice::stop_self(); }

// One node of the tree: leaves [first, first + size). A leaf replies its number; an inner
// node spawns ten children and replies the sum of theirs. Either way it then exits.
class Node final : public Process {
 public:
  Node(Pid parent, std::uint64_t first, std::uint64_t size) : parent_(parent), first_(first), size_(size) {}

  void init() override {
    if (size_ == 1) {
      coppice::send(parent_, first_);
      finish();
      return;
    }
    const std::uint64_t child_size = size_ / fan_out;
    for (std::uint64_t i = 0; i < fan_out; ++i) coppice::spawn<Node>(self(), first_ + i * child_size, child_size);
  }

  void handle(Message message) override {
    sum_ += message.get<std::uint64_t>();
    if (++replies_ < fan_out) return;
    coppice::send(parent_, sum_);
    finish();
  }

 private:
  Pid parent_;
  std::uint64_t first_;
  std::uint64_t size_;
  std::uint64_t sum_ = 0;
  std::uint64_t replies_ = 0;
};

// The root: times the whole tree, from its first spawn to the tenth reply, and checks the sum.
class Root final : public Process {
 public:
  explicit Root(Pid report_to) : report_to_(report_to) {}

  void init() override {
    start_ = Clock::now();
    const std::uint64_t child_size = leaves / fan_out;
    for (std::uint64_t i = 0; i < fan_out; ++i) coppice::spawn<Node>(self(), i * child_size, child_size);
  }

  void handle(Message message) override {
    sum_ += message.get<std::uint64_t>();
    if (++replies_ < fan_out) return;
    Report<SkynetFigures> report{{ms_between(start_, Clock::now())}, {}};
    if (sum_ != expected_sum)
      report.error = "skynet: the root got " + std::to_string(sum_) + ", not " + std::to_string(expected_sum);
    coppice::send(report_to_, std::move(report));
  }

 private:
  Pid report_to_;
  Clock::time_point start_;
  std::uint64_t sum_ = 0;
  std::uint64_t replies_ = 0;
};

void run_W4_skynet_1m(benchmark::State& state, unsigned workers) {
  for (auto _ : state) {
    RuntimeOptions options;
    if (workers != 0) options.workers = workers;
    Runtime runtime(std::move(options));
    Inbox inbox(runtime);
    runtime.spawn<Root>(inbox.pid());
    std::optional<SkynetFigures> figures = await_report<SkynetFigures>(inbox, state);
    if (!figures) return;
    state.SetIterationTime(figures->wall_ms / 1e3);
    state.counters["wall_ms"] = figures->wall_ms;
  }
}

// BENCHMARKS.md's figure: the runtime's defaults (a worker per core).
void W4_skynet_1m(benchmark::State& state) { run_W4_skynet_1m(state, 0); }
BENCHMARK(W4_skynet_1m)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// tools/bench --sweep: the same with 1 and with 2 workers.
void sweep_W4_skynet_1m(benchmark::State& state) { run_W4_skynet_1m(state, static_cast<unsigned>(state.range(0))); }
BENCHMARK(sweep_W4_skynet_1m)->Apply(on_worker_counts)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
