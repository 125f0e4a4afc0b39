// Ordering (SEMANTICS.md 1.2): between one sender and one receiver, every signal arrives in the order sent.
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
constexpr int message_count = 1000;

struct Seen {
  std::vector<int> values;
};

// Receives `count` ints and reports them.
Async<void> collect(Pid observer, int count) {
  trap_exit(true);
  send(observer, std::string("ready"));
  Seen seen;
  for (int i = 0; i < count; ++i) seen.values.push_back(co_await receive<int>());
  send(observer, std::move(seen));
}

// One entry per message, in the order the receiver took them: an int's value, or the Exit, or
// the name of any other type. Taken with receive_any, so nothing that jumped ahead is skipped.
struct Arrival {
  std::optional<int> value;
  std::optional<Exit> exit;
  std::string other;
};
struct Arrivals {
  std::vector<Arrival> in_order;
};

// Traps exits, says "ready", waits until `gate` opens (blocking its worker, so that everything
// the test arranges lands in its mailbox first), then takes the next `count` messages of any
// type in arrival order and reports them.
Async<void> take_in_arrival_order(Pid observer, int count, std::shared_future<void> gate) {
  trap_exit(true);
  send(observer, std::string("ready"));
  gate.wait_for(wait_time);
  Arrivals seen;
  for (int i = 0; i < count; ++i) {
    Message m = co_await receive_any();
    Arrival a;
    if (const int* v = m.get_if<int>()) {
      a.value = *v;
    } else if (const Exit* e = m.get_if<Exit>()) {
      a.exit = *e;
    } else {
      a.other = m.type_name();
    }
    seen.in_order.push_back(std::move(a));
  }
  send(observer, std::move(seen));
}

// What arrived at position i, for a failure message.
std::string describe(const Arrival& a) {
  if (a.value) return "int " + std::to_string(*a.value);
  if (a.exit) return "Exit " + a.exit->reason.to_string();
  return a.other;
}

std::vector<int> zero_to(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}
}  // namespace

TEST(Ordering, ThousandMessagesBetweenTwoProcessesArriveInSendOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid receiver = rt.spawn(collect, inbox.pid(), message_count);
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  rt.spawn([](Pid to) -> Async<void> {
    for (int i = 0; i < message_count; ++i) send(to, i);
    co_return;
  }, receiver);
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->values, zero_to(message_count));
}

TEST(Ordering, ThousandMessagesFromAPlainThreadArriveInSendOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid receiver = rt.spawn(collect, inbox.pid(), message_count);
  for (int i = 0; i < message_count; ++i) inbox.send(receiver, i);
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->values, zero_to(message_count));
}

TEST(Ordering, ProcessToInboxMessagesArriveInSendOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid to) -> Async<void> {
    for (int i = 0; i < message_count; ++i) send(to, i);
    co_return;
  }, inbox.pid());
  for (int i = 0; i < message_count; ++i) {
    std::optional<int> got = inbox.receive<int>(wait_time);
    ASSERT_TRUE(got) << "message " << i << " never came";
    ASSERT_EQ(*got, i);
  }
}

