// Flow control both ways: a slow owner bounds what the runtime reads; a full kernel buffer
// queues a write, refuses more past the high watermark, and says Sent when it drains.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstring>

#include "net/net_support.hpp"

namespace {

using namespace coppice_test;
using coppice::Async;
using coppice::Inbox;
using coppice::Message;
using coppice::Pid;
using coppice::Runtime;

struct GotData {
  std::size_t bytes;
};
struct Release {};

// Accepts, arms once, reports the one Data, and never arms again until told to go.
Async<void> slow_reader(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Socket socket = (co_await coppice::receive<net::Accepted>()).socket;
  (void)socket.set_active_once();
  net::Data d = co_await coppice::receive<net::Data>();
  coppice::send(observer, GotData{d.bytes.size()});
  co_await coppice::receive<Release>();
}

TEST(FlowControl, AnOwnerThatNeverRearmsHoldsOneReadAndThePeerIsStoppedByTheKernel) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  net::ListenOptions options;
  options.read_size = 16 * 1024;
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0, options);
  ASSERT_TRUE(listener) << listener.error();
  Pid reader = rt.spawn(slow_reader, *listener, inbox.pid());

  Client client(listener->port());
  ASSERT_TRUE(client.connected());
  // The peer writes up to 100 MB without blocking; once the kernel's buffers are full and stay
  // full (the owner reads nothing more), it stops.
  constexpr std::size_t limit = std::size_t{100} << 20;
  std::string chunk(64 * 1024, 'x');
  std::size_t written = 0;
  while (written < limit) {
    ssize_t n = ::send(client.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    pollfd p{client.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 200) == 0) break;  // nobody drains the connection: the peer is held back
  }
  auto got = inbox.receive<GotData>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_LE(got->bytes, options.read_size);
  EXPECT_LT(written, limit);  // the kernel's buffers, a few MB at most
  net::PollerStats stats = net::poller_stats(rt);
  EXPECT_EQ(stats.data_messages, 1u);
  EXPECT_LE(stats.bytes_read, options.read_size);  // all the runtime ever took from the kernel
  rt.send(reader, Release{});
}

struct WriteResult {
  std::size_t taken;
  std::size_t queued;
  std::optional<coppice::Error> second;
  std::size_t sent;
};
struct Drain {
  std::size_t bytes;
};
struct Drained {};

// The peer that reads nothing until told to drain `bytes`.
Async<void> lazy_peer(net::Listener listener, Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Socket socket = (co_await coppice::receive<net::Accepted>()).socket;
  Drain drain = co_await coppice::receive<Drain>();
  std::size_t got = 0;
  while (got < drain.bytes) {
    (void)socket.set_active_once();
    Message m = co_await coppice::receive_any();
    if (auto* d = m.get_if<net::Data>()) got += d->bytes.size();
    if (m.is<net::Closed>()) break;
  }
  coppice::send(observer, Drained{});
  co_await coppice::receive<Release>();
}

// Connects, writes 8 MB at once, tries one more byte, and waits for Sent.
Async<void> big_writer(std::uint16_t port, Pid peer, Pid observer) {
  auto socket = net::connect("127.0.0.1", port);
  if (!socket) co_return;
  constexpr std::size_t total = 8u << 20;
  std::string bytes(total, 'y');
  WriteResult r{};
  r.taken = socket->send(bytes).value();
  r.queued = socket->queued_bytes();
  auto second = socket->send("z");
  if (!second) r.second = second.error();
  coppice::send(peer, Drain{total});
  net::Sent sent = co_await coppice::receive<net::Sent>();
  r.sent = sent.bytes;
  coppice::send(observer, r);
  co_await coppice::receive<Release>();
}

TEST(FlowControl, AWriteTheKernelCannotTakeIsQueuedAndSentFollowsWhenItDrains) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  Pid peer = rt.spawn(lazy_peer, *listener, inbox.pid());
  Pid writer = rt.spawn(big_writer, listener->port(), peer, inbox.pid());

  auto r = inbox.receive<WriteResult>(wait_time);
  ASSERT_TRUE(r);
  EXPECT_LT(r->taken, 8u << 20);
  EXPECT_EQ(r->taken + r->queued, 8u << 20);
  ASSERT_TRUE(r->second);  // 1 byte more is past the high watermark (1 MB) with MBs queued
  EXPECT_EQ(r->second->kind(), coppice::ErrorKind::would_block);
  EXPECT_EQ(r->sent, r->queued);
  EXPECT_TRUE(inbox.receive<Drained>(wait_time));
  rt.send(peer, Release{});
  rt.send(writer, Release{});
}

}  // namespace
