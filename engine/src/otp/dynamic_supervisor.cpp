// DynamicSupervisor: starts that do not hold the supervisor, one-for-one restarts (also
// without holding it), and the concurrent shutdown of every child.
#include "coppice/dynamic_supervisor.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <unordered_map>

#include "otp/dynamic_supervisor_server.hpp"
#include "otp/supervision.hpp"

namespace coppice {

namespace proto = detail::dynamic_supervisor;

namespace {

// One spec, shared by every child started from it (a SharedSpec passed many times is
// stored once). `refs` counts the children, restarting children and starts in flight that
// use it; the entry goes with the last of them.
struct SpecEntry {
  std::shared_ptr<const ChildSpec> spec;
  StartArgs args;  // the spec's options and the supervisor's extra_arguments, built once
  Shutdown shutdown = Shutdown::brutal_kill();
  std::size_t refs = 0;
};

// The running children: pid -> spec, open addressing with linear probing and backward-shift
// deletion. 16 bytes a slot, at most 3/4 full: a million children cost 32 MB here, and no
// allocation per child (std::unordered_map would allocate a node each).
class ChildTable {
 public:
  struct Slot {
    std::uint64_t pid = 0;  // 0: empty (no pid has bits 0)
    SpecEntry* spec = nullptr;
  };

  std::size_t size() const { return size_; }

  // Pid{} is never a child (its bits 0 mark an empty slot): find and erase answer nullptr for
  // it. Before they did, an EXIT from Pid{} (an exit signal sent from a plain thread) found an
  // empty slot as if it held Pid{} and erase took one off size_: count_children then said one
  // active child fewer than which_children listed (issue 12, item 12).
  SpecEntry* find(Pid pid) const {
    if (size_ == 0 || !pid) return nullptr;
    for (std::size_t i = home(pid.bits());; i = (i + 1) & mask_) {
      if (slots_[i].pid == pid.bits()) return slots_[i].spec;
      if (slots_[i].pid == 0) return nullptr;
    }
  }

  void insert(Pid pid, SpecEntry* spec) {
    assert(pid && "Pid{} is not a child: the start paths refuse it (no_pid)");
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    std::size_t i = home(pid.bits());
    while (slots_[i].pid != 0 && slots_[i].pid != pid.bits()) i = (i + 1) & mask_;
    if (slots_[i].pid == 0) ++size_;
    slots_[i] = Slot{pid.bits(), spec};
  }

  // The child's spec, removed; nullptr if `pid` is not here.
  SpecEntry* erase(Pid pid) {
    if (size_ == 0 || !pid) return nullptr;
    std::size_t i = home(pid.bits());
    while (slots_[i].pid != pid.bits()) {
      if (slots_[i].pid == 0) return nullptr;
      i = (i + 1) & mask_;
    }
    SpecEntry* spec = slots_[i].spec;
    // Backward shift: pull later entries of the run into the hole unless that would move
    // them before their home slot.
    for (std::size_t j = (i + 1) & mask_; slots_[j].pid != 0; j = (j + 1) & mask_) {
      const std::size_t h = home(slots_[j].pid);
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return spec;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.pid != 0) f(Pid::from_bits(s.pid), s.spec);
  }

  void clear() {
    std::vector<Slot>().swap(slots_);
    size_ = 0;
    mask_ = 0;
    shift_ = 64;
  }

