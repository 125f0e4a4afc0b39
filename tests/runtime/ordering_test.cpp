// Ordering (SEMANTICS.md 1.2): between one sender and one receiver, every signal arrives in the order sent.
#include <atomic>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
constexpr int message_count = 1000;

struct Seen {
  std::vector<int> values;
  std::optional<Exit> exit;
};

// Receives `count` ints, then (if asked) the Exit that must come after them, and reports.
Async<void> collect(Pid observer, int count, bool then_exit) {
  trap_exit(true);
  send(observer, std::string("ready"));
  Seen seen;
  for (int i = 0; i < count; ++i) seen.values.push_back(co_await receive<int>());
  if (then_exit) {
    // Not a selective receive: the next message of any kind must be the Exit.
    Message next = co_await receive_any();
    if (Exit* e = next.get_if<Exit>()) seen.exit = *e;
  }
  send(observer, std::move(seen));
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
  const Pid receiver = rt.spawn(collect, inbox.pid(), message_count, false);
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
  const Pid receiver = rt.spawn(collect, inbox.pid(), message_count, false);
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

// A process's messages are queued before the link exit it sends when it dies.
TEST(Ordering, MessagesFromADyingProcessArriveBeforeItsLinkExit) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid receiver = rt.spawn(collect, inbox.pid(), message_count, true);
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  const Pid sender = rt.spawn([](Pid to) -> Async<void> {
    if (!link(to)) coppice::exit(ExitReason::other("could not link"));
    for (int i = 0; i < message_count; ++i) send(to, i);
    coppice::exit(ExitReason::other("done sending"));
    co_return;
  }, receiver);
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->values, zero_to(message_count));
  ASSERT_TRUE(seen->exit) << "the message after the last int was not an Exit";
  EXPECT_EQ(seen->exit->from, sender);
  EXPECT_EQ(seen->exit->reason, ExitReason::other("done sending"));
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

// Exit signals go before DOWNs: after the DOWN, an unlink and a zero-timeout receive find
// the EXIT (the supervisor's unlink_flush idiom).
TEST(Ordering, LinkExitIsQueuedBeforeTheDownOfTheSameProcess) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Die{ExitReason::other("boom")});
  ASSERT_TRUE(down_for(inbox, ref));
  inbox.unlink(a);
  std::optional<Exit> e = inbox.receive<Exit>(0ms);
  ASSERT_TRUE(e) << "the EXIT was not queued when the DOWN arrived";
  EXPECT_EQ(e->from, a);
  EXPECT_EQ(e->reason, ExitReason::other("boom"));
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
