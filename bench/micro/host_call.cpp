// micro_host_call_*: what a call from a host thread costs, beside micro_call_round_trip (a
// process's call): through a HostBridge (one at a time, waiting on its eventfd with epoll; and
// 1,000 in flight, with and without a deadline timer) and through a blocking Inbox::call.
#include <sys/epoll.h>
#include <unistd.h>

#include "batch.hpp"
#include "coppice/host.hpp"

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

// The host's loop: an epoll set holding the bridge's fd.
class Loop {
 public:
  explicit Loop(HostBridge& bridge) : bridge_(bridge), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, bridge.fd(), &ev);
  }
  ~Loop() { ::close(epoll_); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  // Waits on the fd and drains until `*left` reaches 0.
  void run(const std::uint64_t* left) {
    while (*left > 0) {
      epoll_event ev{};
      if (::epoll_wait(epoll_, &ev, 1, 5000) == 1) bridge_.drain();
    }
  }

 private:
  HostBridge& bridge_;
  int epoll_;
};

void micro_host_call_round_trip(benchmark::State& state) {
  Runtime runtime;
  HostBridge bridge(runtime);
  Loop loop(bridge);
  const Pid server = runtime.spawn<Server>();
  std::uint64_t left = 0;
  for (auto _ : state) {
    left = 1;
    bridge.call<Answer>(server, Request{}, default_call_timeout, [&](Result<Answer> r) {
      if (!r) state.SkipWithError(r.error().to_string().c_str());
      --left;
    });
    loop.run(&left);
  }
}
BENCHMARK(micro_host_call_round_trip);

// 1,000 calls in flight from one host thread, to one server; the figure is per call.
void host_calls_in_flight(benchmark::State& state, std::chrono::nanoseconds timeout) {
  constexpr std::uint64_t batch = 1'000;
  Runtime runtime;
  HostBridge bridge(runtime);
  Loop loop(bridge);
  const Pid server = runtime.spawn<Server>();
  std::uint64_t left = 0;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(batch))) {
    left = batch;
    for (std::uint64_t i = 0; i < batch; ++i)
      bridge.call<Answer>(server, Request{}, timeout, [&](Result<Answer> r) {
        if (!r) state.SkipWithError(r.error().to_string().c_str());
        --left;
      });
    loop.run(&left);
  }
}
void micro_host_call_in_flight(benchmark::State& state) { host_calls_in_flight(state, default_call_timeout); }
BENCHMARK(micro_host_call_in_flight);
void micro_host_call_in_flight_no_timeout(benchmark::State& state) {
  host_calls_in_flight(state, HostBridge::no_timeout);
}
BENCHMARK(micro_host_call_in_flight_no_timeout);

void micro_host_inbox_call(benchmark::State& state) {
  Runtime runtime;
  Inbox inbox(runtime);
  const Pid server = runtime.spawn<Server>();
  for (auto _ : state) {
    Result<Answer> r = inbox.call<Answer>(server, Request{});
    if (!r) state.SkipWithError(r.error().to_string().c_str());
  }
}
BENCHMARK(micro_host_inbox_call);

}  // namespace
}  // namespace coppice::bench
