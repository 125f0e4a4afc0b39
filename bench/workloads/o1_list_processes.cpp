// O1 list_processes_1m: what the listing of coppice/observe.hpp costs at a million processes.
// A million idle processes wait; the plain thread then times list_processes without details
// (a walk of the process table), for_each_process over the same (the walk without a
// snapshot), metrics() (the workers' counters summed), and list_processes with details (a
// process_info request answered by every process).
// Figures: list_ms, visit_ms, details_ms, metrics_us, and the listing's bytes per entry.
#include <cstdint>
#include <vector>

#include "workload.hpp"

namespace coppice::bench {
namespace {

struct Ack {};
struct Spawned {};

class Idle final : public Process {
 public:
  explicit Idle(Pid driver) : driver_(driver) {}
  void init() override { coppice::send(driver_, Ack{}); }
  void handle(Message) override {}

 private:
  Pid driver_;
};

// Spawns every process and tells the plain thread once all of them have run.
class Spawner final : public Process {
 public:
  Spawner(Pid report_to, std::uint32_t processes) : report_to_(report_to), processes_(processes) {}
  void init() override {
    for (std::uint32_t i = 0; i < processes_; ++i) coppice::spawn<Idle>(self());
  }
  void handle(Message message) override {
    if (message.is<Ack>() && ++acks_ == processes_) coppice::send(report_to_, Spawned{});
  }

 private:
  Pid report_to_;
  std::uint32_t processes_;
  std::uint32_t acks_ = 0;
};

void O1_list_processes_1m(benchmark::State& state) {
  constexpr std::uint32_t processes = 1'000'000;
  for (auto _ : state) {
    Runtime runtime;
    Inbox inbox(runtime);
    runtime.spawn<Spawner>(inbox.pid(), processes);
    if (!inbox.receive<Spawned>(report_timeout)) {
      state.SkipWithError("the million processes did not all start within 120 s");
      return;
    }
    const std::size_t before = resident_bytes();
    Clock::time_point t0 = Clock::now();
    std::vector<ProcessEntry> list = list_processes(runtime);
    const double list_ms = ms_between(t0, Clock::now());
    const double bytes_per_entry = (static_cast<double>(resident_bytes()) - static_cast<double>(before)) / list.size();
    t0 = Clock::now();
    MailboxDepths depths;
    std::size_t visited = 0;
    for_each_process(runtime, [&](const ProcessEntry& e) {
      depths.add(e.message_queue_len);
      ++visited;
    });
    const double visit_ms = ms_between(t0, Clock::now());
    if (visited != list.size()) {
      state.SkipWithError(("for_each_process visited " + std::to_string(visited) + ", list_processes listed " +
                           std::to_string(list.size()))
                              .c_str());
      return;
    }
    t0 = Clock::now();
    RuntimeMetrics m = metrics(runtime);
    const double metrics_us = ms_between(t0, Clock::now()) * 1e3;
    benchmark::DoNotOptimize(m);
    list.clear();
    list.shrink_to_fit();
    t0 = Clock::now();
    std::vector<ProcessEntry> detailed = list_processes(runtime, ListOptions{.details = true, .timeout = std::chrono::seconds{60}});
    const double details_ms = ms_between(t0, Clock::now());
    std::size_t answered = 0;
    for (const ProcessEntry& e : detailed) answered += e.detailed ? 1 : 0;
    // Every Idle, the Spawner and the Inbox, plus the askers of the detailed listing.
    if (detailed.size() < processes + 1 || answered < processes + 1) {
      state.SkipWithError(("list_processes: " + std::to_string(detailed.size()) + " entries, " +
                           std::to_string(answered) + " detailed, for " + std::to_string(processes) + " processes")
                              .c_str());
      return;
    }
    state.SetIterationTime(list_ms / 1e3);
    state.counters["list_ms"] = list_ms;
    state.counters["details_ms"] = details_ms;
    state.counters["visit_ms"] = visit_ms;
    state.counters["metrics_us"] = metrics_us;
    state.counters["bytes_per_entry"] = bytes_per_entry;
  }
}
BENCHMARK(O1_list_processes_1m)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
