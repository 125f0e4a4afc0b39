// PartitionSupervisor: a Supervisor of N copies of one spec, the lock-free table whereis
// reads, resize.
#include "coppice/partition_supervisor.hpp"

#include <mutex>
#include <thread>

#include "otp/supervisor_stats.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

namespace detail {

struct PartitionTable {
  explicit PartitionTable(std::size_t n) : pids(new std::atomic<std::uint64_t>[n]), capacity(n) {}
  // The supervisor's pid bits; 0 while the table is free or changing hands. Written under
  // `tables_mutex` with release (after everything else was set), read by lookups with acquire.
  std::atomic<std::uint64_t> owner{0};
  std::atomic<RuntimeCore*> core{nullptr};  // relaxed: read after an acquire load of owner
  const std::unique_ptr<std::atomic<std::uint64_t>[]> pids;
  const std::size_t capacity;
  std::atomic<std::size_t> initial{0};  // the number started with (resize grows back to it)
  std::atomic<std::size_t> count{0};    // the number in use
  PartitionTable* next = nullptr;       // the list of tables; set before publication, then fixed
  bool in_use = false;                  // under tables_mutex
};

namespace {

// Every table ever made, newest first. Never freed (they are few and small, and reachable:
// no leak report); a lookup walks it without a lock.
constinit std::atomic<PartitionTable*> tables{nullptr};
constinit std::mutex tables_mutex;  // claiming and releasing tables; lookups never take it

// One supervisor's hold on a table: made before the supervisor starts, filled in by its init
// (which knows its pid), and shared by the start functions of its partitions. The supervisor
// keeps its init and specs until it is destroyed, and so the lease: then the table is free.
struct Lease {
  PartitionTable* table = nullptr;
  std::size_t partitions = 0;

  ~Lease() {
    if (table == nullptr) return;
    std::lock_guard lock(tables_mutex);
    // Release: a lookup that reads 0 (or a later owner) after reading a pid rejects that pid.
    table->owner.store(0, std::memory_order_release);
    table->in_use = false;
  }

  void claim(RuntimeCore& core, Pid supervisor) {
    std::lock_guard lock(tables_mutex);
    PartitionTable* t = tables.load(std::memory_order_relaxed);  // writers are serialised by the mutex
    while (t != nullptr && (t->in_use || t->capacity < partitions)) t = t->next;
    if (t == nullptr) {
      t = new PartitionTable(partitions);
      t->next = tables.load(std::memory_order_relaxed);
      // Release: a lookup that finds the table through `tables` sees it constructed.
      tables.store(t, std::memory_order_release);
    }
    t->in_use = true;
    // Release (pids, count): a lookup still holding the table for its previous supervisor that
    // reads one of these then sees that owner is no longer that supervisor (0, or ours).
    for (std::size_t i = 0; i < t->capacity; ++i) t->pids[i].store(0, std::memory_order_release);
    t->initial.store(partitions, std::memory_order_relaxed);
    t->count.store(partitions, std::memory_order_release);
    t->core.store(&core, std::memory_order_relaxed);
    // Release: pairs with the lookup's acquire load of owner; what was written above is seen.
    t->owner.store(supervisor.bits(), std::memory_order_release);
    table = t;
  }
};

}  // namespace

PartitionTable* partition_table(RuntimeCore& core, Pid supervisor) {
  if (!supervisor) return nullptr;
  // Acquire: pairs with the release in claim (the table is constructed).
  for (PartitionTable* t = tables.load(std::memory_order_acquire); t != nullptr; t = t->next)
    if (t->owner.load(std::memory_order_acquire) == supervisor.bits() && t->core.load(std::memory_order_relaxed) == &core)
      return t;
  return nullptr;
}

}  // namespace detail

