// Task's owner side: await, yield, shutdown, ignore and await_many, each reading the task's
// reply (to the owner's alias) or its Down (of the owner's monitor), and cleaning both up.
#include "coppice/task.hpp"

#include <string>
#include <unordered_map>

// An inbox has no alias() of its own; the alias of a task owned by one is added to the
// inbox's header here, on the inbox's own thread, as Inbox::call does for its calls.
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

Error not_owner(const TaskRefs& task, const char* operation, Pid caller) {
  return Error(ErrorKind::invalid_argument,
               std::string("Task.") + operation + ": the task " + task.pid.to_string() + " is owned by " +
                   task.owner.to_string() + ", not by " + caller.to_string(),
               task.pid);
}

namespace {

Error exited(const TaskRefs& task, const char* operation, const ExitReason& reason) {
  return Error(ErrorKind::exited,
               std::string("Task.") + operation + ": the task " + task.pid.to_string() + " exited: " + reason.to_string(),
               task.pid, reason);
}

bool is_reply(const TaskRefs& task, const Envelope& e) {
  return e.addressing() == Addressing::alias && e.ref == task.alias.bits();
}
bool is_down_of(Envelope& e, Ref monitor) {
  return e.type() == &type_info_v<Down> && static_cast<const Down*>(e.payload())->ref == monitor;
}

bool match_reply_only(const ReceiveWait& w, Envelope& e) {
  return is_reply(*static_cast<const TaskRefs*>(w.context), e);
}
// The context is the monitor's Ref.
bool match_down(const ReceiveWait& w, Envelope& e) { return is_down_of(e, *static_cast<const Ref*>(w.context)); }

ReceiveForAwaiter<Message> receive_matching(ReceiveWait::Match match, const void* context,
                                            std::chrono::nanoseconds timeout) {
  ReceiveForAwaiter<Message> a;
  a.w.match = match;
  a.w.context = context;
  a.w.timeout_ns = to_timeout_ns(timeout);
  return a;
}

// What is in the mailbox now, without waiting (a receive with timeout 0 never suspends).
std::optional<Message> poll(ReceiveWait::Match match, const void* context) {
  ReceiveForAwaiter<Message> a = receive_matching(match, context, std::chrono::milliseconds{0});
  if (!a.await_ready()) return std::nullopt;  // a kill is pending: the process ends next
  return a.await_resume();
}

// The reply is no longer wanted: deactivate the alias, then drop any reply that came in
// while it was active (later ones are dropped before the mailbox).
void forget_reply(const TaskRefs& task) {
  unalias(task.alias);
  while (poll(&match_reply_only, &task)) {
  }
}

// The owner has the task's answer `m` (a reply or the Down): nothing more of it may arrive.
Result<Message> conclude(const TaskRefs& task, Message m, const char* operation) {
  if (const Down* down = m.get_if<Down>()) {
    // The monitor fired, so it is gone; a reply would have come before the Down.
    unalias(task.alias);
    return exited(task, operation, down->reason);
  }
  demonitor(task.monitor, {.flush = true});
  unalias(task.alias);
  return m;
}

bool owned_by_running_process(const TaskRefs& task) { return task.owner && task.owner == self(); }

bool monitoring(Ref monitor) {
  ProcessHeader* p = running_process();
  return p != nullptr && p->extras != nullptr && p->extras->monitoring.contains(monitor.bits());
}

}  // namespace

bool match_task_answer(const ReceiveWait& w, Envelope& e) {
  const auto& task = *static_cast<const TaskRefs*>(w.context);
  return is_reply(task, e) || is_down_of(e, task.monitor);
}

Result<Message> finish_await(const TaskRefs& task, std::optional<Message> answer, std::chrono::nanoseconds timeout) {
  if (answer) return conclude(task, std::move(*answer), "await");
  demonitor(task.monitor, {.flush = true});
  forget_reply(task);
  return Error(ErrorKind::timeout,
               "Task.await: the task " + task.pid.to_string() + " did not answer within " +
                   std::to_string(whole_milliseconds(timeout).count()) + " ms",
               task.pid);
}

