// Task (Elixir's Task): a function run in a process of its own, linked to and monitored by
// the process that started it (its owner), which awaits the function's result.
//
//   auto t = coppice::task::async([] { return 6 * 7; });   // inside a process
//   ...                                                    // the task runs meanwhile
//   coppice::Result<int> r = co_await t.await();           // 42, or why there is none
//
// The function is a plain callable returning T, or a coroutine returning Async<T>. What each
// operation does, case by case, is SEMANTICS.md section 6; tests/otp/task/ pins it down.
//
// For the supervisor's author: a child spec for a task (Elixir's `use Task`) defaults to
// restart temporary (SEMANTICS.md 3.11), and its start function is task::start_link.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"  // Shutdown, infinity
#include "coppice/inbox.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/detail/task_process.hpp"

namespace coppice {

// Elixir's default for await, yield and shutdown.
inline constexpr std::chrono::milliseconds default_task_timeout{5000};

template <class T>
class Task;

// Elixir's %Task{}: a task's pid, its owner, and the owner's monitor of it. A value: copy it
// freely, but only the owner may await, yield, shut down or ignore it (invalid_argument
// otherwise, where Elixir raises ArgumentError), and its outcome can be taken only once
// (a second await waits for its timeout, as in Elixir).
template <class T>
class Task {
 public:
  using value_type = T;

  Task() = default;
  explicit Task(detail::TaskRefs refs) : refs_(refs) {}

  Pid pid() const { return refs_.pid; }
  Pid owner() const { return refs_.owner; }
  Ref ref() const { return refs_.monitor; }  // the monitor: the ref of the task's Down
  From reply_to() const { return From{refs_.owner, refs_.alias}; }  // where the task replies
  const detail::TaskRefs& refs() const { return refs_; }

  // The task's value. Errors: timeout (the task keeps running, still linked; its monitor and
  // alias are removed, so neither its reply nor its Down will arrive); exited with the
  // task's reason if it ended without replying (reason normal too, SEMANTICS.md scenario
  // 91); invalid_argument when called by a process other than the owner. Never blocks the
  // worker. Elixir's await exits the caller where this returns an error.
  detail::TaskAwaiter<T, false> await(std::chrono::nanoseconds timeout = default_task_timeout) const {
    return {refs_, timeout};
  }
  // The same for a task started by a plain thread with task::async(inbox, ...): blocks it.
  Result<T> await(Inbox& owner, std::chrono::nanoseconds timeout = default_task_timeout) const {
    return detail::task_value<T>(detail::await_task(owner, refs_, timeout));
  }
  // Elixir's yield: the value, exited with the task's reason, or nullopt when it has not
  // answered in time (it stays monitored: yield or await may be called again).
  detail::TaskAwaiter<T, true> yield(std::chrono::nanoseconds timeout = default_task_timeout) const {
    return {refs_, timeout};
  }
  // Unlinks the task, sends it exit shutdown (Shutdown::brutal_kill(): kill) and waits for it
  // to end, killing it if it outlives a Shutdown::timeout. The value if its reply raced in;
  // nullopt if it ended by this shutdown; exited with its reason if it ended otherwise. After
  // an await the reply is taken, and a task replies before it ends: once it is gone this gives
  // exited noproc, but right after the await it may still be finishing, and this gives exited
  // normal or (the signal came first) nullopt, as Elixir's does. Like every exit signal, the
  // shutdown acts at the task's next scheduling point: a function that never returns nor
  // awaits cannot be stopped (SEMANTICS.md 0).
  Async<std::optional<Result<T>>> shutdown(Shutdown how = Shutdown::timeout(default_task_timeout)) const {
    return detail::shutdown_as<T>(refs_, how);
  }
  // Unlinks and forgets the task (it runs on; its reply and Down are dropped). Returns what
  // had already arrived: the value, exited with the task's reason, or nullopt.
  std::optional<Result<T>> ignore() const { return detail::task_value<T>(detail::ignore_task(refs_)); }

