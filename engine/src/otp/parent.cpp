// Parent (SEMANTICS.md section 7): the child table of a server that supervises its own
// children, and everything it does with it. Runs inside the parent process: every function
// here is called from the parent's own callbacks or from its ServerProcess between them.
#include "coppice/parent.hpp"

#include <algorithm>
#include <list>
#include <random>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace coppice {

const std::string& ChildRef::id() const {
  static const std::string none;
  return is_pid() ? none : std::get<std::string>(ref_);
}

std::string ChildRef::to_string() const { return is_pid() ? pid().to_string() : "'" + id() + "'"; }

ExitReason too_many_restarts() { return ExitReason::other("too_many_restarts"); }
ExitReason start_error_reason() { return ExitReason::other("start_error"); }

namespace {

Error invalid(std::string_view field, std::string_view problem) {
  return detail::invalid_field(ErrorKind::invalid_child_spec, "child spec", field, problem);
}

std::string ms(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

std::string describe(const ParentChildSpec& spec, Pid pid) {
  return spec.id.empty() ? "anonymous child " + pid.to_string() : "child '" + spec.id + "'";
}

// Whether a child that exited with `reason` is restarted: OTP's rule, for Parent too
// (SEMANTICS.md 0: a transient child is not restarted after shutdown).
bool restarts(Restart restart, const ExitReason& reason) {
  switch (restart) {
    case Restart::permanent: return true;
    case Restart::transient: return !reason.is_clean();
    case Restart::temporary: return false;
  }
  return false;
}

// The parent's notes to itself.
struct ParentLifetime {  // a child's lifetime is over
  Pid pid;
};
struct ParentResume {  // start these again (a failed restart's retry, or a backoff's delay)
  std::vector<std::uint64_t> orders;
};
struct ParentGiveUp {};  // the restart intensity was exceeded inside an API function

}  // namespace

Status validate(const ParentChildSpec& spec) {
  if (Status s = validate(static_cast<const ChildSpec&>(spec), false); !s) return s;
  if (spec.significant) return invalid("significant", "a Parent has no auto_shutdown: use binds_to or shutdown_group");
  // 0 is the `parent` library's timeout: 0, the child stopped as soon as it started (SEMANTICS.md 9).
  if (spec.lifetime && spec.lifetime->count() < 0)
    return invalid("lifetime", "must be 0 ms or more, not " + ms(*spec.lifetime));
  if (spec.max_restarts && *spec.max_restarts < 0)
    return invalid("max_restarts", "must be 0 or more, not " + std::to_string(*spec.max_restarts));
  if (spec.max_seconds.count() <= 0) return invalid("max_seconds", "must be more than 0 ms, not " + ms(spec.max_seconds));
  for (const ChildRef& ref : spec.binds_to) {
    if (ref.is_pid() ? !ref.pid() : ref.id().empty()) return invalid("binds_to", "an empty id or pid");
    if (!ref.is_pid() && !spec.id.empty() && ref.id() == spec.id) return invalid("binds_to", "a child cannot bind to itself");
  }
  if (spec.shutdown_group && spec.shutdown_group->empty()) return invalid("shutdown_group", "an empty group name");
  if (const auto& b = spec.backoff) {
    if (b->initial.count() <= 0) return invalid("backoff", "initial must be more than 0 ms, not " + ms(b->initial));
    if (b->max < b->initial) return invalid("backoff", "max (" + ms(b->max) + ") is less than initial (" + ms(b->initial) + ")");
    if (!(b->multiplier >= 1.0)) return invalid("backoff", "multiplier must be 1 or more");
    if (!(b->jitter >= 0.0 && b->jitter < 1.0)) return invalid("backoff", "jitter must be in [0, 1)");
    if (b->reset_after && b->reset_after->count() <= 0) return invalid("backoff", "reset_after must be more than 0 ms");
  }
  return {};
}

namespace detail {

namespace {
// The running children with ids of every live parent, for ServerRef::child_of: a lookup from
// any thread without a call to the parent. Keyed by runtime too (pids are per runtime).
class Directory {
 public:
  void put(RuntimeCore* core, Pid parent, const std::string& id, Pid child) {
    std::unique_lock lock(mutex_);
    map_[Key{core, parent}][id] = child;
  }
  void erase(RuntimeCore* core, Pid parent, const std::string& id, Pid child) {
    std::unique_lock lock(mutex_);
    auto p = map_.find(Key{core, parent});
    if (p == map_.end()) return;
    if (auto c = p->second.find(id); c != p->second.end() && c->second == child) p->second.erase(c);
    if (p->second.empty()) map_.erase(p);
  }
  void drop(RuntimeCore* core, Pid parent) {
    std::unique_lock lock(mutex_);
    map_.erase(Key{core, parent});
  }
  Pid get(RuntimeCore* core, Pid parent, std::string_view id) const {
    std::shared_lock lock(mutex_);
    auto p = map_.find(Key{core, parent});
    if (p == map_.end()) return {};
    auto c = p->second.find(std::string(id));
    return c == p->second.end() ? Pid{} : c->second;
  }

