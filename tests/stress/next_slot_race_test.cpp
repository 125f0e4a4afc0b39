// The next slot's owner and a thief race for one process: exactly one of them runs it. The
// owner empties its slot without a locked instruction when no thief claims it (an asymmetric
// fence: Scheduler::take_next); the parked watcher steals from a worker it saw in one turn
// for a whole spell. Here the waker's turns end at random around the moment the watcher
// steals, round after round, and the woken process must run each message once, never on
// two workers at a time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "coppice/coppice.hpp"
#include "coppice/test_hooks.hpp"
#include "stress.hpp"

using namespace coppice;

namespace {

using namespace std::chrono_literals;

struct Touch {
  int seq;
};
struct Touched {
  int seq;
};
struct Go {
  Pid target;
  int seq;
  std::chrono::microseconds hold;
  Pid report_to;
};
struct Held {
  int seq;
};

struct Watch {
  std::atomic<int> in_flight{0};
  std::atomic<int> overlaps{0};
};

// Runs each Touch, reporting it; counts a turn that found another still under way.
class Target : public Process {
 public:
  Target(Watch* watch, Pid report_to) : watch_(watch), report_to_(report_to) {}
  void handle(Message m) override {
    if (watch_->in_flight.fetch_add(1) != 0) watch_->overlaps.fetch_add(1);
    if (const Touch* t = m.get_if<Touch>()) send(report_to_, Touched{t->seq});
    watch_->in_flight.fetch_sub(1);
  }

 private:
  Watch* watch_;
  Pid report_to_;
};

// On Go: wakes the target into this worker's next slot, then holds the worker for a while
// (about a watcher's spell or two: its steal lands near the end of the turn).
class Waker : public Process {
 public:
  void handle(Message m) override {
    const Go* go = m.get_if<Go>();
    if (go == nullptr) return;
    send(go->target, Touch{go->seq});
    const auto until = std::chrono::steady_clock::now() + go->hold;
    while (std::chrono::steady_clock::now() < until) {
    }
    send(go->report_to, Held{go->seq});
  }
};

}  // namespace

TEST(NextSlotRace, AProcessTakenFromANextSlotRunsOnceWhoeverTakesIt) {
  Runtime rt(RuntimeOptions{.workers = 2});
  Inbox inbox(rt);
  Watch watch;
  const Pid target = rt.spawn<Target>(&watch, inbox.pid());
  const Pid waker = rt.spawn<Waker>();
  std::mt19937 random(20261206);
  // Turns of 0.5 to 2.5 ms: some end before the watcher's second sighting, some after its
  // steal, some while it steals.
  std::uniform_int_distribution<int> hold_us(500, 2500);
  constexpr int rounds = 300;
  std::multiset<int> touched;
  int stolen = 0;  // rounds whose Touch ran while the waker held its worker
  for (int seq = 0; seq < rounds; ++seq) {
    inbox.send(waker, Go{target, seq, std::chrono::microseconds(hold_us(random)), inbox.pid()});
    bool held = false;
    bool seen = false;
    while (!held || !seen) {
      std::optional<Message> m = inbox.receive_any(coppice::stress::patience);
      ASSERT_TRUE(m) << "round " << seq << ": no " << (held ? "Touched" : "Held") << " in time";
      if (const Held* h = m->get_if<Held>()) {
        ASSERT_EQ(h->seq, seq);
        held = true;
      } else if (const Touched* t = m->get_if<Touched>()) {
        touched.insert(t->seq);
        if (t->seq == seq && !held) ++stolen;
        seen = seen || t->seq == seq;
      }
    }
  }
  // How often the watcher won: a figure, not a check (it depends on the host's timing).
  std::printf("next slot race: %d of %d rounds ran the target during the waker's turn\n", stolen, rounds);
  EXPECT_EQ(watch.overlaps.load(), 0) << "the target ran on two workers at once";
  ASSERT_EQ(touched.size(), static_cast<std::size_t>(rounds)) << "a Touch was run twice or lost";
  for (int seq = 0; seq < rounds; ++seq) EXPECT_EQ(touched.count(seq), 1u) << "Touch " << seq;
}

// The same race made certain: a hook stalls the owner between seeing the process in its next
// slot and taking it (as a preemption there would) until the watcher has stolen the process
// and is running it. The owner must then find the slot empty. Were it to take the process it
// saw before the stall, it would run it a second time, at once, on its own worker: the
// second Touch would start while the first is still running.
namespace {

struct Stall {
  std::atomic<bool> armed{false};
  std::atomic<bool> first_started{false};  // the thief runs the first Touch
  std::atomic<bool> owner_resumed{false};  // the hook has returned
  std::atomic<bool> second_started{false};
  std::atomic<int> in_flight{0};
  std::atomic<int> overlaps{0};
  std::atomic<bool> stolen{false};
  std::atomic<bool> hooked{false};  // the owner was stalled this round
  Pid target;
};
Stall stall;

// Answered at once: a process that answers has had its first turn and waits, idle, so that
// the next send to it schedules it (into the sender's next slot).
struct Hello {
  Pid from;
};

template <class Done>
bool wait_until(Done done, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!done())
    if (std::chrono::steady_clock::now() >= until) return false;
  return true;
}

