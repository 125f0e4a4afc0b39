// W6 fan_in: a thousand senders each send ten thousand small messages to one receiver, ten
// million in all. Figures: wall time until the receiver has counted them all; messages/s.
#include <cstdint>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr std::uint64_t senders = 1'000;
constexpr std::uint64_t messages_per_sender = 10'000;
constexpr std::uint64_t messages = senders * messages_per_sender;
// Each message carries its sender's number, so the receiver can tell that every sender's
// messages arrived, not just as many messages.
constexpr std::uint64_t expected_sum = messages_per_sender * (senders * (senders - 1) / 2);

struct FanInFigures {
  double wall_ms = 0;
};

// Sends its ten thousand messages in its first turn, then exits.
class Sender final : public Process {
 public:
  Sender(Pid receiver, std::uint64_t number) : receiver_(receiver), number_(number) {}
  void init() override {
    for (std::uint64_t i = 0; i < messages_per_sender; ++i) coppice::send(receiver_, number_);
    coppice::exit(self(), ExitReason::normal());  // exits without unwinding (see W1's Idle)
  }
  void handle(Message) override {}

 private:
  Pid receiver_;
  std::uint64_t number_;
};

// Spawns the senders and counts what arrives; the clock runs from the first spawn to the
// last message counted.
class Receiver final : public Process {
 public:
  explicit Receiver(Pid report_to) : report_to_(report_to) {}

  void init() override {
    start_ = Clock::now();
    for (std::uint64_t i = 0; i < senders; ++i) coppice::spawn<Sender>(self(), i);
  }

  void handle(Message message) override {
    const std::uint64_t* number = message.get_if<std::uint64_t>();
    if (number == nullptr) return;
    sum_ += *number;
    if (++count_ < messages) return;
    Report<FanInFigures> report{{ms_between(start_, Clock::now())}, {}};
    if (sum_ != expected_sum)
      report.error = "fan_in: the messages' numbers sum to " + std::to_string(sum_) + ", not " +
                     std::to_string(expected_sum);
    coppice::send(report_to_, std::move(report));
  }

 private:
  Pid report_to_;
  Clock::time_point start_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
};

void run_W6_fan_in(benchmark::State& state, unsigned workers) {
  for (auto _ : state) {
    RuntimeOptions options;
    if (workers != 0) options.workers = workers;
    Runtime runtime(std::move(options));
    Inbox inbox(runtime);
    runtime.spawn<Receiver>(inbox.pid());
    std::optional<FanInFigures> figures = await_report<FanInFigures>(inbox, state);
    if (!figures) return;
    state.SetIterationTime(figures->wall_ms / 1e3);
    state.counters["wall_ms"] = figures->wall_ms;
    state.counters["msgs_per_s"] = messages / (figures->wall_ms / 1e3);
  }
}

// BENCHMARKS.md's figure: the runtime's defaults (a worker per core).
void W6_fan_in(benchmark::State& state) { run_W6_fan_in(state, 0); }
BENCHMARK(W6_fan_in)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// tools/bench --sweep: the same with 1 and with 2 workers.
void sweep_W6_fan_in(benchmark::State& state) { run_W6_fan_in(state, static_cast<unsigned>(state.range(0))); }
BENCHMARK(sweep_W6_fan_in)->Apply(on_worker_counts)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