 private:
  struct Key {
    RuntimeCore* core;
    Pid parent;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<const void*>{}(k.core) ^ (std::hash<Pid>{}(k.parent) * 0x9e3779b97f4a7c15ULL);
    }
  };
  mutable std::shared_mutex mutex_;
  std::unordered_map<Key, std::unordered_map<std::string, Pid>, KeyHash> map_;
};

Directory& directory() {
  static Directory* d = new Directory;  // never destroyed: parents may outlive static teardown
  return *d;
}
}  // namespace

Pid parent_child_whereis(RuntimeCore& core, Pid parent, std::string_view id) {
  const Pid child = directory().get(&core, parent, id);
  return child && is_alive(core, child) ? child : Pid{};
}

class ParentCore {
 public:
  ParentCore(ParentOptions options, ParentBase& base, ParentBase::StoppedThunk on_stopped, bool user_handles_exits)
      : options_(options),
        // The `parent` library keeps a restart while t + interval - 1 >= now: a window one
        // millisecond shorter than RestartIntensity's inclusive one.
        intensity_(options.max_restarts.value_or(0), options.max_seconds - std::chrono::milliseconds(1)),
        base_(base),
        on_stopped_(on_stopped),
        user_handles_exits_(user_handles_exits) {}

  ~ParentCore() {
    if (published_) directory().drop(runtime_, self_);
  }

  void attach(const ServerRef& name, std::string_view behaviour) {
    name_ = name;
    behaviour_ = behaviour;
    self_ = coppice::self();
    runtime_ = &current_core();
  }

  // ---- the API (inside the parent) ----

  Async<Result<Pid>> start_child(ParentChildSpec spec) {
    if (Status s = check_new(spec); !s) co_return s.error();
    Pos c = add(std::move(spec), next_order_++, std::nullopt);
    Result<Pid> r = co_await start_one(c);
    if (!r) {
      remove(c);
      co_return r.error();
    }
    if (!*r) {
      if (c->spec.ephemeral) remove(c);  // ignore: kept (not running) unless ephemeral
      co_return Pid{};
    }
    set_running(c, *r);
    co_return *r;
  }

  Async<std::vector<Pid>> start_all_children(std::vector<ParentChildSpec> specs) {
    std::vector<Pid> pids;
    pids.reserve(specs.size());
    for (ParentChildSpec& spec : specs) {
      std::string what = describe(spec, Pid{});
      Result<Pid> r = co_await start_child(std::move(spec));
      if (!r) {
        coppice::log(line("Error starting the " + what + ": " + r.error().to_string()));
        co_await stop_all(ExitReason::shutdown());
        coppice::exit(start_error_reason());
      }
      pids.push_back(*r);
    }
    co_return pids;
  }

  Async<Result<StoppedChildren>> shutdown_child(ChildRef ref) {
    Pos c = find(ref);
    if (c == children_.end()) co_return not_found(ref);
    std::vector<Pos> set = closure(c);
    std::vector<ExitReason> reasons = co_await stop_set(set, ExitReason::shutdown());
    StoppedChildren stopped;
    stopped.reserve(set.size());
    for (std::size_t i = 0; i < set.size(); ++i) stopped.push_back(take(set[i], reasons[i]));
    co_return stopped;
  }

  Async<Status> restart_child(ChildRef ref) {
    Pos c = find(ref);
    if (c == children_.end()) co_return not_found(ref);
    std::vector<Pos> set = closure(c);
    co_await stop_set(set, ExitReason::shutdown());
    Outcome out = co_await start_set(set);
    settle_outside(std::move(out));
    co_return Status{};
  }

  Async<StoppedChildren> shutdown_all(ExitReason reason) { co_return co_await stop_all(std::move(reason)); }

  Async<Status> return_children(StoppedChildren stopped) {
    std::sort(stopped.begin(), stopped.end(), [](const StoppedChild& a, const StoppedChild& b) { return a.order < b.order; });
    std::vector<Pos> added;
    bool crashed = false;
    for (StoppedChild& s : stopped) {
      if (s.order == 0 || by_order_.contains(s.order)) continue;  // present already (idempotent)
      if (!s.spec.id.empty() && by_id_.contains(s.spec.id)) continue;
      crashed = crashed || s.crashed;
      added.push_back(add(std::move(s.spec), s.order, std::move(s.deps)));
    }
    if (crashed && record_restart(added.front())) {
      coppice::send(coppice::self(), ParentGiveUp{});
      co_return Status{};
    }
    Outcome out = co_await start_set(added);
    settle_outside(std::move(out));
    co_return Status{};
  }

  std::vector<ParentChild> children() const {
    std::vector<ParentChild> out;
    out.reserve(children_.size());
    for (const Child& c : children_) out.push_back(ParentChild{c.spec.id, c.pid, c.spec.meta});
    return out;
  }
  std::size_t num_children() const { return children_.size(); }
  bool is_child(const ChildRef& ref) const { return find(ref) != children_.end(); }
  Result<Pid> child_pid(const ChildRef& ref) const {
    auto c = find(ref);
    if (c == children_.end()) return not_found(ref);
    return c->pid;
  }
  Result<std::string> child_id(Pid pid) const {
    auto c = by_pid_.find(pid);
    if (c == by_pid_.end() || c->second->spec.id.empty())
      return Error(ErrorKind::not_found, "no child with an id has pid " + pid.to_string(), pid);
    return c->second->spec.id;
  }
  Result<std::any> child_meta(const ChildRef& ref) const {
    auto c = find(ref);
    if (c == children_.end()) return not_found(ref);
    return c->spec.meta;
  }
  Status update_child_meta(const ChildRef& ref, const std::function<std::any(std::any)>& update) {
    Pos c = find(ref);
    if (c == children_.end()) return not_found(ref);
    c->spec.meta = update(std::move(c->spec.meta));
    return {};
  }

