// What the Supervisor tests share: small GenServer workers that tell an observer when they
// start and terminate, scripts that make their init fail on demand, and waits on an Inbox.
#pragma once

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "coppice/supervisor.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test::sup {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ChildCounts;
using coppice::ChildInfo;
using coppice::ChildSpec;
using coppice::ChildType;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Inbox;
using coppice::Init;
using coppice::Message;
using coppice::NoReply;
using coppice::Pid;
using coppice::Restart;
using coppice::Result;
using coppice::Shutdown;
using coppice::Status;
using coppice::Strategy;
using coppice::Supervisor;
using coppice::SupervisorFlags;

// Sent by a worker's init to its observer, once it is about to return ok.
struct Started {
  std::string id;
  Pid pid;
};
// Sent by a worker's terminate (it runs on a shutdown only when the worker traps exits).
struct Terminated {
  std::string id;
  Pid pid;
  ExitReason reason;
};
// Sent by a worker's init just before it returns an error (its script said to fail).
struct InitFailed {
  std::string id;
};
struct Crash {  // cast: the worker stops with the reason
  ExitReason reason;
};
struct UnlinkFromParent {};  // cast: the worker unlinks itself from its supervisor
struct Whoami {};            // call: the worker's pid
struct Never {};
struct CrashNow {};

// How a worker's init goes, shared with the test so that it can change between restarts.
struct Script {
  std::atomic<int> fail{0};         // the next `fail` inits return an error; negative: all of them
  std::atomic<bool> ignore{false};  // init returns ignore
  std::atomic<bool> raise{false};   // init throws
  std::chrono::milliseconds fail_after{0};  // a failing init first waits this long (a receive timeout)
};

struct WorkerOptions {
  bool trap = false;  // trap exits: terminate runs when the supervisor stops it
  std::shared_ptr<Script> script{};
  bool crash_at_once = false;  // stops with "storm" right after init (handle_continue)
};

class Worker : public GenServer<Worker> {
 public:
  using calls = coppice::Protocol<Whoami>;
  using casts = coppice::Protocol<Crash, UnlinkFromParent>;
  Worker(Pid observer, std::string id, WorkerOptions options)
      : observer_(observer), id_(std::move(id)), options_(std::move(options)) {}

  Async<Init> init() {
    if (options_.trap) coppice::trap_exit(true);
    if (Script* s = options_.script.get()) {
      if (s->raise) throw std::runtime_error("init of " + id_ + " raised");
      if (s->ignore) co_return ignore();
      const int f = s->fail.load();
      if (f != 0) {
        if (f > 0) s->fail.fetch_sub(1);
        if (s->fail_after.count() > 0) {
          auto wait = coppice::receive<Never>(s->fail_after);
          std::optional<Never> n = co_await wait;
          (void)n;
        }
        coppice::send(observer_, InitFailed{id_});
        co_return error(ExitReason::other("init of " + id_ + " failed"));
      }
    }
    coppice::send(observer_, Started{id_, coppice::self()});
    if (options_.crash_at_once) co_return ok(continue_with(CrashNow{}));
    co_return ok();
  }
  NoReply handle_continue(CrashNow) { return stop_with(ExitReason::other("storm")); }
  Pid handle_call(Whoami) { return coppice::self(); }
  NoReply handle_cast(Crash c) { return stop_with(c.reason); }
  void handle_cast(UnlinkFromParent) {
    for (Pid p : coppice::self_info().links) coppice::unlink(p);
  }
  void terminate(const ExitReason& reason) { coppice::send(observer_, Terminated{id_, coppice::self(), reason}); }

 private:
  Pid observer_;
  std::string id_;
  WorkerOptions options_;
};

// (Not designated initializers: GCC's -Wmissing-field-initializers flags them.)
inline WorkerOptions trapping() {
  WorkerOptions o;
  o.trap = true;
  return o;
}
inline WorkerOptions scripted(std::shared_ptr<Script> script, bool trap = false) {
  WorkerOptions o;
  o.trap = trap;
  o.script = std::move(script);
  return o;
}

inline WorkerOptions crashing() {
  WorkerOptions o;
  o.crash_at_once = true;
  return o;
}

