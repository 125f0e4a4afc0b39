// The listing, labels and metrics of coppice/observe.hpp: a walk of the process table that
// reads what another thread may read of a header, details asked of the processes themselves,
// and the workers' counters summed.
#include "coppice/observe.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "coppice/runtime.hpp"
#include "runtime/demangle.hpp"
#include "runtime/mailbox.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice {

namespace {
constexpr std::size_t max_label = 256;

// Runs f online in the epoch domain: a worker of this runtime already is; a plain thread (or
// another runtime's worker) joins for the duration.
template <class F>
void online(detail::RuntimeCore& core, F&& f) {
  if (core.scheduler.current() != nullptr) {
    f();
  } else {
    detail::ExternalGuard guard(core.epoch);
    f();
  }
}

// What another thread may read of a live header: everything but the details.
struct Walker {
  detail::RuntimeCore& core;
  std::unordered_map<std::uint64_t, std::string> labels;
  std::unordered_set<const detail::ProcessHeader*> running;

  explicit Walker(detail::RuntimeCore& c) : core(c) {
    {
      std::lock_guard lock(core.labels_mutex);
      labels = core.labels;
    }
    for (unsigned i = 0; i < core.scheduler.worker_count(); ++i)
      if (auto* p = core.scheduler.worker(i).counters.running.load(std::memory_order_relaxed)) running.insert(p);
  }

  ProcessEntry entry(const detail::ProcessHeader* p) {
    ProcessEntry e;
    fill(e, p);
    return e;
  }
  // Fills `e` afresh, keeping its strings' buffers (for_each_process reuses its entries).
  void fill(ProcessEntry& e, const detail::ProcessHeader* p) {
    e.registered_name.clear();
    e.label.clear();
    e.type = {};
    e.parent = Pid{};
    e.pid = p->pid;
    const detail::ProcessDescriptor* d = p->descriptor();
    if (p->kind == detail::ProcessKind::inbox || d == nullptr) {
      e.behaviour = "inbox";
      e.memory = sizeof(detail::ProcessHeader);
    } else {
      e.behaviour = d->behaviour;
      e.type = d->type_name();
      e.memory = d->bytes;
      e.parent = p->spawner();
    }
    if (p->exiting.load(std::memory_order_acquire) != 0) {
      e.status = ProcessStatus::exiting;
    } else if ((p->head.load(std::memory_order_acquire) & detail::idle_tag) != 0) {
      e.status = ProcessStatus::waiting;
    } else if (running.contains(p)) {  // a worker's last (WorkerCounters::running)
      e.status = ProcessStatus::running;
    } else {
      e.status = ProcessStatus::runnable;
    }
    e.message_queue_len = p->queue_length.load(std::memory_order_relaxed);
    e.reductions = p->reductions();
    if (p->named.load(std::memory_order_acquire)) e.registered_name = core.names.name_of(p->pid);
    if (auto it = labels.find(p->pid.bits()); it != labels.end()) e.label = it->second;
  }
};

void add_details(ProcessEntry& e, ProcessInfo info) {
  e.detailed = true;
  e.links = std::move(info.links);
  e.monitors = std::move(info.monitors);
  e.monitored_by = std::move(info.monitored_by);
  e.trap_exit = info.trap_exit;
  e.message_queue_len = info.message_queue_len;
  e.memory = info.memory;
  if (!info.registered_name.empty()) e.registered_name = std::move(info.registered_name);
}

// Asks every listed process for its ProcessInfo, a few asking processes at a time so that a
// million answers do not wait for each other, each ask bounded by what is left of `timeout`.
struct DetailAsk {
  std::vector<Pid> pids;
  std::unique_ptr<ProcessInfo[]> infos;
  std::unique_ptr<std::atomic<bool>[]> ready;  // infos[i] written (release) by its asker
  std::atomic<std::size_t> next{0};
  std::chrono::steady_clock::time_point deadline;
};
struct AskerDone {};

Async<void> ask_details(std::shared_ptr<DetailAsk> ask, Pid report_to) {
  for (;;) {
    const std::size_t i = ask->next.fetch_add(1, std::memory_order_relaxed);
    if (i >= ask->pids.size()) break;
    const auto left = ask->deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) break;
    Result<ProcessInfo> info = co_await process_info(
        ask->pids[i], std::chrono::duration_cast<std::chrono::milliseconds>(left) + std::chrono::milliseconds{1});
    if (!info) continue;  // gone meanwhile, or no answer in time
    ask->infos[i] = std::move(*info);
    ask->ready[i].store(true, std::memory_order_release);
  }
  send(report_to, AskerDone{});
}

