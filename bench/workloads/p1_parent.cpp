// P1 parent_bound_pair_restart and P2 parent_ephemeral_100k: the Parent behaviour's restart
// of a bound pair (W3's method, beside W3b's one_for_all) and its start and stop of 100,000
// ephemeral children (W2's method, one parent instead of a DynamicSupervisor).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <coppice/parent.hpp>

#include "workload.hpp"

namespace coppice::bench {
namespace {

// ---- P1: kill the first of a bound pair, wait until both are back -------------------------

struct Ready {
  Pid pid;
  int index;
};

// A child of the pair: an idle GenServer whose init reports to the benchmark, as W3's Worker.
class Member final : public GenServer<Member> {
 public:
  Member(Pid bench, int index) : bench_(bench), index_(index) {}
  void init() { coppice::send(bench_, Ready{self(), index_}); }

 private:
  Pid bench_;
  int index_;
};

// W3's intensity (1,000,000 restarts in 1 s), so that it never trips.
ParentOptions never_gives_up() {
  ParentOptions o;
  o.intensity = 1'000'000;
  o.period = std::chrono::seconds(1);
  return o;
}

// The parent of the pair: "second" binds to "first", so the first's death takes the second
// down (a shutdown, awaited) and both start again, first then second.
class Pair final : public Parent<Pair> {
 public:
  explicit Pair(Pid bench) : Parent(never_gives_up()), bench_(bench) {}
  Async<Init> init() {
    std::vector<ParentChildSpec> specs;
    specs.emplace_back(child<Member>("first", bench_, 0));
    specs.push_back(ParentChildSpec(child<Member>("second", bench_, 1)).bound_to({"first"}));
    auto starting = start_all_children(std::move(specs));
    std::vector<Pid> pids = co_await starting;
    (void)pids;
    co_return ok();
  }

 private:
  Pid bench_;
};

// The benchmark's side, a process: starts the parent, then kills the first child and waits
// for both replacements' reports, round after round.
Async<void> drive_pair(Pid report_to, int rounds) {
  Report<LatencyFigures> report;
  auto start = Pair::start_link(StartOptions{}, self());
  Result<Pid> parent = co_await start;
  if (!parent) {
    report.error = "parent_bound_pair_restart: the parent did not start: " + parent.error().to_string();
    coppice::send(report_to, std::move(report));
    co_return;
  }
  Pid pids[2];
  for (int i = 0; i < 2; ++i) {
    Ready r = co_await receive<Ready>();
    pids[static_cast<std::size_t>(r.index)] = r.pid;
  }
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(rounds));
  for (int round = 0; round < rounds && report.error.empty(); ++round) {
    const Pid old_second = pids[1];
    const Clock::time_point before = Clock::now();
    coppice::exit(pids[0], ExitReason::kill());
    for (int got = 0; got < 2; ++got) {
      Ready r = co_await receive<Ready>();
      pids[static_cast<std::size_t>(r.index)] = r.pid;
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - before).count());
    if (pids[1] == old_second) report.error = "parent_bound_pair_restart: the second child was not restarted";
  }
  if (report.error.empty()) report.figures = percentiles(std::move(us));
  coppice::unlink(*parent);
  ServerRef ref = *parent;
  auto stopping = coppice::stop(ref, ExitReason::shutdown());
  Status stopped = co_await stopping;
  if (!stopped && report.error.empty())
    report.error = "parent_bound_pair_restart: stopping the parent: " + stopped.error().to_string();
  coppice::send(report_to, std::move(report));
}

