// Registry: the shared tables, the top and partition processes that own and clean them, and
// the functions that read and write the tables from the caller's own thread.
//
// As in Elixir, where the caller writes the ETS tables itself, a registration is a write
// under one partition's lock by the registering process, which then links to the partition's
// process; lookups take a shared lock on the partition they need. The partition processes
// only trap exits and delete the entries of registrants whose EXIT they receive. The tables
// are found by name through a per-runtime service, so no lookup sends a message.
#include "coppice/registry.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coppice/gen_server.hpp"
#include "coppice/inbox.hpp"
#include "coppice/process.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/service.hpp"

namespace coppice {

std::string_view to_string(RegistryKeys keys) {
  switch (keys) {
    case RegistryKeys::unique:
      return "unique";
    case RegistryKeys::duplicate:
      return "duplicate";
    case RegistryKeys::duplicate_by_key:
      return "duplicate_by_key";
  }
  return "?";
}

namespace {

using detail::RuntimeCore;

// Waits that must end (a registry that was told to stop, a partition that answers); the bound
// only keeps a broken runtime from hanging its caller forever.
constexpr std::chrono::hours forever{24 * 365};

struct Entry {
  Pid pid;
  std::any value;
};

// One partition's share of the table. Every entry of a key and the pid's record of that key
// live in the same partition, so one lock covers a registration.
struct Partition {
  Pid pid;  // its process; written by the top before the table is published, then read-only
  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, std::vector<Entry>> by_key;
  // Elixir's pid table: the keys each process holds here, once per registration. It is what
  // the cleanup walks, and "empty" is when the process unlinks from the partition.
  std::unordered_map<Pid, std::vector<std::string>> by_pid;

  // Removes `pid`'s entries under `key`, and only those: a late cleanup of a dead process
  // must never take the entry of the process that registered the key after it. Lock held.
  std::size_t erase_entries(const std::string& key, Pid pid) {
    auto it = by_key.find(key);
    if (it == by_key.end()) return 0;
    const std::size_t removed = std::erase_if(it->second, [pid](const Entry& e) { return e.pid == pid; });
    if (it->second.empty()) by_key.erase(it);
    return removed;
  }
  // Removes `key` from `pid`'s record; true if `pid` has nothing left here. Lock held.
  bool forget_key(Pid pid, const std::string& key) {
    auto it = by_pid.find(pid);
    if (it == by_pid.end()) return false;
    std::erase(it->second, key);
    if (!it->second.empty()) return false;
    by_pid.erase(it);
    return true;
  }
  // Everything `pid` registered here (it is dead).
  void remove_pid(Pid pid) {
    std::unique_lock lock(mutex);
    auto it = by_pid.find(pid);
    if (it == by_pid.end()) return;
    const std::vector<std::string> keys = std::move(it->second);
    by_pid.erase(it);
    for (const std::string& key : keys) erase_entries(key, pid);
  }
  void collect(const std::string& key, RegistryEntries& out) const {
    std::shared_lock lock(mutex);
    auto it = by_key.find(key);
    if (it == by_key.end()) return;
    for (const Entry& e : it->second) out.emplace_back(e.pid, e.value);
  }
};

struct Table {
  std::string name;
  RegistryKeys keys;
  std::vector<std::string> listeners;
  std::vector<std::unique_ptr<Partition>> partitions;
  Pid top;  // written under Registries::mutex when the table is published

  std::mutex meta_mutex;
  std::unordered_map<std::string, std::any> meta;

