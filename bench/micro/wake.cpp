// micro_wake_idle: a token goes round a ring of idle processes; every hop is a send that
// finds its receiver idle and schedules it, and the receiver's turn that handles it.
#include <vector>

#include "batch.hpp"

namespace coppice::bench {
namespace {

// Enough processes that a hop's receiver is not the one that just ran.
constexpr unsigned ring_size = 100;

struct Token {
  std::uint64_t hops_left;
};

// Passes the token on to the next process in the ring, or back to the driver at the end.
class RingMember final : public Process {
 public:
  explicit RingMember(Pid driver) : driver_(driver) {}
  void handle(Message message) override {
    if (Pid* next = message.get_if<Pid>()) {
      next_ = *next;
      return;
    }
    Token* token = message.get_if<Token>();
    if (token == nullptr) return;
    coppice::send(token->hops_left <= 1 ? driver_ : next_, Token{token->hops_left - 1});
  }

 private:
  Pid driver_;
  Pid next_;
};

class RingDriver final : public BatchDriver {
  void init() override {
    for (unsigned i = 0; i < ring_size; ++i) ring_.push_back(coppice::spawn<RingMember>(self()));
    for (unsigned i = 0; i < ring_size; ++i) coppice::send(ring_[i], ring_[(i + 1) % ring_size]);
  }
  void start_batch(std::uint64_t operations) override {
    coppice::send(ring_[0], Token{operations - 1});  // the driver's send is the first hop
  }
  void on_message(Message message) override {
    if (message.is<Token>()) batch_done();
  }
  std::vector<Pid> ring_;
};

void micro_wake_idle(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  run_batches(state, inbox, runtime.spawn<RingDriver>(), 10'000);
}
BENCHMARK(micro_wake_idle)->UseManualTime();

}  // namespace
}  // namespace coppice::bench
