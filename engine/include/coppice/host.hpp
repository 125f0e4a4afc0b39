// HostBridge: how a host's own threads (an event loop, an I/O thread) reach processes
// without ever blocking: calls completed through callbacks or futures, one eventfd to watch.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "coppice/detail/call_wait.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/signals.hpp"

namespace coppice {

namespace detail {
struct HostState;
struct InboxLife;

// How one request ends: told its Result once, by drain(). Move-only (it may hold a promise).
class HostCompletion {
 public:
  virtual ~HostCompletion() = default;
  virtual void complete(Result<Message> result) = 0;
};

template <class R, class F>
class HostCallback final : public HostCompletion {
 public:
  HostCallback(F done, Pid to) : done_(std::move(done)), to_(to) {}
  void complete(Result<Message> result) override { done_(reply_as<R>(std::move(result), to_)); }

 private:
  F done_;
  Pid to_;
};

template <class R>
class HostPromise final : public HostCompletion {
 public:
  explicit HostPromise(Pid to) : to_(to) {}
  std::future<Result<R>> future() { return promise_.get_future(); }
  void complete(Result<Message> result) override { promise_.set_value(reply_as<R>(std::move(result), to_)); }

 private:
  std::promise<Result<R>> promise_;
  Pid to_;
};
}  // namespace detail

// What a bridge does with what reaches its pid that is not the answer to one of its calls.
// Both run inside drain(), on the draining thread; unset, what they would get is dropped.
struct HostHandlers {
  // Plain messages sent to pid(), and Exit messages (a bridge traps exits, as an Inbox does).
  std::function<void(Message)> on_message{};
  // The Down of a monitor taken with monitor(); unset: the Down goes to on_message.
  std::function<void(const Down&)> on_down{};
};

// A mailbox with a pid for the host's threads that never blocks them. Processes see it as a
// process (they send to it, monitor it, link to it). When something arrives, the bridge's
// eventfd, fd(), becomes readable; a host puts it in its epoll set or Asio loop and calls
// drain(), which takes what has arrived without waiting, completes the calls it answers and
// hands the rest to the handlers. A call's outcomes are an in-runtime call's: the reply, or
// timeout, noproc, exited (the server's exit reason), runtime_stopped, foreign_pid,
// calling_self. A deadline is a runtime timer that sends to the bridge, so a timeout wakes
// the fd like a reply does: the host never polls.
//
// Threads: every operation may be called from any thread that is not a worker of the
// runtime, from several at once (a mutex orders them). Callbacks, promises and handlers run
// inside drain(), on the draining thread, with no lock held: they may call this bridge again
// (a new call from a callback completes in a later drain). Two threads draining at once run
// callbacks on both; a host that wants one thread for them drains from that thread only.
// Every callback runs exactly once, including those of calls refused at once (noproc for a
// name nobody holds, calling_self, foreign_pid, runtime_stopped), which the next drain runs.
//
// The runtime stopping: a call whose server the stop kills ends as exited (killed), as an
// Inbox call does; once the stop has ended, drain() completes whatever is left with
// runtime_stopped and a later call is runtime_stopped. The bridge may outlive its Runtime:
// once the runtime is destroyed, drain() completes what is left with runtime_stopped and
// runs nothing else, calls complete with runtime_stopped, send is dropped, monitor returns
// an empty Ref, demonitor false; fd() stays valid until the bridge is destroyed.
//
// Destroying the bridge (from no thread inside one of its operations) with calls
// outstanding: their callbacks are destroyed without being called, a future's get() throws
// std::future_error (broken_promise), their timers are cancelled, and replies that come
// later are dropped, as replies to any dead process are.
class HostBridge {
 public:
  // A call's timeout that never ends (no timer is started).
  static constexpr std::chrono::nanoseconds no_timeout = std::chrono::nanoseconds::max();

  explicit HostBridge(Runtime& runtime, HostHandlers handlers = {});
  ~HostBridge();
  HostBridge(const HostBridge&) = delete;
  HostBridge& operator=(const HostBridge&) = delete;

  Pid pid() const { return pid_; }
  // Readable (EPOLLIN) when drain() has something to do. Level-triggered or edge-triggered
  // epoll both work: drain() reads the eventfd before it looks at the mailbox, and every
  // later wake is a new write (a new edge). With Asio, watch it with async_read_some (of the
  // 8-byte counter), not async_wait: Asio's reactor is edge-triggered and drops an edge that
  // comes while no operation waits, which a read, tried at once, does not need.
  int fd() const;
  // Takes what has arrived, without waiting: completes the calls it answers (callbacks and
  // promises), hands plain messages and Downs to the handlers. Returns how many callbacks
  // and handlers it ran.
  std::size_t drain();
  // Calls made and not yet completed (their callbacks not yet run).
  std::size_t outstanding() const;

  // Request and reply without blocking: `done(Result<R>)` runs in a later drain(). The
  // timeout (any std::chrono unit) is rounded up to whole milliseconds, as an Inbox's is.
  template <class R, class Req, class F>
  void call(Pid to, Req&& request, std::chrono::nanoseconds timeout, F&& done) {
    start_call(to, {}, Message::of(std::forward<Req>(request)), timeout,
               std::make_unique<detail::HostCallback<R, std::decay_t<F>>>(std::forward<F>(done), to));
  }
  template <class R, class Req, class F>
  void call(std::string_view name, Req&& request, std::chrono::nanoseconds timeout, F&& done) {
    start_call({}, name, Message::of(std::forward<Req>(request)), timeout,
               std::make_unique<detail::HostCallback<R, std::decay_t<F>>>(std::forward<F>(done), Pid{}));
  }
  // The same, completed through a future: get() returns once some thread has drained the
  // answer (a thread that waits on the future must not be the only one that drains).
  template <class R, class Req>
  std::future<Result<R>> call_future(Pid to, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
    auto done = std::make_unique<detail::HostPromise<R>>(to);
    std::future<Result<R>> future = done->future();
    start_call(to, {}, Message::of(std::forward<Req>(request)), timeout, std::move(done));
    return future;
  }
  template <class R, class Req>
  std::future<Result<R>> call_future(std::string_view name, Req&& request,
                                     std::chrono::nanoseconds timeout = default_call_timeout) {
    auto done = std::make_unique<detail::HostPromise<R>>(Pid{});
    std::future<Result<R>> future = done->future();
    start_call({}, name, Message::of(std::forward<Req>(request)), timeout, std::move(done));
    return future;
  }

  template <class T>
  void send(Pid to, T&& value) {
    send(to, Message::of(std::forward<T>(value)));
  }
  void send(Pid to, Message message);
  // Monitors from the host's thread: the Down comes through drain() to on_down.
  Ref monitor(Pid pid);
  Ref monitor(std::string_view name);
  // Stops a monitor; true if it was active. A Down already arrived and not yet drained is
  // removed with it, so on_down does not see it (unless a drain on another thread took it
  // first: its handler may then still run).
  bool demonitor(Ref ref);

  // The untyped call behind the templates.
  void start_call(Pid to, std::string_view name, Message request, std::chrono::nanoseconds timeout,
                  std::unique_ptr<detail::HostCompletion> done);

 private:
  struct Shared;
  std::shared_ptr<detail::InboxLife> life_;  // shared with the runtime: says if it is gone
  std::unique_ptr<Shared> shared_;
  detail::HostState* state_;
  Pid pid_;
};

}  // namespace coppice
