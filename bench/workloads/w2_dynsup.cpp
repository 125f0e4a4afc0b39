// W2 dynsup_1m: one DynamicSupervisor; one client process starts a million permanent
// GenServer children (idle, state one integer), each start awaited before the next; then the
// supervisor is shut down. Figures: start time, resident bytes per child, shutdown time.
#include <cstdint>

#include <coppice/dynamic_supervisor.hpp>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr std::int64_t children = 1'000'000;

// Its state is the one integer (public, so that nothing needs to read it to keep it).
struct Idle final : public GenServer<Idle> {
  explicit Idle(std::int64_t value) : n(value) {}
  std::int64_t n;
};

struct DynsupFigures {
  double start_ms = 0;
  double shutdown_ms = 0;
  double bytes_per_child = 0;
};

Async<void> client(Runtime* runtime, Pid report_to) {
  Report<DynsupFigures> report;
  DynamicSupervisorOptions options;
  StartOptions start_options;
  auto starting = DynamicSupervisor::start_link(options, start_options);
  Result<Pid> sup = co_await starting;
  if (!sup) {
    report.error = "dynsup: the supervisor did not start: " + sup.error().to_string();
    coppice::send(report_to, std::move(report));
    co_return;
  }
  // One spec, shared by every child (Erlang's simple_one_for_one template; Elixir builds a
  // spec per child): each child is an Idle holding one integer.
  const DynamicSupervisor::SharedSpec spec = DynamicSupervisor::share(child<Idle>("idle", std::int64_t{7}));
  const std::size_t before = resident_bytes();
  const Clock::time_point start = Clock::now();
  for (std::int64_t i = 0; i < children; ++i) {
    auto s = DynamicSupervisor::start_child(*sup, spec);
    Result<Pid> pid = co_await s;
    if (!pid) {
      report.error = "dynsup: start_child failed: " + pid.error().to_string();
      coppice::send(report_to, std::move(report));
      co_return;
    }
  }
  report.figures.start_ms = ms_between(start, Clock::now());
  report.figures.bytes_per_child = (static_cast<double>(resident_bytes()) - static_cast<double>(before)) / children;
  const Clock::time_point stop_start = Clock::now();
  coppice::unlink(*sup);
  ServerRef ref = *sup;
  auto stopping = coppice::stop(ref, ExitReason::shutdown());
  Status stopped = co_await stopping;
  if (!stopped) report.error = "dynsup: shutdown: " + stopped.error().to_string();
  // "All gone": the supervisor waited for every child's DOWN before it exited.
  report.figures.shutdown_ms = ms_between(stop_start, Clock::now());
  if (runtime->process_count() != 1) report.error = "dynsup: " + std::to_string(runtime->process_count() - 1) + " processes left";
  coppice::send(report_to, std::move(report));
}

void W2_dynsup_1m(benchmark::State& state) {
  for (auto _ : state) {
    Runtime runtime;
    Inbox inbox(runtime);
    runtime.spawn(client, &runtime, inbox.pid());
    std::optional<DynsupFigures> f = await_report<DynsupFigures>(inbox, state);
    if (!f) return;
    state.SetIterationTime(f->start_ms / 1e3);
    state.counters["start_ms"] = f->start_ms;
    state.counters["shutdown_ms"] = f->shutdown_ms;
    state.counters["bytes_per_child"] = f->bytes_per_child;
  }
}
BENCHMARK(W2_dynsup_1m)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
