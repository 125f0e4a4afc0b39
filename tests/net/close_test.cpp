// How a connection ends: the peer resets it, its owner crashes mid-write, the socket sits in a
// message nobody receives, the runtime stops.
#include <gtest/gtest.h>

#include <functional>
#include <optional>

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

// What a connection read before it ended, and how it ended.
struct ReadToTheEnd {
  std::string bytes;
  std::size_t data_messages = 0;
  coppice::Error reason{coppice::ErrorKind::invalid_argument, "not ended"};
};

// Takes a connection, says Ready, waits for Go (so the peer's bytes and its close are all in
// the kernel before the first arm), then reads until Closed and reports.
Async<void> accept_wait_then_read(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Socket socket = (co_await coppice::receive<net::Accepted>()).socket;
  coppice::send(observer, Ready{});
  co_await coppice::receive<Go>();
  ReadToTheEnd got;
  for (;;) {
    if (!socket.set_active_once()) co_return;
    coppice::Message m = co_await coppice::receive_any();
    if (auto* d = m.get_if<net::Data>()) {
      got.bytes += d->bytes;
      ++got.data_messages;
    } else if (auto* c = m.get_if<net::Closed>()) {
      got.reason = c->reason;
      coppice::send(observer, std::move(got));
      co_return;
    }
  }
}

// A connection whose reader arms only after `peer` has acted on the client's side (written,
// closed, reset): what the reader got until Closed, or nothing if no Closed came.
std::optional<ReadToTheEnd> read_after_the_peer(std::size_t read_size, const std::function<void(Client&)>& peer) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  net::ListenOptions options;
  options.read_size = read_size;
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0, options);
  if (!listener) {
    ADD_FAILURE() << listener.error();
    return std::nullopt;
  }
  Pid reader = rt.spawn(accept_wait_then_read, *listener, inbox.pid());
  Client client(listener->port());
  if (!inbox.receive<Ready>(wait_time)) {
    ADD_FAILURE() << "the connection was never accepted";
    return std::nullopt;
  }
  peer(client);
  rt.send(reader, Go{});
  return inbox.receive<ReadToTheEnd>(wait_time);
}

// The socket sits in epoll edge-triggered: the peer's bytes and its close can come as one
// edge, before the owner arms. The owner must still get every byte, then Closed; nothing
// announces the close a second time. With a read size far below what waits, the reads that
// fill it must go on by themselves too.
TEST(Close, BytesAndTheCloseThatCameBeforeTheFirstArmGiveEveryByteThenClosed) {
  const std::string sent(10'000, 'e');
  for (const std::size_t read_size : {std::size_t{64 * 1024}, std::size_t{1000}}) {
    auto got = read_after_the_peer(read_size, [&](Client& client) {
      EXPECT_TRUE(client.write(sent));
      client.close();
    });
    ASSERT_TRUE(got) << "read size " << read_size << ": no Closed";
    EXPECT_EQ(got->bytes, sent);
    EXPECT_GE(got->data_messages, (sent.size() + read_size - 1) / read_size);
    EXPECT_EQ(got->reason.kind(), coppice::ErrorKind::closed) << got->reason;
  }
}

TEST(Close, BytesAndAResetThatCameBeforeTheFirstArmEndInClosed) {
  auto got = read_after_the_peer(64 * 1024, [](Client& client) {
    EXPECT_TRUE(client.write("before the reset"));
    client.reset();
  });
  ASSERT_TRUE(got) << "no Closed";
  // Linux hands over what came before the reset, or drops it: either way, then the error.
  EXPECT_TRUE(got->bytes.empty() || got->bytes == "before the reset") << got->bytes;
  EXPECT_EQ(got->reason.kind(), coppice::ErrorKind::io_error) << got->reason;
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
