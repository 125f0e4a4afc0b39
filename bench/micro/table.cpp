// micro_table_lookup: Runtime::alive on a live pid, from inside a process: the process
// table's slot lookup and generation check that every send makes first.
#include "batch.hpp"

namespace coppice::bench {
namespace {

class Idle final : public Process {
 public:
  void handle(Message) override {}
};

class Looker final : public BatchDriver {
 public:
  explicit Looker(Runtime& runtime) : runtime_(runtime) {}

 private:
  void init() override { target_ = coppice::spawn<Idle>(); }
  void start_batch(std::uint64_t operations) override {
    std::uint64_t alive = 0;
    for (std::uint64_t i = 0; i < operations; ++i) {
      Pid pid = target_;
      benchmark::DoNotOptimize(pid);
      alive += runtime_.alive(pid) ? 1 : 0;
    }
    if (alive != operations) fail("alive: a live process was not found");
    batch_done();
  }

  Runtime& runtime_;
  Pid target_;
};

void micro_table_lookup(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<Looker>(runtime), 100'000);
}
BENCHMARK(micro_table_lookup)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