 private:
  // Fibonacci hashing: pids differ in their low bits (slots), which the multiply spreads.
  std::size_t home(std::uint64_t bits) const {
    return shift_ >= 64 ? 0 : static_cast<std::size_t>((bits * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow() {
    const std::size_t capacity = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    size_ = 0;
    for (const Slot& s : old)
      if (s.pid != 0) insert(Pid::from_bits(s.pid), s.spec);
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
};

// The supervisor sends itself this to try a failed restart again, so that other requests
// are served between attempts (Elixir's {:"$gen_restart", pid}).
struct RetryRestart {
  Pid child;
};

// A start function that returned Pid{} started nobody: a failed start, never a child <0.0.0>
// (SEMANTICS.md 4: any other return X is {:error, X}).
Result<Pid> no_pid(Result<Pid> r) {
  if (r && !*r) return Error(ErrorKind::start_error, "start_child: the start function returned no pid (Pid{})");
  return r;
}

Error start_threw(std::exception_ptr e) {
  ExitReason reason;
  std::string text = detail::describe_exception(e, reason);
  return Error(ErrorKind::start_error, "start_child: the start function raised: " + text, Pid{}, reason);
}

}  // namespace

struct detail::DynamicSupervisorServer::State {
  DynamicSupervisorOptions options;
  RestartIntensity intensity;
  std::unordered_map<const ChildSpec*, std::unique_ptr<SpecEntry>> specs;
  ChildTable children;
  // A child whose restart has not succeeded yet, by the pid it had: its spec, and the
  // attempt in flight (Pid{} while waiting for a RetryRestart).
  struct Restarting {
    SpecEntry* spec;
    Pid attempt;
  };
  std::unordered_map<Pid, Restarting> restarting;
  // Starts in flight, by the starting child's pid.
  struct Pending {
    PendingStart start;
    SpecEntry* spec;
    From caller;      // start_child's caller; {} for a restart
    Pid restarting;   // the child this attempt restarts; Pid{} for start_child
  };
  std::unordered_map<Pid, Pending> pending;
  std::size_t pending_starts = 0;  // entries of `pending` that are start_child calls
  // Counts for count_children, kept as children come and go.
  std::size_t workers = 0, supervisors = 0, restarting_workers = 0, restarting_supervisors = 0;
  SupervisorRecord record;  // counters, the directory entry, the reports

  explicit State(DynamicSupervisorOptions o)
      : options(std::move(o)), intensity(options.intensity, options.period) {}

  SpecEntry* acquire(std::shared_ptr<const ChildSpec> spec) {
    auto& slot = specs[spec.get()];
    if (!slot) {
      slot = std::make_unique<SpecEntry>();
      slot->args = StartArgs{spec->options, options.extra_arguments};
      slot->shutdown = spec->effective_shutdown();
      slot->spec = std::move(spec);
    }
    ++slot->refs;
    return slot.get();
  }
  void release(SpecEntry* s) {
    if (--s->refs == 0) specs.erase(s->spec.get());
  }

  std::size_t& active_count(const SpecEntry* s) { return s->spec->type == ChildType::worker ? workers : supervisors; }
  std::size_t& restarting_count(const SpecEntry* s) {
    return s->spec->type == ChildType::worker ? restarting_workers : restarting_supervisors;
  }

  void add_child(Pid pid, SpecEntry* s) {
    children.insert(pid, s);
    ++active_count(s);
    record.started(child_of(pid, *s));
  }
  // A start that failed (ignore is not a failure: the child chose not to run).
  void start_failed(const Error& e) {
    if (e.kind() != ErrorKind::ignore) record.start_failed();
  }
  SpecEntry* remove_child(Pid pid) {
    SpecEntry* s = children.erase(pid);
    if (s) --active_count(s);
    return s;
  }
  void mark_restarting(Pid old, SpecEntry* s) {
    auto [it, fresh] = restarting.try_emplace(old, Restarting{s, Pid{}});
    if (fresh) ++restarting_count(s);
  }
  void unmark_restarting(std::unordered_map<Pid, Restarting>::iterator it) {
    --restarting_count(it->second.spec);
    restarting.erase(it);
  }

  std::size_t total() const { return children.size() + restarting.size() + pending_starts; }

  static ReportChild child_of(Pid pid, const SpecEntry& s) {
    return ReportChild{s.spec->id, pid, s.spec->restart, s.shutdown, s.spec->type};
  }
  void report(ReportKind kind, Pid child, const SpecEntry& s, const ExitReason& reason, std::string_view outcome = {}) const {
    record.report(kind, child_of(child, s), reason, outcome);
  }
};

// ---- starting the supervisor ---------------------------------------------------------------

Status DynamicSupervisor::validate(const DynamicSupervisorOptions& o) {
  if (o.intensity < 0)
    return Error(ErrorKind::invalid_argument,
                 "DynamicSupervisor: intensity: must be 0 or more, not " + std::to_string(o.intensity));
  if (o.period.count() <= 0)
    return Error(ErrorKind::invalid_argument,
                 "DynamicSupervisor: period: must be more than 0 ms, not " + detail::duration_text(o.period));
  return {};
}

Async<Result<Pid>> DynamicSupervisor::start_link(DynamicSupervisorOptions options, StartOptions start) {
  if (Status s = validate(options); !s) co_return s.error();
  Async<Result<Pid>> work = GenServer<detail::DynamicSupervisorServer>::start_link(std::move(start), std::move(options));
  co_return co_await work;
}

Result<Pid> DynamicSupervisor::start(Runtime& rt, DynamicSupervisorOptions options, StartOptions start) {
  if (Status s = validate(options); !s) return s.error();
  return GenServer<detail::DynamicSupervisorServer>::start(rt, std::move(start), std::move(options));
}

// Written out rather than child<DynamicSupervisor>: DynamicSupervisor is not the GenServer
// (DynamicSupervisorServer is), and its start_link takes the options first.
ChildSpec DynamicSupervisor::child_spec(std::string id, DynamicSupervisorOptions options) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.modules = {std::string(behaviour)};
  spec.type = child_type;
  spec.start = [options](const StartArgs& a) -> Async<Result<Pid>> { return start_link(options, a.options); };
  spec.spawn = [options = std::move(options)](const StartArgs& a) -> PendingStart {
    return GenServer<detail::DynamicSupervisorServer>::spawn_link(a.options, options);
  };
  return spec;
}

detail::DynamicSupervisorServer::DynamicSupervisorServer(DynamicSupervisorOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}
detail::DynamicSupervisorServer::DynamicSupervisorServer(DynamicSupervisorServer&&) noexcept = default;
detail::DynamicSupervisorServer::~DynamicSupervisorServer() = default;

Init detail::DynamicSupervisorServer::init() {
  // Started through spawn_link (a child spec) the options were not checked yet.
  if (Status s = DynamicSupervisor::validate(state_->options); !s) return error(ExitReason::other(s.error().message()));
  trap_exit(true);
  // No name here: the server does not keep its StartOptions (the reports have none, as before).
  state_->record.join(DynamicSupervisor::behaviour, ServerRef{}, &state_->intensity);
  state_->record.running();
  return ok();
}

// ---- the client API ------------------------------------------------------------------------

namespace {
// Supervisor calls wait as long as it takes (OTP's infinity). call_ref would arm a timer of
// `infinity` for every call (a timer-thread wake-up each); a negative timeout arms none.
template <class R>
CallAwaiter<R> call_forever(const ServerRef& supervisor, Message request) {
  CallAwaiter<R> a = detail::call_ref<R>(supervisor, std::move(request), infinity);
  a.c.wait.timeout_ns = -1;
  return a;
}

template <class R>
Result<R> blocking(Runtime& rt, const ServerRef& supervisor, Message request) {
  return detail::reply_as<R>(detail::call_blocking(rt, supervisor, std::move(request), infinity), Pid{});
}
}  // namespace

CallAwaiter<Pid> DynamicSupervisor::start_child(const ServerRef& supervisor, ChildSpec spec) {
  return start_child(supervisor, share(std::move(spec)));
}
CallAwaiter<Pid> DynamicSupervisor::start_child(const ServerRef& supervisor, SharedSpec spec) {
  return call_forever<Pid>(supervisor, Message::of(proto::StartChild{std::move(spec)}));
}
Result<Pid> DynamicSupervisor::start_child(Runtime& rt, const ServerRef& supervisor, ChildSpec spec) {
  return start_child(rt, supervisor, share(std::move(spec)));
}
Result<Pid> DynamicSupervisor::start_child(Runtime& rt, const ServerRef& supervisor, SharedSpec spec) {
  return blocking<Pid>(rt, supervisor, Message::of(proto::StartChild{std::move(spec)}));
}

Async<Status> DynamicSupervisor::terminate_child(ServerRef supervisor, Pid child) {
  auto call = call_forever<detail::SupervisorOk>(supervisor, Message::of(proto::TerminateChild{child}));
  Result<detail::SupervisorOk> r = co_await call;
  if (!r) co_return r.error();
  co_return Status{};
}
Status DynamicSupervisor::terminate_child(Runtime& rt, const ServerRef& supervisor, Pid child) {
  Result<detail::SupervisorOk> r = blocking<detail::SupervisorOk>(rt, supervisor, Message::of(proto::TerminateChild{child}));
  if (!r) return r.error();
  return {};
}

CallAwaiter<std::vector<DynamicSupervisor::ChildInfo>> DynamicSupervisor::which_children(const ServerRef& supervisor) {
  return call_forever<std::vector<ChildInfo>>(supervisor, Message::of(proto::WhichChildren{}));
}
Result<std::vector<DynamicSupervisor::ChildInfo>> DynamicSupervisor::which_children(Runtime& rt, const ServerRef& supervisor) {
  return blocking<std::vector<ChildInfo>>(rt, supervisor, Message::of(proto::WhichChildren{}));
}
CallAwaiter<DynamicSupervisor::ChildCounts> DynamicSupervisor::count_children(const ServerRef& supervisor) {
  return call_forever<ChildCounts>(supervisor, Message::of(proto::CountChildren{}));
}
Result<DynamicSupervisor::ChildCounts> DynamicSupervisor::count_children(Runtime& rt, const ServerRef& supervisor) {
  return blocking<ChildCounts>(rt, supervisor, Message::of(proto::CountChildren{}));
}

// ---- start_child ---------------------------------------------------------------------------

NoReply detail::DynamicSupervisorServer::handle_call(proto::StartChild request, const From& from) {
  State& s = *state_;
  if (!request.spec) {
    reply(from, Error(ErrorKind::invalid_child_spec, "invalid child spec: no spec given"));
    return noreply();
  }
  const ChildSpec& spec = *request.spec;
  if (spec.significant) {
    reply(from, Error(ErrorKind::invalid_child_spec,
                      "invalid child spec: significant: true (a DynamicSupervisor has no auto_shutdown)"));
    return noreply();
  }
  if (Status v = coppice::validate(spec, false); !v) {
    reply(from, v.error());
    return noreply();
  }
  if (s.options.max_children && s.total() >= *s.options.max_children) {
    reply(from, Error(ErrorKind::max_children,
                      "start_child: the supervisor has its maximum of " + std::to_string(*s.options.max_children) + " children"));
    return noreply();
  }
  SpecEntry* entry = s.acquire(std::move(request.spec));
  if (!entry->spec->spawn) return noreply(continue_with(proto::StartAwaited{entry, from}));
  std::optional<PendingStart> started;
  try {
    started.emplace(entry->spec->spawn(entry->args));
  } catch (...) {
    s.release(entry);
    s.record.start_failed();
    reply(from, start_threw(std::current_exception()));
    return noreply();
  }
  if (!started->pid) {
    s.release(entry);
    s.record.start_failed();
    reply(from, no_pid(Pid{}).error());
    return noreply();
  }
  s.pending.emplace(started->pid, State::Pending{*started, entry, from, Pid{}});
  ++s.pending_starts;
  return noreply();
}

// A spec without `spawn`: its start is awaited before the supervisor reads another message.
Async<NoReply> detail::DynamicSupervisorServer::handle_continue(proto::StartAwaited start) {
  State& s = *state_;
  auto* entry = static_cast<SpecEntry*>(start.spec);
  std::optional<Result<Pid>> r;
  try {
    Async<Result<Pid>> work = entry->spec->start(entry->args);
    r.emplace(no_pid(co_await work));
  } catch (...) {
    r.emplace(start_threw(std::current_exception()));
  }
  if (*r) {
    s.add_child(**r, entry);
  } else {
    s.release(entry);
    s.start_failed(r->error());
  }
  if (*r) {
    reply(start.caller, **r);
  } else {
    reply(start.caller, r->error());
  }
  co_return noreply();
}

// ---- restarts --------------------------------------------------------------------------------

NoReply detail::DynamicSupervisorServer::handle_info(Message m) {
  State& s = *state_;
  if (const Exit* e = m.get_if<Exit>()) {
    // An EXIT from a pid that is not a running child (a start in flight, whose DOWN tells
    // the outcome; a child already forgotten; a stranger) is ignored.
    SpecEntry* entry = s.remove_child(e->from);
    if (entry == nullptr) return noreply();
    if (!e->reason.is_clean()) s.report(ReportKind::child_terminated, e->from, *entry, e->reason);
    if (!detail::restarts(entry->spec->restart, e->reason)) {
      s.release(entry);
      return noreply();
    }
    s.mark_restarting(e->from, entry);
    return restart(e->from);
  }
  if (const RetryRestart* r = m.get_if<RetryRestart>()) {
    // The child may have been terminated meanwhile (terminate_child): then nothing to do.
    auto it = s.restarting.find(r->child);
    if (it == s.restarting.end() || it->second.attempt) return noreply();
    return restart(r->child);
  }
  // The end of a start in flight: the child's acknowledgement, or its DOWN.
  Pid starting;
  if (m.is<detail::InitAck>()) {
    starting = m.from();
  } else if (const Down* d = m.get_if<Down>()) {
    starting = d->pid;
  } else {
    detail::report_unexpected(behaviour, self(), m);
    return noreply();
  }
  auto it = s.pending.find(starting);
  if (it == s.pending.end()) return noreply();
  std::optional<Result<Pid>> outcome = start_outcome(it->second.start, m);
  if (!outcome) return noreply();
  State::Pending p = std::move(it->second);
  s.pending.erase(it);
  if (!p.restarting) {
    --s.pending_starts;
    if (*outcome) {
      s.add_child(**outcome, p.spec);
      reply(p.caller, **outcome);
    } else {
      s.release(p.spec);
      s.start_failed(outcome->error());
      reply(p.caller, outcome->error());
    }
    return noreply();
  }
  return restarted(p.restarting, std::move(*outcome));
}

// One restart attempt of `old` (marked restarting): counts towards the intensity, then
// spawns the child again (or, without `spawn`, awaits its start in a continuation).
NoReply detail::DynamicSupervisorServer::restart(Pid old) {
  State& s = *state_;
  auto it = s.restarting.find(old);
  SpecEntry* entry = it->second.spec;
  if (s.intensity.add()) {
    s.record.gave_up();
    s.report(ReportKind::reached_max_restart_intensity, old, *entry,
             ExitReason::other(std::to_string(s.options.intensity) + " restarts in " + detail::duration_text(s.options.period)),
             "shutting down");
    s.unmark_restarting(it);
    s.release(entry);
    return stop_with(ExitReason::shutdown());
  }
  s.record.restarted();
  if (!entry->spec->spawn) return noreply(continue_with(proto::RestartAwaited{old}));
  try {
    PendingStart started = entry->spec->spawn(entry->args);
    if (!started.pid) return restarted(old, no_pid(Pid{}));
    it->second.attempt = started.pid;
    s.pending.emplace(started.pid, State::Pending{started, entry, From{}, old});
  } catch (...) {
    return restarted(old, start_threw(std::current_exception()));
  }
  return noreply();
}

Async<NoReply> detail::DynamicSupervisorServer::handle_continue(proto::RestartAwaited restart) {
  State& s = *state_;
  SpecEntry* entry = s.restarting.at(restart.child).spec;
  std::optional<Result<Pid>> r;
  try {
    Async<Result<Pid>> work = entry->spec->start(entry->args);
    r.emplace(no_pid(co_await work));
  } catch (...) {
    r.emplace(start_threw(std::current_exception()));
  }
  co_return restarted(restart.child, std::move(*r));
}

// The outcome of a restart attempt of `old`: the new child replaces it; ignore forgets it;
// an error leaves it restarting and tries again through the mailbox.
NoReply detail::DynamicSupervisorServer::restarted(Pid old, Result<Pid> outcome) {
  State& s = *state_;
  auto it = s.restarting.find(old);
  if (it == s.restarting.end()) return noreply();  // terminated meanwhile
  SpecEntry* entry = it->second.spec;
  if (outcome) {
    s.unmark_restarting(it);
    s.add_child(*outcome, entry);
  } else if (outcome.error().kind() == ErrorKind::ignore) {
    s.unmark_restarting(it);
    s.release(entry);
  } else {
    it->second.attempt = Pid{};
    s.record.start_failed();
    s.report(ReportKind::start_error, old, *entry, ExitReason::other(outcome.error().to_string()), "while restarting");
    send(self(), RetryRestart{old});
  }
  return noreply();
}

// ---- terminate_child, which_children, count_children ---------------------------------------

// Stops one child, as OTP does, with the supervisor waiting (suspended, not holding a worker)
// for its exit; starts in flight still complete when it resumes.
Async<void> detail::DynamicSupervisorServer::handle_call(proto::TerminateChild request, From from) {
  State& s = *state_;
  const Pid pid = request.pid;
  if (SpecEntry* entry = s.remove_child(pid)) {
    Async<ExitReason> stopping = detail::shutdown_child(pid, entry->shutdown);
    ExitReason why = co_await stopping;
    if (!detail::expected_shutdown_reason(why, entry->shutdown, entry->spec->restart))
      s.report(ReportKind::shutdown_error, pid, *entry, why);
    s.release(entry);
    reply(from, detail::SupervisorOk{});
    co_return;
  }
  auto it = s.restarting.find(pid);
  if (it == s.restarting.end()) {
    reply(from, Error(ErrorKind::not_found, "terminate_child: " + pid.to_string() + " is not a child of this supervisor", pid));
    co_return;
  }
  SpecEntry* entry = it->second.spec;
  const Pid attempt = it->second.attempt;
  s.unmark_restarting(it);
  if (attempt) {
    // A restart in flight: forget its outcome and stop the half-started child.
    auto p = s.pending.find(attempt);
    demonitor(p->second.start.monitor, {.flush = true});
    unalias(p->second.start.ack.ref);
    s.pending.erase(p);
    Async<ExitReason> stopping = detail::shutdown_child(attempt, entry->shutdown);
    ExitReason why = co_await stopping;
    (void)why;
  }
  s.release(entry);
  reply(from, detail::SupervisorOk{});
}

std::vector<ChildInfo> detail::DynamicSupervisorServer::handle_call(proto::WhichChildren) {
  const State& s = *state_;
  std::vector<ChildInfo> out;
  out.reserve(s.children.size() + s.restarting.size());
  s.children.for_each([&](Pid pid, const SpecEntry* e) {
    out.push_back(ChildInfo{std::string(), pid, false, e->spec->type, e->spec->modules});
  });
  for (const auto& [pid, r] : s.restarting) out.push_back(ChildInfo{std::string(), pid, true, r.spec->spec->type, r.spec->spec->modules});
  return out;
}

ChildCounts detail::DynamicSupervisorServer::handle_call(proto::CountChildren) {
  const State& s = *state_;
  ChildCounts c;
  c.specs = s.children.size() + s.restarting.size();
  c.active = s.children.size();
  c.workers = s.workers + s.restarting_workers;
  c.supervisors = s.supervisors + s.restarting_supervisors;
  return c;
}

std::string detail::DynamicSupervisorServer::format_status() const {
  const State& s = *state_;
  return std::to_string(s.children.size()) + " children, " + std::to_string(s.restarting.size()) + " restarting, " +
         std::to_string(s.pending.size()) + " starting";
}

// ---- shutdown ------------------------------------------------------------------------------

// Every child at once (SEMANTICS.md 4): each gets its signal, then all are awaited, one kill
// timer per distinct shutdown value. Children still in init go the same way. Unexpected
// reasons are logged, never returned.
Async<void> detail::DynamicSupervisorServer::terminate(const ExitReason& reason) {
  State& s = *state_;
  s.record.stopping(reason);
  std::vector<std::pair<Pid, Shutdown>> all;
  std::vector<const SpecEntry*> specs;
  all.reserve(s.children.size() + s.pending.size());
  specs.reserve(all.capacity());
  s.children.for_each([&](Pid pid, const SpecEntry* e) {
    all.emplace_back(pid, e->shutdown);
    specs.push_back(e);
  });
  for (auto& [pid, p] : s.pending) {
    demonitor(p.start.monitor, {.flush = true});
    unalias(p.start.ack.ref);
    all.emplace_back(pid, p.spec->shutdown);
    specs.push_back(p.spec);
  }
  s.pending.clear();
  // In slot order, which is about the order the children were spawned in, and so the order
  // their headers sit in memory: the signals then walk memory forwards instead of at random
  // (the table's hash order), which at a million children halves the cache misses.
  std::vector<std::size_t> order(all.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return all[a].first.slot() < all[b].first.slot(); });
  {
    std::vector<std::pair<Pid, Shutdown>> sorted_all;
    std::vector<const SpecEntry*> sorted_specs;
    sorted_all.reserve(all.size());
    sorted_specs.reserve(all.size());
    for (std::size_t i : order) {
      sorted_all.push_back(all[i]);
      sorted_specs.push_back(specs[i]);
    }
    all.swap(sorted_all);
    specs.swap(sorted_specs);
  }
  Async<std::vector<ExitReason>> stopping = detail::shutdown_children(all);
  std::vector<ExitReason> reasons = co_await stopping;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (!detail::expected_shutdown_reason(reasons[i], all[i].second, specs[i]->spec->restart))
      s.report(ReportKind::shutdown_error, all[i].first, *specs[i], reasons[i]);
  s.children.clear();
}

}  // namespace coppice
