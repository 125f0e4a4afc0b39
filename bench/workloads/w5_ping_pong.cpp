// W5 ping_pong: two processes pass a message back and forth a million times, on one worker
// thread and on two. Figure: nanoseconds per round trip.
#include <cstdint>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr std::uint32_t round_trips = 1'000'000;


struct PingPongFigures {
  double wall_ms = 0;
};


// Spawns its partner, then plays the million round trips and reports their time.
class Pinger final : public Process {
 public:
  explicit Pinger(Pid report_to) : report_to_(report_to) {}

  void init() override {
    partner_ = coppice::spawn<Ponger>();
    start_ = Clock::now();
    coppice::send(partner_, Ping{});
  }

  void handle(Message message) override {
    if (!message.is<Pong>()) return;
    if (++round_trips_ < round_trips) {
      coppice::send(partner_, Ping{});
      return;
    }
    coppice::send(report_to_, Report<PingPongFigures>{{ms_between(start_, Clock::now())}, {}});
  }

 private:
  Pid report_to_;
  Pid partner_;
  std::uint32_t round_trips_ = 0;
  Clock::time_point start_;
};

void W5_ping_pong(benchmark::State& state) {
  for (auto _ : state) {
    RuntimeOptions options;
    options.workers = static_cast<unsigned>(state.range(0));
    Runtime runtime(std::move(options));
    Inbox inbox(runtime);
    runtime.spawn<Pinger>(inbox.pid());
    std::optional<PingPongFigures> figures = await_report<PingPongFigures>(inbox, state);
    if (!figures) return;
    state.SetIterationTime(figures->wall_ms / 1e3);
    state.counters["ns_per_round_trip"] = figures->wall_ms * 1e6 / round_trips;
  }
}
BENCHMARK(W5_ping_pong)->ArgName("workers")->Arg(1)->Arg(2)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
