// Runtime: the handle a program holds. Owns the workers, the process table, names and timers.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/options.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/signals.hpp"
#include "coppice/timer.hpp"
#include "coppice/detail/runtime_core.hpp"

namespace coppice {

// One runtime: its own workers, processes, names and timers; nothing is shared with another
// runtime in the same program. Every member may be called from any thread, inside a process
// or not. Destroying it stops every process (each is killed, its destructor runs, its links
// and monitors fire) and joins every thread.
//
// Each runtime alive in the program has its own tag (1-255) in every pid it hands out; the
// constructor throws std::length_error when 255 are alive. A pid of another runtime names
// nobody here: a send or exit signal to it is dropped, as one to a dead pid is; a call, link
// or register_name with it is an ErrorKind::foreign_pid error; a monitor of it gets a Down
// `noconnection` at once. A runtime never hands out the same pid twice (2^56 spawns, then a
// spawn throws std::length_error: the process table is full).
class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Spawns a process of class P built from args (or whose body is the coroutine f(args...)).
  // Once stop() has begun, a spawn is refused: the object is built and destroyed again on
  // the calling thread (its destructor runs before spawn returns) and spawn returns the null
  // Pid{}, which is false in a condition. A refused pid needs no other check: a send to Pid{}
  // is dropped, link(Pid{}) fails with invalid_argument and monitor(Pid{}) gives Down noproc
  // at once, as for a process that died. try_spawn says why instead: Error runtime_stopped.
  // Both forms, because most spawns happen while the runtime runs and a Pid is what every
  // other call takes, while a host that spawns as the program shuts down wants the reason.
  template <class P, class... Args>
  Pid spawn(Args&&... args) {
    return detail::spawn_in<P>(*core_, {}, std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires detail::AsyncBody<F, Args...>
  Pid spawn(F&& f, Args&&... args) {
    using Body = detail::BodyProcess<std::decay_t<F>, std::decay_t<Args>...>;
    return detail::spawn_in<Body>(*core_, {}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class P, class... Args>
  Result<Pid> try_spawn(Args&&... args) {
    return spawned(spawn<P>(std::forward<Args>(args)...));
  }
  template <class F, class... Args>
    requires detail::AsyncBody<F, Args...>
  Result<Pid> try_spawn(F&& f, Args&&... args) {
    return spawned(spawn(std::forward<F>(f), std::forward<Args>(args)...));
  }

  template <class T>
  void send(Pid to, T&& value) {
    detail::send_envelope(*core_, to, Message::of(std::forward<T>(value)).release());
  }
  void send(Pid to, Message message) { detail::send_envelope(*core_, to, message.release()); }
  template <class T>
  Status send(std::string_view name, T&& value) {
    return detail::send_envelope_to_name(*core_, name, Message::of(std::forward<T>(value)).release());
  }
  template <class T>
  void reply(const From& to, T&& value) {
    detail::send_reply_envelope(*core_, to, Message::of(std::forward<T>(value)).release());
  }

  void exit(Pid pid, ExitReason reason);

  Status register_name(std::string name, Pid pid);
  Status unregister_name(std::string_view name);
  Pid whereis(std::string_view name) const;

  template <class T>
  TimerRef send_after(std::chrono::nanoseconds delay, Pid to, T&& value) {  // rounded up to whole ms
    return detail::start_timer(*core_, detail::whole_milliseconds(delay), to, Message::of(std::forward<T>(value)).release());
  }
  bool cancel_timer(TimerRef timer);

  bool alive(Pid pid) const;
  // Blocks a plain thread until `pid` answers; blocking_in_process on a worker thread
  // (a process uses co_await coppice::process_info instead). Like a blocking call, it makes an
  // Inbox for the one request (GenServer::call(Runtime&, ...) says what that costs). The
  // timeout in any std::chrono unit, rounded up to whole milliseconds.
  Result<ProcessInfo> process_info(Pid pid, std::chrono::milliseconds timeout = default_call_timeout);
  template <class Rep, class Period>
  Result<ProcessInfo> process_info(Pid pid, std::chrono::duration<Rep, Period> timeout) {
    return process_info(pid, detail::whole_milliseconds(timeout));
  }
  std::size_t process_count() const;
  unsigned worker_count() const;
  const RuntimeOptions& options() const;

  // Stops every process (each is killed: its destructor runs, its links and monitors fire)
  // and joins the workers; from the moment it begins, every spawn is refused (see spawn).
  // Idempotent, and safe from several threads at once: each caller returns once the runtime
  // is stopped. Called by a process of this runtime (which cannot wait for its own worker),
  // it begins the stop on a thread of its own and returns at once; the calling process is
  // killed with the others at its next scheduling point, and a later stop() or the
  // destructor, on any other thread, waits for that stop to end. The destructor calls stop();
  // destroying a Runtime from one of its own processes is a fatal error (abort, with a line
  // on standard error): the process would be freed under itself.
  void stop();

 private:
  // The engine reaches the core through detail::core_of; a user never needs it.
  friend detail::RuntimeCore& detail::core_of(Runtime& runtime);
  static Result<Pid> spawned(Pid pid);
  std::unique_ptr<detail::RuntimeCore> core_;
};

}  // namespace coppice