void detail_all(Runtime& rt, std::vector<ProcessEntry>& list, std::chrono::milliseconds timeout) {
  detail::RuntimeCore& core = detail::core_of(rt);
  if (core.scheduler.current() != nullptr)
    throw std::logic_error("coppice: list_processes with details blocks; call it from a plain thread");
  auto ask = std::make_shared<DetailAsk>();
  std::vector<std::size_t> index;  // entry of each asked pid
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].behaviour == "inbox" || list[i].status == ProcessStatus::exiting) continue;
    ask->pids.push_back(list[i].pid);
    index.push_back(i);
  }
  if (ask->pids.empty()) return;
  ask->infos = std::make_unique<ProcessInfo[]>(ask->pids.size());
  ask->ready = std::make_unique<std::atomic<bool>[]>(ask->pids.size());
  ask->deadline = std::chrono::steady_clock::now() + timeout;
  Inbox inbox(rt);
  const std::size_t askers = std::min<std::size_t>(ask->pids.size(), 16u * rt.worker_count());
  std::size_t started = 0;
  for (std::size_t k = 0; k < askers; ++k)
    if (rt.spawn(ask_details, ask, inbox.pid())) ++started;
  for (std::size_t k = 0; k < started; ++k) {
    const auto left = ask->deadline - std::chrono::steady_clock::now() + std::chrono::milliseconds{100};
    if (!inbox.receive<AskerDone>(std::max(left, std::chrono::steady_clock::duration::zero()))) break;
  }
  for (std::size_t j = 0; j < ask->pids.size(); ++j)
    if (ask->ready[j].load(std::memory_order_acquire)) add_details(list[index[j]], std::move(ask->infos[j]));
}
}  // namespace

std::string_view to_string(ProcessStatus status) {
  switch (status) {
    case ProcessStatus::running: return "running";
    case ProcessStatus::runnable: return "runnable";
    case ProcessStatus::waiting: return "waiting";
    case ProcessStatus::exiting: return "exiting";
  }
  return "unknown";
}

void set_label(std::string label) {
  detail::ProcessHeader& self = detail::require_running("no label: only a process labels itself");
  detail::RuntimeCore& core = *detail::running_core();
  if (label.size() > max_label) label.resize(max_label);
  std::lock_guard lock(core.labels_mutex);
  if (label.empty()) {
    core.labels.erase(self.pid.bits());
    self.set(detail::labelled_flag, false);
    return;
  }
  core.labels[self.pid.bits()] = std::move(label);
  self.set(detail::labelled_flag);
}

std::string label_of(Runtime& rt, Pid pid) {
  detail::RuntimeCore& core = detail::core_of(rt);
  std::lock_guard lock(core.labels_mutex);
  auto it = core.labels.find(pid.bits());
  return it == core.labels.end() ? std::string{} : it->second;
}

std::vector<ProcessEntry> list_processes(Runtime& rt, ListOptions options) {
  detail::RuntimeCore& core = detail::core_of(rt);
  std::vector<ProcessEntry> list;
  list.reserve(core.live_processes() + 16);
  Walker walker(core);
  online(core, [&] { core.table.for_each([&](const detail::ProcessHeader* p) { list.push_back(walker.entry(p)); }); });
  if (options.details) detail_all(rt, list, options.timeout);
  return list;
}

namespace detail {
std::optional<ProcessEntry> listing_entry(RuntimeCore& core, Pid pid) {
  std::optional<ProcessEntry> entry;
  if (core.table.foreign(pid)) return entry;
  Walker walker(core);
  online(core, [&] {
    if (const ProcessHeader* p = core.table.lookup(pid)) entry = walker.entry(p);
  });
  return entry;
}
}  // namespace detail

void for_each_process(Runtime& rt, const std::function<void(const ProcessEntry&)>& visit) {
  detail::RuntimeCore& core = detail::core_of(rt);
  constexpr std::size_t batch = 4096;
  std::vector<ProcessEntry> entries(batch);
  Walker walker(core);
  for (std::uint64_t from = 0;;) {
    std::size_t n = 0;
    online(core, [&] {
      from = core.table.for_each_from(from, batch, [&](const detail::ProcessHeader* p) { walker.fill(entries[n++], p); });
    });
    for (std::size_t i = 0; i < n; ++i) visit(entries[i]);
    if (from == 0) return;
  }
}