std::optional<Result<Message>> finish_yield(const TaskRefs& task, std::optional<Message> answer) {
  if (!answer) return std::nullopt;  // still running, still monitored
  return conclude(task, std::move(*answer), "yield");
}

std::optional<Result<Message>> ignore_task(TaskRefs task) {
  if (!owned_by_running_process(task)) return not_owner(task, "ignore", self());
  unlink(task.pid);
  std::optional<Message> answer = poll(&match_task_answer, &task);
  if (answer) return conclude(task, std::move(*answer), "ignore");
  demonitor(task.monitor, {.flush = true});
  forget_reply(task);
  return std::nullopt;
}

// Elixir's Task.shutdown, with one difference: Elixir takes a second monitor and, when that
// one says noproc, looks for the first one's Down without waiting. Here the Down of a task
// that is exiting may still be on its way when the second monitor says noproc (the noproc is
// given as soon as the task is marked exiting), so this waits for the task's own Down when
// its monitor is still active, and only then reads the reason.
Async<std::optional<Result<Message>>> shutdown_task(TaskRefs task, Shutdown how) {
  if (!owned_by_running_process(task)) co_return not_owner(task, "shutdown", self());
  enum class Sent { shutdown, kill, kill_after_timeout };
  const bool brutal = how.kind() == Shutdown::Kind::brutal_kill;
  const std::chrono::milliseconds patience = how.kind() == Shutdown::Kind::timeout ? how.time() : infinity;
  unlink(task.pid);  // the task's end must not take the owner with it
  const Ref watch = monitor(task.pid);
  exit(task.pid, brutal ? ExitReason::kill() : ExitReason::shutdown());
  Sent sent = brutal ? Sent::kill : Sent::shutdown;
  ReceiveForAwaiter<Message> receive_down = receive_matching(&match_down, &watch, brutal ? infinity : patience);
  std::optional<Message> down = co_await receive_down;
  if (!down) {
    exit(task.pid, ExitReason::kill());
    sent = Sent::kill_after_timeout;
    ReceiveForAwaiter<Message> receive_killed = receive_matching(&match_down, &watch, infinity);
    down = co_await receive_killed;
  }
  ExitReason reason = down->get<Down>().reason;
  if (reason.kind() == ExitReason::Kind::noproc) {
    // The task was ending before the exit signal went out: its own Down says why.
    if (monitoring(task.monitor)) {
      ReceiveForAwaiter<Message> receive_answer = receive_matching(&match_down, &task.monitor, infinity);
      std::optional<Message> own = co_await receive_answer;
      reason = own->get<Down>().reason;
    } else if (std::optional<Message> own = poll(&match_down, &task.monitor)) {
      reason = own->get<Down>().reason;
    }
  } else {
    demonitor(task.monitor, {.flush = true});
  }
  // A reply comes before the task's Down: if there is one, it is queued by now.
  std::optional<Message> reply = poll(&match_reply_only, &task);
  forget_reply(task);
  if (reply) co_return std::move(*reply);
  const bool ended_by_shutdown = (reason == ExitReason::shutdown() && sent != Sent::kill) ||
                                 (reason == ExitReason::killed() && sent != Sent::shutdown);
  if (ended_by_shutdown) co_return std::nullopt;
  co_return exited(task, "shutdown", reason);
}

