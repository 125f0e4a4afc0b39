// A parent server for the rules and scenario tests: Owner's requests, plus user callbacks
// that tell the observer everything they see (so a test can check what never reaches them),
// and switches that make its init or terminate fail.
#pragma once

#include <any>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "otp/parent/parent_support.hpp"

namespace coppice_test::par {

using coppice::From;

// Told to the observer.
struct UserCall {  // the user's catch-all handle_call(Message) got a request
  std::string type;
};
struct UserInfo {  // the user's handle_info(Message) got a message
  std::string type;
  Pid exit_from;  // for an Exit: its sender
};
struct Terminating {  // terminate runs
  std::size_t children = 0;  // in the table
  std::size_t running = 0;   // of those, alive
  ExitReason reason;
};
struct ChildrenNow {  // the answer to ReportChildren
  std::vector<ParentChild> children;
};

// Requests.
struct StopWith {  // call: the handler returns stop_with(reason, Ok{})
  ExitReason reason;
};
struct AskSelf {};         // call: ParentClient::children on the parent itself; reply: the error
struct ReportChildren {};  // cast: tell the observer ChildrenNow

struct RecorderOptions {
  ParentOptions parent{};
  std::vector<ParentChildSpec> at_init{};  // started by init with start_all_children
  bool raise_in_init = false;              // init throws after starting at_init
  bool fail_init = false;                  // init returns error after starting at_init
  bool raise_in_terminate = false;
  std::optional<ParentChildSpec> start_in_terminate{};  // terminate starts this child
};

class Recorder : public DrivenParent<Recorder> {
 public:
  using calls = coppice::Protocol<StartChild, StartAll, ShutdownChild, RestartChild, ShutdownAll, ReturnChildren,
                                  Children, StopWith, AskSelf>;
  using casts = coppice::Protocol<ReportChildren>;

  Recorder(Pid observer, RecorderOptions options)
      : DrivenParent(options.parent), observer_(observer), options_(std::move(options)) {}
  using DrivenParent::handle_call;

  Async<Init> init() {
    if (!options_.at_init.empty()) {
      auto work = start_all_children(std::move(options_.at_init));
      std::vector<Pid> pids = co_await work;
      (void)pids;
    }
    if (options_.raise_in_init) throw std::runtime_error("init raised after starting its children");
    if (options_.fail_init) co_return error(ExitReason::other("init failed after starting its children"));
    co_return ok();
  }

  coppice::CallReturn<Ok> handle_call(StopWith s) { return stop_with(s.reason, Ok{}); }
  Async<coppice::Error> handle_call(AskSelf) {
    auto work = ParentClient::children(coppice::self());
    Result<std::vector<ParentChild>> r = co_await work;
    if (r) co_return coppice::Error(ErrorKind::invalid_argument, "children() on itself answered");
    co_return r.error();
  }
  // Every other request: it must never be one of ParentClient's.
  coppice::Error handle_call(Message m, const From&) {
    coppice::send(observer_, UserCall{m.type_name()});
    return coppice::Error(ErrorKind::invalid_argument, "the user's handle_call got " + m.type_name());
  }

  void handle_cast(ReportChildren) { coppice::send(observer_, ChildrenNow{children()}); }

  void handle_info(Message m) {
    const coppice::Exit* e = m.get_if<coppice::Exit>();
    coppice::send(observer_, UserInfo{m.type_name(), e != nullptr ? e->from : Pid{}});
  }

  void handle_stopped_children(StoppedChildren stopped) { coppice::send(observer_, SawStopped{std::move(stopped)}); }

  Async<void> terminate(ExitReason reason) {
    std::size_t running = 0;
    const std::vector<ParentChild> kids = children();
    for (const ParentChild& c : kids)
      if (c.pid && coppice::is_alive(c.pid)) ++running;
    coppice::send(observer_, Terminating{kids.size(), running, reason});
    if (options_.start_in_terminate) {
      auto work = start_child(*options_.start_in_terminate);
      Result<Pid> late = co_await work;
      (void)late;
    }
    if (options_.raise_in_terminate) throw std::runtime_error("terminate raised");
  }

 private:
  Pid observer_;
  RecorderOptions options_;
};

inline RecorderOptions with_parent(ParentOptions parent) {
  RecorderOptions o;
  o.parent = parent;
  return o;
}
inline RecorderOptions starting(std::vector<ParentChildSpec> at_init) {
  RecorderOptions o;
  o.at_init = std::move(at_init);
  return o;
}
inline ParentOptions intensity(std::optional<int> restarts, std::chrono::milliseconds period = 5000ms) {
  ParentOptions o;
  o.intensity = restarts;
  o.period = period;
  return o;
}

// The parent's children, asked from the inbox itself: its reply comes after everything the
// parent sent the inbox before (a SawStopped, a Terminated), so a test can then check what
// did not come.
inline std::vector<ParentChild> children_via(Inbox& inbox, Pid parent) {
  Result<std::vector<ParentChild>> r = inbox.call<std::vector<ParentChild>>(parent, Children{}, wait_time);
  EXPECT_TRUE(r.has_value()) << (r ? std::string() : r.error().to_string());
  return r ? *r : std::vector<ParentChild>{};
}
inline std::vector<std::string> ids_of(const std::vector<ParentChild>& children) {
  std::vector<std::string> ids;
  for (const ParentChild& c : children) ids.push_back(c.id);
  return ids;
}
inline std::vector<std::string> ids_of(const StoppedChildren& stopped) {
  std::vector<std::string> ids;
  for (const StoppedChild& c : stopped) ids.push_back(c.id());
  return ids;
}
inline Pid pid_in(const std::vector<ParentChild>& children, std::string_view id) {
  for (const ParentChild& c : children)
    if (c.id == id) return c.pid;
  return Pid{};
}
// Takes every E queued now; how many there were.
template <class E>
std::size_t drain(Inbox& inbox) {
  std::size_t n = 0;
  while (inbox.receive<E>(0ms)) ++n;
  return n;
}
// True if nothing of type E is in the inbox now (use after children_via).
template <class E>
bool nothing_queued(Inbox& inbox) {
  return !inbox.receive<E>(0ms).has_value();
}

}  // namespace coppice_test::par