  // ---- hooked into the ServerProcess ----

  std::optional<Dispatched> intercept(Message& m) {
    if (const Exit* e = m.get_if<Exit>()) {
      auto found = by_pid_.find(e->from);
      if (found != by_pid_.end()) {
        Pos c = found->second;
        clear_running(c);
        return async(on_stopped(c, e->reason));
      }
      if (user_handles_exits_) return std::nullopt;
      return Dispatched(std::in_place_index<0>, Step{});  // e.g. a child that crashed in its own start
    }
    if (const ParentLifetime* t = m.get_if<ParentLifetime>()) return async(on_lifetime(t->pid));
    if (ParentResume* r = m.get_if<ParentResume>()) return async(on_resume(std::move(r->orders)));
    if (m.is<ParentGiveUp>()) return async(give_up());
    auto from = m.reply_to();
    if (!from) return std::nullopt;
    if (ParentRequest* req = m.get_if<ParentRequest>()) return async(serve(std::move(*req), *from));
    if (m.is<SupervisorWhichChildren>()) return answer(*from, which_children());
    if (m.is<SupervisorCountChildren>()) return answer(*from, count_children());
    if (const SupervisorGetChildSpec* g = m.get_if<SupervisorGetChildSpec>()) {
      Pos c = g->pid ? find(ChildRef(g->pid)) : find(ChildRef(g->id));
      if (c == children_.end()) return answer(*from, Error(ErrorKind::not_found, "no such child"));
      ChildSpec spec = c->spec;
      spec.shutdown = c->shutdown;
      return answer(*from, std::move(spec));
    }
    return std::nullopt;
  }

  // After terminate (or a failed init): every child, reverse start order.
  Async<void> stop_children(ExitReason reason) { co_await stop_all(std::move(reason)); }

 private:
  struct Child {
    ParentChildSpec spec;
    Shutdown shutdown = Shutdown::infinity();
    Pid pid;
    Pid last;  // the pid it had when it last ran
    std::uint64_t order = 0;
    std::vector<std::uint64_t> deps;  // the orders of the siblings it binds to
    std::unique_ptr<RestartIntensity> intensity;  // per-child max_restarts, if set
    TimerRef lifetime_timer;
    bool timed = false;    // lifetime_timer is armed
    bool waiting = false;  // a restart is due: a retry, or a backoff's delay
    std::chrono::steady_clock::time_point started;
    std::chrono::milliseconds delay{0};  // the backoff's last delay (0: none yet)
  };
  using Children = std::list<Child>;  // start order; positions stay valid across removals
  using Pos = Children::iterator;
  using CPos = Children::const_iterator;

  // What a restart left to do: report stopped ephemeral children, or give up.
  struct Outcome {
    StoppedChildren stopped;
    bool give_up = false;
  };

  static Dispatched async(Async<Step> work) { return Dispatched(std::in_place_index<1>, std::move(work)); }
  template <class T>
  static Dispatched answer(const From& to, T&& value) {
    coppice::reply(to, std::forward<T>(value));
    return Dispatched(std::in_place_index<0>, Step{});
  }

  static Error not_found(const ChildRef& ref) {
    return Error(ErrorKind::not_found, "no child " + ref.to_string(), ref.pid());
  }

  Pos find(const ChildRef& ref) {
    if (ref.is_pid()) {
      auto it = by_pid_.find(ref.pid());
      return it == by_pid_.end() ? children_.end() : it->second;
    }
    auto it = by_id_.find(ref.id());
    return it == by_id_.end() ? children_.end() : it->second;
  }
  CPos find(const ChildRef& ref) const { return const_cast<ParentCore*>(this)->find(ref); }

  Status check_new(const ParentChildSpec& spec) {
    if (Status s = validate(spec); !s) return s;
    if (!spec.id.empty()) {
      if (auto it = by_id_.find(spec.id); it != by_id_.end())
        return Error(ErrorKind::already_started, "child '" + spec.id + "' is already there", it->second->pid);
    }
    std::string missing;
    for (const ChildRef& ref : spec.binds_to) {
      if (find(ref) != children_.end()) continue;
      if (!missing.empty()) missing += ", ";
      missing += ref.to_string();
    }
    if (!missing.empty())
      return Error(ErrorKind::missing_deps, "invalid child spec: binds_to: no such sibling: " + missing);
    if (spec.shutdown_group) {
      // The members agree with each other: one of them speaks for the group.
      if (auto g = groups_.find(*spec.shutdown_group); g != groups_.end() && !g->second.empty()) {
        const Child& member = *by_order_.at(g->second.front());
        if (member.spec.restart != spec.restart || member.spec.ephemeral != spec.ephemeral)
          return Error(ErrorKind::non_uniform_shutdown_group,
                       "invalid child spec: shutdown_group: '" + *spec.shutdown_group +
                           "' has members with another restart or ephemeral setting");
      }
    }
    return {};
  }

