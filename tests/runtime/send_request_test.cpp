// send_request / receive_response: requests in flight at once, replies collected by reference.
#include <gtest/gtest.h>

#include "coppice/coppice.hpp"

using namespace coppice;
using namespace std::chrono_literals;

namespace {
struct Double { int n; };
struct Quit {};

// Answers Double{n} with 2n; defers nothing; exits on Quit.
struct Doubler : Process {
  void handle(Message m) override {
    if (auto* d = m.get_if<Double>()) reply(*m.reply_to(), d->n * 2);
    if (m.is<Quit>()) stop_self(ExitReason::other("quit"));
  }
};

struct Seen {
  std::vector<int> values;
  std::vector<ErrorKind> errors;
};
}  // namespace

TEST(SendRequest, RepliesAreCollectedByReferenceInAnyOrder) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  const Pid a = rt.spawn<Doubler>();
  const Pid b = rt.spawn<Doubler>();
  rt.spawn([](Pid observer, Pid a, Pid b) -> Async<void> {
    RequestId ra = send_request(a, Double{1});
    RequestId rb = send_request(b, Double{20});
    send(self(), std::string("between"));  // not a reply: must stay queued
    Seen seen;
    Result<int> vb = co_await receive_response<int>(rb);  // collected out of sending order
    Result<int> va = co_await receive_response<int>(ra);
    seen.values = {va.value_or(-1), vb.value_or(-1)};
    std::optional<std::string> left = co_await receive<std::string>(0ms);
    seen.values.push_back(left && *left == "between" ? 1 : 0);
    send(observer, seen);
  }, inbox.pid(), a, b);
  std::optional<Seen> seen = inbox.receive<Seen>(5s);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->values, (std::vector<int>{2, 40, 1}));
}

TEST(SendRequest, ResponseFromAServerThatDiedIsExitedWithItsReason) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  const Pid server = rt.spawn<Doubler>();
  rt.spawn([](Pid observer, Pid server) -> Async<void> {
    Seen seen;
    RequestId quit = send_request(server, Quit{});  // the server exits without replying
    Result<int> r = co_await receive_response<int>(quit);
    seen.errors.push_back(r ? ErrorKind::invalid_argument : r.error().kind());
    RequestId self_request = send_request(self(), Double{1});
    Result<int> s = co_await receive_response<int>(self_request);
    seen.errors.push_back(s ? ErrorKind::invalid_argument : s.error().kind());
    send(observer, seen);
  }, inbox.pid(), server);
  std::optional<Seen> seen = inbox.receive<Seen>(5s);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->errors, (std::vector<ErrorKind>{ErrorKind::exited, ErrorKind::calling_self}));
}

TEST(SendRequest, ResponseTimesOutAndTheLateReplyIsDropped) {
  Runtime rt({.workers = 2});
  Inbox inbox(rt);
  // Holds the first request until told to answer it, then answers and sends a marker.
  const Pid server = rt.spawn([]() -> Async<void> {
    auto is_request = [](const Message& m) { return m.reply_to().has_value(); };
    Message request = co_await receive_if(is_request);
    const From caller = *request.reply_to();
    co_await receive<std::string>();
    reply(caller, 7);
    send(caller.pid, std::string("replied"));
  });
  rt.spawn([](Pid observer, Pid server) -> Async<void> {
    Seen seen;
    RequestId id = send_request(server, Double{1});
    Result<int> r = co_await receive_response<int>(id, 20ms);
    seen.errors.push_back(r ? ErrorKind::invalid_argument : r.error().kind());
    send(server, std::string("answer now"));
    std::string marker = co_await receive<std::string>();  // sent after the late reply
    std::optional<Message> left = co_await receive_any(0ms);
    seen.values = {marker == "replied" ? 1 : 0, left ? 1 : 0};
    send(observer, seen);
  }, inbox.pid(), server);
  std::optional<Seen> seen = inbox.receive<Seen>(5s);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->errors, (std::vector<ErrorKind>{ErrorKind::timeout}));
  EXPECT_EQ(seen->values, (std::vector<int>{1, 0}));  // marker seen, nothing else left
}