  Partition& for_key(const std::string& key) const {
    return *partitions[std::hash<std::string>{}(key) % partitions.size()];
  }
  Partition& for_pid(Pid pid) const { return *partitions[std::hash<Pid>{}(pid) % partitions.size()]; }
  // Where `pid`'s entry under `key` lives: Elixir partitions {:duplicate, :pid} by pid so that
  // one process's registrations (and its cleanup) stay in one partition; the others by key,
  // so that a lookup reads one partition.
  Partition& owner(const std::string& key, Pid pid) const {
    return keys == RegistryKeys::duplicate ? for_pid(pid) : for_key(key);
  }
};

// The runtime's running registries, by name.
struct Registries {
  std::shared_mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<Table>> by_name;
};

std::shared_ptr<Table> find_table(RuntimeCore& core, std::string_view name) {
  Registries& all = detail::service<Registries>(core);
  std::shared_lock lock(all.mutex);
  auto it = all.by_name.find(std::string(name));
  return it == all.by_name.end() ? nullptr : it->second;
}

Result<std::shared_ptr<Table>> table_named(RuntimeCore& core, std::string_view name) {
  std::shared_ptr<Table> t = find_table(core, name);
  if (!t) return Error(ErrorKind::not_found, "no Registry named '" + std::string(name) + "' is running");
  return t;
}

// For reads without a Runtime: the runtime of the running process.
Result<std::shared_ptr<Table>> table_here(std::string_view name, std::string_view what) {
  RuntimeCore* core = detail::current_core_or_null();
  if (core == nullptr)
    return Error(ErrorKind::not_in_process,
                 "Registry::" + std::string(what) + " without a Runtime must be called from inside a process");
  return table_named(*core, name);
}

// For writes: they act for the running process.
struct Caller {
  RuntimeCore* core;
  Pid pid;
  std::shared_ptr<Table> table;
};
Result<Caller> caller_of(std::string_view name, std::string_view what) {
  RuntimeCore* core = detail::current_core_or_null();
  const Pid me = core != nullptr ? self() : Pid{};
  if (!me)
    return Error(ErrorKind::not_in_process,
                 "Registry::" + std::string(what) + " acts for the running process; call it from inside one");
  Result<std::shared_ptr<Table>> t = table_named(*core, name);
  if (!t) return t.error();
  return Caller{core, me, std::move(*t)};
}

Status refuse_blocking(std::string_view what) {
  if (detail::current_core_or_null() != nullptr && self())
    return Error(ErrorKind::blocking_in_process,
                 "Registry::" + std::string(what) + "(Runtime&, ...) blocks; from inside a process use the coroutine form");
  return {};
}

// Listeners hear of explicit registrations only. A listener that is not registered right now
// (restarting, say) misses the event; Elixir's send to a missing name would crash the
// registering process instead, which punishes the wrong party.
void notify(RuntimeCore& core, const Table& t, RegistryEvent::Kind kind, const std::string& key, Pid pid,
            const std::any& value) {
  for (const std::string& listener : t.listeners)
    (void)detail::send_envelope_to_name(core, listener,
                                        Message::of(RegistryEvent{kind, t.name, key, pid, value}).release());
}

Error already_registered(const Table& t, const std::string& key, Pid holder) {
  return Error(ErrorKind::already_started,
               "already_registered: key '" + key + "' of Registry '" + t.name + "' is held by " + holder.to_string(),
               holder);
}

std::optional<Error> invalid(const RegistryOptions& o) {
  if (o.name.empty()) return Error(ErrorKind::invalid_argument, "Registry: options.name is empty");
  if (o.partitions == 0) return Error(ErrorKind::invalid_argument, "Registry: options.partitions must be at least 1");
  for (const std::string& l : o.listeners)
    if (l.empty()) return Error(ErrorKind::invalid_argument, "Registry: a listener name is empty");
  return std::nullopt;
}

std::shared_ptr<Table> make_table(RegistryOptions& o) {
  auto t = std::make_shared<Table>();
  t->name = std::move(o.name);
  t->keys = o.keys;
  t->listeners = std::move(o.listeners);
  for (unsigned i = 0; i < o.partitions; ++i) t->partitions.push_back(std::make_unique<Partition>());
  for (auto& [key, value] : o.meta) t->meta.insert_or_assign(std::move(key), std::move(value));
  return t;
}

// ---- The processes ---------------------------------------------------------------------

// The top tells its starter how init went.
struct Started {
  Pid top;
  std::optional<Error> error;
};
struct StopRegistry {
  ExitReason reason;
};
struct SyncRequest {};
struct Synced {};

// A partition: traps exits, and deletes the entries of each registrant whose EXIT arrives.
// A GenServer started by the top (its parent, whose exit signals it obeys, as every GenServer
// does), so that it also serves the system messages between EXITs (SEMANTICS.md 0):
// suspended, it leaves the EXITs queued and the entries of the dead in the table.
class RegistryPartition final : public GenServer<RegistryPartition> {
 public:
  using calls = Protocol<SyncRequest>;

  RegistryPartition(std::shared_ptr<Table> table, std::size_t index) : table_(std::move(table)), index_(index) {}

  void init() { trap_exit(true); }

