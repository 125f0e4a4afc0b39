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