  // Adds a child at its place in the start order (`order`; new children come last). `deps`:
  // the orders it binds to, when it comes back (return_children); else from spec.binds_to.
  Pos add(ParentChildSpec spec, std::uint64_t order, std::optional<std::vector<std::uint64_t>> deps) {
    Child c;
    c.order = order;
    c.shutdown = spec.effective_shutdown();
    if (spec.max_restarts)
      c.intensity = std::make_unique<RestartIntensity>(*spec.max_restarts, spec.max_seconds - std::chrono::milliseconds(1));
    if (deps) {
      c.deps = std::move(*deps);
    } else {
      for (const ChildRef& ref : spec.binds_to) {
        Pos d = find(ref);
        if (d != children_.end()) c.deps.push_back(d->order);
      }
    }
    c.spec = std::move(spec);
    Pos at = children_.end();
    if (!children_.empty() && children_.back().order > order)
      at = std::find_if(children_.begin(), children_.end(), [order](const Child& x) { return x.order > order; });
    Pos p = children_.insert(at, std::move(c));
    if (!p->spec.id.empty()) by_id_.emplace(p->spec.id, p);
    by_order_.emplace(p->order, p);
    if (!p->deps.empty() || p->spec.shutdown_group) ++bound_;
    for (std::uint64_t d : p->deps) dependents_[d].push_back(p->order);
    if (p->spec.shutdown_group) groups_[*p->spec.shutdown_group].push_back(p->order);
    return p;
  }

  static void erase_from(std::vector<std::uint64_t>& v, std::uint64_t x) {
    if (auto it = std::find(v.begin(), v.end(), x); it != v.end()) v.erase(it);
  }

  // Takes the child out of every index (the list node stays until erased).
  void detach(Pos c) {
    clear_running(c);
    if (!c->spec.id.empty()) by_id_.erase(c->spec.id);
    by_order_.erase(c->order);
    if (!c->deps.empty() || c->spec.shutdown_group) --bound_;
    for (std::uint64_t d : c->deps) {
      auto it = dependents_.find(d);
      if (it == dependents_.end()) continue;
      erase_from(it->second, c->order);
      if (it->second.empty()) dependents_.erase(it);
    }
    if (c->spec.shutdown_group) {
      auto g = groups_.find(*c->spec.shutdown_group);
      erase_from(g->second, c->order);
      if (g->second.empty()) groups_.erase(g);
    }
  }

  void remove(Pos c) {
    detach(c);
    children_.erase(c);
  }

  // Removes the child and gives back what return_children needs.
  StoppedChild take(Pos c, ExitReason reason, bool crashed = false) {
    detach(c);
    StoppedChild s;
    s.pid = c->last;
    s.exit_reason = std::move(reason);
    s.order = c->order;
    s.crashed = crashed;
    s.deps = std::move(c->deps);
    s.spec = std::move(c->spec);
    children_.erase(c);
    return s;
  }

  void set_running(Pos c, Pid pid) {
    c->pid = pid;
    c->waiting = false;
    c->started = std::chrono::steady_clock::now();
    by_pid_.emplace(pid, c);
    if (!c->spec.id.empty()) {
      directory().put(runtime_, self_, c->spec.id, pid);
      published_ = true;
    }
    if (c->spec.lifetime) {
      c->lifetime_timer = coppice::send_after(*c->spec.lifetime, coppice::self(), ParentLifetime{pid});
      c->timed = true;
    }
  }

  void clear_running(Pos c) {
    if (c->pid) {
      by_pid_.erase(c->pid);
      if (!c->spec.id.empty()) directory().erase(runtime_, self_, c->spec.id, c->pid);
      c->last = c->pid;
      c->pid = Pid{};
    }
    if (c->timed) {
      coppice::cancel_timer(c->lifetime_timer);
      c->timed = false;
    }
  }

  // The child and every sibling that goes down with it, in start order: those bound to it
  // (transitively) and the members of its shutdown group (and theirs).
  // A walk out from `c` over the dependents and group indexes: as long as the answer, not
  // the table.
  std::vector<Pos> closure(Pos c) {
    if (bound_ == 0 || (!dependents_.contains(c->order) && !c->spec.shutdown_group)) return {c};
    std::vector<Pos> out{c};
    std::unordered_set<std::uint64_t> in{c->order};
    auto join = [&](std::uint64_t order) {
      auto it = by_order_.find(order);
      if (it == by_order_.end() || !in.insert(order).second) return;
      out.push_back(it->second);
    };
    for (std::size_t i = 0; i < out.size(); ++i) {
      const Child& x = *out[i];
      if (auto d = dependents_.find(x.order); d != dependents_.end())
        for (std::uint64_t o : d->second) join(o);
      if (x.spec.shutdown_group)
        for (std::uint64_t o : groups_.at(*x.spec.shutdown_group)) join(o);
    }
    std::sort(out.begin(), out.end(), [](Pos a, Pos b) { return a->order < b->order; });
    return out;
  }

  Async<Result<Pid>> start_one(Pos c) {
    try {
      // Built per start (not kept per child); the frame keeps it alive for the start function.
      const StartArgs args{c->spec.options, {}};
      Async<Result<Pid>> start = c->spec.start(args);
      Result<Pid> r = co_await start;
      if (!r && r.error().kind() == ErrorKind::ignore) co_return Pid{};
      co_return r;
    } catch (...) {
      ExitReason reason;
      std::string what = describe_exception(std::current_exception(), reason);
      co_return Error(ErrorKind::start_error, "start of " + describe(c->spec, Pid{}) + " raised: " + what, Pid{}, reason);
    }
  }

