// First contact: a process receives, replies, exits; a coroutine process receives by type.
#include <gtest/gtest.h>

#include "coppice/coppice.hpp"

using namespace std::chrono_literals;

namespace {
struct Echo : coppice::Process {
  void handle(coppice::Message m) override {
    if (int* n = m.get_if<int>()) coppice::send(m.from(), *n + 1);
  }
};
}  // namespace

TEST(Smoke, ProcessRepliesToInbox) {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  coppice::Pid echo = rt.spawn<Echo>();
  inbox.send(echo, 41);
  auto got = inbox.receive<int>(5s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, 42);
}

TEST(Smoke, CoroutineBodyReceivesByType) {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  coppice::Pid p = rt.spawn([](coppice::Pid back) -> coppice::Async<void> {
    std::string s = co_await coppice::receive<std::string>();
    coppice::send(back, s + "!");
  }, inbox.pid());
  rt.send(p, 7);  // not a string: stays queued
  rt.send(p, std::string("hi"));
  auto got = inbox.receive<std::string>(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "hi!");
}
