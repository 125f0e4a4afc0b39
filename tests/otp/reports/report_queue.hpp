// What the report tests share: a handler that queues every report it is given, and waits on
// that queue (a condition variable, no sleeps) for the next report of a kind.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "coppice/report.hpp"
#include "otp/supervisor/workers.hpp"

namespace coppice_test::reports {

using namespace coppice_test::sup;
using coppice::Report;
using coppice::ReportChild;
using coppice::ReportKind;

// Shared by the handler (any worker thread, or the thread that stops the runtime) and the test.
class ReportQueue {
 public:
  coppice::RuntimeOptions options(unsigned workers_count = 2) {
    coppice::RuntimeOptions o = workers(workers_count);
    o.logger = [](std::string_view) {};  // set, so that nothing reaches standard error
    auto self = state_;
    o.report_handler = [self](const Report& r) {
      {
        std::lock_guard lock(self->mutex);
        self->all.push_back(r);
        self->unread.push_back(r);
      }
      self->cv.notify_all();
    };
    return o;
  }

  // The first unread report of `kind` (earlier unread reports of other kinds stay unread), if
  // one comes within `timeout`.
  std::optional<Report> next(ReportKind kind, std::chrono::nanoseconds timeout = wait_time) {
    std::unique_lock lock(state_->mutex);
    std::optional<Report> got;
    state_->cv.wait_for(lock, timeout, [&] {
      for (auto it = state_->unread.begin(); it != state_->unread.end(); ++it) {
        if (it->kind == kind) {
          got = std::move(*it);
          state_->unread.erase(it);
          return true;
        }
      }
      return false;
    });
    return got;
  }

  // Every report delivered so far, in the order they came.
  std::vector<Report> all() const {
    std::lock_guard lock(state_->mutex);
    return {state_->all.begin(), state_->all.end()};
  }
  std::size_t count(ReportKind kind) const {
    std::lock_guard lock(state_->mutex);
    std::size_t n = 0;
    for (const Report& r : state_->all) n += r.kind == kind ? 1 : 0;
    return n;
  }

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Report> all;
    std::deque<Report> unread;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace coppice_test::reports
