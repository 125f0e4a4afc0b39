// The work-stealing scheduler: one worker thread per core, each with a bounded run queue and
// a "next" slot, a global queue for plain threads and overflow, stealing of half a victim's
// queue, a bounded spin, then parking without losing a wake-up.
#pragma once

#include <atomic>
#include <chrono>
#include <concurrentqueue/concurrentqueue.h>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "coppice/options.hpp"
#include "runtime/epoch.hpp"
#include "runtime/io_driver.hpp"
#include "runtime/process_header.hpp"
#include "runtime/process_table.hpp"
#include "runtime/run_queue.hpp"

namespace coppice::detail {

class RuntimeCore;
class Scheduler;

// A worker's counters (coppice/observe.hpp's metrics): only the worker writes them, each with
// a relaxed load and store (no read-modify-write, no shared line); metrics() reads them
// relaxed from any thread and sums. Plain threads count in RuntimeCore::external_counters.
struct WorkerCounters {
  // Whose worker (set before the threads start): a send into another runtime counts there.
  const RuntimeCore* core = nullptr;
  std::atomic<std::uint64_t> sent{0};    // envelopes pushed into mailboxes
  std::atomic<std::uint64_t> spawns{0};
  std::atomic<std::uint64_t> exits_normal{0};
  std::atomic<std::uint64_t> exits_shutdown{0};
  std::atomic<std::uint64_t> exits_killed{0};
  std::atomic<std::uint64_t> exits_error{0};  // errors and any other reason
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> wakeups{0};    // parks that a waker ended (not a spell or a stop)
  std::atomic<std::uint64_t> parked_ns{0};  // time asleep in park
  // The process in its turn here now, or the last one until the worker parks or takes
  // another, for the listing's `running` status: one relaxed store per turn, here on the
  // counters' line, which only the owner writes and only a listing reads. (Beside `turn`, on
  // the line thieves read for `next`, it made W5 on two workers 10% slower.) The listing
  // believes it only for a process whose mailbox is not idle, so a process that ended its
  // turn waiting is seen waiting at once; one put back in the queue may be seen running for
  // the few instructions before its worker takes the next.
  std::atomic<ProcessHeader*> running{nullptr};
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

struct Worker {
  unsigned index = 0;
  Scheduler* scheduler = nullptr;
  RunQueue queue;
  // The process most recently woken by a send from this worker: it usually runs next, on
  // this core, with the message still in cache. Only the owner puts a process here; the
  // owner takes it with an exchange, and the parked watcher, between its spells, may take it
  // with a compare-exchange to null once this worker has stayed in one turn for a while
  // (Scheduler::take_stranded_next), so exactly one of them runs it. Release on put, acquire
  // on take: the taker sees what the process's last runner wrote (which reached the waker
  // through the mailbox's idle tag).
  std::atomic<ProcessHeader*> next{nullptr};
  // The owner's take without a locked instruction (Scheduler::take_next): `taking` is 1
  // while the owner empties the slot with a plain load and store, `claims` counts thieves
  // about to compare-exchange it. An asymmetric Dekker pair: the owner stores `taking`, a
  // compiler-only fence, loads `claims`; a thief increments `claims`, membarrier (every
  // thread of the process passes a full fence), loads `taking`. At least one sees the
  // other; a thief that sees `taking` backs off, an owner that sees a claim uses the
  // exchange. Thieves come only for a worker stuck in one turn, so the membarrier is rare.
  std::atomic<std::uint32_t> taking{0};
  std::atomic<std::uint32_t> claims{0};
  unsigned next_streak = 0;
  std::uint64_t ticks = 0;
  // `ticks` as of the turn this worker is in, for the watcher: the same value seen twice, far
  // enough apart, means one long turn. Relaxed, a plain store per turn on the owner's line:
  // it is only a hint, the compare-exchange on `next` decides.
  std::atomic<std::uint64_t> turn{0};
  // As the watcher, owner only: per other worker, the turn in which we first saw a process
  // in its next slot, and when.
  struct Sighting {
    std::uint64_t turn = 0;
    std::uint64_t look = 0;  // stranded_looks when it was made
    std::chrono::steady_clock::time_point since{};
  };
  std::vector<Sighting> sightings;
  // As a searcher, owner only: per other worker, the index of the lone entry we last saw in
  // its run queue, and since when (Scheduler::leave_lone).
  struct LoneSighting {
    std::uint64_t top = ~std::uint64_t{0};
    std::chrono::steady_clock::time_point since{};
  };
  std::vector<LoneSighting> lone_sightings;
  std::uint64_t stranded_looks = 0;  // times this worker looked, as a watcher
  // Guarded by the scheduler's sleepers_mutex_: this sleeper waits at most
  // stranded_check_interval at a time (some other worker is awake).
  bool sleep_timed = false;
  std::uint64_t ref_counter = 0;
  // Processes spawned minus processes exited on this worker (may go negative: a process can
  // exit on another worker). Only the owner writes; Runtime::process_count sums them.
  std::atomic<std::int64_t> live{0};
  bool searching = false;
  // How long this worker's next search spins before it parks (owner only): halved by a spin
  // that found nothing, doubled by one that found work or by a park that a wake-up ended
  // within spin_before_park, up to spin_before_park. On a
  // shared host with work now and then, idle workers soon park at once and give the CPU back;
  // under steady load the spin stays long and catches work without a wake-up.
  std::chrono::nanoseconds spin{};
  EpochDomain::Participant* participant = nullptr;
  ProcessTable::SlotCache slots;
  // Futex word a parked worker sleeps on: 1 once someone has woken it; 2 when a notifier
  // asked it to sleep in short spells instead (see park).
  alignas(64) std::atomic<std::uint32_t> wake{0};
  // True while this worker sleeps in epoll_wait on the I/O driver rather than on `wake`: a
  // waker then also writes the scheduler's I/O eventfd. Seq_cst on both sides (see park).
  std::atomic<bool> in_epoll{false};
  std::uint64_t random_state = 0;
  epoll_event io_events[64];  // one batch of the I/O driver, polled by this worker
  std::chrono::steady_clock::time_point started{};  // set by start() before the thread runs (metrics: utilisation)
  alignas(64) WorkerCounters counters;
  std::thread thread;
};

class Scheduler {
 public:
  Scheduler(RuntimeCore& core, const RuntimeOptions& options);
  ~Scheduler();