namespace {

using detail::Lease;
using detail::PartitionTable;

// Partition i's start: clears its entry while it (re)starts, then records the new pid. The
// supervisor runs it only after it has handled the old partition's EXIT; between the death
// and that, lookups see the old pid dead (is_alive) and answer noproc.
Async<Result<Pid>> recorded(Async<Result<Pid>> start, std::shared_ptr<Lease> lease, std::size_t i) {
  PartitionTable* t = lease->table;
  // Release (both): a lookup's acquire load of the pid sees a started partition.
  if (t != nullptr) t->pids[i].store(0, std::memory_order_release);
  Result<Pid> r = co_await start;
  if (t != nullptr) t->pids[i].store(r ? r->bits() : 0, std::memory_order_release);
  co_return r;
}

Result<SupervisorInit> prepare(PartitionSupervisorOptions o, std::size_t workers) {
  if (Status s = validate(o.child, false); !s)
    return Error(ErrorKind::invalid_argument, "PartitionSupervisor: child: " + s.error().message());
  SupervisorFlags flags;
  flags.intensity = o.intensity;
  flags.period = o.period;
  if (Status s = validate(flags); !s)
    return Error(ErrorKind::invalid_argument, "PartitionSupervisor: " + s.error().message());
  const std::size_t n = o.partitions != 0 ? o.partitions : std::max<std::size_t>(1, workers);
  auto lease = std::make_shared<Lease>();
  lease->partitions = n;
  std::vector<ChildSpec> specs;
  specs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ChildSpec spec = o.with_arguments ? o.with_arguments(o.child, i) : o.child;
    spec.id = std::to_string(i);
    spec.spawn = nullptr;  // the Supervisor awaits `start`, which records the pid
    spec.start = [inner = std::move(spec.start), lease, i](const StartArgs& a) { return recorded(inner(a), lease, i); };
    specs.push_back(std::move(spec));
  }
  // Runs inside the new supervisor, before any partition starts: its pid is known there.
  SupervisorInit init = [lease, specs = std::move(specs), flags]() -> Result<SupervisorSpec> {
    if (lease->table == nullptr) lease->claim(detail::current_core(), self());
    detail::supervisor_directory(detail::current_core()).set_behaviour(self(), "PartitionSupervisor");
    return SupervisorSpec{specs, flags};
  };
  return init;
}

// The worker count of the runtime the calling process runs in (Elixir: schedulers_online).
std::size_t current_workers() { return detail::current_core().scheduler.worker_count(); }

}  // namespace

Async<Result<Pid>> PartitionSupervisor::start_link(PartitionSupervisorOptions options) {
  StartOptions start;
  start.name = options.name;
  Result<SupervisorInit> init = prepare(std::move(options), current_workers());
  if (!init) co_return init.error();
  Async<Result<Pid>> work = Supervisor::start_link(std::move(*init), std::move(start));
  co_return co_await work;
}

Result<Pid> PartitionSupervisor::start(Runtime& rt, PartitionSupervisorOptions options) {
  StartOptions start;
  start.name = options.name;
  Result<SupervisorInit> init = prepare(std::move(options), rt.worker_count());
  if (!init) return init.error();
  return Supervisor::start(rt, std::move(*init), std::move(start));
}

ChildSpec PartitionSupervisor::child_spec(std::string id, PartitionSupervisorOptions options) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.type = ChildType::supervisor;
  spec.modules = {"PartitionSupervisor"};
  spec.start = [options = std::move(options)](const StartArgs&) { return start_link(options); };
  return spec;
}

namespace {
struct Found {
  PartitionTable* table;
  Pid supervisor;
};
Result<Found> table_of(detail::RuntimeCore& core, const ServerRef& supervisor) {
  const Pid pid = supervisor.is_pid() ? supervisor.pid() : detail::whereis_server(core, supervisor);
  PartitionTable* t = detail::partition_table(core, pid);
  if (t == nullptr)
    return Error(ErrorKind::noproc, "PartitionSupervisor: no partition supervisor is running as " + supervisor.to_string());
  return Found{t, pid};
}

// The number in use, if the table is still `supervisor`'s after reading it.
Result<std::size_t> count_of(const Found& f, const ServerRef& supervisor) {
  const std::size_t n = f.table->count.load(std::memory_order_acquire);
  if (f.table->owner.load(std::memory_order_acquire) != f.supervisor.bits())
    return Error(ErrorKind::noproc, "PartitionSupervisor: no partition supervisor is running as " + supervisor.to_string());
  return n;
}

Error bad_size(std::size_t n, std::size_t initial) {
  return Error(ErrorKind::invalid_argument, "PartitionSupervisor: resize: the number of partitions must be between 0 and " +
                                                std::to_string(initial) + ", not " + std::to_string(n));
}
}  // namespace

