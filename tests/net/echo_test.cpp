// Sockets as processes: a connection's data arrives as messages, one per arming (active once).
#include <gtest/gtest.h>

#include "net/net_support.hpp"

namespace {

using namespace coppice_test;
using coppice::Inbox;
using coppice::Runtime;

TEST(Echo, DataArrivesAsAMessageAndTheOwnerWritesItBack) {
  Runtime rt(workers(2));
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

}  // namespace
