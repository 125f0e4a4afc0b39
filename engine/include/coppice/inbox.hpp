// Inbox: how a plain thread (main, a test, a host's I/O thread) talks to processes.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"

namespace coppice {

namespace detail {
struct InboxState;
struct InboxLife;
}

// A mailbox with a pid, owned by one plain thread. Processes send to it, link to it and
// monitor it like any process; the thread receives with a timeout and makes blocking
// calls. An inbox traps exits: exit signals, kill included, arrive as Exit messages. It
// must not be used on a worker thread (a process receives with co_await instead).
//
// Once its runtime has stopped, a receive takes what has already arrived (the Exit and Down
// messages of the stop among it) and no longer waits: a thread blocked in receive or call
// when the stop ends is woken, a receive returns nullopt, and a call returns runtime_stopped.
// An Inbox may outlive its Runtime, and be destroyed before or after it: once the runtime is
// destroyed, receive returns nullopt, call and link return runtime_stopped, send and exit
// are dropped, monitor returns an empty Ref, demonitor false, queued 0, and runtime() must
// not be used.
class Inbox {
 public:
  explicit Inbox(Runtime& runtime);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  Pid pid() const { return pid_; }
  Runtime& runtime() { return runtime_; }

  template <class T>
  void send(Pid to, T&& value) {
    send(to, Message::of(std::forward<T>(value)));
  }
  void send(Pid to, Message message);

  template <class T>
  std::optional<T> receive(std::chrono::nanoseconds timeout) {
    auto m = receive_matching(&detail::match_type<T>, nullptr, timeout);
    if (!m) return std::nullopt;
    return m->template take<T>();
  }
  std::optional<Message> receive_any(std::chrono::nanoseconds timeout) {
    return receive_matching(&detail::match_any, nullptr, timeout);
  }
  template <class Pred>
  std::optional<Message> receive_if(const Pred& pred, std::chrono::nanoseconds timeout) {
    return receive_matching(&detail::match_predicate<Pred>, &pred, timeout);
  }

  // Request and reply, blocking this thread for at most `timeout` (any std::chrono unit,
  // rounded up to whole milliseconds). The inbox is reused: a call makes nothing but its
  // request, its monitor and its alias, unlike the forms that take a Runtime& and make an
  // Inbox per call. GenServer::call(inbox, server, request) is the typed form.
  template <class R, class Req>
  Result<R> call(Pid to, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
    return detail::reply_as<R>(
        call_message(to, {}, Message::of(std::forward<Req>(request)), detail::whole_milliseconds(timeout)), to);
  }
  template <class R, class Req>
  Result<R> call(std::string_view name, Req&& request, std::chrono::nanoseconds timeout = default_call_timeout) {
    return detail::reply_as<R>(
        call_message({}, name, Message::of(std::forward<Req>(request)), detail::whole_milliseconds(timeout)), Pid{});
  }

  // Sends an exit signal from this inbox's pid (a trapping receiver sees Exit{pid(), reason}).
  void exit(Pid pid, ExitReason reason);
  Status link(Pid pid);
  void unlink(Pid pid);
  Ref monitor(Pid pid);
  Ref monitor(std::string_view name);
  bool demonitor(Ref ref, DemonitorOptions options = {});
  // Messages received and not yet taken.
  std::size_t queued();

  Result<Message> call_message(Pid to, std::string_view name, Message request, std::chrono::milliseconds timeout);

 private:
  std::optional<Message> receive_matching(detail::ReceiveWait::Match match, const void* context,
                                          std::chrono::nanoseconds timeout);

  Runtime& runtime_;
  std::shared_ptr<detail::InboxLife> life_;  // shared with the runtime: says if it is gone
  detail::InboxState* state_;
  Pid pid_;
};

}  // namespace coppice