  void start();
  // Wakes every worker and joins them. Call when no process is left.
  void stop();

  // A send found `p` idle and took over scheduling it.
  void schedule(ProcessHeader* p);
  // A new process, ready for its first turn.
  void schedule_new(ProcessHeader* p);
  // Moves the worker's next process to its run queue, where another worker can steal it.
  void release_next(Worker& w);

  // The calling thread's worker, if it is one of ours.
  Worker* current() const;
  void set_take_hook(void (*hook)(Pid)) { take_hook_.store(hook, std::memory_order_release); }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  // The sockets' poller: from now on workers poll its epoll set themselves (Tokio's driver
  // model): a worker with nothing to run sleeps in epoll_wait instead of on its futex word,
  // if no other does; a busy one polls without waiting every io_check_interval turns and
  // between rounds of its spin; the watcher polls between its spells. Events are handled on
  // the worker that polled them, so what they deliver runs there, without a wake-up.
  // False (nothing attached) when the scheduler's eventfd cannot join the driver's set.
  bool attach_io(IoDriver* io);
  // No worker polls `io` any more once this returns (the one asleep in it is woken).
  void detach_io();

  // Workers asleep now (tests: coppice::test_hooks::parked_workers).
  std::size_t parked() const { return sleeping_.load(std::memory_order_seq_cst); }
  Worker& worker(unsigned i) { return *workers_[i]; }
  std::size_t global_queue_size() const { return global_.size_approx(); }

 private:
  void run(Worker& w);
  ProcessHeader* find_local(Worker& w);
  ProcessHeader* search(Worker& w);
  bool leave_lone(Worker& w, const Worker& victim);
  void spin_found_work(Worker& w);     // the next spin is twice as long (up to the option)
  void spin_found_nothing(Worker& w);  // the next spin is half as long
  ProcessHeader* take_global(Worker& w);
  void park(Worker& w);
  void clear_kick(Worker& w);      // a kick to sleep in spells no longer applies
  bool leave_sleepers(Worker& w);  // with sleepers_mutex_ held: true if w was still listed
  void drain_global_without_workers();  // after the workers are joined: late answers for dead processes
  void appoint_watcher();          // with sleepers_mutex_ held: a sleeper sleeps in spells
  bool work_visible() const;
  bool queued_elsewhere(const Worker& w) const;  // another worker's run queue holds a process
  // Entries ahead of p, or went_global. `backlog`: see RunQueue::push.
  std::uint64_t push_local(Worker& w, ProcessHeader* p, bool backlog = false);
  void after_push(std::uint64_t before);
  void notify_one();
  ProcessHeader* take_next(Worker& w);
  // One epoll_wait of the I/O driver without waiting, its events handled here, if no other
  // worker holds the driver: true if there were events. The worker is online and awake.
  bool poll_io(Worker& w);
  // Writes the I/O eventfd: a worker asleep in epoll_wait returns.
  void wake_io();
  // Events of the driver's epoll_wait, the scheduler's own eventfd drained and dropped: the
  // number left for the driver.
  int strip_io_wake(epoll_event* events, int n);
  ProcessHeader* take_stranded_next(Worker& w);
  bool become_searching(Worker& w);
  void stop_searching(Worker& w);
  void requeue(Worker& w, ProcessHeader* p, bool backlog = false);

  friend class RuntimeCore;

  RuntimeCore& core_;
  const RuntimeOptions& options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // One worker: no thief can ever reach a next slot, so its owner takes it with a plain load
  // and store instead of an exchange (a locked instruction on every turn of a ping-pong).
  bool alone_ = false;
  // membarrier(PRIVATE_EXPEDITED) is available: owners take their next slot without an
  // exchange (see Worker::taking). Without it (an old kernel, a seccomp filter), they always
  // use the exchange.
  bool asymmetric_ = false;
  // Tests only (test_hooks::set_next_take_hook): runs in take_next between seeing a process
  // in the slot and taking it, as a preemption there would.
  std::atomic<void (*)(Pid)> take_hook_{nullptr};
  moodycamel::ConcurrentQueue<ProcessHeader*> global_;
  alignas(64) std::atomic<std::uint32_t> searching_{0};
  alignas(64) std::atomic<std::uint32_t> sleeping_{0};
  std::mutex sleepers_mutex_;
  std::vector<Worker*> sleepers_;
  unsigned timed_sleepers_ = 0;  // sleepers with sleep_timed; guarded by sleepers_mutex_
  // The I/O driver (attach_io), and who polls it: one worker at a time holds io_mutex_, which
  // is what makes a batch the poller's epoch. A worker loads io_ only with io_mutex_ held.
  std::atomic<IoDriver*> io_{nullptr};
  std::mutex io_mutex_;
  int io_wake_fd_ = -1;  // an eventfd in the driver's epoll set: wakes the worker asleep in it
  std::atomic<bool> stopping_{false};
  std::atomic<bool> workers_gone_{false};  // stop() joined the workers: plain threads drain the global queue
};

}  // namespace coppice::detail
