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

namespace coppice {

// Elixir's default for await, yield and shutdown.
inline constexpr std::chrono::milliseconds default_task_timeout{5000};

template <class T>
class Task;

namespace detail {

// The reply of a task whose function returns void.
struct TaskDone {};
// Lets a task started for an inbox run its function, once the inbox monitors it.
struct TaskGo {};

// What the owner knows of a task. Elixir's task monitors with `alias: :demonitor`, so that
// one reference is both the monitor and the reply's address. coppice's public alias() draws
// a fresh reference, so the owner holds two: the monitor (its DOWN) and an alias made before
// the spawn (the reply's address). Both are removed together, which is what Elixir's
// `alias: :demonitor` does: after a timeout, shutdown or ignore, neither a late reply nor a
// DOWN reaches the owner.
struct TaskRefs {
  Pid pid;
  Ref monitor;
  Ref alias;
  Pid owner;
};

template <class R>
struct task_result {
  using type = R;
  static constexpr bool coroutine = false;
};
template <class U>
struct task_result<Async<U>> {
  using type = U;
  static constexpr bool coroutine = true;
};
template <class F, class... Args>
using task_return_t = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
// The value a task of f(args...) answers with: f's result, or the T of an Async<T>.
template <class F, class... Args>
using task_value_t = typename task_result<task_return_t<F, Args...>>::type;
template <class T>
using task_reply_t = std::conditional_t<std::is_void_v<T>, TaskDone, T>;

// The process of a task: runs f(args...) (awaiting it if it is a coroutine), replies to its
// owner's alias unless started without an owner (start, start_link), and exits normal. An
// exception from f crashes it with an error reason carrying the exception's type and what().
template <class F, class... Args>
class TaskProcess final : public Process {
 public:
  template <class G, class... A>
  TaskProcess(From reply_to, bool gated, G&& f, A&&... args)
      : reply_to_(reply_to), gated_(gated), f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}

  void init() override { start_activity(run().release(), true); }
  void handle(Message) override {}

 private:
  using R = std::invoke_result_t<F&, Args&...>;
  using T = typename task_result<R>::type;
  static_assert(std::is_void_v<T> || (std::is_object_v<T> && std::is_move_constructible_v<T>),
                "a task's function returns void or a movable value (not a reference)");

  Async<void> run() {
    if (gated_) {
      TaskGo go = co_await receive<TaskGo>();
      (void)go;
    }
    if constexpr (task_result<R>::coroutine) {
      R work = std::apply(f_, args_);
      if constexpr (std::is_void_v<T>) {
        co_await work;
        answer(TaskDone{});
      } else {
        T value = co_await work;
        answer(std::move(value));
      }
    } else if constexpr (std::is_void_v<T>) {
      std::apply(f_, args_);
      answer(TaskDone{});
    } else {
      T value = std::apply(f_, args_);
      answer(std::move(value));
    }
  }

  template <class V>
  void answer(V&& value) {
    if (reply_to_.pid) reply(reply_to_, std::forward<V>(value));
  }

  From reply_to_;
  bool gated_;
  F f_;
  std::tuple<Args...> args_;
};

// The untyped operations (task.cpp). An answer is the task's reply as a Message; an error
// is invalid_argument (not the owner), timeout, or exited (the task's reason).
Error not_owner(const TaskRefs& task, const char* operation, Pid caller);
// A receive's match for the task's reply or Down; the wait's context is the TaskRefs.
bool match_task_answer(const ReceiveWait& w, Envelope& e);
// What await and yield make of what their receive found (nullopt: nothing in time).
Result<Message> finish_await(const TaskRefs& task, std::optional<Message> answer, std::chrono::nanoseconds timeout);
std::optional<Result<Message>> finish_yield(const TaskRefs& task, std::optional<Message> answer);
Result<Message> await_task(Inbox& owner, TaskRefs task, std::chrono::nanoseconds timeout);
Async<std::optional<Result<Message>>> shutdown_task(TaskRefs task, Shutdown how);
std::optional<Result<Message>> ignore_task(TaskRefs task);
// The answers in the order of `tasks`, or the first failure (the others are then
// demonitored and unaliased: nothing of them reaches the owner afterwards).
Async<Result<std::vector<Message>>> await_tasks(std::vector<TaskRefs> tasks, std::chrono::nanoseconds timeout);
// A fresh alias of a plain thread's inbox (an Inbox has no alias() of its own).
Ref inbox_alias(Inbox& inbox);

template <class T>
Result<T> task_value(Result<Message> answer) {
  if (!answer) return answer.error();
  if constexpr (std::is_void_v<T>) {
    return Result<void>{};
  } else {
    return answer.value().template take<T>();
  }
}
template <class T>
std::optional<Result<T>> task_value(std::optional<Result<Message>> answer) {
  if (!answer) return std::nullopt;
  return task_value<T>(std::move(*answer));
}

// await and yield: an awaiter rather than a coroutine, so that an answer already in the
// mailbox costs no coroutine frame, and a loop of such awaits does not rely on symmetric
// transfer being a tail call (it is not under AddressSanitizer, where the stack would grow).
// It holds a copy of the refs: the Task it came from need not outlive it.
template <class T, bool IsYield>
class TaskAwaiter {
 public:
  TaskAwaiter(TaskRefs task, std::chrono::nanoseconds timeout) : task_(task), timeout_(timeout) {
    wait_.timeout_ns = to_timeout_ns(timeout);
  }

  bool await_ready() {
    if (!task_.owner || task_.owner != self()) {
      refused_ = true;
      return true;
    }
    wait_.match = &match_task_answer;
    wait_.context = &task_;  // here, not in the constructor: the awaiter may have been moved
    return wait_.ready();
  }
  void await_suspend(std::coroutine_handle<> h) { wait_.suspend(h); }
  auto await_resume() {
    std::optional<Message> answer;
    if (wait_.result != nullptr) answer = wait_.take();
    if constexpr (IsYield) {
      if (refused_) return std::optional<Result<T>>(not_owner(task_, "yield", self()));
      return task_value<T>(finish_yield(task_, std::move(answer)));
    } else {
      if (refused_) return Result<T>(not_owner(task_, "await", self()));
      return task_value<T>(finish_await(task_, std::move(answer), timeout_));
    }
  }

 private:
  TaskRefs task_;
  std::chrono::nanoseconds timeout_;
  ReceiveWait wait_;
  bool refused_ = false;
};

// shutdown waits in steps: a coroutine over refs copied by value.
template <class T>
Async<std::optional<Result<T>>> shutdown_as(TaskRefs task, Shutdown how) {
  Async<std::optional<Result<Message>>> wait = shutdown_task(task, how);
  std::optional<Result<Message>> answer = co_await wait;
  co_return task_value<T>(std::move(answer));
}

template <class F, class... Args>
using TaskProcessFor = TaskProcess<std::decay_t<F>, std::decay_t<Args>...>;

}  // namespace detail

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
