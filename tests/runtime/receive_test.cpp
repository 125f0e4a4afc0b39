// Receiving: selective receive by type and by predicate leaves the rest in order; awaited work holds back handle().
#include <future>
#include <string>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Go {};
struct Request {};  // a call the Gatekeeper answers only when released
struct Held {};     // the Gatekeeper has a request
struct Open {};     // release the held request

// Answers a Request with 99, but only after an Open; tells `observer` when it holds one.
class Gatekeeper : public Process {
 public:
  explicit Gatekeeper(Pid observer) : observer_(observer) {}
  void handle(Message m) override {
    if (m.is<Request>()) {
      held_ = m.reply_to();
      send(observer_, Held{});
    } else if (m.is<Open>() && held_) {
      reply(*held_, 99);
    }
  }

 private:
  Pid observer_;
  std::optional<From> held_;
};

std::vector<int> ints_of(const std::vector<Message>& ms) {
  std::vector<int> out;
  for (const Message& m : ms) out.push_back(m.is<int>() ? m.get<int>() : -1);
  return out;
}

}  // namespace

TEST(Receive, SelectiveReceiveByTypeLeavesTheOthersInOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Seen {
    std::string picked;
    std::vector<int> rest;
  };
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    co_await receive<Go>();
    Seen seen;
    seen.picked = co_await receive<std::string>();
    for (int i = 0; i < 3; ++i) {
      Message m = co_await receive_any();
      seen.rest.push_back(m.is<int>() ? m.get<int>() : -1);
    }
    send(observer, std::move(seen));
  }, inbox.pid());
  inbox.send(a, 1);
  inbox.send(a, 2);
  inbox.send(a, std::string("picked"));
  inbox.send(a, 3);
  inbox.send(a, Go{});  // last: everything above is queued when the receives start
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->picked, "picked");
  EXPECT_EQ(seen->rest, (std::vector<int>{1, 2, 3}));
}

// The first match, scanning from the front, and only that one.
// A selective receive finds the one message it waits for behind a flood much larger than
// what one turn takes in, with nothing more arriving afterwards to wake the process again:
// the process must not go idle while its mailbox still holds envelopes. One worker, held by
// another process while the flood lands, so that the flood is all in the mailbox (not yet
// taken in) when the waiting process runs again.
TEST(Receive, ASelectiveReceiveFindsItsMessageBehindAFloodWithNothingMoreArriving) {
  constexpr int flood = 20000;
  Runtime rt(workers(1));
  Inbox inbox(rt);
  const Pid p = rt.spawn([](Pid observer) -> Async<void> {
    send(observer, std::string("ready"));
    std::string last = co_await receive<std::string>();  // skips every int
    send(observer, std::move(last));
  }, inbox.pid());
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  std::promise<void> open;
  rt.spawn([](Pid observer, std::shared_future<void> gate) -> Async<void> {
    send(observer, Go{});
    gate.wait_for(wait_time);  // holds the only worker: p, suspended in its receive, waits
    co_return;
  }, inbox.pid(), open.get_future().share());
  ASSERT_TRUE(inbox.receive<Go>(wait_time));
  for (int i = 0; i < flood; ++i) inbox.send(p, i);
  inbox.send(p, std::string("last"));
  open.set_value();
  std::optional<std::string> got = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(got) << "the process never found the message behind the flood";
  EXPECT_EQ(*got, "last");
}

TEST(Receive, ReceiveIfTakesTheFirstMatchAndLeavesTheRest) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Seen {
    int picked;
    std::vector<int> rest;
  };
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    co_await receive<Go>();
    auto above_ten = [](const Message& m) { return m.is<int>() && m.get<int>() > 10; };
    Message m = co_await receive_if(above_ten);
    Seen seen{m.get<int>(), {}};
    for (int i = 0; i < 4; ++i) seen.rest.push_back(co_await receive<int>());
    send(observer, std::move(seen));
  }, inbox.pid());
  for (int n : {5, 20, 7, 30, 9}) inbox.send(a, n);
  inbox.send(a, Go{});
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->picked, 20);
  EXPECT_EQ(seen->rest, (std::vector<int>{5, 7, 30, 9}));
}

