// A process woken into its waker's next slot must not be stranded there while the waker's
// callback holds the worker: another worker takes it (ARCHITECTURE.md, "The scheduler").
#include <atomic>
#include <thread>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Flag {
  std::atomic<bool> set{false};
};
struct Go {
  Pid target;
  Flag* ran;
  Pid report_to;
};
struct Ran {
  bool ran;
};
struct Touch {};

// Sets the flag whenever it runs a message.
class Setter : public Process {
 public:
  explicit Setter(Flag* flag) : flag_(flag) {}
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    flag_->set.store(true);
  }

 private:
  Flag* flag_;
};

// On Go: wakes the target (which lands in this worker's next slot), then holds the worker
// until the target has run, which only another worker can make happen. The wait is bounded
// so that a stranded target is a failure, not a hang.
class Waker : public Process {
 public:
  void handle(Message m) override {
    if (std::optional<From> from = m.reply_to()) {
      reply(*from, Pong{self()});  // a Ping: ready
      return;
    }
    Go* go = m.get_if<Go>();
    if (go == nullptr) return;
    send(go->target, Touch{});
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (!go->ran->set.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    send(go->report_to, Ran{go->ran->set.load()});
  }
};

}  // namespace

TEST(NextSlot, AProcessWokenByACallbackThatWaitsForItRunsOnAnotherWorker) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  for (int round = 0; round < 10; ++round) {
    Flag flag;
    const Pid setter = rt.spawn<Setter>(&flag);
    const Pid waker = rt.spawn<Waker>();
    ASSERT_TRUE(answers(inbox, setter));  // idle now: the waker's send schedules it
    ASSERT_TRUE(answers(inbox, waker));
    flag.set.store(false);
    inbox.send(waker, Go{setter, &flag, inbox.pid()});
    std::optional<Ran> r = inbox.receive<Ran>(2 * wait_time);
    ASSERT_TRUE(r) << "round " << round << ": the waker never reported";
    ASSERT_TRUE(r->ran) << "round " << round << ": the woken process stayed stranded in the waker's next slot";
  }
}
