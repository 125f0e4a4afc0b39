// What the host-bridge tests share: a server to call, and a host loop that waits on the
// bridge's eventfd with epoll and drains it.
#pragma once

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>

#include "coppice/coppice.hpp"
#include "coppice/host.hpp"

namespace host_test {

using namespace std::chrono_literals;

// Every wait in these tests is for something that must happen; this only bounds a failure.
inline constexpr std::chrono::milliseconds wait_time{10000};

struct Ask {  // request: the reply is n + 1
  int n;
};
struct Hold {};     // request: the server keeps the From and does not reply yet
struct Release {};  // message: reply 99 to every held From, then send each caller a Marker
struct Marker {};
struct CrashOnCall {  // request: the server exits with `reason` instead of replying
  coppice::ExitReason reason;
};

class Server : public coppice::Process {
 public:
  void handle(coppice::Message m) override {
    const std::optional<coppice::From> from = m.reply_to();
    m.match([&](Ask& a) {
              if (from) coppice::reply(*from, a.n + 1);
            },
            [&](Hold&) {
              if (from) held_.push_back(*from);
            },
            [&](Release&) {
              for (const coppice::From& f : held_) {
                coppice::reply(f, 99);
                coppice::send(f.pid, Marker{});
              }
              held_.clear();
            },
            [&](CrashOnCall& c) { coppice::exit(c.reason); });
  }

 private:
  std::vector<coppice::From> held_;
};

inline coppice::RuntimeOptions workers(unsigned n) {
  coppice::RuntimeOptions o;
  o.workers = n;
  return o;
}
inline coppice::RuntimeOptions quiet(coppice::RuntimeOptions o) {
  o.logger = [](std::string_view) {};
  return o;
}

// A host's event loop in miniature: one epoll set holding the bridge's fd.
class HostLoop {
 public:
  explicit HostLoop(coppice::HostBridge& bridge) : bridge_(bridge), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, bridge.fd(), &ev);
  }
  ~HostLoop() { ::close(epoll_); }
  HostLoop(const HostLoop&) = delete;
  HostLoop& operator=(const HostLoop&) = delete;

  // Waits (at most `bound`) for the fd to become readable; true if it did. Does not drain.
  bool readable(std::chrono::milliseconds bound = wait_time) {
    epoll_event ev{};
    return ::epoll_wait(epoll_, &ev, 1, static_cast<int>(bound.count())) == 1;
  }
  // Waits on the fd and drains until `done()` holds; false if it did not within wait_time.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (readable(left)) bridge_.drain();
    }
    return true;
  }

 private:
  coppice::HostBridge& bridge_;
  int epoll_;
};

}  // namespace host_test
