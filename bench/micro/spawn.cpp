// micro_spawn_exit: spawn one process, which tells its parent it runs and exits; the next
// spawn follows the acknowledgement, so one operation is a whole life, spawn to exit.
#include "batch.hpp"

namespace coppice::bench {
namespace {

struct Started {};

class ShortLived final : public Process {
 public:
  explicit ShortLived(Pid parent) : parent_(parent) {}
  void init() override {
    coppice::send(parent_, Started{});
    exit_normally();
  }
  void handle(Message) override {}

 private:
  Pid parent_;
};

class Spawner final : public BatchDriver {
  void start_batch(std::uint64_t operations) override {
    remaining_ = operations;
    coppice::spawn<ShortLived>(self());
  }
  void on_message(Message message) override {
    if (!message.is<Started>()) return;
    if (--remaining_ == 0) {
      batch_done();
      return;
    }
    coppice::spawn<ShortLived>(self());
  }
  std::uint64_t remaining_ = 0;
};

void micro_spawn_exit(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<Spawner>(), 1'000);
}
BENCHMARK(micro_spawn_exit)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
