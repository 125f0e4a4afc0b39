// Epoch-based reclamation: a dead process's memory is freed only once no thread can still
// be holding a pointer to it, so a send never touches freed memory and counts no references.
//
// Every thread that looks up processes is a participant. Workers announce a quiescent state
// between process turns (they hold no process pointer then); plain threads are online only
// inside an ExternalGuard. Memory retired while the global epoch is E is freed once the
// epoch reaches E + 2: the epoch advances only when every online participant has announced
// the current one, so two advances mean every participant passed a point where it held no
// pointer obtained before the memory was unlinked.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace coppice::detail {

class EpochDomain {
 public:
  using Deleter = void (*)(void* object, void* context) noexcept;

  struct Retired {
    void* object;
    Deleter deleter;
    void* context;
  };
  struct Bag {
    std::uint64_t epoch = 0;
    std::vector<Retired> items;
  };
  struct Participant {
    alignas(64) std::atomic<std::uint64_t> epoch{0};  // 0: offline
    std::atomic<bool> in_use{false};
    Participant* next = nullptr;  // written once, before the participant is published
    Bag bags[3];                  // owner only: retired in epoch E go to bags[E % 3]
    // Owner only: retired since the last collect, not yet stamped with an epoch. Stamping
    // needs a full fence; doing it once per collect keeps it off the exit path.
    std::vector<Retired> unstamped;
    std::size_t pending = 0;      // owner only: items in bags and unstamped
  };

  EpochDomain();
  ~EpochDomain();  // frees everything still retired: call only when no participant is online

  // A participant for the calling thread's lifetime (workers) or for an ExternalGuard.
  Participant* acquire_participant();
  void release_participant(Participant* p);

  void online(Participant* p);             // announce the current epoch, then read pointers
  void offline(Participant* p);            // hold no pointers from here on
  void quiescent(Participant* p);          // between turns: online() without leaving

  // Frees `object` with `deleter` once no participant can hold it. `owner` is the calling
  // worker's participant (its own bags, no lock), or null from any other thread.
  void retire(Participant* owner, void* object, Deleter deleter, void* context = nullptr);
  // Frees everything retired, safe or not: only when no participant is online any more.
  void free_all();
  // Moves `owner`'s retired objects to the shared bags, which every collector frees: for a
  // worker about to sleep, so that what it retired does not wait for it to wake.
  void hand_over(Participant* owner);
  // Tries to advance the epoch and frees what has become safe in `owner`'s bags (and the
  // shared ones). Cheap when there is nothing to do.
  void collect(Participant* owner);

  // Liveness of the shared bags. Workers collect them, but a plain thread inside an
  // ExternalGuard can hold the epoch back while every worker collects and parks; when the
  // guard ends, nobody would collect until some worker woke for other work, and a dead
  // inbox's late link and monitor requests (answered at reclamation) would wait with it.
  // So a participant going offline with shared garbage left calls `wake` (the scheduler
  // wakes a parked worker), and a worker about to park asks `must_collect_before_parking`
  // after listing itself as a sleeper: one of the two sees the other (both fence).
  void set_wake_hook(void (*wake)(void* context), void* context);
  bool must_collect_before_parking(const Participant* self) const;
  bool others_online(const Participant* self) const;  // any participant but `self` online

 private:
  bool try_advance();
  std::size_t retire_into(Bag* bags, std::uint64_t e, Retired r);  // returns how many it freed
  void stamp(Participant* p);
  std::size_t free_safe(Bag* bags);
  static std::size_t free_bag(Bag& bag);

  alignas(64) std::atomic<std::uint64_t> epoch_{1};
  std::atomic<Participant*> participants_{nullptr};
  std::mutex shared_mutex_;
  Bag shared_bags_[3];
  std::atomic<std::size_t> shared_pending_{0};
  void (*wake_)(void*) = nullptr;  // set once, before any participant goes online
  void* wake_context_ = nullptr;
};

// Keeps a plain thread online for one operation on the runtime.
class ExternalGuard {
 public:
  explicit ExternalGuard(EpochDomain& domain);
  ~ExternalGuard();
  ExternalGuard(const ExternalGuard&) = delete;
  ExternalGuard& operator=(const ExternalGuard&) = delete;

 private:
  EpochDomain& domain_;
  EpochDomain::Participant* participant_;
};

}  // namespace coppice::detail
