// The work-stealing scheduler (see scheduler.hpp).
#include "runtime/scheduler.hpp"

#include <chrono>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/runtime_core.hpp"
#include "runtime/worker_count.hpp"

namespace coppice::detail {

constinit thread_local WorkerCounters* this_counters = nullptr;

namespace {
thread_local Worker* this_worker = nullptr;

// The "next" slot may run this many times in a row before the queue gets a turn: enough to
// keep a ping-pong pair on one core, few enough that nothing else waits long (Tokio: 3).
constexpr unsigned max_next_streak = 16;
// Every this many ticks a worker looks at the global queue first, so that processes made
// runnable by plain threads are not starved by local work (Go uses 61).
constexpr std::uint64_t global_check_interval = 61;
// Announce a quiescent state (and free retired processes) every this many turns: often
// enough to keep dead memory short-lived, rare enough to cost nothing per message.
constexpr std::uint64_t quiescent_interval = 64;
// A busy worker polls the I/O driver (without waiting) every this many turns, so that sockets
// are served while no worker sleeps in it (Tokio's event_interval is 61 too).
constexpr std::uint64_t io_check_interval = 61;

// A process in a busy worker's next slot may be taken by another worker once that worker
// has stayed in the same turn this long: far longer than a turn of a ping-pong (about a
// microsecond), so the pair keeps its core; short against a callback that blocks.
constexpr std::chrono::microseconds next_steal_grace{100};
// While some worker is awake, one parked worker sleeps in spells of this length and looks
// for a process stranded in a busy worker's next slot between them (Go's sysmon does this
// for its runnext): at most a thousand wake-ups a second of an idle core, and a woken
// process waits about this long (twice at most) behind a callback that does not return.
constexpr std::chrono::milliseconds stranded_check_interval{1};
// A searcher leaves the only process in a busy worker's run queue to that worker for this
// long (Scheduler::leave_lone): a few of its turns, so the chain of a restart (spawn, init,
// acknowledgement) stays on one core; short against any callback worth running in parallel.
constexpr std::chrono::nanoseconds lone_steal_grace = std::chrono::microseconds(10);
// push_local's answer when the queue was full and its older half went to the global queue.
constexpr std::uint64_t went_global = ~std::uint64_t{0};
// A spin halved below this parks at once (a search still makes its one pass of 16 rounds):
// a spin this short catches almost nothing. A spin that finds work restarts from here, so it
// is back at 50 µs after five finds in a row.
constexpr std::chrono::nanoseconds spin_floor = std::chrono::microseconds(2);

// The wake word's values (Worker::wake).
constexpr std::uint32_t sleeping = 0;
constexpr std::uint32_t woken = 1;
constexpr std::uint32_t sleep_in_spells = 2;

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
              std::atomic<std::uint32_t>::is_always_lock_free);

// The futex calls behind park, raw rather than std::atomic::wait because a spell needs a
// timeout. True when the wait timed out.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const timespec* timeout) {
  const long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout,
                         nullptr, 0);
  return r == -1 && errno == ETIMEDOUT;
}
void futex_wake(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// The heavy side of the next slot's asymmetric fence (Worker::taking): once registered,
// membarrier makes every running thread of the process execute a full memory barrier before
// it returns. Registered once per process; false when the kernel refuses.
bool register_membarrier() {
  static const bool registered = [] {
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return false;
    // A filter may allow the query and the registration but not the command: then thieves
    // would never steal. Try it once.
    return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return registered;
}
bool heavy_fence() { return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

Scheduler::Scheduler(RuntimeCore& core, const RuntimeOptions& options) : core_(core), options_(options) {
  const unsigned n = resolve_worker_count(options);
  workers_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->scheduler = this;
    w->random_state = 0x9e3779b97f4a7c15ULL * (i + 1);
    w->sightings.resize(n);
    w->lone_sightings.resize(n);
    w->spin = options.spin_before_park;
    w->counters.core = &core;
    workers_.push_back(std::move(w));
  }
  alone_ = n == 1;
  asymmetric_ = !alone_ && register_membarrier();
  io_wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  // A plain thread that held the epoch back while every worker parked wakes one to collect.
  core_.epoch.set_wake_hook([](void* s) { static_cast<Scheduler*>(s)->notify_one(); }, this);
}

Scheduler::~Scheduler() {
  stop();
  if (io_wake_fd_ >= 0) ::close(io_wake_fd_);
}

bool Scheduler::attach_io(IoDriver* io) {
  // Without our eventfd in the set, a worker asleep in it could not be woken.
  if (io_wake_fd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &io_wake_fd_;
  if (::epoll_ctl(io->epoll_fd(), EPOLL_CTL_ADD, io_wake_fd_, &ev) != 0) return false;
  {
    std::lock_guard lock(io_mutex_);
    io_.store(io, std::memory_order_release);
  }
  // Every worker may be asleep on its word: one wakes, finds nothing, and parks in epoll.
  notify_one();
  return true;
}

void Scheduler::detach_io() {
  io_.store(nullptr, std::memory_order_release);
  wake_io();
  // The worker that holds the driver sees io_ gone after its epoll_wait or batch, and lets go.
  std::lock_guard lock(io_mutex_);
}

void Scheduler::wake_io() {
  if (io_wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(io_wake_fd_, &one, sizeof one);
}

int Scheduler::strip_io_wake(epoll_event* events, int n) {
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == &io_wake_fd_) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(io_wake_fd_, &count, sizeof count);
      continue;
    }
    events[kept++] = events[i];
  }
  return kept;
}

bool Scheduler::poll_io(Worker& w) {
  if (io_.load(std::memory_order_relaxed) == nullptr || !io_mutex_.try_lock()) return false;
  int n = 0;
  if (IoDriver* io = io_.load(std::memory_order_acquire)) {
    n = ::epoll_wait(io->epoll_fd(), w.io_events, static_cast<int>(std::size(w.io_events)), 0);
    if (n > 0) n = strip_io_wake(w.io_events, n);
    if (n > 0) io->handle(w.io_events, n);
  }
  io_mutex_.unlock();
  return n > 0;
}

void Scheduler::start() {
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->started = std::chrono::steady_clock::now();  // before the thread: metrics() reads it
    wp->thread = std::thread([this, wp] { run(*wp); });
  }
}