// SEMANTICS.md 1.2: a process's messages are queued before the link exit it sends when it
// dies, and a trapping receiver takes them in that order. Everything is taken with
// receive_any in arrival order (an EXIT that jumped ahead would show up at its place), once
// with the receiver running beside the sender and once with the receiver held until the
// sender is dead, so that the ints and the EXIT all wait in one mailbox together.
TEST(Ordering, MessagesFromADyingProcessArriveBeforeItsLinkExit) {
  for (bool held : {false, true}) {
    SCOPED_TRACE(held ? "receiver held until the sender died" : "receiver running");
    Runtime rt(workers(2));
    Inbox inbox(rt);
    std::promise<void> open;
    std::shared_future<void> gate = open.get_future().share();
    if (!held) open.set_value();
    const Pid receiver = rt.spawn(take_in_arrival_order, inbox.pid(), message_count + 1, gate);
    ASSERT_TRUE(inbox.receive<std::string>(wait_time));
    const Pid sender = rt.spawn([](Pid to) -> Async<void> {
      co_await receive<std::string>();  // "go", once monitored
      if (!link(to)) coppice::exit(ExitReason::other("could not link"));
      for (int i = 0; i < message_count; ++i) send(to, i);
      coppice::exit(ExitReason::other("done sending"));
    }, receiver);
    const Ref ref = inbox.monitor(sender);
    inbox.send(sender, std::string("go"));
    if (held) {
      ASSERT_TRUE(down_for(inbox, ref));
      open.set_value();
    }
    std::optional<Arrivals> seen = inbox.receive<Arrivals>(wait_time);
    ASSERT_TRUE(seen);
    ASSERT_EQ(seen->in_order.size(), static_cast<std::size_t>(message_count + 1));
    for (int i = 0; i < message_count; ++i) {
      const Arrival& a = seen->in_order[static_cast<std::size_t>(i)];
      ASSERT_TRUE(a.value.has_value() && *a.value == i) << "arrival " << i << " was " << describe(a) << ", not int " << i;
    }
    const Arrival& last = seen->in_order.back();
    ASSERT_TRUE(last.exit.has_value()) << "the last arrival was " << describe(last) << ", not the Exit";
    EXPECT_EQ(last.exit->from, sender);
    EXPECT_EQ(last.exit->reason, ExitReason::other("done sending"));
  }
}

// SEMANTICS.md 1.2 for an explicit exit signal (no link) to a trapping receiver: the EXIT it
// becomes sits between the messages the sender sent before and after it. The receiver is
// held until the sender is done, so all of it waits in one mailbox (where an exit signal is
// taken in before ordinary messages are handled, and must still keep its place).
TEST(Ordering, ATrappedExitSignalKeepsItsPlaceAmongTheSendersMessages) {
  constexpr int before = 200;
  constexpr int after = 200;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  const Pid receiver = rt.spawn(take_in_arrival_order, inbox.pid(), before + 1 + after, gate);
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  const Pid sender = rt.spawn([](Pid to, Pid observer) -> Async<void> {
    for (int i = 0; i < before; ++i) send(to, i);
    coppice::exit(to, ExitReason::other("in the middle"));
    for (int i = before; i < before + after; ++i) send(to, i);
    send(observer, std::string("sent"));
    co_return;
  }, receiver, inbox.pid());
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  open.set_value();
  std::optional<Arrivals> seen = inbox.receive<Arrivals>(wait_time);
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->in_order.size(), static_cast<std::size_t>(before + 1 + after));
  for (int i = 0; i < before + 1 + after; ++i) {
    const Arrival& a = seen->in_order[static_cast<std::size_t>(i)];
    if (i == before) {
      ASSERT_TRUE(a.exit.has_value()) << "arrival " << i << " was " << describe(a) << ", not the Exit";
      EXPECT_EQ(a.exit->from, sender);
      EXPECT_EQ(a.exit->reason, ExitReason::other("in the middle"));
    } else {
      const int expected = i < before ? i : i - 1;
      ASSERT_TRUE(a.value.has_value() && *a.value == expected)
          << "arrival " << i << " was " << describe(a) << ", not int " << expected;
    }
  }
}

// A dead process's messages are queued before its DOWN.
TEST(Ordering, MessagesFromADyingProcessArriveBeforeItsDown) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn([](Pid to) -> Async<void> {
    co_await receive<std::string>();  // "go", once monitored
    for (int i = 0; i < 3; ++i) send(to, i);
    coppice::exit(ExitReason::other("boom"));
  }, inbox.pid());
  const Ref ref = inbox.monitor(a);
  inbox.send(a, std::string("go"));
  for (int i = 0; i < 3; ++i) {
    std::optional<Message> m = inbox.receive_any(wait_time);
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->is<int>()) << "got " << m->type_name() << " before message " << i;
    EXPECT_EQ(m->get<int>(), i);
  }
  std::optional<Message> last = inbox.receive_any(wait_time);
  ASSERT_TRUE(last);
  ASSERT_TRUE(last->is<Down>()) << last->type_name();
  EXPECT_EQ(last->get<Down>().ref, ref);
}