TEST(Receive, ReceiveIfWithTimeoutGivesNulloptWhenNothingMatches) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Seen {
    bool matched;
    int left;
  };
  rt.spawn([](Pid observer) -> Async<void> {
    send(self(), 1);
    auto negative = [](const Message& m) { return m.is<int>() && m.get<int>() < 0; };
    std::optional<Message> m = co_await receive_if(negative, 20ms);
    int left = co_await receive<int>();
    send(observer, Seen{m.has_value(), left});
  }, inbox.pid());
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_FALSE(seen->matched);
  EXPECT_EQ(seen->left, 1);
}

TEST(Receive, InboxSelectiveReceiveLeavesTheOthersInOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  for (int n : {1, 2, 3}) ASSERT_TRUE(inbox.call<Done>(a, SendInt{inbox.pid(), n}, wait_time));
  ASSERT_TRUE(inbox.call<Done>(a, SendInt{inbox.pid(), 100}, wait_time));
  auto big = [](const Message& m) { return m.is<int>() && m.get<int>() >= 100; };
  std::optional<Message> m = inbox.receive_if(big, wait_time);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->get<int>(), 100);
  std::vector<Message> rest;
  while (std::optional<Message> next = inbox.receive_any(0ms)) rest.push_back(std::move(*next));
  EXPECT_EQ(ints_of(rest), (std::vector<int>{1, 2, 3}));
}

// A process awaiting a call keeps its other messages queued, in order, for later receives;
// messages that arrive during the call (here, one the server sends first) join them.
TEST(Receive, CoroutineAwaitingACallKeepsItsOtherMessagesQueued) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Seen {
    Result<int> reply;
    std::vector<int> after;
  };
  const Pid server = rt.spawn([]() -> Async<void> {
    for (;;) {
      Message request = co_await receive_any();
      std::optional<From> from = request.reply_to();
      if (!from) continue;
      send(from->pid, 3);  // a plain message to the caller, before the reply
      reply(*from, 42);
    }
  });
  const Pid caller = rt.spawn([](Pid observer, Pid srv) -> Async<void> {
    co_await receive<Go>();
    Result<int> r = co_await call<int>(srv, std::string("question"));
    std::vector<int> after;
    for (int i = 0; i < 3; ++i) after.push_back(co_await receive<int>());
    send(observer, Seen{std::move(r), std::move(after)});
  }, inbox.pid(), server);
  inbox.send(caller, 1);
  inbox.send(caller, 2);
  inbox.send(caller, Go{});
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  ASSERT_TRUE(seen->reply) << seen->reply.error();
  EXPECT_EQ(*seen->reply, 42);
  EXPECT_EQ(seen->after, (std::vector<int>{1, 2, 3}));
}

// Process::await from a handler-class process: until the work finishes, handle() is not
// called, and messages that arrive meanwhile wait their turn.
TEST(Receive, ProcessAwaitHoldsBackHandleUntilTheWorkIsDone) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Handled {
    int value;
  };
  struct WorkDone {
    Result<int> reply;
  };
  class Worker : public Process {
   public:
    Worker(Pid observer, Pid gatekeeper) : observer_(observer), gatekeeper_(gatekeeper) {}
    void handle(Message m) override {
      if (m.is<Go>()) {
        await(work());
      } else if (int* n = m.get_if<int>()) {
        send(observer_, Handled{*n});
      }
    }

   private:
    Async<void> work() {
      Result<int> r = co_await call<int>(gatekeeper_, Request{});
      send(observer_, WorkDone{std::move(r)});
    }
    Pid observer_;
    Pid gatekeeper_;
  };
  const Pid gatekeeper = rt.spawn<Gatekeeper>(inbox.pid());
  const Pid worker = rt.spawn<Worker>(inbox.pid(), gatekeeper);
  inbox.send(worker, Go{});
  ASSERT_TRUE(inbox.receive<Held>(wait_time));  // the work is now waiting for its reply
  inbox.send(worker, 7);                        // queued behind the awaited work
  inbox.send(gatekeeper, Open{});               // the reply comes after the 7

  std::optional<Message> first = inbox.receive_any(wait_time);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->is<WorkDone>()) << "handle() ran while the work was awaiting: got " << first->type_name();
  ASSERT_TRUE(first->get<WorkDone>().reply);
  EXPECT_EQ(*first->get<WorkDone>().reply, 99);
  std::optional<Handled> second = inbox.receive<Handled>(wait_time);
  ASSERT_TRUE(second) << "the message queued during the work was lost";
  EXPECT_EQ(second->value, 7);
}