void Scheduler::stop() {
  if (stopping_.exchange(true)) {
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
    return;
  }
  for (auto& w : workers_) {
    w->wake.store(woken, std::memory_order_seq_cst);
    futex_wake(w->wake);
  }
  wake_io();  // a worker asleep in the I/O driver (none once the poller has stopped)
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  // No worker runs anything from here on, but a plain thread (an Inbox, a send, the timer
  // thread) may still push a late request into a dead process and so schedule it: then it
  // answers it itself (see schedule). What the workers left in the global queue goes now.
  // seq_cst store, fence, then the queue's loads: the other half of schedule's Dekker pair,
  // so that an entry enqueued by a plain thread that did not see the flag is drained here.
  workers_gone_.store(true, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ExternalGuard guard(core_.epoch);  // bounce_late delivers answers: a lookup needs it
  drain_global_without_workers();
}

void Scheduler::drain_global_without_workers() {
  // A dead process gets what its turn would have given it (bounce_late; one holder at a
  // time: each entry is dequeued once, and a dead process is scheduled only by the sender
  // that found its mailbox idle). A live one is a spawn that raced with the stop and never
  // ran: it is dropped from the queue, and kill_stranded kills it through the table.
  ProcessHeader* p = nullptr;
  while (global_.try_dequeue(p))
    if (p->has(dead_flag)) core_.bounce_late(p);
}

Worker* Scheduler::current() const {
  Worker* w = this_worker;
  return (w != nullptr && w->scheduler == this) ? w : nullptr;
}

std::uint64_t Scheduler::push_local(Worker& w, ProcessHeader* p, bool backlog) {
  std::uint64_t before = 0;
  if (w.queue.push(p, &before, backlog)) return before;
  // Full: half of the queue and p go to the global queue, where any worker can take them.
  ProcessHeader* overflow[RunQueue::capacity / 2 + 1];
  const std::uint32_t n = w.queue.take_half(overflow);
  overflow[n] = p;
  global_.enqueue_bulk(overflow, n + 1);
  return went_global;
}

// After a push that left `before` entries ahead of it (went_global: the queue was full, and
// half of it went where every worker looks, which is treated as a queue filled from empty).
// A push onto an empty queue always notifies: that is the Dekker pair with park(), which
// re-checks every queue after publishing itself as a sleeper, so no wake-up is lost. A push onto a queue that already
// had company notifies only when someone sleeps and nobody searches (two relaxed loads,
// then notify_one re-checks behind its fence): the owner's view of `top` can be stale, so a
// queue a thief has just emptied may look full, and without this a parked worker could stay
// asleep while this one has a queue of work.
void Scheduler::after_push(std::uint64_t before) {
  if (before == 0 || before == went_global || (sleeping_.load(std::memory_order_relaxed) != 0 &&
                      searching_.load(std::memory_order_relaxed) == 0)) {
    notify_one();
  }
}

void Scheduler::schedule(ProcessHeader* p) {
  if (Worker* w = current()) {
    // LIFO for locality: the receiver runs next on this core. The one it displaces goes to
    // the queue, where it can be stolen; alone there it wakes nobody, as a spawned process
    // does (schedule_new): it runs here when this turn and the next slot's are over, and a
    // searcher leaves it to us for lone_steal_grace. In W3 the new child wakes the driver
    // (Ready) and then the supervisor (its acknowledgement), which displaces the driver:
    // waking a worker for it, or letting a spinning one take it, moved the restart's steps
    // across cores (issue 17: p50 2.3-3.8 against 1.5 µs on one worker). A thief only ever
    // empties the slot, so an empty slot is filled with a plain release store (the
    // ping-pong's case: the slot was emptied when this turn began); a full one is swapped,
    // as a thief may be emptying it now.
    ProcessHeader* displaced = w->next.load(std::memory_order_relaxed);
    if (displaced == nullptr) {
      w->next.store(p, std::memory_order_release);
      return;
    }
    displaced = w->next.exchange(p, std::memory_order_acq_rel);
    if (displaced != nullptr) requeue(*w, displaced);
    return;
  }
  global_.enqueue(p);
  // Dekker with stop(): we enqueue, fence, then read the flag; it stores the flag, fences,
  // then drains. Either its drain finds our entry, or we see the flag and drain it ourselves
  // (after the workers are joined nobody else would run it).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (workers_gone_.load(std::memory_order_relaxed)) {
    drain_global_without_workers();
    return;
  }
  notify_one();
}