  // Stops the running children of `set` (start order) one at a time, in reverse order, with
  // `signal`; their EXITs are taken. Returns each one's exit reason (shutdown for those not
  // running).
  Async<std::vector<ExitReason>> stop_set(const std::vector<Pos>& set, ExitReason signal) {
    std::vector<ExitReason> reasons(set.size(), ExitReason::shutdown());
    for (std::size_t i = set.size(); i-- > 0;) {
      Pos c = set[i];
      c->waiting = false;
      const Pid pid = c->pid;
      if (!pid) continue;
      clear_running(c);
      reasons[i] = co_await coppice::shutdown_child(pid, c->shutdown, signal);
      if (!expected_shutdown_reason(reasons[i], c->shutdown, c->spec.restart) && !(reasons[i] == signal) &&
          reasons[i].kind() != ExitReason::Kind::noproc)
        report("shutdown_error", *c, pid, reasons[i]);
    }
    co_return reasons;
  }

  Async<StoppedChildren> stop_all(ExitReason reason) {
    if (reason.is_normal()) reason = ExitReason::shutdown();  // a normal exit signal would be ignored
    std::vector<Pos> all;
    all.reserve(children_.size());
    for (Pos p = children_.begin(); p != children_.end(); ++p) all.push_back(p);
    std::vector<ExitReason> reasons = co_await stop_set(all, reason);
    StoppedChildren stopped;
    stopped.reserve(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) stopped.push_back(take(all[i], reasons[i]));
    co_return stopped;
  }

  // Counts one restart of `c`, parent-wide and for the child; true if either is exceeded.
  bool record_restart(Pos c) {
    const auto now = std::chrono::steady_clock::now();
    bool over = options_.max_restarts && intensity_.add(now);
    if (c->intensity && c->intensity->add(now)) over = true;
    return over;
  }

  Async<Step> give_up() {
    coppice::log(line("Too many restarts in parent process, stopping every child"));
    co_await stop_all(ExitReason::shutdown());
    co_return Step{Step::Kind::stop, {}, too_many_restarts(), {}, {}};
  }

  // Starts the children of `set` that are not running, in start order. A start that fails
  // is a crash of that child: the siblings bound to it go down (or do not start), it counts
  // as a restart, and it is retried after the messages already queued, unless temporary.
  Async<Outcome> start_set(const std::vector<Pos>& set) {
    Outcome out;
    std::unordered_set<std::uint64_t> skip;
    for (Pos c : set) {
      if (c->pid || skip.contains(c->order)) continue;
      c->waiting = false;
      Result<Pid> r = co_await start_one(c);
      if (r && *r) {
        set_running(c, *r);
        continue;
      }
      if (r) {  // ignore: not running; kept unless ephemeral
        if (c->spec.ephemeral) remove(c);
        continue;
      }
      report("start_error", *c, Pid{}, ExitReason::other(r.error().to_string()));
      std::vector<Pos> down = closure(c);
      for (Pos d : down) skip.insert(d->order);
      std::vector<Pos> running;
      for (Pos d : down)
        if (d->pid) running.push_back(d);
      co_await stop_set(running, ExitReason::shutdown());
      if (c->spec.restart == Restart::temporary) {
        for (Pos d : down) {
          if (!d->spec.ephemeral) continue;
          out.stopped.push_back(take(d, d == c ? r.error().reason() : ExitReason::shutdown()));
        }
        continue;
      }
      if (record_restart(c)) {
        out.give_up = true;
        co_return out;
      }
      ParentResume again;
      for (Pos d : down) {
        d->waiting = true;
        again.orders.push_back(d->order);
      }
      coppice::send(coppice::self(), std::move(again));
    }
    co_return out;
  }

  // What start_set left, from an API function inside a callback: giving up waits for the
  // callback to return; stopped children are not reported (7.4: never for API functions).
  void settle_outside(Outcome out) {
    if (out.give_up) coppice::send(coppice::self(), ParentGiveUp{});
  }

  Async<Step> finish(Outcome out) {
    if (out.give_up) co_return co_await give_up();
    if (out.stopped.empty()) co_return Step{};
    co_return co_await notify(std::move(out.stopped));
  }

  Async<Step> notify(StoppedChildren stopped) {
    Message m = Message::of(std::move(stopped));
    Dispatched d = on_stopped_(base_, m);
    if (d.index() == 0) co_return std::get<0>(std::move(d));
    Async<Step> work = std::get<1>(std::move(d));
    co_return co_await work;
  }

  // A child stopped on its own (SEMANTICS.md 7.4); its pid is already cleared.
  Async<Step> on_stopped(Pos c, ExitReason reason) {
    const Pid pid = c->last;
    std::vector<Pos> set = closure(c);
    std::vector<Pos> others;
    for (Pos p : set)
      if (p != c) others.push_back(p);
    co_await stop_set(others, ExitReason::shutdown());
    const bool abnormal = !reason.is_clean();
    if (restarts(c->spec.restart, reason)) {
      if (record_restart(c)) {
        if (abnormal) report("child_terminated", *c, pid, reason, "giving up");
        co_return co_await give_up();
      }
      if (c->spec.backoff) {
        const std::chrono::milliseconds delay = next_delay(*c);
        if (abnormal) report("child_terminated", *c, pid, reason, "restarting in " + ms(delay));
        ParentResume later;
        for (Pos p : set) {
          p->waiting = true;
          later.orders.push_back(p->order);
        }
        coppice::send_after(delay, coppice::self(), std::move(later));
        co_return Step{};
      }
      Outcome out = co_await start_set(set);
      if (abnormal) report("child_terminated", *c, pid, reason, "restarted");
      co_return co_await finish(std::move(out));
    }
    if (abnormal) report("child_terminated", *c, pid, reason, "not restarted");
    StoppedChildren stopped;
    const bool all = c->spec.ephemeral;
    for (Pos p : set) {
      if (!all && !p->spec.ephemeral) continue;  // kept, not running
      stopped.push_back(take(p, p == c ? reason : ExitReason::shutdown(), p == c && abnormal));
    }
    if (stopped.empty()) co_return Step{};
    co_return co_await notify(std::move(stopped));
  }

