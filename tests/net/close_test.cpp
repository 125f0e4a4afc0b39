// How a connection ends: the peer resets it, its owner crashes mid-write, the socket sits in a
// message nobody receives, the runtime stops.
#include <gtest/gtest.h>

#include "net/net_support.hpp"

namespace {

using namespace coppice_test;
using coppice::Async;
using coppice::Inbox;
using coppice::Pid;
using coppice::Runtime;

TEST(Close, APeerThatResetsTheConnectionGivesTheOwnerClosedWithTheError) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  rt.spawn(accept_and_echo, *listener, inbox.pid());
  Client client(listener->port());
  ASSERT_TRUE(client.write("x"));
  ASSERT_EQ(client.read(1), "x");
  client.reset();
  auto ended = inbox.receive<EchoEnded>(wait_time);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason.kind(), coppice::ErrorKind::io_error) << ended->reason;
}

struct Writing {};

// Writes 8 MB to a peer that does not read (most of it queued), says so, then crashes.
Async<void> crash_mid_write(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Socket socket = (co_await coppice::receive<net::Accepted>()).socket;
  (void)socket.send(std::string(8u << 20, 'w'));
  coppice::send(observer, Writing{});
  co_await coppice::receive<Writing>();
  throw std::runtime_error("crash mid-write");
}

TEST(Close, AnOwnerThatCrashesMidWriteClosesItsSocket) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  Pid owner = rt.spawn(crash_mid_write, *listener, inbox.pid());
  inbox.monitor(owner);
  Client client(listener->port());
  ASSERT_TRUE(inbox.receive<Writing>(wait_time));
  rt.send(owner, Writing{});
  ASSERT_TRUE(inbox.receive<coppice::Down>(wait_time));
  // What the kernel took arrives, then the close: never all 8 MB, never a hang.
  std::string got = client.read(8u << 20);
  EXPECT_LT(got.size(), 8u << 20);
}

struct Ready {};
struct Go {};

// Asks for a connection, then waits for Go only: the Accepted stays in the mailbox.
Async<void> accept_and_wait(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  coppice::send(observer, Ready{});
  co_await coppice::receive<Go>();
}
Async<void> accept_and_report(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Accepted accepted = co_await coppice::receive<net::Accepted>();
  coppice::send(observer, Ready{});
  co_await coppice::receive<Go>();
}

TEST(Close, ASocketInAMessageNobodyReceivesClosesWhenTheMessageIsFreed) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  Pid first = rt.spawn(accept_and_wait, *listener, inbox.pid());
  ASSERT_TRUE(inbox.receive<Ready>(wait_time));
  Pid second = rt.spawn(accept_and_report, *listener, inbox.pid());
  (void)second;
  Client a(listener->port());
  Client b(listener->port());
  // The poller hands out connections in the order the acceptors asked, on one thread: once
  // the second has its Accepted, the first's is in its mailbox.
  ASSERT_TRUE(inbox.receive<Ready>(wait_time));
  rt.exit(first, coppice::ExitReason::kill());
  EXPECT_TRUE(a.peer_closed());
}

TEST(Close, StoppingTheRuntimeClosesEverySocketItsProcessesHeld) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  constexpr int connections = 20;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < connections; ++i) {
    rt.spawn(accept_and_echo, *listener, inbox.pid());
    clients.push_back(std::make_unique<Client>(listener->port()));
    ASSERT_TRUE(clients.back()->write("a"));
    ASSERT_EQ(clients.back()->read(1), "a");
  }
  rt.spawn(accept_and_echo, *listener, inbox.pid());  // an acceptor still waiting
  rt.stop();
  for (auto& c : clients) EXPECT_TRUE(c->peer_closed());
  // The handles left outside the runtime still work as handles: closed, no crash.
  EXPECT_FALSE(listener->accept_once());
  listener->close();
}

}  // namespace