ProcessHeader* Scheduler::take_next(Worker& w) {
  ProcessHeader* p = w.next.load(std::memory_order_relaxed);
  if (p == nullptr) return nullptr;
  if (alone_) {  // nobody else looks at this slot (take_stranded_next skips its own)
    w.next.store(nullptr, std::memory_order_relaxed);
    return p;
  }
  if (asymmetric_) {
    // Tests: a preemption here. Acquire: pairs with set_take_hook (a plain load on x86).
    if (auto* hook = take_hook_.load(std::memory_order_acquire)) hook(p->pid);
    // The light side of the pair (Worker::taking): store, compiler fence, load; the slot is
    // read only after, never before (a p read before could have been stolen meanwhile by a
    // thief whose decrement of `claims` we would then read as "nobody"). Acquire on
    // `claims`: pairs with a thief's release decrement, so if its compare-exchange emptied
    // the slot, we read null below. If no claim is seen at all, any thief's membarrier is
    // still to come, and its load of `taking` will see 1 (or our release of it, after the
    // slot is empty): it does not touch the slot.
    w.taking.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (w.claims.load(std::memory_order_acquire) == 0) {
      p = w.next.load(std::memory_order_relaxed);
      if (p != nullptr) w.next.store(nullptr, std::memory_order_relaxed);
      // Release: a thief that reads 0 here after its membarrier sees the slot empty.
      w.taking.store(0, std::memory_order_release);
      return p;
    }
    // A thief may be at the slot: race it with an exchange, as without the pair.
    p = w.next.exchange(nullptr, std::memory_order_acquire);
    w.taking.store(0, std::memory_order_release);
    return p;
  }
  // Acquire: pairs with the release put in schedule (or a thief's put: none; thieves only
  // take). An exchange, not a load and a store: a thief's compare-exchange may race with it.
  return w.next.exchange(nullptr, std::memory_order_acquire);
}

void Scheduler::release_next(Worker& w) {
  if (ProcessHeader* p = take_next(w)) after_push(push_local(w, p));
}

