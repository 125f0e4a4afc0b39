// The acceptor pool (ranch's listener): many connections, each its own process, and acceptors
// that come back after a crash.
#include <gtest/gtest.h>

#include "net/net_support.hpp"

namespace {

using namespace coppice_test;
using coppice::ChildInfo;
using coppice::Inbox;
using coppice::Pid;
using coppice::Runtime;
using coppice::Supervisor;

net::ConnectionFactory echo_to(Pid observer) {
  return [observer](net::Socket socket) { return echo(std::move(socket), observer); };
}

Pid child_of(Runtime& rt, Pid sup, const std::string& id) {
  auto children = Supervisor::which_children(rt, sup);
  if (!children) return {};
  for (const ChildInfo& c : *children) {
    if (c.id == id) return c.pid;
  }
  return {};
}

TEST(AcceptorPool, AThousandConnectionsEachEchoInTheirOwnProcess) {
  constexpr int connections = 1000;
  if (raise_open_files(2 * connections + 200) < 2 * connections + 100) GTEST_SKIP() << "ulimit -n too low";
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  auto sup = Supervisor::start(rt, {net::acceptor_pool("pool", *listener, 4, echo_to(inbox.pid()))});
  ASSERT_TRUE(sup) << sup.error();

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < connections; ++i) {
    clients.push_back(std::make_unique<Client>(listener->port()));
    ASSERT_TRUE(clients.back()->connected()) << i;
  }
  for (int i = 0; i < connections; ++i) ASSERT_TRUE(clients[i]->write("ping " + std::to_string(i) + "\n"));
  for (int i = 0; i < connections; ++i) {
    std::string want = "ping " + std::to_string(i) + "\n";
    ASSERT_EQ(clients[i]->read(want.size()), want) << i;
  }
  Pid pool = child_of(rt, *sup, "pool");
  Pid connections_sup = child_of(rt, pool, "connections");
  auto counts = coppice::DynamicSupervisor::count_children(rt, connections_sup);
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->active, static_cast<std::size_t>(connections));
  clients.clear();
  for (int i = 0; i < connections; ++i) ASSERT_TRUE(inbox.receive<EchoEnded>(wait_time)) << i;
}

TEST(AcceptorPool, ACrashedAcceptorIsRestartedAndConnectionsStillComeIn) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  auto sup = Supervisor::start(rt, {net::acceptor_pool("pool", *listener, 2, echo_to(inbox.pid()))});
  ASSERT_TRUE(sup) << sup.error();
  Pid pool = child_of(rt, *sup, "pool");
  for (const char* id : {"acceptor_0", "acceptor_1"}) {
    Pid acceptor = child_of(rt, pool, id);
    ASSERT_TRUE(acceptor);
    inbox.monitor(acceptor);
    rt.exit(acceptor, coppice::ExitReason::kill());
    ASSERT_TRUE(inbox.receive<coppice::Down>(wait_time));
  }
  // Only restarted acceptors can take these: each echo answers through one.
  for (int i = 0; i < 4; ++i) {
    Client client(listener->port());
    ASSERT_TRUE(client.write("again"));
    EXPECT_EQ(client.read(5), "again");
  }
  EXPECT_TRUE(rt.alive(*sup));
}

TEST(AcceptorPool, ConnectionsThatComeAndGoInBurstsAreEachClosedOnce) {
  // Closes and resets race with the poller's reads and writes: each connection must end with
  // exactly one Closed to its process, and nothing may leak (the ASan pass).
  constexpr int rounds = 10;
  constexpr int burst = 50;
  Runtime rt(workers(2));
  Inbox inbox(rt);
  auto listener = net::Listener::listen(rt, "127.0.0.1", 0);
  ASSERT_TRUE(listener) << listener.error();
  auto sup = Supervisor::start(rt, {net::acceptor_pool("pool", *listener, 4, echo_to(inbox.pid()))});
  ASSERT_TRUE(sup) << sup.error();
  std::string payload(4096, 'c');
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < burst; ++i) {
      clients.push_back(std::make_unique<Client>(listener->port()));
      ASSERT_TRUE(clients.back()->write(payload));
    }
    for (int i = 0; i < burst; ++i) {
      // Half read their echo back first; the others leave while it may still be on its way.
      if (i % 2 == 0) {
        ASSERT_EQ(clients[i]->read(payload.size()).size(), payload.size());
        clients[i]->close();
      } else {
        clients[i]->reset();
      }
    }
    for (int i = 0; i < burst; ++i) ASSERT_TRUE(inbox.receive<EchoEnded>(wait_time)) << round << " " << i;
  }
  // One Closed each, and no more: nothing else reached the observer.
  EXPECT_FALSE(inbox.receive<EchoEnded>(std::chrono::milliseconds(0)));
}

}  // namespace