  std::chrono::milliseconds next_delay(Child& c) {
    const Backoff& b = *c.spec.backoff;
    const auto ran = std::chrono::steady_clock::now() - c.started;
    if (c.delay.count() == 0 || ran >= b.reset_after.value_or(b.max)) {
      c.delay = b.initial;
    } else {
      c.delay = std::min(b.max, std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(c.delay.count()) * b.multiplier)));
    }
    std::uniform_real_distribution<double> factor(1.0 - b.jitter, 1.0 + b.jitter);
    const double jittered = static_cast<double>(c.delay.count()) * (b.jitter > 0 ? factor(random_) : 1.0);
    return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(jittered)));
  }

  Async<Step> on_lifetime(Pid pid) {
    auto found = by_pid_.find(pid);
    if (found == by_pid_.end()) co_return Step{};  // stopped meanwhile
    Pos c = found->second;
    c->timed = false;  // it fired
    clear_running(c);
    co_await coppice::shutdown_child(pid, c->shutdown, ExitReason::timeout());
    co_return co_await on_stopped(c, ExitReason::timeout());
  }

  Async<Step> on_resume(std::vector<std::uint64_t> orders) {
    std::vector<Pos> set;
    for (std::uint64_t o : orders) {
      auto it = by_order_.find(o);
      if (it != by_order_.end() && it->second->waiting && !it->second->pid) set.push_back(it->second);
    }
    if (set.empty()) co_return Step{};  // stopped or started meanwhile
    Outcome out = co_await start_set(set);
    co_return co_await finish(std::move(out));
  }

  Async<Step> serve(ParentRequest req, From from) {
    using Op = ParentRequest::Op;
    switch (req.op) {
      case Op::children:
        coppice::reply(from, children());
        break;
      case Op::num_children:
        coppice::reply(from, num_children());
        break;
      case Op::child_pid:
        reply_result(from, child_pid(req.ref));
        break;
      case Op::child_meta:
        reply_result(from, child_meta(req.ref));
        break;
      case Op::update_child_meta: {
        Status s = update_child_meta(req.ref, [&](std::any) { return std::move(req.meta); });
        if (!s) {
          coppice::reply(from, s.error());
        } else {
          coppice::reply(from, SupervisorOk{});
        }
        break;
      }
      case Op::start_child: {
        Result<Pid> r = co_await start_child(std::move(req.spec));
        reply_result(from, std::move(r));
        break;
      }
      case Op::shutdown_child: {
        Result<StoppedChildren> r = co_await shutdown_child(req.ref);
        reply_result(from, std::move(r));
        break;
      }
      case Op::restart_child: {
        Status s = co_await restart_child(req.ref);
        if (!s) {
          coppice::reply(from, s.error());
        } else {
          coppice::reply(from, SupervisorOk{});
        }
        break;
      }
      case Op::shutdown_all:
        coppice::reply(from, co_await shutdown_all(std::move(req.reason)));
        break;
      case Op::return_children: {
        Status s = co_await return_children(std::move(req.stopped));
        if (!s) {
          coppice::reply(from, s.error());
        } else {
          coppice::reply(from, SupervisorOk{});
        }
        break;
      }
    }
    co_return Step{};
  }

  template <class T>
  static void reply_result(const From& from, Result<T> r) {
    if (!r) {
      coppice::reply(from, r.error());
    } else {
      coppice::reply(from, std::move(*r));
    }
  }

  std::vector<ChildInfo> which_children() const {
    std::vector<ChildInfo> out;
    out.reserve(children_.size());
    // Start order, as the `parent` library lists them (SEMANTICS.md 0 and 9); a restarted
    // child keeps its place.
    for (const Child& c : children_) out.push_back(ChildInfo{c.spec.id, c.pid, c.waiting, c.spec.type, c.spec.modules});
    return out;
  }

  ChildCounts count_children() const {
    ChildCounts n;
    for (const Child& c : children_) n.add(static_cast<bool>(c.pid), c.spec.type);
    return n;
  }

  std::string line(std::string_view what) const {
    std::string l = "coppice: ";
    l.append(behaviour_);
    l.push_back(' ');
    l.append(coppice::self().to_string());
    if (name_.is_local_name() || name_.is_registry_name()) {
      l.push_back(' ');
      l.append(name_.to_string());
    }
    l.push_back(' ');
    l.append(what);
    return l;
  }

  void report(std::string_view what, const Child& c, Pid pid, const ExitReason& reason, std::string_view outcome = {}) const {
    std::string l = line(what);
    l.append(": ");
    l.append(describe(c.spec, pid));
    if (pid && !c.spec.id.empty()) {
      l.push_back(' ');
      l.append(pid.to_string());
    }
    l.append(" reason ");
    l.append(reason.to_string());
    if (!outcome.empty()) {
      l.append(" (");
      l.append(outcome);
      l.push_back(')');
    }
    coppice::log(l);
  }

  ParentOptions options_;
  RestartIntensity intensity_;
  ParentBase& base_;
  ParentBase::StoppedThunk on_stopped_;
  bool user_handles_exits_;
  ServerRef name_;
  std::string behaviour_ = "Parent";
  Pid self_;
  RuntimeCore* runtime_ = nullptr;
  bool published_ = false;  // some child is in the directory

  Children children_;
  std::unordered_map<std::string, Pos> by_id_;
  std::unordered_map<Pid, Pos> by_pid_;  // running children
  std::unordered_map<std::uint64_t, Pos> by_order_;
  std::uint64_t next_order_ = 1;
  std::size_t bound_ = 0;  // children with binds_to or a shutdown group
  // Who binds to a child (by order, whether or not that child is here now), and who is in a
  // group: closure() and check_new() look here instead of walking the table.
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> dependents_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> groups_;
  std::minstd_rand random_{std::random_device{}()};
};

