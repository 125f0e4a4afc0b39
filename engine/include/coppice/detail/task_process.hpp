// The process a Task runs in, and the owner's side of await, yield, shutdown and ignore (task.cpp).
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
#include "coppice/child_spec.hpp"
#include "coppice/inbox.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"

namespace coppice::detail {

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
  static constexpr std::string_view observed_behaviour = "Task";  // coppice/observe.hpp
  using observed_type = F;
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

}  // namespace coppice::detail
