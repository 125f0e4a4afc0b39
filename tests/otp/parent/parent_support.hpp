// What the Parent tests share: a parent server driven by the test (it starts children, runs
// the in-parent API on request and tells an observer what happened), on top of the
// Supervisor tests' workers.
#pragma once

#include <any>
#include <string>
#include <utility>
#include <vector>

#include "coppice/parent.hpp"
#include "otp/supervisor/workers.hpp"

namespace coppice_test::par {

using namespace coppice_test::sup;
using coppice::ChildRef;
using coppice::Parent;
using coppice::ParentChild;
using coppice::ParentChildSpec;
using coppice::ParentClient;
using coppice::ParentOptions;
using coppice::StoppedChild;
using coppice::StoppedChildren;

// Requests the test sends the parent: each runs the in-parent function of the same name.
struct StartChild {
  ParentChildSpec spec;
};
struct StartAll {
  std::vector<ParentChildSpec> specs;
};
struct ShutdownChild {
  ChildRef ref;
};
struct RestartChild {
  ChildRef ref;
};
struct ShutdownAll {
  ExitReason reason;
};
struct ReturnChildren {
  StoppedChildren stopped;
};
struct Children {};
struct Ok {};

// Told to the observer.
struct ParentTerminating {  // terminate runs, with this many children still running
  std::size_t running = 0;
  ExitReason reason;
};
struct SawStopped {  // handle_stopped_children
  StoppedChildren stopped;
};

// A Result as a reply: the value, or the Error (which call<R> returns as its error).
template <class T>
Message as_reply(Result<T> r) {
  if (!r) return Message::of(r.error());
  return Message::of(std::move(*r));
}
inline Message as_reply(Status s) {
  if (!s) return Message::of(s.error());
  return Message::of(Ok{});
}

// A parent whose in-parent API the test drives by calls: each request runs the function of
// the same name (the test parents below derive from it).
template <class D>
class DrivenParent : public Parent<D> {
 public:
  explicit DrivenParent(ParentOptions options) : Parent<D>(options) {}

  Async<Message> handle_call(StartChild r) {
    auto work = this->start_child(std::move(r.spec));
    co_return as_reply(co_await work);
  }
  Async<std::vector<Pid>> handle_call(StartAll r) {
    auto work = this->start_all_children(std::move(r.specs));
    co_return co_await work;
  }
  Async<Message> handle_call(ShutdownChild r) {
    auto work = this->shutdown_child(std::move(r.ref));
    co_return as_reply(co_await work);
  }
  Async<Message> handle_call(RestartChild r) {
    auto work = this->restart_child(std::move(r.ref));
    co_return as_reply(co_await work);
  }
  Async<StoppedChildren> handle_call(ShutdownAll r) {
    auto work = this->shutdown_all(std::move(r.reason));
    co_return co_await work;
  }
  Async<Message> handle_call(ReturnChildren r) {
    auto work = this->return_children(std::move(r.stopped));
    co_return as_reply(co_await work);
  }
  std::vector<ParentChild> handle_call(Children) { return this->children(); }
};

class Owner : public DrivenParent<Owner> {
 public:
  using calls = coppice::Protocol<StartChild, StartAll, ShutdownChild, RestartChild, ShutdownAll, ReturnChildren, Children>;

  Owner(Pid observer, ParentOptions options = {}, std::vector<ParentChildSpec> at_init = {})
      : DrivenParent(options), observer_(observer), at_init_(std::move(at_init)) {}
  using DrivenParent::handle_call;

  Async<Init> init() {
    if (!at_init_.empty()) {
      auto work = start_all_children(std::move(at_init_));
      std::vector<Pid> pids = co_await work;
      (void)pids;
    }
    co_return ok();
  }

  void handle_stopped_children(StoppedChildren stopped) { coppice::send(observer_, SawStopped{std::move(stopped)}); }

  void terminate(const ExitReason& reason) {
    std::size_t running = 0;
    for (const ParentChild& c : children())
      if (c.pid && coppice::is_alive(c.pid)) ++running;
    coppice::send(observer_, ParentTerminating{running, reason});
  }

 private:
  Pid observer_;
  std::vector<ParentChildSpec> at_init_;
};

inline ParentChildSpec pworker(std::string id, Pid observer, WorkerOptions options = {}) {
  return ParentChildSpec(worker(std::move(id), observer, std::move(options)));
}

template <class R, class Req>
Result<R> ask(coppice::Runtime& rt, Pid parent, Req req) {
  return coppice::call<R>(rt, parent, std::move(req), coppice::infinity);
}

}  // namespace coppice_test::par
