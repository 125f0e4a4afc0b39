// Lost wake-ups: thousands of times, a plain thread sends to an idle process on a runtime
// whose workers park at once, and waits for the reply. One lost wake-up leaves every worker
// asleep with work queued, and the reply never comes.
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::Pid;
using coppice::stress::Random;

namespace {

struct Ping {
  std::uint64_t n;
  Pid reply_to;
};
struct Pong {
  std::uint64_t n;
};
// Fans out to `k` echoes from inside a worker: the woken processes displace each other from
// the worker's "next" slot, and the displaced ones must be found by the other worker.
struct Fan {
  std::uint64_t n;
  std::uint32_t k;
  Pid reply_to;
};

struct Echo : coppice::Process {
  explicit Echo(std::shared_ptr<const std::vector<Pid>> echoes) : echoes_(std::move(echoes)) {}
  void handle(coppice::Message m) override {
    if (auto* p = m.get_if<Ping>()) {
      coppice::send(p->reply_to, Pong{p->n});
    } else if (auto* f = m.get_if<Fan>()) {
      for (std::uint32_t i = 0; i < f->k; ++i) coppice::send((*echoes_)[i], Ping{f->n, f->reply_to});
    }
  }
  std::shared_ptr<const std::vector<Pid>> echoes_;
};

// Long enough that nothing but a lost wake-up (or a lost message) comes near it.
constexpr auto reply_timeout = coppice::stress::sanitized ? 20s : 5s;

// One driver: its own runtime with parking workers, one plain thread sending bursts at
// random moments (a short busy wait sweeps the send across the workers' way to sleep).
std::string drive(std::uint64_t seed, unsigned workers, int iterations) {
  coppice::Runtime rt(coppice::stress::options(workers));
  coppice::Inbox inbox(rt);
  auto pids = std::make_shared<std::vector<Pid>>();
  auto echoes = std::make_shared<std::vector<Pid>>();  // filled below; Echo only reads it later
  for (int i = 0; i < 8; ++i) pids->push_back(rt.spawn<Echo>(std::shared_ptr<const std::vector<Pid>>(echoes)));
  *echoes = *pids;  // before any Fan is sent, so the processes see it (the send publishes it)
  Random r(seed);
  for (int i = 0; i < iterations; ++i) {
    const std::uint64_t n = static_cast<std::uint64_t>(i);
    for (std::uint64_t spin = r.below(3) == 0 ? 0 : r.below(4000); spin > 0; --spin) asm volatile("");
    std::uint32_t expected = 1;
    switch (r.below(3)) {
      case 0:
        inbox.send((*pids)[r.below(pids->size())], Ping{n, inbox.pid()});
        break;
      case 1:
        expected = 1 + static_cast<std::uint32_t>(r.below(pids->size()));
        rt.send((*pids)[r.below(pids->size())], Fan{n, expected, inbox.pid()});
        break;
      default:
        expected = 1 + static_cast<std::uint32_t>(r.below(pids->size()));
        for (std::uint32_t k = 0; k < expected; ++k) rt.send((*pids)[k], Ping{n, inbox.pid()});
    }
    for (std::uint32_t k = 0; k < expected; ++k) {
      auto pong = inbox.receive<Pong>(reply_timeout);
      if (!pong)
        return "iteration " + std::to_string(i) + ": reply " + std::to_string(k + 1) + " of " +
               std::to_string(expected) + " never came (a lost wake-up?)";
      if (pong->n != n) return "iteration " + std::to_string(i) + ": a reply from iteration " + std::to_string(pong->n);
    }
  }
  return {};
}

void drive_in_parallel(unsigned drivers, unsigned workers, int iterations) {
  std::vector<std::string> failures(drivers);
  std::vector<std::thread> threads;
  for (unsigned d = 0; d < drivers; ++d)
    threads.emplace_back([&, d] { failures[d] = drive(d * 7 + workers, workers, iterations); });
  for (auto& t : threads) t.join();
  for (unsigned d = 0; d < drivers; ++d) EXPECT_EQ(failures[d], "") << "driver " << d;
}

}  // namespace

// Several runtimes side by side on few cores: threads are preempted at every point of the
// park and notify paths. Each runtime has a single external sender, so no other send can
// come along and rescue a lost wake-up.
TEST(WakeupStress, IdleProcessAlwaysAnswersWithParkingWorkers) {
  coppice::stress::Watchdog watchdog("IdleProcessAlwaysAnswersWithParkingWorkers", 4 * coppice::stress::patience);
  drive_in_parallel(3, 2, 400 * coppice::stress::scale);
}

TEST(WakeupStress, OneWorkerParkingAfterEveryReply) {
  coppice::stress::Watchdog watchdog("OneWorkerParkingAfterEveryReply", 4 * coppice::stress::patience);
  drive_in_parallel(2, 1, 400 * coppice::stress::scale);
}