  // Only EXITs come here (nobody else writes to a partition; anything else is dropped, as
  // before). A linked registrant died: its entries go. (An explicit exit(partition, reason)
  // from a live process also arrives as an Exit; its entries stay, since it still holds them.)
  void handle_info(Message m) {
    if (const Exit* e = m.get_if<Exit>(); e != nullptr && !is_alive(e->from))
      table_->partitions[index_]->remove_pid(e->from);
  }
  Synced handle_call(SyncRequest) { return {}; }

 private:
  std::shared_ptr<Table> table_;
  std::size_t index_;
};

// The registry's top process: owns the partitions (linked), claims the name, and releases it
// in its destructor, which runs before its exit signals go out: whoever sees it die can start
// a registry with the same name at once. Like Elixir's Registry supervisor (one_for_all, no
// restarts), a partition that dies takes the whole registry down: its entries could no
// longer be cleaned.
class RegistryTop final : public Process {
 public:
  RegistryTop(std::shared_ptr<Table> table, Pid parent, Pid starter)
      : table_(std::move(table)), parent_(parent), starter_(starter) {}

  ~RegistryTop() override { release_name(); }

  void init() override {
    trap_exit(true);
    core_ = &detail::current_core();
    for (std::size_t i = 0; i < table_->partitions.size(); ++i) {
      // Linked and monitored, its acknowledgement to come: the partition's init cannot fail, so
      // neither is waited for (the monitor and the alias are dropped at once).
      const PendingStart started = detail::spawn_server<RegistryPartition>(StartOptions{}, table_, i);
      demonitor(started.monitor);
      unalias(started.ack.ref);
      const Pid p = started.pid;
      table_->partitions[i]->pid = p;
      running_.insert(p);
    }
    if (std::optional<Error> taken = claim_name()) {
      // As a GenServer whose name is taken: no EXIT reaches the starter; the partitions
      // follow us out.
      if (parent_) unlink(parent_);
      send(starter_, Started{self(), std::move(taken)});
      stop_self(ExitReason::normal());
      return;
    }
    send(starter_, Started{self(), std::nullopt});
  }

  void handle(Message m) override {
    if (const Exit* e = m.get_if<Exit>()) {
      const bool partition = running_.erase(e->from) > 0;
      if (stopping_) {
        if (running_.empty()) stop_self(reason_);
      } else if (e->from == parent_) {
        begin_stop(e->reason);
      } else if (partition) {
        begin_stop(ExitReason::shutdown());
      }
      return;
    }
    if (const StopRegistry* s = m.get_if<StopRegistry>()) {
      if (!stopping_) begin_stop(s->reason);
    }
  }

 private:
  // Stops the partitions (they obey our exit signals) and exits once all are gone, so that a
  // registry is entirely gone when its DOWN arrives.
  void begin_stop(ExitReason reason) {
    stopping_ = true;
    reason_ = std::move(reason);
    for (Pid p : running_) exit(p, ExitReason::shutdown());
    if (running_.empty()) stop_self(reason_);
  }

  std::optional<Error> claim_name() {
    Registries& all = detail::service<Registries>(*core_);
    std::unique_lock lock(all.mutex);
    auto [it, inserted] = all.by_name.try_emplace(table_->name, table_);
    if (!inserted) {
      const Pid holder = it->second->top;
      if (detail::is_alive(*core_, holder))
        return Error(ErrorKind::already_started, "a Registry named '" + table_->name + "' is running as " + holder.to_string(),
                     holder);
      it->second = table_;  // its top is exiting and has not released the name yet
    }
    table_->top = self();
    claimed_ = true;
    return std::nullopt;
  }

  void release_name() noexcept {
    if (!claimed_) return;
    Registries& all = detail::service<Registries>(*core_);
    std::unique_lock lock(all.mutex);
    auto it = all.by_name.find(table_->name);
    // Only our own table: a successor may already have taken the name over.
    if (it != all.by_name.end() && it->second == table_) all.by_name.erase(it);
  }