ProcessHeader* Scheduler::take_stranded_next(Worker& w) {
  ++w.stranded_looks;
  for (auto& victim_ptr : workers_) {
    Worker& victim = *victim_ptr;
    if (&victim == &w) continue;
    // Stranded behind a long callback: the process in the next slot, or one in the run
    // queue (a process requeued alone after its budget notifies nobody, as it would run
    // next there anyway; the next slot's process may run first and hold the worker).
    const bool queued = !victim.queue.empty();
    if (!queued && victim.next.load(std::memory_order_relaxed) == nullptr) continue;
    const std::uint64_t turn = victim.turn.load(std::memory_order_relaxed);
    Worker::Sighting& seen = w.sightings[victim.index];
    const auto now = std::chrono::steady_clock::now();
    // A first sight of this turn, or one whose earlier sight was not made at our previous
    // look: a sight from an earlier watch says nothing about the time since (a parked
    // worker's turn stands still while it sleeps, and a new turn begins when it wakes).
    const bool consecutive = seen.look + 1 == w.stranded_looks;
    seen.look = w.stranded_looks;
    if (seen.turn != turn || !consecutive) {
      seen.turn = turn;
      seen.since = now;
      continue;
    }
    if (now - seen.since < next_steal_grace) continue;
    // Still the same turn, long enough: the victim is held by one callback.
    if (queued) {
      if (ProcessHeader* p = victim.queue.steal_half_into(w.queue)) {
        WorkerCounters::add(w.counters.steals);
        return p;
      }
    }
    ProcessHeader* p = victim.next.load(std::memory_order_relaxed);
    if (p == nullptr) continue;
    // Acquire: pairs with the owner's release put, as its own take does. Failure: the owner
    // (or another thief) took it first.
    if (!asymmetric_) {
      if (victim.next.compare_exchange_strong(p, nullptr, std::memory_order_acquire, std::memory_order_relaxed))
        return p;
      continue;
    }
    // The heavy side of the pair (Worker::taking): claim, membarrier, then look at `taking`.
    // From here on an owner that starts a take sees the claim and uses the exchange; one
    // that is inside a plain take now shows `taking`, and we leave it the slot. Acquire on
    // `taking`: pairs with the owner's release of it, so a finished plain take's empty slot
    // is what the compare-exchange finds. Release on the decrement: pairs with the owner's
    // acquire load of `claims`, so an owner that reads the count back at 0 also sees the
    // slot our compare-exchange emptied.
    victim.claims.fetch_add(1, std::memory_order_relaxed);
    ProcessHeader* taken = nullptr;
    if (heavy_fence() && victim.taking.load(std::memory_order_acquire) == 0 &&
        victim.next.compare_exchange_strong(p, nullptr, std::memory_order_acquire, std::memory_order_relaxed))
      taken = p;
    victim.claims.fetch_sub(1, std::memory_order_release);
    if (taken != nullptr) return taken;
  }
  return nullptr;
}

void Scheduler::schedule_new(ProcessHeader* p) {
  if (Worker* w = current()) {
    // Into the spawner's run queue, waking nobody if it is alone there: it runs on this core
    // when the spawner's turn ends, as a restarted child, a started server or a short-lived
    // helper should (its init and its acknowledgement stay on the core that waits for them).
    // A second spawn in the same turn finds company and wakes a worker to share them (W4's
    // tree spreads at once), and a spawner whose turn goes on for long has its queue
    // watched (take_stranded_next). Waking a parked worker for every spawn, as this did, made
    // it steal the lone child, and every restart and start crossed cores (issue 17: W3's
    // p50 3.1 against 2.4 µs, micro_spawn_exit 300-850 ns against 200-260, W2's start
    // 2.5-4.4 s against 1.6-2.0 s, back to back on one host).
    requeue(*w, p);
    return;
  }
  global_.enqueue(p);
  notify_one();
}

void Scheduler::requeue(Worker& w, ProcessHeader* p, bool backlog) {
  // Alone in the queue it runs next here anyway: only company is worth waking someone for.
  const std::uint64_t before = push_local(w, p, backlog);
  if (before != 0) after_push(before);
}

ProcessHeader* Scheduler::take_global(Worker& w) {
  ProcessHeader* batch[32];
  // Take a few at once so the queue's shared state is touched less, but leave some for
  // the others: at most a share proportional to the worker count.
  std::size_t want = global_.size_approx() / workers_.size() + 1;
  if (want > 32) want = 32;
  const std::size_t got = global_.try_dequeue_bulk(batch, want);
  if (got == 0) return nullptr;
  for (std::size_t i = 1; i < got; ++i) push_local(w, batch[i]);
  if (got > 2) notify_one();  // more than this worker will get to soon
  return batch[0];
}

ProcessHeader* Scheduler::find_local(Worker& w) {
  if (w.ticks % global_check_interval == 0) {
    if (ProcessHeader* p = take_global(w)) {
      // p runs before the next slot's process: that one goes where others can steal it, so
      // it is not stranded should p's callback hold this worker for long.
      release_next(w);
      return p;
    }
  }
  if (w.next.load(std::memory_order_relaxed) != nullptr) {
    if (w.next_streak < max_next_streak) {
      if (ProcessHeader* p = take_next(w)) {
        ++w.next_streak;
        return p;
      }
    } else {
      release_next(w);
    }
  }
  w.next_streak = 0;
  if (ProcessHeader* p = w.queue.take()) return p;
  return take_global(w);
}

