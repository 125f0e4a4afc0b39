// PartitionSupervisor: a Supervisor of N copies of one spec, the table whereis reads, resize.
#include "coppice/partition_supervisor.hpp"

#include <mutex>
#include <thread>
#include <unordered_map>

#include "coppice/service.hpp"

namespace coppice {

namespace detail {
namespace {

// Every running partition supervisor of a runtime, by pid: its table.
struct PartitionDirectory {
  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<PartitionTable>> tables;
};

PartitionDirectory& directory(RuntimeCore& core) { return service<PartitionDirectory>(core); }

}  // namespace

std::shared_ptr<PartitionTable> partition_table(RuntimeCore& core, Pid supervisor) {
  PartitionDirectory& d = directory(core);
  std::lock_guard lock(d.mutex);
  auto it = d.tables.find(supervisor.bits());
  if (it == d.tables.end()) return nullptr;
  if (!is_alive(core, supervisor)) {
    d.tables.erase(it);
    return nullptr;
  }
  return it->second;
}

}  // namespace detail

namespace {

// Records the partition's pid once its start returned.
Async<Result<Pid>> recorded(Async<Result<Pid>> start, std::shared_ptr<detail::PartitionTable> table, std::size_t i) {
  Result<Pid> r = co_await start;
  // Release: a reader that sees the pid sees a started partition.
  table->pids[i].store(r ? r->bits() : 0, std::memory_order_release);
  co_return r;
}

Result<SupervisorInit> prepare(PartitionSupervisorOptions o, std::size_t workers) {
  if (Status s = validate(o.child, false); !s)
    return Error(ErrorKind::invalid_argument, "PartitionSupervisor: child: " + s.error().message());
  SupervisorFlags flags;
  flags.intensity = o.max_restarts;
  flags.period = o.max_seconds;
  if (Status s = validate(flags); !s)
    return Error(ErrorKind::invalid_argument, "PartitionSupervisor: " + s.error().message() + " (max_restarts / max_seconds)");
  const std::size_t n = o.partitions != 0 ? o.partitions : std::max<std::size_t>(1, workers);
  auto table = std::make_shared<detail::PartitionTable>(n);
  std::vector<ChildSpec> specs;
  specs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ChildSpec spec = o.with_arguments ? o.with_arguments(o.child, i) : o.child;
    spec.id = std::to_string(i);
    spec.spawn = nullptr;  // the Supervisor awaits `start`, which records the pid
    spec.start = [inner = std::move(spec.start), table, i](const StartArgs& a) {
      return recorded(inner(a), table, i);
    };
    specs.push_back(std::move(spec));
  }
  // Runs inside the new supervisor: its pid is known there.
  SupervisorInit init = [table, specs = std::move(specs), flags]() -> Result<SupervisorSpec> {
    auto& d = detail::service<detail::PartitionDirectory>(detail::current_core());
    std::lock_guard lock(d.mutex);
    // Forget supervisors that have exited (there are few; this keeps the directory small).
    for (auto it = d.tables.begin(); it != d.tables.end();)
      it = is_alive(Pid::from_bits(it->first)) ? std::next(it) : d.tables.erase(it);
    d.tables[self().bits()] = table;
    return SupervisorSpec{specs, flags};
  };
  return init;
}

std::size_t hardware_workers() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

Async<Result<Pid>> PartitionSupervisor::start_link(PartitionSupervisorOptions options) {
  StartOptions start;
  start.name = options.name;
  Result<SupervisorInit> init = prepare(std::move(options), hardware_workers());
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
Result<std::shared_ptr<detail::PartitionTable>> table_of(detail::RuntimeCore& core, const ServerRef& supervisor) {
  const Pid pid = supervisor.is_pid() ? supervisor.pid() : supervisor.whereis(core);
  std::shared_ptr<detail::PartitionTable> t = pid ? detail::partition_table(core, pid) : nullptr;
  if (!t) return Error(ErrorKind::noproc, "PartitionSupervisor: no partition supervisor is running as " + supervisor.to_string());
  return t;
}

Error bad_size(std::size_t n, std::size_t initial) {
  return Error(ErrorKind::invalid_argument, "PartitionSupervisor: resize: the number of partitions must be between 0 and " +
                                                std::to_string(initial) + ", not " + std::to_string(n));
}
}  // namespace

Result<Pid> PartitionSupervisor::lookup(detail::RuntimeCore& core, const ServerRef& supervisor,
                                        const std::function<std::size_t(std::size_t)>& partition) {
  auto t = table_of(core, supervisor);
  if (!t) return t.error();
  const std::size_t n = (*t)->count.load(std::memory_order_acquire);
  if (n == 0) return Error(ErrorKind::noproc, "PartitionSupervisor: no partitions (resized to 0)");
  const Pid pid = Pid::from_bits((*t)->pids[partition(n)].load(std::memory_order_acquire));
  if (!pid) return Error(ErrorKind::noproc, "PartitionSupervisor: the partition is not running");
  return pid;
}

Result<std::size_t> PartitionSupervisor::partitions(const ServerRef& supervisor) {
  auto t = table_of(detail::current_core(), supervisor);
  if (!t) return t.error();
  return (*t)->count.load(std::memory_order_acquire);
}
Result<std::size_t> PartitionSupervisor::partitions(Runtime& rt, const ServerRef& supervisor) {
  auto t = table_of(rt.core(), supervisor);
  if (!t) return t.error();
  return (*t)->count.load(std::memory_order_acquire);
}

// As Elixir: shrinking routes keys to the smaller set first, then stops the partitions left
// out; growing restarts them first, then routes to them.
Async<Result<std::size_t>> PartitionSupervisor::resize(ServerRef supervisor, std::size_t n) {
  auto t = table_of(detail::current_core(), supervisor);
  if (!t) co_return t.error();
  detail::PartitionTable& table = **t;
  const std::size_t current = table.count.load(std::memory_order_acquire);
  if (n > table.initial) co_return bad_size(n, table.initial);
  for (std::size_t i = current; i < n; ++i) {
    auto restart = Supervisor::restart_child(supervisor, std::to_string(i));
    Result<Pid> r = co_await restart;
    if (!r) co_return r.error();
  }
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
  auto t = table_of(rt.core(), supervisor);
  if (!t) return t.error();
  detail::PartitionTable& table = **t;
  const std::size_t current = table.count.load(std::memory_order_acquire);
  if (n > table.initial) return bad_size(n, table.initial);
  for (std::size_t i = current; i < n; ++i) {
    Result<Pid> r = Supervisor::restart_child(rt, supervisor, std::to_string(i));
    if (!r) return r.error();
  }
  table.count.store(n, std::memory_order_release);
  for (std::size_t i = n; i < current; ++i) {
    Status s = Supervisor::terminate_child(rt, supervisor, std::to_string(i));
    table.pids[i].store(0, std::memory_order_release);
    if (!s) return s.error();
  }
  return current;
}

}  // namespace coppice
