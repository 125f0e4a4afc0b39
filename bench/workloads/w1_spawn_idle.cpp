// W1 spawn_idle_1m: spawn a million processes that each acknowledge once running and then
// wait; then stop them all. Figures: spawn time, resident bytes per idle process, stop time.
// sweep_spawn_idle (tools/bench --sweep) does the same with 1k, 10k, 100k and 1M processes:
// the spawn curve.
#include <cstdint>
#include <vector>

#include "workload.hpp"

namespace coppice::bench {
namespace {

struct Ack {};
struct Stop {};
struct Poll {};

struct SpawnFigures {
  double spawn_ms = 0;
  double stop_ms = 0;
  double bytes_per_process = 0;
};

// Acknowledges to the driver as soon as it runs, then waits for Stop and exits normally.
class Idle final : public Process {
 public:
  explicit Idle(Pid driver) : driver_(driver) {}
  void init() override { coppice::send(driver_, Ack{}); }
  // exit(self(), normal) ends the process at its next scheduling point without unwinding;
  // exit(normal) would throw, and a throw costs more than the rest of the stop put together.
  void handle(Message) override { coppice::stop_self(); }

 private:
  Pid driver_;
};

// Spawns every process, counts the acknowledgements, stops them all and waits until the
// runtime holds no process but itself.
class Driver final : public Process {
 public:
  Driver(Runtime& runtime, Pid report_to, std::uint32_t processes)
      : runtime_(runtime), report_to_(report_to), processes_(processes) {}

  void init() override {
    // The pid list is the benchmark's bookkeeping, not the processes' cost: touch all of it
    // before the resident size is taken.
    pids_.assign(processes_, Pid{});
    resident_before_ = resident_bytes();
    spawn_start_ = Clock::now();
    for (Pid& pid : pids_) pid = coppice::spawn<Idle>(self());
  }

  void handle(Message message) override {
    if (message.is<Ack>()) {
      if (++acks_ == processes_) stop_all();
    } else if (message.is<Poll>()) {
      poll();
    }
  }

 private:
  void stop_all() {
    const Clock::time_point spawned = Clock::now();
    figures_.spawn_ms = ms_between(spawn_start_, spawned);
    figures_.bytes_per_process =
        (static_cast<double>(resident_bytes()) - static_cast<double>(resident_before_)) / processes_;
    stop_start_ = Clock::now();
    for (Pid pid : pids_) coppice::send(pid, Stop{});
    poll();
  }

  // "All gone" is the runtime's process count falling to one (this driver); looked at every
  // millisecond through a timer, so the driver keeps no worker busy while the others stop.
  void poll() {
    if (runtime_.process_count() > 1) {
      coppice::send_after(std::chrono::milliseconds(1), self(), Poll{});
      return;
    }
    figures_.stop_ms = ms_between(stop_start_, Clock::now());
    Report<SpawnFigures> report{figures_, {}};
    if (acks_ != processes_)
      report.error = "spawn_idle: " + std::to_string(acks_) + " acknowledgements, not " + std::to_string(processes_);
    coppice::send(report_to_, std::move(report));
  }

  Runtime& runtime_;
  Pid report_to_;
  std::uint32_t processes_;
  std::vector<Pid> pids_;
  std::size_t resident_before_ = 0;
  std::uint32_t acks_ = 0;
  Clock::time_point spawn_start_;
  Clock::time_point stop_start_;
  SpawnFigures figures_;
};

void spawn_idle(benchmark::State& state, std::uint32_t processes) {
  for (auto _ : state) {
    Runtime runtime;
    Inbox inbox(runtime);
    runtime.spawn<Driver>(runtime, inbox.pid(), processes);
    std::optional<SpawnFigures> figures = await_report<SpawnFigures>(inbox, state);
    if (!figures) return;
    state.SetIterationTime(figures->spawn_ms / 1e3);
    state.counters["spawn_ms"] = figures->spawn_ms;
    state.counters["stop_ms"] = figures->stop_ms;
    state.counters["bytes_per_process"] = figures->bytes_per_process;
  }
}

// Run once per fresh program (tools/bench does): a second round in the same program would
// reuse memory the first one touched, which is not the figure the peers were measured on.
void W1_spawn_idle_1m(benchmark::State& state) { spawn_idle(state, 1'000'000); }
BENCHMARK(W1_spawn_idle_1m)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// The spawn curve: W1 at 1k, 10k, 100k and 1M processes, each in a fresh program. At 1k and
// 10k the resident-size delta is a few pages of the allocator's, so bytes per process is
// coarse there (a 4 KiB page over 1,000 processes is 4 B each).
void sweep_spawn_idle(benchmark::State& state) { spawn_idle(state, static_cast<std::uint32_t>(state.range(0))); }
BENCHMARK(sweep_spawn_idle)
    ->ArgName("processes")
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
