// micro_call_round_trip: one process calls another (coppice::call, awaited in a coroutine),
// which answers with coppice::reply: monitor, alias, request, reply, demonitor.
#include "batch.hpp"

namespace coppice::bench {
namespace {

struct Request {};
struct Answer {};

class Server final : public Process {
 public:
  void handle(Message message) override {
    if (std::optional<From> from = message.reply_to()) coppice::reply(*from, Answer{});
  }
};

class Caller final : public BatchDriver {
  void init() override { server_ = coppice::spawn<Server>(); }
  void start_batch(std::uint64_t operations) override { await(calls(operations)); }

  Async<void> calls(std::uint64_t operations) {
    for (std::uint64_t i = 0; i < operations; ++i) {
      Result<Answer> answer = co_await coppice::call<Answer>(server_, Request{});
      if (!answer) {
        fail("call: " + answer.error().to_string());
        break;
      }
    }
    batch_done();
  }

  Pid server_;
};

void micro_call_round_trip(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<Caller>(), 1'000);
}
BENCHMARK(micro_call_round_trip)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