Result<Pid> PartitionSupervisor::lookup(detail::RuntimeCore& core, const ServerRef& supervisor,
                                        std::size_t (*route)(const void* key, std::size_t n), const void* key) {
  Result<Found> f = table_of(core, supervisor);
  if (!f) return f.error();
  PartitionTable& t = *f->table;
  // Acquire (count, pid): pairs with the release stores of resize and of the start function.
  const std::size_t n = t.count.load(std::memory_order_acquire);
  const std::size_t i = n == 0 ? 0 : route(key, n);
  const Pid pid = n == 0 || i >= t.capacity ? Pid{} : Pid::from_bits(t.pids[i].load(std::memory_order_acquire));
  // Acquire: read after the pid; if the table changed hands meanwhile the pid may be another
  // supervisor's, and ours is gone.
  if (t.owner.load(std::memory_order_acquire) != f->supervisor.bits())
    return Error(ErrorKind::noproc, "PartitionSupervisor: no partition supervisor is running as " + supervisor.to_string());
  if (n == 0) return Error(ErrorKind::noproc, "PartitionSupervisor: no partitions (resized to 0)");
  if (!pid || !detail::is_alive(core, pid))
    return Error(ErrorKind::noproc, "PartitionSupervisor: partition " + std::to_string(i) + " is not running (restarting)");
  return pid;
}

Result<std::size_t> PartitionSupervisor::partitions(const ServerRef& supervisor) {
  Result<Found> f = table_of(detail::current_core(), supervisor);
  if (!f) return f.error();
  return count_of(*f, supervisor);
}
Result<std::size_t> PartitionSupervisor::partitions(Runtime& rt, const ServerRef& supervisor) {
  Result<Found> f = table_of(detail::core_of(rt), supervisor);
  if (!f) return f.error();
  return count_of(*f, supervisor);
}

// As Elixir: shrinking routes keys to the smaller set first, then stops the partitions left
// out; growing restarts them first, then routes to them.
Async<Result<std::size_t>> PartitionSupervisor::resize(ServerRef supervisor, std::size_t n) {
  Result<Found> f = table_of(detail::current_core(), supervisor);
  if (!f) co_return f.error();
  PartitionTable& table = *f->table;
  Result<std::size_t> now = count_of(*f, supervisor);
  if (!now) co_return now.error();
  const std::size_t current = *now;
  const std::size_t initial = table.initial.load(std::memory_order_relaxed);
  if (n > initial) co_return bad_size(n, initial);
  for (std::size_t i = current; i < n; ++i) {
    auto restart = Supervisor::restart_child(supervisor, std::to_string(i));
    Result<Pid> r = co_await restart;
    if (!r) co_return r.error();
  }
  // Release: pairs with the lookup's acquire load of count.
  table.count.store(n, std::memory_order_release);
  for (std::size_t i = n; i < current; ++i) {
    auto stop = Supervisor::terminate_child(supervisor, std::to_string(i));
    Status s = co_await stop;
    table.pids[i].store(0, std::memory_order_release);
    if (!s) co_return s.error();
  }
  co_return current;
}

Result<std::size_t> PartitionSupervisor::resize(Runtime& rt, const ServerRef& supervisor, std::size_t n) {
  Result<Found> f = table_of(detail::core_of(rt), supervisor);
  if (!f) return f.error();
  PartitionTable& table = *f->table;
  Result<std::size_t> now = count_of(*f, supervisor);
  if (!now) return now.error();
  const std::size_t current = *now;
  const std::size_t initial = table.initial.load(std::memory_order_relaxed);
  if (n > initial) return bad_size(n, initial);
  for (std::size_t i = current; i < n; ++i) {
    Result<Pid> r = Supervisor::restart_child(rt, supervisor, std::to_string(i));
    if (!r) return r.error();
  }
  table.count.store(n, std::memory_order_release);  // Release: as above
  for (std::size_t i = n; i < current; ++i) {
    Status s = Supervisor::terminate_child(rt, supervisor, std::to_string(i));
    table.pids[i].store(0, std::memory_order_release);
    if (!s) return s.error();
  }
  return current;
}

}  // namespace coppice