// ---- ParentBase: the members a server class uses, forwarded to its core -----------------

namespace {
// Thrown from the server's constructor, which makes the start fail with this message.
ParentOptions checked(ParentOptions o) {
  if (o.max_restarts && *o.max_restarts < 0)
    throw std::invalid_argument("invalid parent options: max_restarts: must be 0 or more, not " +
                                std::to_string(*o.max_restarts));
  if (o.max_seconds.count() <= 0)
    throw std::invalid_argument("invalid parent options: max_seconds: must be more than 0 ms, not " + ms(o.max_seconds));
  return o;
}
}  // namespace

ParentBase::ParentBase(ParentOptions options, StoppedThunk on_stopped, bool user_handles_exits)
    : core_(std::make_unique<ParentCore>(checked(options), *this, on_stopped, user_handles_exits)) {}
ParentBase::~ParentBase() = default;

Async<Result<Pid>> ParentBase::start_child(ParentChildSpec spec) { return core_->start_child(std::move(spec)); }
Async<std::vector<Pid>> ParentBase::start_all_children(std::vector<ParentChildSpec> specs) {
  return core_->start_all_children(std::move(specs));
}
Async<Result<StoppedChildren>> ParentBase::shutdown_child(ChildRef ref) { return core_->shutdown_child(std::move(ref)); }
Async<Status> ParentBase::restart_child(ChildRef ref) { return core_->restart_child(std::move(ref)); }
Async<StoppedChildren> ParentBase::shutdown_all(ExitReason reason) { return core_->shutdown_all(std::move(reason)); }
Async<Status> ParentBase::return_children(StoppedChildren stopped) { return core_->return_children(std::move(stopped)); }
std::vector<ParentChild> ParentBase::children() const { return core_->children(); }
std::size_t ParentBase::num_children() const { return core_->num_children(); }
bool ParentBase::is_child(const ChildRef& ref) const { return core_->is_child(ref); }
Result<Pid> ParentBase::child_pid(const ChildRef& ref) const { return core_->child_pid(ref); }
Result<std::string> ParentBase::child_id(Pid pid) const { return core_->child_id(pid); }
Result<std::any> ParentBase::child_meta(const ChildRef& ref) const { return core_->child_meta(ref); }
Status ParentBase::update_child_meta(const ChildRef& ref, std::function<std::any(std::any)> update) {
  return core_->update_child_meta(ref, update);
}

void parent_attach(ParentBase& parent, const ServerRef& name, std::string_view behaviour) {
  parent.parent_core().attach(name, behaviour);
}
std::optional<Dispatched> parent_intercept(ParentBase& parent, Message& m) { return parent.parent_core().intercept(m); }
Async<void> parent_stop_children(ParentBase& parent, ExitReason reason) {
  return parent.parent_core().stop_children(std::move(reason));
}

}  // namespace detail

// ---- ParentClient ---------------------------------------------------------------------------

namespace {
using detail::ParentRequest;
using Op = ParentRequest::Op;

Message request(Op op, ChildRef ref = ChildRef(std::string())) {
  ParentRequest r{op, std::move(ref), {}, {}, {}, {}};
  return Message::of(std::move(r));
}
template <class R>
CallAwaiter<R> ask(const ServerRef& parent, Message m, std::chrono::milliseconds timeout) {
  return detail::call_ref<R>(parent, std::move(m), timeout);
}
template <class R>
Result<R> ask(Runtime& rt, const ServerRef& parent, Message m, std::chrono::milliseconds timeout) {
  return detail::reply_as<R>(detail::call_blocking(rt, parent, std::move(m), timeout), Pid{});
}
Status ok_of(Result<detail::SupervisorOk> r) {
  if (!r) return r.error();
  return {};
}
Message with_spec(ParentChildSpec spec) {
  ParentRequest r{Op::start_child, ChildRef(std::string()), std::move(spec), {}, {}, {}};
  return Message::of(std::move(r));
}
Message with_meta(ChildRef ref, std::any meta) {
  ParentRequest r{Op::update_child_meta, std::move(ref), {}, std::move(meta), {}, {}};
  return Message::of(std::move(r));
}
Message with_reason(ExitReason reason) {
  ParentRequest r{Op::shutdown_all, ChildRef(std::string()), {}, {}, std::move(reason), {}};
  return Message::of(std::move(r));
}
Message with_stopped(StoppedChildren stopped) {
  ParentRequest r{Op::return_children, ChildRef(std::string()), {}, {}, {}, std::move(stopped)};
  return Message::of(std::move(r));
}
constexpr std::chrono::milliseconds query_timeout = default_call_timeout;
}  // namespace

