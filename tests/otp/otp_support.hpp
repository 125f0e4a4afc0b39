// What the OTP behaviour tests share: running a coroutine as a test process, capturing the
// logger, and waiting on an Inbox (from tests/runtime/support.hpp).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/coppice.hpp"
#include "runtime/support.hpp"

// ASSERT_* returns, which a coroutine cannot: these end the test process instead.
#define CO_ASSERT_TRUE(condition)                        \
  if (!(condition)) {                                    \
    ADD_FAILURE() << "expected true: " #condition;       \
    co_return;                                           \
  }
#define CO_ASSERT_FALSE(condition) CO_ASSERT_TRUE(!(condition))

namespace coppice_test {

// Every report line the runtime logs, kept for the test to look at.
class CapturedLog {
 public:
  coppice::RuntimeOptions options(unsigned workers_count = 2) {
    coppice::RuntimeOptions o = workers(workers_count);
    auto lines = lines_;
    auto mutex = mutex_;
    o.logger = [lines, mutex](std::string_view line) {
      std::lock_guard lock(*mutex);
      lines->emplace_back(line);
    };
    return o;
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(*mutex_);
    return *lines_;
  }
  // Lines that contain `needle`.
  std::size_t count(std::string_view needle) const {
    std::lock_guard lock(*mutex_);
    return static_cast<std::size_t>(std::count_if(lines_->begin(), lines_->end(), [&](const std::string& l) {
      return l.find(needle) != std::string::npos;
    }));
  }

 private:
  std::shared_ptr<std::vector<std::string>> lines_ = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
};

// Runs `body` (a callable returning coppice::Async<void>) as a process and waits for it to
// end; returns its exit reason (timeout if it did not end in time). EXPECTs inside the body
// report as usual. The body starts only once the monitor is in place, so that a body that
// ends at once still reports its own reason (not noproc).
struct RunProcessGo {};
template <class F>
coppice::ExitReason run_process(coppice::Runtime& rt, F body, std::chrono::nanoseconds timeout = 4 * wait_time) {
  coppice::Inbox inbox(rt);
  auto gated = [](F& f) -> coppice::Async<void> {
    RunProcessGo go = co_await coppice::receive<RunProcessGo>();
    (void)go;
    coppice::Async<void> work = f();
    co_await work;
  };
  coppice::Pid p = rt.spawn(gated, std::move(body));
  coppice::Ref mon = inbox.monitor(p);
  inbox.send(p, RunProcessGo{});
  std::optional<coppice::Down> d = down_for(inbox, mon, timeout);
  return d ? d->reason : coppice::ExitReason::timeout();
}

// The first message of type T, taken from the running process's mailbox, if one is there now
// or arrives within `timeout`.
template <class T>
coppice::Async<std::optional<T>> maybe_receive(std::chrono::milliseconds timeout) {
  std::optional<T> got = co_await coppice::receive<T>(timeout);
  co_return got;
}

}  // namespace coppice_test