void P1_parent_bound_pair_restart(benchmark::State& state) {
  for (auto _ : state) {
    RuntimeOptions o;
    o.logger = [](std::string_view) {};  // as W3: no report per restart
    Runtime runtime(o);
    Inbox inbox(runtime);
    runtime.spawn(drive_pair, inbox.pid(), 10'000);
    std::optional<LatencyFigures> f = await_report<LatencyFigures>(inbox, state);
    if (!f) return;
    report_latency(state, *f);
  }
}
BENCHMARK(P1_parent_bound_pair_restart)->Iterations(1)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- P2: 100,000 ephemeral children started and stopped under one parent -----------------

constexpr std::int64_t ephemeral_children = 100'000;

struct Quit {};

// An ephemeral child: idle, its state one integer (as W2's), until told to quit.
class Job final : public GenServer<Job> {
 public:
  using casts = Protocol<Quit>;
  explicit Job(std::int64_t value) : n(value) {}
  NoReply handle_cast(Quit) { return stop_with(ExitReason::normal()); }
  std::int64_t n;
};

struct StartJobs {};  // call: start every child, each start awaited; the reply is an error or ""
struct StopJobs {};   // call: tell every child to quit; replied (how many stopped) once all are gone

// The parent: starts the children from its own callback, one start_child each (anonymous,
// temporary, ephemeral); then stops them by letting each stop on its own.
//
// Stop on their own, not shutdown_all: ephemeral children are the jobs a parent starts and
// forgets, which end by themselves and are removed from the table, reported to
// handle_stopped_children (the path this measures: an EXIT each, not restarted, removed,
// reported). shutdown_all is the parent's own teardown, the same for every kind of child.
class JobParent final : public Parent<JobParent> {
 public:
  using calls = Protocol<StartJobs, StopJobs>;

  Async<std::string> handle_call(StartJobs) {
    ParentChildSpec spec(child<Job>("", std::int64_t{7}));
    spec.with_restart(Restart::temporary).as_ephemeral();
    pids_.reserve(static_cast<std::size_t>(ephemeral_children));
    for (std::int64_t i = 0; i < ephemeral_children; ++i) {
      auto starting = start_child(spec);
      Result<Pid> pid = co_await starting;
      if (!pid) co_return "start_child failed: " + pid.error().to_string();
      pids_.push_back(*pid);
    }
    co_return std::string();
  }

  void handle_call(StopJobs, const From& from) {
    waiting_ = from;
    for (Pid pid : pids_) Job::cast(pid, Quit{});
    pids_.clear();
  }

  void handle_stopped_children(StoppedChildren stopped) {
    stopped_ += stopped.size();
    if (num_children() == 0 && waiting_) {
      coppice::reply(*waiting_, stopped_);
      waiting_.reset();
    }
  }

 private:
  std::vector<Pid> pids_;  // whom to tell to quit (8 bytes a child, inside bytes_per_child)
  std::optional<From> waiting_;
  std::size_t stopped_ = 0;
};

struct EphemeralFigures {
  double start_ms = 0;
  double stop_ms = 0;
  double bytes_per_child = 0;
};

Async<void> drive_jobs(Runtime* runtime, Pid report_to) {
  Report<EphemeralFigures> report;
  auto starting = JobParent::start_link(StartOptions{});
  Result<Pid> parent = co_await starting;
  if (!parent) {
    report.error = "parent_ephemeral_100k: the parent did not start: " + parent.error().to_string();
    coppice::send(report_to, std::move(report));
    co_return;
  }
  const ServerRef ref = *parent;
  const std::size_t before = resident_bytes();
  const Clock::time_point start = Clock::now();
  auto start_all = JobParent::call(ref, StartJobs{}, infinity);
  Result<std::string> started = co_await start_all;
  report.figures.start_ms = ms_between(start, Clock::now());
  report.figures.bytes_per_child =
      (static_cast<double>(resident_bytes()) - static_cast<double>(before)) / static_cast<double>(ephemeral_children);
  if (!started || !started->empty()) {
    report.error = "parent_ephemeral_100k: " + (started ? *started : started.error().to_string());
  } else {
    const Clock::time_point stop_start = Clock::now();
    auto stop_all = coppice::call<std::size_t>(ref, StopJobs{}, infinity);
    Result<std::size_t> stopped = co_await stop_all;
    // "All gone": the parent has taken every child's EXIT.
    report.figures.stop_ms = ms_between(stop_start, Clock::now());
    if (!stopped) {
      report.error = "parent_ephemeral_100k: stopping the children: " + stopped.error().to_string();
    } else if (*stopped != static_cast<std::size_t>(ephemeral_children)) {
      report.error = "parent_ephemeral_100k: " + std::to_string(*stopped) + " children reported stopped";
    }
  }
  coppice::unlink(*parent);
  auto stopping = coppice::stop(ref, ExitReason::shutdown());
  Status done = co_await stopping;
  if (!done && report.error.empty())
    report.error = "parent_ephemeral_100k: stopping the parent: " + done.error().to_string();
  if (report.error.empty() && runtime->process_count() != 1)
    report.error = "parent_ephemeral_100k: " + std::to_string(runtime->process_count() - 1) + " processes left";
  coppice::send(report_to, std::move(report));
}

void P2_parent_ephemeral_100k(benchmark::State& state) {
  for (auto _ : state) {
    Runtime runtime;
    Inbox inbox(runtime);
    runtime.spawn(drive_jobs, &runtime, inbox.pid());
    std::optional<EphemeralFigures> f = await_report<EphemeralFigures>(inbox, state);
    if (!f) return;
    state.SetIterationTime(f->start_ms / 1e3);
    state.counters["start_ms"] = f->start_ms;
    state.counters["stop_ms"] = f->stop_ms;
    state.counters["bytes_per_child"] = f->bytes_per_child;
  }
}
BENCHMARK(P2_parent_ephemeral_100k)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
