// Ranch's listener for coppice: a supervisor of a connection supervisor and N acceptors.
#include <memory>
#include <utility>
#include <vector>

#include "coppice/dynamic_supervisor.hpp"
#include "coppice/net.hpp"
#include "coppice/process.hpp"
#include "coppice/supervisor.hpp"

namespace coppice::net {

namespace {

using Factory = std::shared_ptr<const ConnectionFactory>;

// The connection process: owns the socket from its first instruction, then runs the user's body.
Async<void> connection_body(std::shared_ptr<Socket> handed, Factory factory) {
  Socket socket = std::move(*handed);
  handed.reset();
  (void)socket.set_owner(self());
  co_await (*factory)(std::move(socket));
}

// A start function for the connection supervisor (a coroutine with its arguments by value:
// its frame, not the spec, keeps them).
Async<Result<Pid>> start_connection(std::shared_ptr<Socket> handed, Factory factory) {
  co_return spawn_link(connection_body, std::move(handed), std::move(factory));
}

Async<void> acceptor_body(Pid pool, Listener listener, Factory factory) {
  // The connection supervisor is the pool's first child; rest_for_one restarts the acceptors
  // when it restarts, so this pid stays right for the acceptor's life.
  Pid connections;
  auto children = co_await Supervisor::which_children(pool);
  if (children) {
    for (const ChildInfo& c : *children) {
      if (c.id == "connections") connections = c.pid;
    }
  }
  if (!connections) exit(ExitReason::other("acceptor: the pool has no connection supervisor"));
  for (;;) {
    Status waiting = listener.accept_once();
    if (!waiting) {
      if (waiting.error() == ErrorKind::closed) co_return;  // the listener was closed: done
      exit(ExitReason::other("acceptor: " + waiting.error().to_string()));
    }
    Accepted accepted = co_await receive<Accepted>();
    ChildSpec spec;
    spec.id = "connection";
    spec.restart = Restart::temporary;
    spec.start = [handed = std::make_shared<Socket>(std::move(accepted.socket)), factory](const StartArgs&) {
      return start_connection(handed, factory);
    };
    // max_children (or a failed start): the socket closes with the spec.
    (void)co_await DynamicSupervisor::start_child(connections, std::move(spec));
  }
}

Async<Result<Pid>> start_acceptor(Pid pool, Listener listener, Factory factory) {
  co_return spawn_link(acceptor_body, pool, std::move(listener), std::move(factory));
}

}  // namespace

ChildSpec acceptor_pool(std::string id, Listener listener, AcceptorPoolOptions options, ConnectionFactory make_connection) {
  auto factory = std::make_shared<const ConnectionFactory>(std::move(make_connection));
  std::vector<ChildSpec> children;
  DynamicSupervisorOptions connection_options;
  connection_options.max_children = options.max_connections;
  children.push_back(DynamicSupervisor::child_spec("connections", std::move(connection_options)));
  for (unsigned i = 0; i < options.acceptors; ++i) {
    ChildSpec acceptor;
    acceptor.id = "acceptor_" + std::to_string(i);
    // transient: an acceptor whose listener was closed ends normally and stays down.
    acceptor.restart = Restart::transient;
    acceptor.shutdown = Shutdown::brutal_kill();
    acceptor.start = [listener, factory](const StartArgs&) { return start_acceptor(self(), listener, factory); };
    children.push_back(std::move(acceptor));
  }
  return Supervisor::child_spec(std::move(id), std::move(children), {.strategy = Strategy::rest_for_one});
}

ChildSpec acceptor_pool(std::string id, Listener listener, unsigned acceptors, ConnectionFactory make_connection) {
  AcceptorPoolOptions options;
  options.acceptors = acceptors;
  return acceptor_pool(std::move(id), std::move(listener), options, std::move(make_connection));
}

}  // namespace coppice::net