  std::shared_ptr<Table> table_;
  Pid parent_;
  Pid starter_;
  RuntimeCore* core_ = nullptr;
  bool claimed_ = false;
  bool stopping_ = false;
  ExitReason reason_;
  std::unordered_set<Pid> running_;  // partitions not yet known to have exited
};

Result<Pid> outcome(Started s) {
  if (s.error) return *s.error;
  return s.top;
}

Error died_starting(Pid top, const ExitReason& reason) {
  return Error(ErrorKind::start_error, "Registry: " + top.to_string() + " exited while starting: " + reason.to_string(), top,
               reason);
}

}  // namespace

// ---- Starting and stopping -------------------------------------------------------------

Async<Result<Pid>> Registry::start_link(RegistryOptions options) {
  if (std::optional<Error> bad = invalid(options)) co_return *bad;
  const Pid me = self();
  Ref monitor_ref;
  const Pid top = detail::spawn_in<RegistryTop>(
      detail::current_core(), detail::SpawnOptions{.link = true, .monitor = true, .monitor_ref = &monitor_ref},
      make_table(options), me, me);
  auto answer = [&](const Message& m) {
    return (m.is<Started>() && m.get<Started>().top == top) || (m.is<Down>() && m.get<Down>().ref == monitor_ref);
  };
  Message got = co_await receive_if(answer);
  if (const Down* d = got.get_if<Down>()) {
    // Killed while starting. A trapping starter finds the EXIT queued before the DOWN: it is
    // part of this outcome, not a message to leave behind.
    auto exit_from_top = [&](const Message& m) { return m.is<Exit>() && m.get<Exit>().from == top; };
    if (trapping_exits()) (void)co_await receive_if(exit_from_top, std::chrono::nanoseconds(0));
    co_return died_starting(top, d->reason);
  }
  demonitor(monitor_ref, {.flush = true});
  co_return outcome(got.take<Started>());
}

Result<Pid> Registry::start(Runtime& rt, RegistryOptions options) {
  if (Status s = refuse_blocking("start"); !s) return s.error();
  if (std::optional<Error> bad = invalid(options)) return *bad;
  Inbox inbox(rt);
  const Pid top = detail::spawn_in<RegistryTop>(detail::core_of(rt), {}, make_table(options), Pid{}, inbox.pid());
  const Ref monitor_ref = inbox.monitor(top);
  auto answer = [&](const Message& m) {
    return (m.is<Started>() && m.get<Started>().top == top) || (m.is<Down>() && m.get<Down>().ref == monitor_ref);
  };
  std::optional<Message> got = inbox.receive_if(answer, forever);
  if (!got) return Error(ErrorKind::timeout, "Registry: no answer from " + top.to_string());
  if (const Down* d = got->get_if<Down>()) return died_starting(top, d->reason);
  inbox.demonitor(monitor_ref, {.flush = true});
  return outcome(got->take<Started>());
}

Status Registry::stop(Runtime& rt, std::string_view registry) {
  if (Status s = refuse_blocking("stop"); !s) return s;
  Result<std::shared_ptr<Table>> t = table_named(detail::core_of(rt), registry);
  if (!t) return t.error();
  Inbox inbox(rt);
  const Pid top = (*t)->top;
  const Ref monitor_ref = inbox.monitor(top);
  inbox.send(top, StopRegistry{ExitReason::shutdown()});
  auto down = [&](const Message& m) { return m.is<Down>() && m.get<Down>().ref == monitor_ref; };
  if (!inbox.receive_if(down, forever)) return Error(ErrorKind::timeout, "Registry::stop: " + top.to_string() + " did not exit");
  return {};
}

// ---- Writing -----------------------------------------------------------------------------

Result<Pid> Registry::register_key(std::string_view registry, std::string key, std::any value) {
  Result<Caller> c = caller_of(registry, "register_key");
  if (!c) return c.error();
  const Table& t = *c->table;
  const Pid me = c->pid;
  Partition& part = t.owner(key, me);
  std::any told;  // the listeners' copy
  if (!t.listeners.empty()) told = value;
  bool first = false;
  {
    std::unique_lock lock(part.mutex);
    if (t.keys == RegistryKeys::unique) {
      auto it = part.by_key.find(key);
      if (it != part.by_key.end()) {
        const Pid holder = it->second.front().pid;
        if (holder == me || detail::is_alive(*c->core, holder)) return already_registered(t, key, holder);
        // Dead, and its partition has not handled its EXIT yet: the key is free. When the
        // EXIT comes, the cleanup finds nothing of ours to delete (see erase_entries).
        part.by_key.erase(it);
        part.forget_key(holder, key);
      }
    }
    std::vector<std::string>& mine = part.by_pid[me];
    first = mine.empty();
    mine.push_back(key);
    part.by_key[key].push_back(Entry{me, std::move(value)});
  }
  // The link goes out after the entry is written but within this same callback: a process
  // dies only between callbacks, so the partition's EXIT for us always follows the link.
  if (first) {
    if (Status linked = link(part.pid); !linked) {
      std::unique_lock lock(part.mutex);
      part.erase_entries(key, me);
      part.forget_key(me, key);
      return Error(ErrorKind::noproc, "Registry '" + t.name + "' is stopping: its partition " + part.pid.to_string() + " is gone",
                   part.pid);
    }
  }
  notify(*c->core, t, RegistryEvent::Kind::register_key, key, me, told);
  return part.pid;
}

Status Registry::unregister(std::string_view registry, std::string_view key) {
  Result<Caller> c = caller_of(registry, "unregister");
  if (!c) return c.error();
  const Table& t = *c->table;
  const Pid me = c->pid;
  const std::string k(key);
  Partition& part = t.owner(k, me);
  bool removed = false;
  bool last = false;
  {
    std::unique_lock lock(part.mutex);
    removed = part.erase_entries(k, me) > 0;
    if (removed) last = part.forget_key(me, k);
  }
  if (last) unlink(part.pid);
  // Only when something was registered: an event for nothing would only mislead a listener
  // that mirrors the table (Elixir sends one regardless).
  if (removed) notify(*c->core, t, RegistryEvent::Kind::unregister, k, me, {});
  return {};
}

Result<std::pair<std::any, std::any>> Registry::update_value(std::string_view registry, std::string_view key,
                                                             const std::function<std::any(const std::any&)>& fn) {
  Result<Caller> c = caller_of(registry, "update_value");
  if (!c) return c.error();
  const Table& t = *c->table;
  if (t.keys != RegistryKeys::unique)
    return Error(ErrorKind::invalid_argument,
                 "Registry::update_value is for unique registries; '" + t.name + "' is " + std::string(to_string(t.keys)));
  const std::string k(key);
  const Pid me = c->pid;
  Partition& part = t.for_key(k);
  auto not_held = [&] {
    return Error(ErrorKind::not_found, "Registry '" + t.name + "': " + me.to_string() + " does not hold key '" + k + "'");
  };
  std::any old;
  {
    std::shared_lock lock(part.mutex);
    auto it = part.by_key.find(k);
    if (it == part.by_key.end() || it->second.front().pid != me) return not_held();
    old = it->second.front().value;
  }
  // Outside the lock: fn may call the Registry. Only the holder writes its entry, and it is
  // alive (it is us), so nobody else can have replaced it meanwhile.
  std::any now = fn(old);
  {
    std::unique_lock lock(part.mutex);
    auto it = part.by_key.find(k);
    if (it == part.by_key.end() || it->second.front().pid != me) return not_held();
    it->second.front().value = now;
  }
  return std::pair<std::any, std::any>(std::move(now), std::move(old));
}

// ---- Reading -----------------------------------------------------------------------------

namespace {

RegistryEntries lookup_in(const Table& t, std::string_view key) {
  const std::string k(key);
  RegistryEntries out;
  if (t.keys == RegistryKeys::duplicate) {
    for (const auto& p : t.partitions) p->collect(k, out);
  } else {
    t.for_key(k).collect(k, out);
  }
  return out;
}

Pid whereis_in(RuntimeCore& core, std::string_view registry, std::string_view key) {
  std::shared_ptr<Table> t = find_table(core, registry);
  if (!t || t->keys != RegistryKeys::unique) return {};
  const std::string k(key);
  Partition& part = t->for_key(k);
  Pid holder;
  {
    std::shared_lock lock(part.mutex);
    auto it = part.by_key.find(k);
    if (it != part.by_key.end()) holder = it->second.front().pid;
  }
  return holder && detail::is_alive(core, holder) ? holder : Pid{};
}

std::vector<std::string> keys_in(const Table& t, Pid pid) {
  std::vector<std::string> out;
  auto collect = [&](const Partition& p) {
    std::shared_lock lock(p.mutex);
    auto it = p.by_pid.find(pid);
    if (it != p.by_pid.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  };
  if (t.keys == RegistryKeys::duplicate) {
    collect(t.for_pid(pid));
  } else {
    for (const auto& p : t.partitions) collect(*p);
  }
  return out;
}

std::vector<std::any> values_in(const Table& t, std::string_view key, Pid pid) {
  const std::string k(key);
  const Partition& part = t.owner(k, pid);
  std::vector<std::any> out;
  std::shared_lock lock(part.mutex);
  auto it = part.by_key.find(k);
  if (it == part.by_key.end()) return out;
  for (const Entry& e : it->second)
    if (e.pid == pid) out.push_back(e.value);
  return out;
}

std::size_t count_in(const Table& t) {
  std::size_t n = 0;
  for (const auto& p : t.partitions) {
    std::shared_lock lock(p->mutex);
    for (const auto& [key, entries] : p->by_key) n += entries.size();
  }
  return n;
}

std::vector<RegistryEntry> entries_in(const Table& t) {
  std::vector<RegistryEntry> out;
  for (const auto& p : t.partitions) {
    std::shared_lock lock(p->mutex);
    for (const auto& [key, entries] : p->by_key)
      for (const Entry& e : entries) out.push_back(RegistryEntry{key, e.pid, e.value});
  }
  return out;
}

Result<std::any> meta_in(Table& t, std::string_view key) {
  std::lock_guard lock(t.meta_mutex);
  auto it = t.meta.find(std::string(key));
  if (it == t.meta.end())
    return Error(ErrorKind::not_found, "Registry '" + t.name + "' has no meta '" + std::string(key) + "'");
  return it->second;
}

Status put_meta_in(Table& t, std::string key, std::any value) {
  std::lock_guard lock(t.meta_mutex);
  t.meta.insert_or_assign(std::move(key), std::move(value));
  return {};
}

std::vector<Pid> partitions_in(const Table& t) {
  std::vector<Pid> out;
  for (const auto& p : t.partitions) out.push_back(p->pid);
  return out;
}

// Each read comes in two forms that differ only in how they find the table.
template <class F>
auto read_here(std::string_view registry, std::string_view what, F f) -> Result<decltype(f(std::declval<Table&>()))> {
  Result<std::shared_ptr<Table>> t = table_here(registry, what);
  if (!t) return t.error();
  return f(**t);
}
template <class F>
auto read_in(Runtime& rt, std::string_view registry, F f) -> Result<decltype(f(std::declval<Table&>()))> {
  Result<std::shared_ptr<Table>> t = table_named(detail::core_of(rt), registry);
  if (!t) return t.error();
  return f(**t);
}

}  // namespace

Result<RegistryEntries> Registry::lookup(std::string_view registry, std::string_view key) {
  return read_here(registry, "lookup", [&](const Table& t) { return lookup_in(t, key); });
}
Result<RegistryEntries> Registry::lookup(Runtime& rt, std::string_view registry, std::string_view key) {
  return read_in(rt, registry, [&](const Table& t) { return lookup_in(t, key); });
}

namespace {
Status dispatch_entries(Result<RegistryEntries> entries, const std::function<void(const RegistryEntries&)>& fn) {
  if (!entries) return entries.error();
  if (!entries->empty()) fn(*entries);
  return {};
}
}  // namespace

Status Registry::dispatch(std::string_view registry, std::string_view key,
                          const std::function<void(const RegistryEntries&)>& fn) {
  return dispatch_entries(lookup(registry, key), fn);
}
Status Registry::dispatch(Runtime& rt, std::string_view registry, std::string_view key,
                          const std::function<void(const RegistryEntries&)>& fn) {
  return dispatch_entries(lookup(rt, registry, key), fn);
}

Pid Registry::whereis_name(std::string_view registry, std::string_view key) {
  RuntimeCore* core = detail::current_core_or_null();
  return core != nullptr ? whereis_in(*core, registry, key) : Pid{};
}
Pid Registry::whereis_name(Runtime& rt, std::string_view registry, std::string_view key) {
  return whereis_in(detail::core_of(rt), registry, key);
}

Result<std::vector<std::string>> Registry::keys(std::string_view registry, Pid pid) {
  return read_here(registry, "keys", [&](const Table& t) { return keys_in(t, pid); });
}
Result<std::vector<std::string>> Registry::keys(Runtime& rt, std::string_view registry, Pid pid) {
  return read_in(rt, registry, [&](const Table& t) { return keys_in(t, pid); });
}

Result<std::vector<std::any>> Registry::values(std::string_view registry, std::string_view key, Pid pid) {
  return read_here(registry, "values", [&](const Table& t) { return values_in(t, key, pid); });
}
Result<std::vector<std::any>> Registry::values(Runtime& rt, std::string_view registry, std::string_view key, Pid pid) {
  return read_in(rt, registry, [&](const Table& t) { return values_in(t, key, pid); });
}

Result<std::size_t> Registry::count(std::string_view registry) {
  return read_here(registry, "count", [](const Table& t) { return count_in(t); });
}
Result<std::size_t> Registry::count(Runtime& rt, std::string_view registry) {
  return read_in(rt, registry, [](const Table& t) { return count_in(t); });
}

Result<std::vector<RegistryEntry>> Registry::entries(std::string_view registry) {
  return read_here(registry, "entries", [](const Table& t) { return entries_in(t); });
}
Result<std::vector<RegistryEntry>> Registry::entries(Runtime& rt, std::string_view registry) {
  return read_in(rt, registry, [](const Table& t) { return entries_in(t); });
}

Result<std::any> Registry::meta(std::string_view registry, std::string_view key) {
  Result<std::shared_ptr<Table>> t = table_here(registry, "meta");
  if (!t) return t.error();
  return meta_in(**t, key);
}
Result<std::any> Registry::meta(Runtime& rt, std::string_view registry, std::string_view key) {
  Result<std::shared_ptr<Table>> t = table_named(detail::core_of(rt), registry);
  if (!t) return t.error();
  return meta_in(**t, key);
}
Status Registry::put_meta(std::string_view registry, std::string key, std::any value) {
  Result<std::shared_ptr<Table>> t = table_here(registry, "put_meta");
  if (!t) return t.error();
  return put_meta_in(**t, std::move(key), std::move(value));
}
Status Registry::put_meta(Runtime& rt, std::string_view registry, std::string key, std::any value) {
  Result<std::shared_ptr<Table>> t = table_named(detail::core_of(rt), registry);
  if (!t) return t.error();
  return put_meta_in(**t, std::move(key), std::move(value));
}

Result<std::vector<Pid>> Registry::partitions(std::string_view registry) {
  return read_here(registry, "partitions", [](const Table& t) { return partitions_in(t); });
}
Result<std::vector<Pid>> Registry::partitions(Runtime& rt, std::string_view registry) {
  return read_in(rt, registry, [](const Table& t) { return partitions_in(t); });
}

Async<Status> Registry::sync(std::string registry) {
  Result<std::shared_ptr<Table>> t = table_here(registry, "sync");
  if (!t) co_return t.error();
  for (Pid p : partitions_in(**t)) {
    Result<Synced> r = co_await call<Synced>(p, SyncRequest{}, std::chrono::milliseconds(forever));
    if (!r) co_return r.error();
  }
  co_return Status{};
}

Status Registry::sync(Runtime& rt, std::string_view registry) {
  if (Status s = refuse_blocking("sync"); !s) return s;
  Result<std::shared_ptr<Table>> t = table_named(detail::core_of(rt), registry);
  if (!t) return t.error();
  Inbox inbox(rt);
  for (Pid p : partitions_in(**t)) {
    Result<Synced> r = inbox.call<Synced>(p, SyncRequest{}, std::chrono::milliseconds(forever));
    if (!r) return r.error();
  }
  return {};
}

Error Registry::wrong_type(std::string_view registry, std::string_view key, Pid pid, const std::any& value) {
  return Error(ErrorKind::invalid_argument, "Registry '" + std::string(registry) + "': the value of " + pid.to_string() +
                                                " under '" + std::string(key) + "' holds " + value.type().name() +
                                                ", not the type asked for",
               pid);
}

// ---- The hooks behind ServerRef's {via Registry} names ------------------------------------

namespace detail {

Pid registry_whereis(RuntimeCore& core, const RegistryName& name) { return whereis_in(core, name.registry, name.key); }

Status registry_register_self(const RegistryName& name) {
  if (RuntimeCore* core = current_core_or_null(); core != nullptr && self()) {
    std::shared_ptr<Table> t = find_table(*core, name.registry);
    if (t && t->keys != RegistryKeys::unique)
      return Error(ErrorKind::invalid_argument, "a name must be a key of a unique Registry; '" + name.registry + "' is " +
                                                    std::string(to_string(t->keys)));
  }
  Result<Pid> r = Registry::register_key(name.registry, name.key, name.value);
  if (!r) return r.error();
  return {};
}

void registry_unregister_self(const RegistryName& name) { (void)Registry::unregister(name.registry, name.key); }

}  // namespace detail

}  // namespace coppice