bool Scheduler::become_searching(Worker& w) {
  if (w.searching) return true;
  // At most half the workers search at once (at least one): more only burn CPU.
  const std::uint32_t n = searching_.load(std::memory_order_seq_cst);
  if (2 * n >= workers_.size() && n > 0) return false;
  searching_.fetch_add(1, std::memory_order_seq_cst);
  w.searching = true;
  return true;
}

void Scheduler::stop_searching(Worker& w) {
  if (!w.searching) return;
  w.searching = false;
  // The last searcher to find work wakes another, so that while work keeps appearing some
  // worker is always looking (Tokio's rule); otherwise a burst could sit on one core.
  if (searching_.fetch_sub(1, std::memory_order_seq_cst) == 1) notify_one();
}

void Scheduler::spin_found_work(Worker& w) {
  const std::chrono::nanoseconds longest = options_.spin_before_park;
  w.spin = std::min(std::max(2 * w.spin, spin_floor), std::chrono::nanoseconds(longest));
}

void Scheduler::spin_found_nothing(Worker& w) {
  w.spin /= 2;
  if (w.spin < spin_floor) w.spin = std::chrono::nanoseconds::zero();
}

ProcessHeader* Scheduler::search(Worker& w) {
  const auto deadline = std::chrono::steady_clock::now() + w.spin;
  bool may_steal = become_searching(w);
  for (unsigned round = 0;; ++round) {
    if (ProcessHeader* p = take_global(w)) {
      stop_searching(w);
      spin_found_work(w);
      return p;
    }
    if (may_steal) {
      const std::size_t n = workers_.size();
      w.random_state ^= w.random_state << 13;
      w.random_state ^= w.random_state >> 7;
      w.random_state ^= w.random_state << 17;
      const std::size_t start = w.random_state % n;
      for (std::size_t i = 0; i < n; ++i) {
        Worker& victim = *workers_[(start + i) % n];
        if (&victim == &w) continue;
        if (leave_lone(w, victim)) continue;
        if (ProcessHeader* p = victim.queue.steal_half_into(w.queue)) {
          WorkerCounters::add(w.counters.steals);
          stop_searching(w);
          spin_found_work(w);
          return p;
        }
      }
    }
    if (stopping_.load(std::memory_order_relaxed)) break;
    if ((round & 15) == 15) {
      // Kept from stealing by the cap on searchers: ask again once another worker has queued
      // work, or a long spin (a big spin_before_park) watches the other queues fill and never
      // takes from them. Only then: counted, we would wake a sleeper as the last searcher to
      // find work (stop_searching), a futex call before the work we found runs.
      if (!may_steal && queued_elsewhere(w)) may_steal = become_searching(w);
      // Bytes that come while we spin are ours to serve: nobody sleeps in the driver while
      // we hold off parking.
      if (poll_io(w)) {
        if (ProcessHeader* p = find_local(w)) {
          stop_searching(w);
          spin_found_work(w);
          return p;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    cpu_relax();
  }
  spin_found_nothing(w);
  // A process stranded in a busy worker's next slot is not looked for here but by the
  // watcher between its spells (park): the owner writes its slot and turn every turn, and
  // a searcher reading them in its spin pulled that cache line away on each one (W5 on two
  // workers ran three times slower).
  return nullptr;
}

// A searcher's look at a victim with one process queued: true to leave it there for now.
// That process is usually one the victim's running turn has just spawned or displaced, and
// the victim takes it within a turn or two; taken here, it and everything it wakes would
// run on this core instead, each step a cross-core hand-off. One seen at the same index for
// lone_steal_grace is taken: the victim is busy with something long. One requeued with a
// backlog is taken at once: it and whatever the victim runs have work enough for two cores
// (two busy processes taking turns through one queue show a different lone entry at every
// look, and keyed on the entry alone the grace kept them on one core for up to a few hundred
// microseconds: the searcher took one only if it looked while the queue held both). The
// clock is read only for a victim with exactly one.
bool Scheduler::leave_lone(Worker& w, const Worker& victim) {
  std::uint64_t top = 0;
  if (!victim.queue.lone(&top)) return false;
  if (victim.queue.backlog_at(top)) return false;
  Worker::LoneSighting& seen = w.lone_sightings[victim.index];
  const auto now = std::chrono::steady_clock::now();
  if (seen.top != top) {
    seen.top = top;
    seen.since = now;
    return true;
  }
  return now - seen.since < lone_steal_grace;
}

bool Scheduler::queued_elsewhere(const Worker& w) const {
  for (const auto& v : workers_)
    if (v.get() != &w && !v->queue.empty()) return true;
  return false;
}

bool Scheduler::work_visible() const {
  if (global_.size_approx() != 0) return true;
  for (const auto& v : workers_)
    if (!v->queue.empty()) return true;
  return false;
}

void Scheduler::park(Worker& w) {
  // Free what can be freed before sleeping: with every other worker asleep (offline), this
  // one alone can advance the epoch, so dead processes do not wait for the next busy spell.
  // What this worker retired goes where any collector frees it: a dead inbox's late link
  // and monitor requests are answered at reclamation, which must not wait for us to wake.
  core_.epoch.hand_over(w.participant);
  for (int i = 0; i < 3; ++i) {
    core_.epoch.quiescent(w.participant);
    core_.epoch.collect(w.participant);
  }
  // Reclaiming can answer a dead process's late requests, and so wake a process onto this
  // very worker: then there is work here, and no sleeping.
  if (w.next.load(std::memory_order_relaxed) != nullptr || !w.queue.empty()) return;
  core_.epoch.offline(w.participant);
  // Stop searching before becoming visible as a sleeper: from then on a notifier may take us
  // off the list and write `searching` for our wake-up.
  if (w.searching) {
    w.searching = false;
    searching_.fetch_sub(1, std::memory_order_seq_cst);
  }
  {
    std::lock_guard lock(sleepers_mutex_);
    sleepers_.push_back(&w);
    sleeping_.fetch_add(1, std::memory_order_seq_cst);
    // Someone else awake may get stuck in a callback with a process in its next slot: then
    // one sleeper must look now and then (stranded_check_interval). Everyone asleep: no
    // one can be stuck, sleep until woken (notify_one hands the duty on when it wakes one).
    w.sleep_timed = timed_sleepers_ == 0 && sleepers_.size() < workers_.size();
    if (w.sleep_timed) ++timed_sleepers_;
    // The last one awake goes to sleep: the watcher, if any, sleeps until woken from its
    // next spell on (it reads sleep_timed before each), so an idle runtime does not wake a
    // thousand times a second. Whoever wakes next appoints one again.
    if (sleepers_.size() == workers_.size() && timed_sleepers_ != 0) {
      for (Worker* s : sleepers_) s->sleep_timed = false;
      timed_sleepers_ = 0;
    }
  }
  // Dekker with notify_one: a waker publishes work, fences, then reads sleeping_/searching_;
  // we published ourselves as sleeping (and not searching), fence, then look for work. One
  // of us sees the other, so work published before we sleep is never left unnoticed.
  // The same fence pairs with a plain thread's ExternalGuard ending: if we see nobody else
  // online while the shared bags hold garbage, nobody will free it (and answer a dead
  // process's late requests) until a worker wakes, so we collect again instead of sleeping.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (work_visible() || stopping_.load(std::memory_order_seq_cst) ||
      core_.epoch.must_collect_before_parking(w.participant)) {
    std::lock_guard lock(sleepers_mutex_);
    if (leave_sleepers(w)) {
      clear_kick(w);
      core_.epoch.online(w.participant);
      return;
    }
    // A waker already took us off the list: its wake-up is on the way; take it below.
  }
  const timespec spell{0, static_cast<long>(std::chrono::nanoseconds(stranded_check_interval).count())};
  const auto parked_at = std::chrono::steady_clock::now();
  // The I/O driver, if no other worker holds it: then we sleep in its epoll_wait instead of
  // on the word, and bytes that come wake us to serve them here. A waker writes the I/O
  // eventfd as well as the word when it sees in_epoll: a Dekker pair of seq_cst accesses
  // (we store in_epoll, then load the word; it stores the word, then loads in_epoll), so
  // either we see its wake-up before we wait or it sees us in epoll.
  IoDriver* io = nullptr;
  int io_ready = 0;  // events polled while asleep, handled once online and off the list
  auto take_io = [&] {
    if (io_.load(std::memory_order_relaxed) == nullptr || !io_mutex_.try_lock()) return;
    io = io_.load(std::memory_order_acquire);
    if (io == nullptr) {
      io_mutex_.unlock();
      return;
    }
    w.in_epoll.store(true, std::memory_order_seq_cst);
  };
  auto let_go_of_io = [&] {
    w.in_epoll.store(false, std::memory_order_seq_cst);
    io = nullptr;
    io_mutex_.unlock();
  };
  take_io();
  bool by_waker = false;
  for (;;) {
    const std::uint32_t v = w.wake.load(std::memory_order_seq_cst);
    if (v == woken) {
      by_waker = true;
      break;
    }
    bool timed;
    {
      std::lock_guard lock(sleepers_mutex_);
      timed = w.sleep_timed;
    }
    if (io != nullptr && io_ready == 0) {
      constexpr int spell_ms = static_cast<int>(std::chrono::milliseconds(stranded_check_interval).count());
      const int got = ::epoll_wait(io->epoll_fd(), w.io_events, static_cast<int>(std::size(w.io_events)),
                                   timed ? spell_ms : -1);
      const int n = got > 0 ? strip_io_wake(w.io_events, got) : 0;
      if (n > 0) {
        io_ready = n;
        std::lock_guard lock(sleepers_mutex_);
        if (leave_sleepers(w)) {
          clear_kick(w);
          break;
        }
        // A waker already took us off the list: its wake-up is on the way; take it on the
        // word (the waker writes it always), keeping these events for after.
        continue;
      }
      if (io_.load(std::memory_order_acquire) == nullptr) {  // detach_io: sleep on the word
        let_go_of_io();
        continue;
      }
      if (got != 0) continue;  // our eventfd (a wake-up or a kick: look at the word), EINTR
    } else {
      // Sleeps unless the word moved on from v (a wake-up, or a kick to sleep in spells).
      if (!futex_wait(w.wake, v, timed ? &spell : nullptr)) continue;
      // The watcher between spells: if no worker sleeps in the driver, from now on we do.
      if (io == nullptr) take_io();
    }
    // A spell is over: look for a process stranded in a busy worker's next slot, and sleep
    // on if there is none, still listed: no search, no spin, no stealing (a watcher that
    // woke into a full search every spell moved other processes across cores and made P1's
    // restarts twice as slow). Only pointers are read here, so being offline is fine; a
    // process in a next slot is runnable, and nothing frees it before it runs.
    ProcessHeader* p = take_stranded_next(w);
    if (p == nullptr) continue;
    // It runs here next: find_local takes it from our own slot (empty, as we parked).
    w.next.store(p, std::memory_order_release);
    std::lock_guard lock(sleepers_mutex_);
    if (leave_sleepers(w)) {
      clear_kick(w);
      break;
    }
    // A waker already took us off the list: its wake-up is on the way; take it above.
  }
  w.wake.store(sleeping, std::memory_order_relaxed);
  const auto slept = std::chrono::steady_clock::now() - parked_at;
  WorkerCounters::add(w.counters.parks);
  if (by_waker) WorkerCounters::add(w.counters.wakeups);
  WorkerCounters::add(w.counters.parked_ns, static_cast<std::uint64_t>(std::chrono::nanoseconds(slept).count()));
  // Woken sooner than a full spin would have lasted: the spin would have caught the work
  // without the waker's futex call. Steady load (a ping-pong whose partner is released to
  // the queue every few turns wakes us every few microseconds) keeps the spin long this way.
  if (slept < options_.spin_before_park) spin_found_work(w);
  core_.epoch.online(w.participant);
  if (io != nullptr) {
    w.in_epoll.store(false, std::memory_order_seq_cst);
    // Online and off the list: what the batch delivers lands in our own slot and queue.
    if (io_ready > 0) io->handle(w.io_events, io_ready);
    io = nullptr;
    io_mutex_.unlock();
  }
}

void Scheduler::clear_kick(Worker& w) {
  // Leaving the list on our own: a kick to sleep in spells (appoint_watcher) may be in our
  // word; it must not stay there for our next sleep. A compare-exchange, not a store, so
  // that stop()'s `woken` is never overwritten.
  std::uint32_t expected = sleep_in_spells;
  w.wake.compare_exchange_strong(expected, sleeping, std::memory_order_relaxed, std::memory_order_relaxed);
}

bool Scheduler::leave_sleepers(Worker& w) {
  for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
    if (*it != &w) continue;
    sleepers_.erase(it);
    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
    // w wakes, and may get stuck in a callback with a process in its next slot (or queued
    // behind it): if nobody watches, a sleeper that would sleep until woken takes the duty.
    // If w was the watcher, the duty passes on.
    if (std::exchange(w.sleep_timed, false)) --timed_sleepers_;
    appoint_watcher();
    return true;
  }
  return false;
}

void Scheduler::appoint_watcher() {
  if (sleepers_.empty() || timed_sleepers_ != 0) return;
  Worker* watcher = sleepers_.front();
  watcher->sleep_timed = true;
  ++timed_sleepers_;
  // Moves its word on, so that a watcher about to sleep until woken does not (its futex wait
  // compares the word); it reads sleep_timed again and sleeps in spells. Done under
  // sleepers_mutex_, while the watcher is surely still listed: it leaves the list, and resets
  // its word to `sleeping`, only under the same mutex, so the kick can never land on a worker
  // that is already awake and be left behind for its next sleep.
  std::uint32_t expected = sleeping;
  if (watcher->wake.compare_exchange_strong(expected, sleep_in_spells, std::memory_order_seq_cst,
                                            std::memory_order_relaxed)) {
    futex_wake(watcher->wake);
    if (watcher->in_epoll.load(std::memory_order_seq_cst)) wake_io();
  }
}

void Scheduler::notify_one() {
  // Pairs with the fence in park(): our work is published before we look for sleepers.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) == 0) return;
  // A searching worker will find the work; waking another would only make two search.
  if (searching_.load(std::memory_order_seq_cst) != 0) return;
  Worker* sleeper = nullptr;
  {
    std::lock_guard lock(sleepers_mutex_);
    if (sleepers_.empty()) return;
    // The most recent sleeper, unless it sleeps in the I/O driver and another does not: the
    // driver's sleeper stays there to serve the sockets. (Relaxed: only a preference.)
    auto chosen = sleepers_.end() - 1;
    if (sleepers_.size() > 1 && (*chosen)->in_epoll.load(std::memory_order_relaxed)) --chosen;
    sleeper = *chosen;
    sleepers_.erase(chosen);
    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
    if (std::exchange(sleeper->sleep_timed, false)) --timed_sleepers_;
    // It wakes as a searcher, counted now so that concurrent notifiers do not wake more.
    searching_.fetch_add(1, std::memory_order_seq_cst);
    sleeper->searching = true;
    // From now on someone is awake: if the others all sleep until woken, one of them now
    // sleeps in spells, to rescue a process stranded in the next slot of a worker stuck in
    // a callback (see park). Only when the runtime goes from idle to busy does this cost a
    // second futex call.
    appoint_watcher();
  }
  // Seq_cst: the waker's half of the in_epoll pair (see park).
  sleeper->wake.store(woken, std::memory_order_seq_cst);
  futex_wake(sleeper->wake);
  if (sleeper->in_epoll.load(std::memory_order_seq_cst)) wake_io();
}

void Scheduler::run(Worker& w) {
  this_worker = &w;
  if (!options_.cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.cpus[w.index % options_.cpus.size()], &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  this_counters = &w.counters;
  w.participant = core_.epoch.acquire_participant();
  core_.epoch.online(w.participant);
  if (options_.on_worker_start) options_.on_worker_start(w.index);

  // Envelopes taken by this worker's turns, not yet in its messages_sent: kept in a
  // register and published every quiescent_interval turns and before a park.
  std::uint64_t unpublished_sent = 0;
  auto publish = [&] {
    WorkerCounters::add(w.counters.sent, unpublished_sent);
    unpublished_sent = 0;
  };
  while (!stopping_.load(std::memory_order_acquire)) {
    ProcessHeader* p = find_local(w);
    if (p == nullptr) p = search(w);
    if (p == nullptr) {
      if (stopping_.load(std::memory_order_acquire)) break;
      publish();
      w.counters.running.store(nullptr, std::memory_order_relaxed);  // see WorkerCounters::running
      park(w);
      continue;
    }
    if (w.searching) stop_searching(w);
    ++w.ticks;
    w.turn.store(w.ticks, std::memory_order_relaxed);
    w.counters.running.store(p, std::memory_order_relaxed);
    const RuntimeCore::TurnEnd end = core_.run_turn(w, p);
    unpublished_sent += end.taken;
    if (end.again) requeue(w, p, /*backlog=*/true);
    if (w.ticks % io_check_interval == 0) poll_io(w);
    if (w.ticks % quiescent_interval == 0) {
      publish();
      core_.epoch.quiescent(w.participant);
      core_.epoch.collect(w.participant);
    }
  }

  // Stopping: a dead process still queued (a late request scheduled it) gets its last turn,
  // so that one whose reclamation came meanwhile, leaving it to that turn, is freed.
  for (;;) {
    ProcessHeader* p = take_next(w);
    if (p == nullptr) p = w.queue.take();
    if (p == nullptr && !global_.try_dequeue(p)) break;
    if (p->has(dead_flag)) core_.bounce_late(p);
  }
  if (options_.on_worker_stop) options_.on_worker_stop(w.index);
  core_.epoch.release_participant(w.participant);
  publish();
  w.counters.running.store(nullptr, std::memory_order_relaxed);
  this_counters = nullptr;
  this_worker = nullptr;
}

}  // namespace coppice::detail
