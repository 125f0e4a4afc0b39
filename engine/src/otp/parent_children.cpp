// Parent's child table: a spec's validation, the table and its indexes, a child's running
// state, the directory behind ServerRef::child_of, and the queries.
#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "otp/parent_core.hpp"

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
}  // namespace

Status validate(const ParentChildSpec& spec) {
  if (Status s = validate(static_cast<const ChildSpec&>(spec), false); !s) return s;
  if (spec.significant) return invalid("significant", "a Parent has no auto_shutdown: use binds_to or shutdown_group");
  // 0 is the `parent` library's timeout: 0, the child stopped as soon as it started (SEMANTICS.md 9).
  if (spec.lifetime && spec.lifetime->count() < 0)
    return invalid("lifetime", "must be 0 ms or more, not " + ms(*spec.lifetime));
  if (spec.intensity && *spec.intensity < 0)
    return invalid("intensity", "must be 0 or more, not " + std::to_string(*spec.intensity));
  if (spec.period.count() <= 0) return invalid("period", "must be more than 0 ms, not " + ms(spec.period));
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

ParentCore::ParentCore(ParentOptions options, ParentBase& base, ParentBase::StoppedThunk on_stopped, bool user_handles_exits)
    : options_(options),
      // The `parent` library keeps a restart while t + interval - 1 >= now: a window one
      // millisecond shorter than RestartIntensity's inclusive one.
      intensity_(options.intensity.value_or(0), options.period - std::chrono::milliseconds(1)),
      base_(base),
      on_stopped_(on_stopped),
      user_handles_exits_(user_handles_exits) {}

ParentCore::~ParentCore() {
  if (published_) directory().drop(runtime_, self_);
}

void ParentCore::attach(const ServerRef& name, std::string_view behaviour) {
  name_ = name;
  behaviour_ = behaviour;
  self_ = coppice::self();
  runtime_ = &current_core();
  // Running from here: a Parent's own init is the user's, and ends where this cannot see.
  record_.join(behaviour, name, options_.intensity ? &intensity_ : nullptr, /*parent=*/true);
  record_.running();
}

std::vector<ParentChild> ParentCore::children() const {
  std::vector<ParentChild> out;
  out.reserve(children_.size());
  for (const Child& c : children_) out.push_back(ParentChild{c.spec.id, c.pid, c.spec.meta});
  return out;
}

std::size_t ParentCore::num_children() const { return children_.size(); }

bool ParentCore::is_child(const ChildRef& ref) const { return find(ref) != children_.end(); }

Result<Pid> ParentCore::child_pid(const ChildRef& ref) const {
  auto c = find(ref);
  if (c == children_.end()) return not_found(ref);
  return c->pid;
}

Result<std::string> ParentCore::child_id(Pid pid) const {
  CPos c = children_.find(pid);
  if (c == children_.end() || c->spec.id.empty())
    return Error(ErrorKind::not_found, "no child with an id has pid " + pid.to_string(), pid);
  return c->spec.id;
}

Result<std::any> ParentCore::child_meta(const ChildRef& ref) const {
  auto c = find(ref);
  if (c == children_.end()) return not_found(ref);
  return c->spec.meta;
}

Status ParentCore::update_child_meta(const ChildRef& ref, const std::function<std::any(std::any)>& update) {
  Pos c = find(ref);
  if (c == children_.end()) return not_found(ref);
  c->spec.meta = update(std::move(c->spec.meta));
  return {};
}

Error ParentCore::not_found(const ChildRef& ref) {
  return Error(ErrorKind::not_found, "no child " + ref.to_string(), ref.pid());
}

ParentCore::Pos ParentCore::find(const ChildRef& ref) {
  if (ref.is_pid()) return children_.find(ref.pid());
  return children_.find(ref.id());
}

ParentCore::CPos ParentCore::find(const ChildRef& ref) const { return const_cast<ParentCore*>(this)->find(ref); }

// Adds a child at its place in the start order (`order`; new children come last). `deps`:
// the orders it binds to, when it comes back (return_children); else from spec.binds_to.
ParentCore::Pos ParentCore::add(ParentChildSpec spec, std::uint64_t order, std::optional<std::vector<std::uint64_t>> deps) {
  Child c;
  c.order = order;
  c.shutdown = spec.effective_shutdown();
  if (spec.intensity)
    c.intensity = std::make_unique<RestartIntensity>(*spec.intensity, spec.period - std::chrono::milliseconds(1));
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
  by_order_.emplace(p->order, p);
  if (!p->deps.empty() || p->spec.shutdown_group) ++bound_;
  for (std::uint64_t d : p->deps) dependents_[d].push_back(p->order);
  if (p->spec.shutdown_group) groups_[*p->spec.shutdown_group].push_back(p->order);
  return p;
}

void ParentCore::erase_from(std::vector<std::uint64_t>& v, std::uint64_t x) {
  if (auto it = std::find(v.begin(), v.end(), x); it != v.end()) v.erase(it);
}

// Takes the child out of every index (the list node stays until erased).
void ParentCore::detach(Pos c) {
  clear_running(c);
  children_.detach(c);
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

void ParentCore::remove(Pos c) {
  detach(c);
  children_.drop(c);
}

// Removes the child and gives back what return_children needs.
StoppedChild ParentCore::take(Pos c, ExitReason reason, bool crashed) {
  detach(c);
  StoppedChild s;
  s.pid = c->last;
  s.exit_reason = std::move(reason);
  s.order = c->order;
  s.crashed = crashed;
  s.deps = std::move(c->deps);
  s.spec = std::move(c->spec);
  children_.drop(c);
  return s;
}

void ParentCore::set_running(Pos c, Pid pid) {
  children_.set_pid(c, pid);
  c->started = std::chrono::steady_clock::now();
  if (!c->spec.id.empty()) {
    directory().put(runtime_, self_, c->spec.id, pid);
    published_ = true;
  }
  if (c->spec.lifetime) {
    c->lifetime_timer = coppice::send_after(*c->spec.lifetime, coppice::self(), ParentLifetime{pid});
    c->timed = true;
  }
}

void ParentCore::clear_running(Pos c) {
  if (c->pid) {
    if (!c->spec.id.empty()) directory().erase(runtime_, self_, c->spec.id, c->pid);
    c->last = c->pid;
    children_.clear_pid(c);
  }
  if (c->timed) {
    coppice::cancel_timer(c->lifetime_timer);
    c->timed = false;
  }
}

std::vector<ChildInfo> ParentCore::which_children() const {
  std::vector<ChildInfo> out;
  out.reserve(children_.size());
  // Start order, as the `parent` library lists them (SEMANTICS.md 0 and 9); a restarted
  // child keeps its place.
  for (const Child& c : children_) out.push_back(ChildInfo{c.spec.id, c.pid, c.restarting, c.spec.type, c.spec.modules});
  return out;
}

ChildCounts ParentCore::count_children() const {
  ChildCounts n;
  for (const Child& c : children_) n.add(static_cast<bool>(c.pid), c.spec.type);
  return n;
}

}  // namespace detail
}  // namespace coppice