Result<ProcessEntry> process_entry(Runtime& rt, Pid pid, ListOptions options) {
  detail::RuntimeCore& core = detail::core_of(rt);
  if (core.table.foreign(pid)) return Error(ErrorKind::foreign_pid, core.table.foreign_text(pid));
  std::optional<ProcessEntry> entry = detail::listing_entry(core, pid);
  // As is_alive: a process that has run its last code is gone to everyone (its DOWN may
  // already be out), though the listing still shows it, exiting, until it leaves the table.
  if (!entry || entry->status == ProcessStatus::exiting) return Error(ErrorKind::noproc, "process_entry: " + pid.to_string() + " is not alive");
  if (options.details && entry->behaviour != "inbox") {
    Result<ProcessInfo> info = rt.process_info(pid, options.timeout);
    if (info) add_details(*entry, std::move(*info));
  }
  return std::move(*entry);
}

RuntimeMetrics metrics(Runtime& rt) {
  detail::RuntimeCore& core = detail::core_of(rt);
  RuntimeMetrics m;
  const auto now = std::chrono::steady_clock::now();
  auto sum = [&](const detail::WorkerCounters& c) {
    m.messages_sent += c.sent.load(std::memory_order_relaxed);
    m.spawns += c.spawns.load(std::memory_order_relaxed);
    m.exits_normal += c.exits_normal.load(std::memory_order_relaxed);
    m.exits_shutdown += c.exits_shutdown.load(std::memory_order_relaxed);
    m.exits_killed += c.exits_killed.load(std::memory_order_relaxed);
    m.exits_error += c.exits_error.load(std::memory_order_relaxed);
  };
  for (unsigned i = 0; i < core.scheduler.worker_count(); ++i) {
    detail::Worker& w = core.scheduler.worker(i);
    const detail::WorkerCounters& c = w.counters;
    sum(c);
    WorkerMetrics wm;
    wm.index = i;
    wm.turns = w.turn.load(std::memory_order_relaxed);
    wm.steals = c.steals.load(std::memory_order_relaxed);
    wm.parks = c.parks.load(std::memory_order_relaxed);
    wm.wakeups = c.wakeups.load(std::memory_order_relaxed);
    wm.parked = std::chrono::nanoseconds(c.parked_ns.load(std::memory_order_relaxed));
    // `started` is written before the worker threads start (Scheduler::start).
    wm.alive = std::chrono::duration_cast<std::chrono::nanoseconds>(now - w.started);
    wm.parked = std::min(wm.parked, wm.alive);
    wm.run_queue = static_cast<std::size_t>(w.queue.size());
    m.workers.push_back(wm);
  }
  sum(core.external_counters);
  m.exits = m.exits_normal + m.exits_shutdown + m.exits_killed + m.exits_error;
  m.processes = core.live_processes();
  const detail::Timers::Counts t = core.timers.counts();
  m.timers_started = t.started;
  m.timers_fired = t.fired;
  m.timers_pending = t.pending;
  m.global_queue = core.scheduler.global_queue_size();
  return m;
}

void MailboxDepths::add(std::size_t queue_length) {
  std::size_t b = 0;  // 0 -> 0, 1 -> 1, 2-3 -> 2, 4-7 -> 3, ...
  for (std::size_t n = queue_length; n > 0; n >>= 1) ++b;
  while (counts.size() <= b) {
    upper.push_back((std::size_t{1} << counts.size()) - 1);
    counts.push_back(0);
  }
  ++counts[b];
  max = std::max(max, queue_length);
}

MailboxDepths mailbox_depths(const std::vector<ProcessEntry>& listing) {
  MailboxDepths d;
  for (const ProcessEntry& e : listing) d.add(e.message_queue_len);
  return d;
}

}  // namespace coppice

namespace coppice::detail {
std::size_t RuntimeCore::memory_of(const ProcessHeader* self) {
  const ProcessDescriptor* d = self->descriptor();
  std::size_t bytes = d != nullptr ? d->bytes : sizeof(ProcessHeader);
  if (const ProcessExtras* x = self->extras) {
    bytes += sizeof(ProcessExtras) + x->links.bytes() + x->monitoring.bytes() + x->monitored_by.bytes() +
             x->aliases.bytes() + x->monitor_names.capacity() * sizeof(x->monitor_names[0]);
  }
  bytes += std::size_t{self->queue_length.load(std::memory_order_relaxed)} * sizeof(Envelope);
  return bytes;
}
}  // namespace coppice::detail
