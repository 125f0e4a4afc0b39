// micro_timer_insert_cancel: send_after with a delay that never comes, then cancel_timer.
#include "batch.hpp"

namespace coppice::bench {
namespace {

struct Tick {};

class TimerUser final : public BatchDriver {
  void start_batch(std::uint64_t operations) override {
    for (std::uint64_t i = 0; i < operations; ++i) {
      TimerRef timer = coppice::send_after(std::chrono::hours(1), self(), Tick{});
      if (!coppice::cancel_timer(timer)) {
        fail("cancel_timer: a pending timer was not cancelled");
        break;
      }
    }
    batch_done();
  }
};

void micro_timer_insert_cancel(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<TimerUser>(), 10'000);
}
BENCHMARK(micro_timer_insert_cancel)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
