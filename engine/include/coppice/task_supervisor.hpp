// TaskSupervisor (Elixir's Task.Supervisor): a DynamicSupervisor whose children are tasks.
// start_child runs a function under it, fire and forget; async and async_nolink also give
// the caller a Task to await, linked to it (async) or only monitored (async_nolink).
#pragma once

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "coppice/child_spec.hpp"
#include "coppice/dynamic_supervisor.hpp"
#include "coppice/task.hpp"

namespace coppice {

struct TaskSupervisorOptions {
  int intensity = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);  // any std::chrono unit
  std::optional<std::size_t> max_children;
};

// How one task runs under the supervisor (start_child only: async tasks are temporary, as in
// Elixir, since a restarted task would have nobody to answer).
struct TaskOptions {
  Restart restart = Restart::temporary;
  Shutdown shutdown = Shutdown::timeout(std::chrono::milliseconds(5000));
};

namespace detail {

// The child spec of one task: a process running f(args...), linked to the supervisor that
// starts it, answering `reply_to` (none for start_child); a gated one waits for TaskGo, sent
// by its owner once it monitors the task, so that the owner sees its real exit reason.
template <class F, class... Args>
ChildSpec task_spec(TaskOptions options, From reply_to, bool gated, F f, Args... args) {
  ChildSpec spec;
  spec.id = "task";
  spec.restart = options.restart;
  spec.shutdown = options.shutdown;
  spec.modules = {"Task"};
  spec.start = [reply_to, gated, f = std::move(f), ... args = std::move(args)](const StartArgs&) -> Async<Result<Pid>> {
    Pid pid = spawn_in<TaskProcessFor<F, Args...>>(current_core(), SpawnOptions{.link = true}, reply_to, gated, f, args...);
    co_return pid;
  };
  return spec;
}

template <class T, class F, class... Args>
Async<Result<Task<T>>> supervised_async(ServerRef supervisor, bool link_owner, F f, Args... args) {
  const From reply_to = alias();
  ChildSpec spec = task_spec(TaskOptions{}, reply_to, true, std::move(f), std::move(args)...);
  auto start = DynamicSupervisor::start_child(supervisor, std::move(spec));
  Result<Pid> pid = co_await start;
  if (!pid) {
    unalias(reply_to.ref);
    co_return pid.error();
  }
  TaskRefs refs;
  refs.pid = *pid;
  refs.owner = reply_to.pid;
  refs.alias = reply_to.ref;
  refs.monitor = monitor(*pid);
  if (link_owner) (void)link(*pid);
  send(*pid, TaskGo{});
  co_return Task<T>(refs);
}

}  // namespace detail

class TaskSupervisor {
 public:
  static Async<Result<Pid>> start_link(TaskSupervisorOptions options = {}, StartOptions start = {}) {
    return DynamicSupervisor::start_link(dynamic_options(options), std::move(start));
  }
  static Result<Pid> start(Runtime& rt, TaskSupervisorOptions options = {}, StartOptions start = {}) {
    return DynamicSupervisor::start(rt, dynamic_options(options), std::move(start));
  }
  static ChildSpec child_spec(std::string id, TaskSupervisorOptions options = {}) {
    return DynamicSupervisor::child_spec(std::move(id), dynamic_options(options));
  }

  // Runs f(args...) under the supervisor, linked to it and to nobody else; nobody is told its
  // result. restart: temporary by default; a permanent or transient task is restarted by the
  // supervisor with the same function.
  template <class F, class... Args>
  static CallAwaiter<Pid> start_child(const ServerRef& supervisor, TaskOptions options, F f, Args... args) {
    return DynamicSupervisor::start_child(supervisor, detail::task_spec(options, From{}, false, std::move(f), std::move(args)...));
  }
  template <class F, class... Args>
  static Result<Pid> start_child(Runtime& rt, const ServerRef& supervisor, TaskOptions options, F f, Args... args) {
    return DynamicSupervisor::start_child(rt, supervisor, detail::task_spec(options, From{}, false, std::move(f), std::move(args)...));
  }

  // A task under the supervisor, linked to the caller and monitored by it: await it as any
  // Task. A crashing task kills a non-trapping caller; a crashing caller kills the task.
  // Errors: those of start_child (max_children, noproc for a dead supervisor, ...).
  template <class F, class... Args>
  static Async<Result<Task<detail::task_value_t<F, Args...>>>> async(ServerRef supervisor, F f, Args... args) {
    return detail::supervised_async<detail::task_value_t<F, Args...>>(std::move(supervisor), true, std::move(f), std::move(args)...);
  }
  // The same, monitored only: the caller gets the reply (on success) and a Down, and a task
  // that crashes does not take the caller with it, nor a caller that crashes the task.
  template <class F, class... Args>
  static Async<Result<Task<detail::task_value_t<F, Args...>>>> async_nolink(ServerRef supervisor, F f, Args... args) {
    return detail::supervised_async<detail::task_value_t<F, Args...>>(std::move(supervisor), false, std::move(f), std::move(args)...);
  }

  // The running tasks (not those being restarted).
  static Async<Result<std::vector<Pid>>> children(ServerRef supervisor);
  static Result<std::vector<Pid>> children(Runtime& rt, const ServerRef& supervisor);
  static Async<Status> terminate_child(ServerRef supervisor, Pid child) {
    return DynamicSupervisor::terminate_child(std::move(supervisor), child);
  }
  static Status terminate_child(Runtime& rt, const ServerRef& supervisor, Pid child) {
    return DynamicSupervisor::terminate_child(rt, supervisor, child);
  }

 private:
  static DynamicSupervisorOptions dynamic_options(const TaskSupervisorOptions& o) {
    DynamicSupervisorOptions d;
    d.intensity = o.intensity;
    d.period = o.period;
    d.max_children = o.max_children;
    return d;
  }
};

}  // namespace coppice