Async<Result<std::vector<Message>>> await_tasks(std::vector<TaskRefs> tasks, std::chrono::nanoseconds timeout) {
  const Pid me = self();
  for (const TaskRefs& t : tasks)
    if (t.owner != me) co_return not_owner(t, "await_many", me);
  // Each pending task by the references its answer can carry.
  struct Pending {
    std::unordered_map<std::uint64_t, std::size_t> by_ref;
  } pending;
  pending.by_ref.reserve(tasks.size() * 2);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    pending.by_ref.emplace(tasks[i].alias.bits(), i);
    pending.by_ref.emplace(tasks[i].monitor.bits(), i);
  }
  auto index_of = [&](const Message& m) -> std::optional<std::size_t> {
    const Envelope* e = m.envelope();
    std::uint64_t ref = 0;
    if (e->addressing() == Addressing::alias) {
      ref = e->ref;
    } else if (const Down* d = m.get_if<Down>()) {
      ref = d->ref.bits();
    } else {
      return std::nullopt;
    }
    auto it = pending.by_ref.find(ref);
    if (it == pending.by_ref.end()) return std::nullopt;
    // An alias's ref could equal another task's monitor ref only if references repeated.
    return it->second;
  };
  auto is_answer = [&](const Message& m) { return index_of(m).has_value(); };
  auto forget = [&](const TaskRefs& t) {
    pending.by_ref.erase(t.alias.bits());
    pending.by_ref.erase(t.monitor.bits());
  };

  std::vector<std::optional<Message>> answers(tasks.size());
  std::size_t missing = tasks.size();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<Error> failure;
  while (missing > 0) {
    const std::chrono::nanoseconds left = deadline - std::chrono::steady_clock::now();
    auto receive_answer = receive_if(is_answer, left.count() > 0 ? left : std::chrono::nanoseconds{0});
    std::optional<Message> m = co_await receive_answer;
    if (!m) {
      failure = Error(ErrorKind::timeout,
                      "Task.await_many: " + std::to_string(missing) + " of " + std::to_string(tasks.size()) +
                          " tasks did not answer within " + std::to_string(whole_milliseconds(timeout).count()) + " ms");
      break;
    }
    const std::size_t i = *index_of(*m);
    forget(tasks[i]);
    --missing;
    Result<Message> r = conclude(tasks[i], std::move(*m), "await_many");
    if (!r) {
      failure = r.error();
      break;
    }
    answers[i] = std::move(r).value();
  }
  if (failure) {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (answers[i] || !pending.by_ref.contains(tasks[i].alias.bits())) continue;
      demonitor(tasks[i].monitor, {.flush = true});
      forget_reply(tasks[i]);
    }
    co_return *failure;
  }
  std::vector<Message> values;
  values.reserve(tasks.size());
  for (auto& a : answers) values.push_back(std::move(*a));
  co_return std::move(values);
}

// ---- A task owned by a plain thread's inbox ---------------------------------------------

namespace {
ProcessHeader& inbox_header(Inbox& inbox) {
  RuntimeCore& core = core_of(inbox.runtime());
  ExternalGuard guard(core.epoch);
  // The inbox's header lives as long as the inbox; only the inbox's thread touches its extras.
  return *core.table.lookup(inbox.pid());
}
}  // namespace

Ref inbox_alias(Inbox& inbox) {
  const Ref ref = core_of(inbox.runtime()).make_ref();
  inbox_header(inbox).ensure_extras().aliases.insert(ref.bits(), 0);
  return ref;
}

Result<Message> await_task(Inbox& owner, TaskRefs task, std::chrono::nanoseconds timeout) {
  if (owner.pid() != task.owner) return not_owner(task, "await", owner.pid());
  auto is_reply_to_task = [&](const Message& m) { return m.envelope() != nullptr && is_reply(task, *m.envelope()); };
  auto is_answer = [&](const Message& m) {
    return is_reply_to_task(m) || (m.envelope() != nullptr && is_down_of(*m.envelope(), task.monitor));
  };
  std::optional<Message> answer = owner.receive_if(is_answer, timeout);
  if (answer && answer->is<Down>()) {
    inbox_header(owner).ensure_extras().aliases.erase(task.alias.bits());
    return exited(task, "await", answer->get<Down>().reason);
  }
  owner.demonitor(task.monitor, {.flush = true});
  inbox_header(owner).ensure_extras().aliases.erase(task.alias.bits());
  if (answer) return std::move(*answer);
  while (owner.receive_if(is_reply_to_task, std::chrono::nanoseconds{0})) {
  }
  return Error(ErrorKind::timeout,
               "Task.await: the task " + task.pid.to_string() + " did not answer within " +
                   std::to_string(whole_milliseconds(timeout).count()) + " ms",
               task.pid);
}

}  // namespace coppice::detail