void stall_the_owner(Pid pid) {
  // Acquire on `armed`: the test wrote `target` before arming.
  if (!stall.armed.load(std::memory_order_acquire) || pid != stall.target || !stall.armed.exchange(false)) return;
  stall.hooked.store(true);
  // The watcher steals within a spell or two (1-2 ms); a generous bound for a loaded host.
  stall.stolen.store(wait_until([] { return stall.first_started.load(); }, 5000ms));
  stall.owner_resumed.store(true);
}

class StalledTarget : public Process {
 public:
  explicit StalledTarget(Pid report_to) : report_to_(report_to) {}
  void handle(Message m) override {
    if (const Hello* h = m.get_if<Hello>()) {
      send(h->from, Hello{self()});
      return;
    }
    const Touch* t = m.get_if<Touch>();
    if (t == nullptr) return;
    if (stall.in_flight.fetch_add(1) != 0) stall.overlaps.fetch_add(1);
    if (t->seq == 1) {
      stall.first_started.store(true);
      // Long enough for a wrongly resumed owner to start the second Touch beside this one.
      wait_until([] { return stall.owner_resumed.load(); }, 5000ms);
      wait_until([] { return stall.second_started.load(); }, 200ms);
    } else {
      stall.second_started.store(true);
    }
    send(report_to_, Touched{t->seq});
    stall.in_flight.fetch_sub(1);
  }

 private:
  Pid report_to_;
};

struct TouchTwice {
  Pid target;
};
class TwoTouchWaker : public Process {
 public:
  void handle(Message m) override {
    if (const Hello* h = m.get_if<Hello>()) send(h->from, Hello{self()});
    if (const TouchTwice* go = m.get_if<TouchTwice>()) {
      send(go->target, Touch{1});  // into this worker's next slot
      send(go->target, Touch{2});
    }
  }
};

}  // namespace

TEST(NextSlotRace, AnOwnerStalledBeforeItsTakeFindsTheSlotEmptiedByTheWatcher) {
  Runtime rt(RuntimeOptions{.workers = 2});
  test_hooks::set_next_take_hook(rt, &stall_the_owner);
  Inbox inbox(rt);
  // A round is conclusive when the owner was stalled: the target's previous turn may still
  // be ending when the first Touch arrives (after it answered Hello, before it went idle),
  // and then that turn runs it, with no next slot involved.
  int conclusive = 0;
  for (int round = 0; round < 100 && conclusive < 5; ++round) {
    const Pid target = rt.spawn<StalledTarget>(inbox.pid());
    const Pid waker = rt.spawn<TwoTouchWaker>();
    for (const Pid pid : {target, waker}) {
      inbox.send(pid, Hello{inbox.pid()});
      ASSERT_TRUE(inbox.receive<Hello>(coppice::stress::patience)) << "round " << round << ": no answer";
    }
    stall.target = target;
    stall.first_started.store(false);
    stall.owner_resumed.store(false);
    stall.second_started.store(false);
    stall.stolen.store(false);
    stall.hooked.store(false);
    stall.armed.store(true);
    inbox.send(waker, TouchTwice{target});
    std::multiset<int> touched;
    while (touched.size() < 2) {
      std::optional<Touched> t = inbox.receive<Touched>(coppice::stress::patience);
      ASSERT_TRUE(t) << "round " << round << ": a Touch never ran";
      touched.insert(t->seq);
    }
    stall.armed.store(false);
    if (stall.hooked.load()) ++conclusive;
    EXPECT_TRUE(!stall.hooked.load() || stall.stolen.load()) << "round " << round << ": the watcher never took the stalled owner's process";
    EXPECT_EQ(stall.overlaps.load(), 0) << "round " << round << ": the process ran on two workers at once";
    EXPECT_EQ(touched.count(1), 1u);
    EXPECT_EQ(touched.count(2), 1u);
    // A double run would also deliver a Touched more than once.
    EXPECT_FALSE(inbox.receive<Touched>(std::chrono::milliseconds(0))) << "round " << round << ": a Touch ran twice";
    rt.exit(target, ExitReason::kill());
    rt.exit(waker, ExitReason::kill());
  }
  test_hooks::set_next_take_hook(rt, nullptr);
  EXPECT_EQ(conclusive, 5) << "the owner was stalled in too few rounds to tell";
}