 private:
  detail::TaskRefs refs_;
};

namespace task {

// Runs f(args...) in a new process, linked to and monitored by the running process (both at
// once: it cannot die unobserved), which owns the task. Because of the link, a task that
// crashes kills a non-trapping owner (a trapping one gets an Exit), and an owner that
// crashes kills the task. The task's reply comes before its Down (normal).
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
Task<detail::task_value_t<F, Args...>> async(F&& f, Args&&... args) {
  detail::TaskRefs refs;
  const From reply_to = alias();  // before the spawn: the reply cannot come first
  refs.owner = reply_to.pid;
  refs.alias = reply_to.ref;
  refs.pid = detail::spawn_in<detail::TaskProcessFor<F, Args...>>(
      detail::current_core(), detail::SpawnOptions{.link = true, .monitor = true, .monitor_ref = &refs.monitor},
      reply_to, false, std::forward<F>(f), std::forward<Args>(args)...);
  return Task<detail::task_value_t<F, Args...>>(refs);
}

// A task owned by a plain thread's inbox; await it with task.await(inbox, timeout). It is
// monitored but not linked: an inbox traps every exit and cannot crash, and when it goes it
// exits normal, which a linked task would ignore, so a link would only leave Exit messages
// behind. The task waits to run its function until the inbox monitors it, so that its Down
// carries its real reason even when it ends at once.
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
Task<detail::task_value_t<F, Args...>> async(Inbox& owner, F&& f, Args&&... args) {
  detail::TaskRefs refs;
  refs.owner = owner.pid();
  refs.alias = detail::inbox_alias(owner);
  refs.pid = detail::spawn_in<detail::TaskProcessFor<F, Args...>>(detail::core_of(owner.runtime()), detail::SpawnOptions{},
                                                                  From{refs.owner, refs.alias}, true,
                                                                  std::forward<F>(f), std::forward<Args>(args)...);
  refs.monitor = owner.monitor(refs.pid);
  owner.send(refs.pid, detail::TaskGo{});
  return Task<detail::task_value_t<F, Args...>>(refs);
}

// Fire and forget: runs f(args...) in a new process linked to the running one; nobody is
// told its result. The start function of a task under a supervisor (restart temporary).
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
Pid start_link(F&& f, Args&&... args) {
  return detail::spawn_in<detail::TaskProcessFor<F, Args...>>(detail::current_core(), detail::SpawnOptions{.link = true},
                                                              From{}, false, std::forward<F>(f),
                                                              std::forward<Args>(args)...);
}
// Fire and forget, linked to nobody.
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
Pid start(F&& f, Args&&... args) {
  return detail::spawn_in<detail::TaskProcessFor<F, Args...>>(detail::current_core(), detail::SpawnOptions{}, From{},
                                                              false, std::forward<F>(f), std::forward<Args>(args)...);
}
// The same from any thread.
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
Pid start(Runtime& runtime, F&& f, Args&&... args) {
  return detail::spawn_in<detail::TaskProcessFor<F, Args...>>(detail::core_of(runtime), detail::SpawnOptions{}, From{}, false,
                                                              std::forward<F>(f), std::forward<Args>(args)...);
}

// Elixir's await_many: every task's value, in the order of `tasks`, within one `timeout` for
// all. The first task to end without replying, or the timeout, ends the wait with its error
// (exited or timeout); the remaining tasks are then demonitored and unaliased, and run on.
// invalid_argument if the running process does not own every task.
template <class T>
Async<std::conditional_t<std::is_void_v<T>, Status, Result<std::vector<T>>>> await_many(
    const std::vector<Task<T>>& tasks, std::chrono::nanoseconds timeout = default_task_timeout) {
  std::vector<detail::TaskRefs> refs;
  refs.reserve(tasks.size());
  for (const Task<T>& t : tasks) refs.push_back(t.refs());
  Async<Result<std::vector<Message>>> wait = detail::await_tasks(std::move(refs), timeout);
  Result<std::vector<Message>> answers = co_await wait;
  if (!answers) co_return answers.error();
  if constexpr (std::is_void_v<T>) {
    co_return Status{};
  } else {
    std::vector<T> values;
    values.reserve(answers->size());
    for (Message& m : answers.value()) values.push_back(m.template take<T>());
    co_return std::move(values);
  }
}

}  // namespace task

}  // namespace coppice
