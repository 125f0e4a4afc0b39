// How a micro-benchmark measures: a driver process performs a batch of operations and times
// them itself; the benchmark's thread only asks for batches and adds up their times, so the
// cost of waking that thread is never part of a figure.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <coppice/coppice.hpp>

namespace coppice::bench {

struct RunBatch {
  std::uint64_t operations;
};
struct BatchDone {
  double seconds;
  std::string error;  // empty when every operation checked out
};

// Base of a micro-benchmark's driver: handle() turns RunBatch into start_batch(n); the
// driver calls batch_done() once the n operations are over (from any later callback).
class BatchDriver : public Process {
 public:
  void handle(Message message) override {
    if (const RunBatch* run = message.get_if<RunBatch>()) {
      report_to_ = message.from();
      error_.clear();
      started_ = std::chrono::steady_clock::now();
      start_batch(run->operations);
    } else {
      on_message(std::move(message));
    }
  }

 protected:
  virtual void start_batch(std::uint64_t operations) = 0;
  virtual void on_message(Message) {}

  void fail(std::string error) { error_ = std::move(error); }
  void batch_done() {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
    coppice::send(report_to_, BatchDone{took.count(), std::move(error_)});
  }

 private:
  Pid report_to_;
  std::chrono::steady_clock::time_point started_;
  std::string error_;
};

// The benchmark loop: one batch of `batch` operations per pass, timed by the driver.
inline void run_batches(benchmark::State& state, Inbox& inbox, Pid driver, std::uint64_t batch) {
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(batch))) {
    inbox.send(driver, RunBatch{batch});
    std::optional<BatchDone> done = inbox.receive<BatchDone>(std::chrono::seconds(60));
    if (!done) {
      state.SkipWithError("no answer from the driver process within 60 s");
      continue;  // the next KeepRunningBatch returns false
    }
    if (!done->error.empty()) {
      state.SkipWithError(done->error.c_str());
      continue;
    }
    state.SetIterationTime(done->seconds);
  }
}

// Ends the running process when its callback returns, without unwinding (exit(normal)
// throws, which costs microseconds).
inline void exit_normally() { coppice::stop_self(); }

}  // namespace coppice::bench
