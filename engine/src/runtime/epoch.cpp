// Epoch-based reclamation of process memory (see epoch.hpp for the argument).
#include "runtime/epoch.hpp"


namespace coppice::detail {

EpochDomain::EpochDomain() = default;

void EpochDomain::free_all() {
  for (Participant* p = participants_.load(std::memory_order_acquire); p != nullptr; p = p->next) {
    for (Bag& b : p->bags) p->pending -= free_bag(b);
    for (const Retired& r : p->unstamped) r.deleter(r.object, r.context);
    p->pending -= p->unstamped.size();
    p->unstamped.clear();
  }
  std::lock_guard lock(shared_mutex_);
  for (Bag& b : shared_bags_) shared_pending_.fetch_sub(free_bag(b), std::memory_order_relaxed);
}

EpochDomain::~EpochDomain() {
  for (Participant* p = participants_.load(std::memory_order_acquire); p != nullptr;) {
    Participant* next = p->next;
    for (Bag& b : p->bags) free_bag(b);
    for (const Retired& r : p->unstamped) r.deleter(r.object, r.context);
    delete p;
    p = next;
  }
  for (Bag& b : shared_bags_) free_bag(b);
}

EpochDomain::Participant* EpochDomain::acquire_participant() {
  for (Participant* p = participants_.load(std::memory_order_acquire); p != nullptr; p = p->next) {
    bool expected = false;
    if (!p->in_use.load(std::memory_order_relaxed) &&
        p->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      return p;
    }
  }
  auto* p = new Participant;
  p->in_use.store(true, std::memory_order_relaxed);
  Participant* head = participants_.load(std::memory_order_relaxed);
  do {
    p->next = head;
    // Release: a collector that finds p through the list sees its initialised fields.
  } while (!participants_.compare_exchange_weak(head, p, std::memory_order_release, std::memory_order_relaxed));
  return p;
}

void EpochDomain::release_participant(Participant* p) {
  stamp(p);
  // Offline, fence, then the shared bags and the others: Dekker with a parking worker, which
  // lists itself as a sleeper, fences, then reads whether we are online (see
  // must_collect_before_parking). Either it sees us offline and collects, or we see it
  // listed and wake it (notify_one fences and reads the sleepers). If someone else is still
  // online, they free the garbage (a worker when it parks) or wake a worker (a plain thread
  // when its guard ends): waking one now would only spin it and park it again.
  p->epoch.store(0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (wake_ != nullptr && shared_pending_.load(std::memory_order_seq_cst) != 0 && !others_online(p)) wake_(wake_context_);
  // Bags stay with the participant; whoever reuses it (or the destructor) frees them.
  p->in_use.store(false, std::memory_order_release);
}

void EpochDomain::online(Participant* p) {
  // Release: what this participant did with process pointers before (the turns since its
  // last announcement) happens before a collector that reads the new epoch and frees them.
  p->epoch.store(epoch_.load(std::memory_order_seq_cst), std::memory_order_release);
  // The announcement must be visible before any pointer read after it: a store followed by
  // loads is the one reorder every architecture allows (x86's store buffer included), and a
  // seq_cst read-modify-write does not forbid it either for later acquire or relaxed loads
  // on POWER, or on AArch64 with LDAPR. So a full fence, as crossbeam-epoch's `pin` does. It
  // pairs with the fence in retire/stamp (unlink, fence, read the epoch) and with
  // try_advance's seq_cst loads: either the collector sees us in the new epoch and does not
  // advance past it, or we see its unlink and never read the retired pointer.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void EpochDomain::offline(Participant* p) {
  // Release: everything this thread did with process pointers happens before a collector
  // that reads "offline" frees them.
  p->epoch.store(0, std::memory_order_release);
}

void EpochDomain::quiescent(Participant* p) { online(p); }

void EpochDomain::retire(Participant* owner, void* object, Deleter deleter, void* context) {
  if (owner != nullptr) {
    // Stamped at the owner's next collect: the unlink happened before that collect's fence.
    owner->unstamped.push_back({object, deleter, context});
    ++owner->pending;
    return;
  }
  // The caller unlinked `object` before this fence; the epoch read after it is the one the
  // object must be two behind before it is freed.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::lock_guard lock(shared_mutex_);
  const std::size_t freed = retire_into(shared_bags_, epoch_.load(std::memory_order_seq_cst), {object, deleter, context});
  shared_pending_.fetch_add(1, std::memory_order_relaxed);
  shared_pending_.fetch_sub(freed, std::memory_order_relaxed);
}

void EpochDomain::stamp(Participant* p) {
  if (p->unstamped.empty()) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint64_t e = epoch_.load(std::memory_order_seq_cst);
  for (const Retired& r : p->unstamped) p->pending -= retire_into(p->bags, e, r);
  p->unstamped.clear();
}

std::size_t EpochDomain::retire_into(Bag* bags, std::uint64_t e, Retired r) {
  Bag& bag = bags[e % 3];
  std::size_t freed = 0;
  if (bag.epoch < e) {
    // The bag last held epoch e - 3 or older: the epoch has advanced at least twice since.
    freed = free_bag(bag);
    bag.epoch = e;
  }
  // An item older than the bag (handed over from a worker) waits with it: later, never sooner.
  bag.items.push_back(r);
  return freed;
}

bool EpochDomain::try_advance() {
  std::uint64_t e = epoch_.load(std::memory_order_seq_cst);
  for (Participant* p = participants_.load(std::memory_order_acquire); p != nullptr; p = p->next) {
    // Acquire: what p did before announcing happens before our frees.
    const std::uint64_t seen = p->epoch.load(std::memory_order_seq_cst);
    if (seen != 0 && seen != e) return false;
  }
  return epoch_.compare_exchange_strong(e, e + 1, std::memory_order_seq_cst);
}

void EpochDomain::hand_over(Participant* owner) {
  if (owner->pending == 0) return;
  stamp(owner);
  std::lock_guard lock(shared_mutex_);
  std::size_t moved = 0, freed = 0;
  for (Bag& bag : owner->bags) {
    for (const Retired& r : bag.items) freed += retire_into(shared_bags_, bag.epoch, r);
    moved += bag.items.size();
    bag.items.clear();
  }
  owner->pending = 0;
  shared_pending_.fetch_add(moved, std::memory_order_relaxed);
  shared_pending_.fetch_sub(freed, std::memory_order_relaxed);
}

std::size_t EpochDomain::free_safe(Bag* bags) {
  const std::uint64_t e = epoch_.load(std::memory_order_acquire);
  std::size_t freed = 0;
  for (int i = 0; i < 3; ++i) {
    if (!bags[i].items.empty() && bags[i].epoch + 2 <= e) freed += free_bag(bags[i]);
  }
  return freed;
}

void EpochDomain::collect(Participant* owner) {
  const bool shared = shared_pending_.load(std::memory_order_relaxed) != 0;
  if ((owner == nullptr || owner->pending == 0) && !shared) return;
  if (owner != nullptr) stamp(owner);
  try_advance();
  if (owner != nullptr) owner->pending -= free_safe(owner->bags);
  if (shared) {
    if (std::unique_lock lock(shared_mutex_, std::try_to_lock); lock.owns_lock())
      shared_pending_.fetch_sub(free_safe(shared_bags_), std::memory_order_relaxed);
  }
}

void EpochDomain::set_wake_hook(void (*wake)(void* context), void* context) {
  wake_ = wake;
  wake_context_ = context;
}

bool EpochDomain::others_online(const Participant* self) const {
  for (const Participant* p = participants_.load(std::memory_order_acquire); p != nullptr; p = p->next) {
    if (p != self && p->epoch.load(std::memory_order_seq_cst) != 0) return true;
  }
  return false;
}

bool EpochDomain::must_collect_before_parking(const Participant* self) const {
  // The caller fenced after listing itself as a sleeper. Garbage in the shared bags that
  // only an offline world can free: if anyone else is online, it frees it (a worker, when it
  // parks) or wakes a sleeper to do so (a plain thread, when its guard ends).
  return shared_pending_.load(std::memory_order_seq_cst) != 0 && !others_online(self);
}

std::size_t EpochDomain::free_bag(Bag& bag) {
  const std::size_t n = bag.items.size();
  for (const Retired& r : bag.items) r.deleter(r.object, r.context);
  bag.items.clear();
  return n;
}

ExternalGuard::ExternalGuard(EpochDomain& domain) : domain_(domain), participant_(domain.acquire_participant()) {
  domain_.online(participant_);
}

ExternalGuard::~ExternalGuard() { domain_.release_participant(participant_); }

}  // namespace coppice::detail