// SEMANTICS.md 1.2 and 1.5: a dying process sends its link exit signals before its DOWNs,
// in the same per-pair order, so a receiver that is both linked to and monitoring it finds
// the EXIT ahead of the DOWN in its one mailbox (the supervisor's unlink_flush idiom relies on
// it). Checked by order of arrival, taking whatever comes first, not by what is there later.
TEST(Ordering, LinkExitIsQueuedBeforeTheDownOfTheSameProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  std::optional<Message> first = inbox.receive_any(wait_time);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->is<Exit>()) << "the first arrival was " << first->type_name() << ", not the EXIT";
  EXPECT_EQ(first->get<Exit>().from, a);
  EXPECT_EQ(first->get<Exit>().reason, ExitReason::other("boom"));
  std::optional<Message> second = inbox.receive_any(wait_time);
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->is<Down>()) << "the second arrival was " << second->type_name() << ", not the DOWN";
  EXPECT_EQ(second->get<Down>().ref, ref);
  EXPECT_EQ(second->get<Down>().reason, ExitReason::other("boom"));
}

// Link and unlink signals are ordered with messages: a message sent after unlink is
// handled after the unlink took effect at the receiver.
TEST(Ordering, SignalsAndMessagesFromOneSenderStayInOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  inbox.unlink(a);
  // The Ping goes after the unlink: by the time a answers, it has no link left.
  ASSERT_TRUE(answers(inbox, a));
  Result<ProcessInfo> info = rt.process_info(a);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->links.empty());
}

namespace {
// A process whose destructor, once it runs, says so, waits until the test has placed a
// monitor on it, and then sends the test a message: the message is caused before the DOWN
// (the destructor is part of the process's life), so it must arrive first.
struct DestructorHandshake {
  std::atomic<int> stage{0};  // 1: the destructor runs; 2: the monitor is placed
  std::atomic<bool> waited_out{false};
};

class SendsFromItsDestructor : public Process {
 public:
  SendsFromItsDestructor(DestructorHandshake* h, Pid to) : h_(h), to_(to) {}
  ~SendsFromItsDestructor() override {
    h_->stage.store(1);
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (h_->stage.load() != 2) {
      if (std::chrono::steady_clock::now() > deadline) {
        h_->waited_out.store(true);
        break;
      }
      std::this_thread::yield();
    }
    send(to_, 42);
  }
  void handle(Message) override { stop_self(ExitReason::other("real")); }

 private:
  DestructorHandshake* h_;
  Pid to_;
};
}  // namespace

// SEMANTICS.md 1.2: a monitor placed while the process's destructor runs sees the process
// alive; its DOWN carries the real reason and comes after what the destructor sent.
TEST(Ordering, MessageSentByADestructorArrivesBeforeADownMonitoredMeanwhile) {
  Runtime rt(workers(2));
  for (int round = 0; round < 5; ++round) {
    Inbox inbox(rt);
    DestructorHandshake h;
    const Pid p = rt.spawn<SendsFromItsDestructor>(&h, inbox.pid());
    inbox.send(p, std::string("stop"));
    const auto deadline = std::chrono::steady_clock::now() + wait_time;
    while (h.stage.load() != 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_EQ(h.stage.load(), 1) << "the destructor never ran";
    const Ref ref = inbox.monitor(p);
    h.stage.store(2);
    std::optional<Message> first = inbox.receive_any(wait_time);
    ASSERT_TRUE(first) << "round " << round << ": nothing arrived";
    ASSERT_FALSE(h.waited_out.load());
    const Down* early = first->get_if<Down>();
    ASSERT_TRUE(first->is<int>()) << "round " << round << ": the DOWN (reason "
                                  << (early ? early->reason.to_string() : std::string("?"))
                                  << ") overtook the destructor's message";
    std::optional<Down> d = down_for(inbox, ref);
    ASSERT_TRUE(d) << "round " << round << ": no DOWN";
    EXPECT_EQ(d->reason, ExitReason::other("real")) << "round " << round;
  }
}
