// Sockets as processes: a connection's data arrives as messages, one per arming (active once).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "net/net_support.hpp"

namespace {

using namespace coppice_test;
using coppice::Inbox;
using coppice::Runtime;

// On one worker (it polls the sockets when it has nothing else to run) and on two.
class Echo : public ::testing::TestWithParam<unsigned> {};

TEST_P(Echo, DataArrivesAsAMessageAndTheOwnerWritesItBack) {
  Runtime rt(workers(GetParam()));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  ASSERT_NE(listener->port(), 0);
  rt.spawn(accept_and_echo, *listener, inbox.pid());

  Client client(listener->port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 100; ++i) {
    std::string line = "hello " + std::to_string(i) + "\n";
    ASSERT_TRUE(client.write(line));
    EXPECT_EQ(client.read(line.size()), line);
  }
  client.close();
  auto ended = inbox.receive<EchoEnded>(wait_time);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason.kind(), coppice::ErrorKind::closed);
}

INSTANTIATE_TEST_SUITE_P(Workers, Echo, ::testing::Values(1u, 2u));

struct Holding {};

// The workers poll the sockets themselves: one held by a callback that does not return must
// not take the sockets with it. The other serves them (it sleeps in epoll, or takes the
// sockets between its spells as the watcher of stranded processes).
TEST(EchoWhileAWorkerIsHeld, TheOtherWorkerServesTheSockets) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  rt.spawn(accept_and_echo, *listener, inbox.pid());
  Client client(listener->port());
  ASSERT_TRUE(client.write("before"));
  ASSERT_EQ(client.read(6), "before");

  std::atomic<bool> release{false};
  rt.spawn([](coppice::Pid observer, std::atomic<bool>* release) -> coppice::Async<void> {
    coppice::send(observer, Holding{});
    while (!release->load(std::memory_order_acquire)) std::this_thread::yield();
    co_return;
  }, inbox.pid(), &release);
  ASSERT_TRUE(inbox.receive<Holding>(wait_time));
  // The holder runs now, and stays until released: every echo below is served by the other.
  for (int i = 0; i < 100; ++i) {
    std::string line = "held " + std::to_string(i) + "\n";
    ASSERT_TRUE(client.write(line));
    EXPECT_EQ(client.read(line.size()), line);
  }
  release.store(true, std::memory_order_release);
}

}  // namespace
