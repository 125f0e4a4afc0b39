// E1 idle_cpu: a runtime nearly idle, as inside a server between requests: a plain thread asks
// one process a question every millisecond for a second and waits for each answer. Figures:
// the CPU time the whole program used meanwhile (what idle workers burn spinning and waking)
// and the round trip's p50/p99 from the plain thread.
#include <time.h>

#include <thread>
#include <vector>

#include "workload.hpp"

namespace coppice::bench {
namespace {

constexpr int requests = 1000;
constexpr std::chrono::milliseconds interval{1};

struct Question {
  int n;
};
struct Answer {
  int n;
};

class Answerer final : public Process {
 public:
  void handle(Message message) override {
    if (const Question* q = message.get_if<Question>()) coppice::send(message.from(), Answer{q->n});
  }
};

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void E1_idle_cpu(benchmark::State& state) {
  for (auto _ : state) {
    Runtime runtime;  // the defaults: what an embedding host gets
    Inbox inbox(runtime);
    const Pid answerer = runtime.spawn<Answerer>();
    std::vector<double> us;
    us.reserve(requests);
    const double cpu_before = cpu_seconds();
    auto next = Clock::now();
    for (int i = 0; i < requests; ++i) {
      next += interval;
      std::this_thread::sleep_until(next);
      const auto sent = Clock::now();
      inbox.send(answerer, Question{i});
      if (!inbox.receive<Answer>(report_timeout)) {
        state.SkipWithError("no answer within 120 s");
        return;
      }
      us.push_back(ms_between(sent, Clock::now()) * 1e3);
    }
    const double cpu = cpu_seconds() - cpu_before;
    const LatencyFigures f = percentiles(std::move(us));
    state.SetIterationTime(cpu);
    state.counters["cpu_ms"] = cpu * 1e3;
    state.counters["p50_us"] = f.p50;
    state.counters["p99_us"] = f.p99;
    state.counters["workers"] = runtime.worker_count();
  }
}
BENCHMARK(E1_idle_cpu)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coppice::bench