// A process whose await is in progress cannot start a second one.
TEST(Receive, ProcessAwaitWhileAwaitingCrashesWithAnError) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  class Twice : public Process {
   public:
    void init() override {
      await(wait_forever());
      await(wait_forever());
    }
    void handle(Message) override {}

   private:
    static Async<void> wait_forever() { co_await receive<Go>(); }
  };
  rt.spawn([](Pid observer) -> Async<void> {
    spawn_monitor<Twice>();
    Down d = co_await receive<Down>();
    send(observer, d.reason);
  }, inbox.pid());
  std::optional<ExitReason> reason = inbox.receive<ExitReason>(wait_time);
  ASSERT_TRUE(reason);
  EXPECT_EQ(reason->kind(), ExitReason::Kind::error) << *reason;
}

// Messages keep their order through a handler-class process too.
TEST(Receive, HandlerProcessHandlesMessagesInArrivalOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>(inbox.pid());
  for (int i = 0; i < 200; ++i) inbox.send(a, i);
  for (int i = 0; i < 200; ++i) {
    std::optional<SawInt> seen = inbox.receive<SawInt>(wait_time);
    ASSERT_TRUE(seen);
    ASSERT_EQ(seen->value, i);
  }
}

// The private queue is a ring through its tail (process_header.hpp). A receiver that picks
// messages out of it in a scrambled order (the first, the last, one in the middle, the only
// one), and waits for one not yet sent so that its scan stops at the tail and resumes there
// when more come, gets each it asks for, and the rest in the order they were sent.
TEST(Receive, PickingFromAnywhereInTheQueueWhileMoreArriveKeepsTheRestInOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct More {};
  struct Outcome {
    int wrong_picks = 0;
    std::vector<int> rest;
  };
  constexpr int batches = 20, per_batch = 16;
  const Pid a = rt.spawn([](Pid feeder) -> Async<void> {
    std::vector<int> queued;  // the model: what should be queued, in order
    Outcome out;
    std::uint32_t seed = 12345;
    for (int b = 0; b < batches; ++b) {
      send(feeder, More{});
      // Wait for the batch's last value, which is not sent yet: every scan walks to the tail.
      const int last = b * per_batch + per_batch - 1;
      Message m = co_await receive_if([last](const Message& x) { return x.is<int>() && x.get<int>() == last; });
      if (m.get<int>() != last) ++out.wrong_picks;
      for (int v = b * per_batch; v < last; ++v) queued.push_back(v);
      // Then take out half of what is queued, from scrambled places (first, last, middle).
      for (int k = 0; k < per_batch / 2 && !queued.empty(); ++k) {
        seed = seed * 1103515245u + 12345u;
        const std::size_t at = k == 0 ? 0 : k == 1 ? queued.size() - 1 : (seed >> 8) % queued.size();
        const int want = queued[at];
        queued.erase(queued.begin() + static_cast<std::ptrdiff_t>(at));
        Message got = co_await receive_if([want](const Message& x) { return x.is<int>() && x.get<int>() == want; });
        if (got.get<int>() != want) ++out.wrong_picks;
      }
    }
    for (std::size_t i = 0; i < queued.size(); ++i) out.rest.push_back(co_await receive<int>());
    if (out.rest != queued) out.wrong_picks += 1000;
    send(feeder, std::move(out));
  }, inbox.pid());
  int next = 0;
  for (;;) {
    std::optional<Message> m = inbox.receive_if([](const Message& x) { return x.is<More>() || x.is<Outcome>(); }, wait_time);
    ASSERT_TRUE(m);
    if (m->is<Outcome>()) {
      const Outcome& out = m->get<Outcome>();
      EXPECT_EQ(out.wrong_picks, 0);
      EXPECT_EQ(out.rest.size(), static_cast<std::size_t>(batches * (per_batch - 1 - per_batch / 2)));
      break;
    }
    for (int i = 0; i < per_batch; ++i) inbox.send(a, next++);
  }
  EXPECT_EQ(next, batches * per_batch);
}