CallAwaiter<std::vector<ParentChild>> ParentClient::children(const ServerRef& parent) {
  return ask<std::vector<ParentChild>>(parent, request(Op::children), query_timeout);
}
CallAwaiter<Pid> ParentClient::child_pid(const ServerRef& parent, ChildRef child) {
  return ask<Pid>(parent, request(Op::child_pid, std::move(child)), query_timeout);
}
CallAwaiter<std::any> ParentClient::child_meta(const ServerRef& parent, ChildRef child) {
  return ask<std::any>(parent, request(Op::child_meta, std::move(child)), query_timeout);
}
CallAwaiter<detail::SupervisorOk> ParentClient::update_child_meta(const ServerRef& parent, ChildRef child, std::any meta) {
  return ask<detail::SupervisorOk>(parent, with_meta(std::move(child), std::move(meta)), infinity);
}
CallAwaiter<Pid> ParentClient::start_child(const ServerRef& parent, ParentChildSpec spec) {
  return ask<Pid>(parent, with_spec(std::move(spec)), infinity);
}
CallAwaiter<StoppedChildren> ParentClient::shutdown_child(const ServerRef& parent, ChildRef child) {
  return ask<StoppedChildren>(parent, request(Op::shutdown_child, std::move(child)), infinity);
}
CallAwaiter<detail::SupervisorOk> ParentClient::restart_child(const ServerRef& parent, ChildRef child) {
  return ask<detail::SupervisorOk>(parent, request(Op::restart_child, std::move(child)), infinity);
}
CallAwaiter<StoppedChildren> ParentClient::shutdown_all(const ServerRef& parent, ExitReason reason) {
  return ask<StoppedChildren>(parent, with_reason(std::move(reason)), infinity);
}
CallAwaiter<detail::SupervisorOk> ParentClient::return_children(const ServerRef& parent, StoppedChildren stopped) {
  return ask<detail::SupervisorOk>(parent, with_stopped(std::move(stopped)), infinity);
}

Result<std::vector<ParentChild>> ParentClient::children(Runtime& rt, const ServerRef& parent) {
  return ask<std::vector<ParentChild>>(rt, parent, request(Op::children), query_timeout);
}
Result<Pid> ParentClient::child_pid(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<Pid>(rt, parent, request(Op::child_pid, std::move(child)), query_timeout);
}
Result<std::any> ParentClient::child_meta(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<std::any>(rt, parent, request(Op::child_meta, std::move(child)), query_timeout);
}
Status ParentClient::update_child_meta(Runtime& rt, const ServerRef& parent, ChildRef child, std::any meta) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, with_meta(std::move(child), std::move(meta)), infinity));
}
Result<Pid> ParentClient::start_child(Runtime& rt, const ServerRef& parent, ParentChildSpec spec) {
  return ask<Pid>(rt, parent, with_spec(std::move(spec)), infinity);
}
Result<StoppedChildren> ParentClient::shutdown_child(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ask<StoppedChildren>(rt, parent, request(Op::shutdown_child, std::move(child)), infinity);
}
Status ParentClient::restart_child(Runtime& rt, const ServerRef& parent, ChildRef child) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, request(Op::restart_child, std::move(child)), infinity));
}
Result<StoppedChildren> ParentClient::shutdown_all(Runtime& rt, const ServerRef& parent, ExitReason reason) {
  return ask<StoppedChildren>(rt, parent, with_reason(std::move(reason)), infinity);
}
Status ParentClient::return_children(Runtime& rt, const ServerRef& parent, StoppedChildren stopped) {
  return ok_of(ask<detail::SupervisorOk>(rt, parent, with_stopped(std::move(stopped)), infinity));
}

// ---- ParentSupervisor -----------------------------------------------------------------------

ParentSupervisor::ParentSupervisor(std::vector<ParentChildSpec> children, ParentOptions options)
    : Parent(options), children_(std::move(children)) {}

Async<Init> ParentSupervisor::init() {
  auto work = start_all_children(std::move(children_));
  std::vector<Pid> pids = co_await work;
  (void)pids;
  co_return ok();
}

Async<Result<Pid>> ParentSupervisor::start_link(std::vector<ParentChildSpec> children, ParentOptions options,
                                                StartOptions start) {
  return GenServer<ParentSupervisor>::start_link(std::move(start), std::move(children), options);
}

Result<Pid> ParentSupervisor::start(Runtime& rt, std::vector<ParentChildSpec> children, ParentOptions options,
                                    StartOptions start) {
  return GenServer<ParentSupervisor>::start(rt, std::move(start), std::move(children), options);
}

ChildSpec ParentSupervisor::child_spec(std::string id, std::vector<ParentChildSpec> children, ParentOptions options) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.type = ChildType::supervisor;
  spec.modules = {std::string(behaviour)};
  spec.start = [children = std::move(children), options](const StartArgs& a) -> Async<Result<Pid>> {
    return GenServer<ParentSupervisor>::start_link(a.options, children, options);
  };
  return spec;
}

}  // namespace coppice
