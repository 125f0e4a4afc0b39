// What the runtime tests share: a scriptable Puppet process, the messages that drive it, and waits on an Inbox.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coppice/coppice.hpp"

namespace coppice_test {

using namespace std::chrono_literals;

// Every wait in these tests is for something that must happen; this only bounds a failure.
inline constexpr std::chrono::milliseconds wait_time{5000};

// ---- Requests a Puppet answers (by reply when sent with call, silently otherwise) -------

struct Done {};
struct Ping {};
struct Pong {
  coppice::Pid pid;
};
struct Die {  // the puppet ends itself with exit(reason)
  coppice::ExitReason reason;
};
struct Throw {  // handle() throws PuppetError(what)
  std::string what;
};
struct LinkTo {  // reply: Outcome
  coppice::Pid pid;
};
struct UnlinkFrom {  // reply: Done
  coppice::Pid pid;
};
struct MonitorOf {  // reply: coppice::Ref
  coppice::Pid pid;
};
struct DemonitorRef {  // reply: bool (still active)
  coppice::Ref ref;
  bool flush = false;
};
struct TrapExits {  // reply: Done
  bool on;
};
struct SendExit {  // exit(to, reason); reply: Done
  coppice::Pid to;
  coppice::ExitReason reason;
};
struct SendInt {  // send(to, value); reply: Done
  coppice::Pid to;
  int value;
};
struct Outcome {
  std::optional<coppice::Error> error;
};

// ---- What a Puppet saw, forwarded to its observer -------------------------------------

struct SawExit {
  coppice::Pid by;
  coppice::Exit exit;
};
struct SawDown {
  coppice::Pid by;
  coppice::Down down;
};
struct SawInt {
  coppice::Pid by;
  int value;
};

struct PuppetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A process the test drives by message: links, monitors, exits, traps, and reports what
// arrives (Exit, Down, int) to its observer.
class Puppet : public coppice::Process {
 public:
  explicit Puppet(coppice::Pid observer = {}, bool trap = false) : observer_(observer), trap_(trap) {}

  void init() override {
    if (trap_) coppice::trap_exit(true);
  }

  void handle(coppice::Message m) override {
    const std::optional<coppice::From> from = m.reply_to();
    auto answer = [&](auto value) {
      if (from) coppice::reply(*from, std::move(value));
    };
    const coppice::Pid me = coppice::self();
    m.match([&](Ping&) { answer(Pong{me}); },
            [&](Die& d) { coppice::exit(d.reason); },
            [&](Throw& t) { throw PuppetError(t.what); },
            [&](LinkTo& l) {
              coppice::Status s = coppice::link(l.pid);
              answer(Outcome{s ? std::nullopt : std::optional<coppice::Error>(s.error())});
            },
            [&](UnlinkFrom& u) {
              coppice::unlink(u.pid);
              answer(Done{});
            },
            [&](MonitorOf& mo) { answer(coppice::monitor(mo.pid)); },
            [&](DemonitorRef& d) { answer(coppice::demonitor(d.ref, {.flush = d.flush})); },
            [&](TrapExits& t) {
              coppice::trap_exit(t.on);
              answer(Done{});
            },
            [&](SendExit& s) {
              coppice::exit(s.to, s.reason);
              answer(Done{});
            },
            [&](SendInt& s) {
              coppice::send(s.to, s.value);
              answer(Done{});
            },
            [&](coppice::Exit& e) { tell(SawExit{me, e}); },
            [&](coppice::Down& d) { tell(SawDown{me, d}); },
            [&](int& n) { tell(SawInt{me, n}); });
  }

 private:
  template <class T>
  void tell(T value) {
    if (observer_) coppice::send(observer_, std::move(value));
  }
  coppice::Pid observer_;
  bool trap_;
};

// ---- Runtime options ----------------------------------------------------------------------
// (Designated initializers would read better, but GCC's -Wmissing-field-initializers flags
// every RuntimeOptions{.workers = 2} under -Werror.)

inline coppice::RuntimeOptions workers(unsigned n, unsigned messages_per_turn = 100) {
  coppice::RuntimeOptions o;
  o.workers = n;
  o.messages_per_turn = messages_per_turn;
  return o;
}
// For tests that crash processes on purpose: no crash reports on standard error.
inline coppice::RuntimeOptions quiet(coppice::RuntimeOptions o) {
  o.logger = [](std::string_view) {};
  return o;
}

// ---- Waiting on an Inbox ---------------------------------------------------------------

// The Down for `ref`, taken out of the inbox wherever it is in the queue.
inline std::optional<coppice::Down> down_for(coppice::Inbox& inbox, coppice::Ref ref,
                                             std::chrono::nanoseconds timeout = wait_time) {
  auto is_it = [ref](const coppice::Message& m) {
    const auto* d = m.get_if<coppice::Down>();
    return d != nullptr && d->ref == ref;
  };
  std::optional<coppice::Message> m = inbox.receive_if(is_it, timeout);
  if (!m) return std::nullopt;
  return m->take<coppice::Down>();
}

// Monitors `pid` and waits for its end; the reason, or nullopt if it did not end in time.
// `pid` must be alive when this is called (a dead one gives noproc).
inline std::optional<coppice::ExitReason> exit_reason_of(coppice::Inbox& inbox, coppice::Pid pid) {
  std::optional<coppice::Down> d = down_for(inbox, inbox.monitor(pid));
  if (!d) return std::nullopt;
  return d->reason;
}

// The first Exit message from `from`.
inline std::optional<coppice::Exit> exit_from(coppice::Inbox& inbox, coppice::Pid from,
                                              std::chrono::nanoseconds timeout = wait_time) {
  auto is_it = [from](const coppice::Message& m) {
    const auto* e = m.get_if<coppice::Exit>();
    return e != nullptr && e->from == from;
  };
  std::optional<coppice::Message> m = inbox.receive_if(is_it, timeout);
  if (!m) return std::nullopt;
  return m->take<coppice::Exit>();
}

// True if `pid` answers a Ping: alive, and done with everything queued before the Ping.
inline bool answers(coppice::Inbox& inbox, coppice::Pid pid) {
  coppice::Result<Pong> r = inbox.call<Pong>(pid, Ping{}, wait_time);
  return r.has_value() && r->pid == pid;
}

// A pid that is certainly dead: a process that has already ended.
inline coppice::Pid dead_pid(coppice::Runtime& rt, coppice::Inbox& inbox) {
  coppice::Pid p = rt.spawn<Puppet>();
  coppice::Ref ref = inbox.monitor(p);
  inbox.send(p, Die{coppice::ExitReason::normal()});
  std::optional<coppice::Down> d = down_for(inbox, ref);
  EXPECT_TRUE(d.has_value()) << "a puppet told to die did not die";
  return p;
}

// A logger that keeps what it is given, for tests that check a report was made.
struct LogLines {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    };
  }
  bool contains(std::string_view text) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

inline coppice::RuntimeOptions logging_to(LogLines& log, coppice::RuntimeOptions o) {
  o.logger = log.sink();
  return o;
}

}  // namespace coppice_test
