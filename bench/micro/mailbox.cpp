// micro_mailbox_send_receive: a process sends a message to itself and handles it: one
// envelope allocated, pushed, drained, dispatched to handle() and freed.
#include "batch.hpp"

namespace coppice::bench {
namespace {

struct Tick {
  std::uint64_t n;
};

class SelfSender final : public BatchDriver {
  void start_batch(std::uint64_t operations) override {
    remaining_ = operations;
    coppice::send(self(), Tick{remaining_});
  }
  void on_message(Message message) override {
    if (!message.is<Tick>()) return;
    if (--remaining_ == 0) {
      batch_done();
      return;
    }
    coppice::send(self(), Tick{remaining_});
  }
  std::uint64_t remaining_ = 0;
};

void micro_mailbox_send_receive(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<SelfSender>(), 10'000);
}
BENCHMARK(micro_mailbox_send_receive)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
