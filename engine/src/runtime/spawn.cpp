// Spawn: a process's memory, its pid and slot, the link or monitor of spawn_link and
// spawn_monitor written before anyone can see it, and the count of live processes.
#include "coppice/process.hpp"
#include "runtime/allocation.hpp"
#include "runtime/demangle.hpp"
#include "runtime/running.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

// ---- Spawn ---------------------------------------------------------------------------

void RuntimeCore::count_live(Worker* w, std::int64_t delta) {
  if (w != nullptr) {
    w->live.store(w->live.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  } else {
    external_live_.fetch_add(delta, std::memory_order_relaxed);
  }
}

std::size_t RuntimeCore::live_processes() {
  std::int64_t n = external_live_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < scheduler.worker_count(); ++i) n += scheduler.worker(i).live.load(std::memory_order_relaxed);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

ProcessMemory allocate_process(std::size_t object_size, std::size_t object_alignment) {
  const std::size_t align = object_alignment > alignof(ProcessHeader) ? object_alignment : alignof(ProcessHeader);
  const std::size_t bytes = object_offset(align) + object_size;
  void* mem = allocate(bytes, align);
  auto* header = new (mem) ProcessHeader;
  return {header, static_cast<char*>(mem) + object_offset(align), bytes};
}

void abandon_process(ProcessMemory memory) noexcept {
  memory.header->~ProcessHeader();
  deallocate(memory.header);
}

const ProcessDescriptor* describe_process(std::string_view behaviour, const std::type_info& type, std::size_t bytes,
                                          std::size_t object_offset) {
  // One per process class for the program's life (a function-local static of descriptor_of).
  return new ProcessDescriptor{behaviour, &type, static_cast<std::uint32_t>(bytes),
                               static_cast<std::uint32_t>(object_offset), {}};
}

std::string_view ProcessDescriptor::type_name() const {
  // Acquire/release: a listing that finds the name sees it built. Two that race each build
  // one; the loser frees its own.
  if (const std::string* s = demangled.load(std::memory_order_acquire)) return *s;
  auto* made = new std::string(demangle(type->name()));
  const std::string* expected = nullptr;
  if (demangled.compare_exchange_strong(expected, made, std::memory_order_acq_rel, std::memory_order_acquire)) return *made;
  delete made;
  return *expected;
}

Pid start_process(RuntimeCore& core, ProcessMemory memory, Process* object, const SpawnOptions& options,
                  const ProcessDescriptor* descriptor) {
  ProcessHeader* p = memory.header;
  ProcessHeader* parent = (this_core == &core) ? this_process : nullptr;
  p->describe(descriptor, parent != nullptr ? parent->pid : Pid{});
  if (options.proxy) p->set(proxy_flag);
  if ((options.link || options.monitor) && (parent == nullptr || parent->kind != ProcessKind::process)) {
    object->~Process();
    abandon_process(memory);
    throw std::logic_error("coppice: spawn_link and spawn_monitor are for a running process");
  }
  Worker* w = core.scheduler.current();
  // Once the stop has begun, a spawn is refused (so that the stop ends): the object is
  // destroyed here, on the spawning thread, and the caller gets Pid{}. A worker's spawn reads
  // the flag with acquire (pairs with run_stop's store); one that reads it late is killed by
  // the next round of the stop or, after the last, by kill_stranded. A plain thread's spawn
  // is announced to the stop until it is published (begin_external_spawn).
  const bool refused = w != nullptr ? core.stopping.load(std::memory_order_acquire) : !core.begin_external_spawn();
  if (refused) {
    object->~Process();
    abandon_process(memory);
    return Pid{};
  }
  struct Announced {  // ends a plain thread's announcement however this function is left
    RuntimeCore* core;
    ~Announced() {
      if (core != nullptr) core->end_external_spawn();
    }
  } announced{w == nullptr ? &core : nullptr};
  try {
    p->pid = core.table.allocate(w ? &w->slots : nullptr);
  } catch (...) {  // the table is full: the spawn is refused, the process destroyed here
    object->~Process();
    abandon_process(memory);
    throw;
  }
  // Link or monitor before anyone can see the child: it cannot die unobserved.
  if (options.link) {
    p->add_link(parent->pid.bits());
    parent->add_link(p->pid.bits());
  }
  if (options.monitor) {
    const Ref ref = options.monitor_ref->bits() != 0 ? *options.monitor_ref : core.make_ref();
    p->ensure_extras().monitored_by.insert(ref.bits(), parent->pid.bits());
    parent->ensure_extras().monitoring.insert(ref.bits(), p->pid.bits());
    *options.monitor_ref = ref;
  }
  core.count_live(w, 1);
  core.count(&WorkerCounters::spawns);
  // Once scheduled, the child may run, exit and be freed before we return (a plain thread
  // holds no epoch guard here): take its pid first, and touch p no more.
  const Pid pid = p->pid;
  core.table.publish(p);
  core.scheduler.schedule_new(p);
  return pid;
}

}  // namespace coppice::detail