inline ChildSpec worker(std::string id, Pid observer, WorkerOptions options = {}) {
  std::string name = id;
  return coppice::child<Worker>(std::move(id), observer, std::move(name), std::move(options));
}

// A process that traps exits and ignores every signal but kill (a child that will not stop).
class Stubborn : public coppice::Process {
 public:
  Stubborn(Pid observer, std::string id) : observer_(observer), id_(std::move(id)) {}
  void init() override {
    coppice::trap_exit(true);
    coppice::send(observer_, Started{id_, coppice::self()});
  }
  void handle(Message) override {}

 private:
  Pid observer_;
  std::string id_;
};

inline Async<Result<Pid>> start_stubborn(Pid observer, std::string id) {
  co_return coppice::spawn_link<Stubborn>(observer, std::move(id));
}

// A child spec with a hand-written start function (the supervisor's process runs it).
inline ChildSpec stubborn(std::string id, Pid observer) {
  ChildSpec spec;
  spec.id = id;
  spec.start = [observer, id](const coppice::StartArgs&) { return start_stubborn(observer, id); };
  return spec;
}

// A child spec whose start returns `error` (no process is started).
inline Async<Result<Pid>> fail_to_start(coppice::Error error) { co_return error; }
inline ChildSpec failing(std::string id, coppice::Error error) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.start = [error](const coppice::StartArgs&) { return fail_to_start(error); };
  return spec;
}

inline SupervisorFlags flags(Strategy strategy, int intensity = 3, std::chrono::milliseconds period = 5000ms) {
  SupervisorFlags f;
  f.strategy = strategy;
  f.intensity = intensity;
  f.period = period;
  return f;
}

// ---- Waiting on the observer's Inbox -------------------------------------------------------

// The next Started of `id` (any id when empty).
inline std::optional<Started> started(Inbox& inbox, std::string_view id = {}) {
  auto is_it = [id](const Message& m) {
    const auto* s = m.get_if<Started>();
    return s != nullptr && (id.empty() || s->id == id);
  };
  std::optional<Message> m = inbox.receive_if(is_it, wait_time);
  if (!m) return std::nullopt;
  return m->take<Started>();
}
inline Pid started_pid(Inbox& inbox, std::string_view id) {
  std::optional<Started> s = started(inbox, id);
  EXPECT_TRUE(s.has_value()) << "no Started from " << id;
  return s ? s->pid : Pid{};
}
inline std::optional<Terminated> terminated(Inbox& inbox, std::string_view id = {}) {
  auto is_it = [id](const Message& m) {
    const auto* t = m.get_if<Terminated>();
    return t != nullptr && (id.empty() || t->id == id);
  };
  std::optional<Message> m = inbox.receive_if(is_it, wait_time);
  if (!m) return std::nullopt;
  return m->take<Terminated>();
}
// The ids of the next `n` events of type E, in the order they came.
template <class E>
std::vector<std::string> next_ids(Inbox& inbox, std::size_t n) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) {
    std::optional<E> e = inbox.receive<E>(wait_time);
    if (!e) break;
    ids.push_back(e->id);
  }
  return ids;
}
// True if nothing of type E arrives within `quiet`.
template <class E>
bool none_of(Inbox& inbox, std::chrono::milliseconds quiet = 50ms) {
  return !inbox.receive<E>(quiet).has_value();
}

inline ChildCounts counts(std::size_t specs, std::size_t active, std::size_t supervisors, std::size_t workers) {
  return ChildCounts{specs, active, supervisors, workers};
}

// which_children as (id, pid) pairs, newest first.
inline std::vector<std::pair<std::string, Pid>> children_of(coppice::Runtime& rt, Pid sup) {
  std::vector<std::pair<std::string, Pid>> out;
  Result<std::vector<ChildInfo>> w = Supervisor::which_children(rt, sup);
  EXPECT_TRUE(w.has_value());
  if (!w) return out;
  for (const ChildInfo& c : *w) out.emplace_back(c.id, c.pid);
  return out;
}

// Waits for `pid` to end; its reason.
inline std::optional<ExitReason> end_of(Inbox& inbox, Pid pid) { return exit_reason_of(inbox, pid); }

}  // namespace coppice_test::sup
