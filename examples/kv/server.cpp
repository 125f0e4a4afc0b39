// The server's tree (see server.hpp).
#include "server.hpp"

#include <coppice/net.hpp>
#include <coppice/partition_supervisor.hpp>
#include <coppice/process.hpp>
#include <coppice/supervisor.hpp>

#include "connection.hpp"
#include "keyspace.hpp"

namespace kv {

namespace {
constexpr const char* shards_name = "kv_shards";
}

coppice::Result<Server> start(coppice::Runtime& runtime, const ServerOptions& options) {
  auto listener = coppice::net::Listener::listen(runtime, options.host, options.port);
  if (!listener) return listener.error();
  const std::uint16_t port = listener->port();

  coppice::PartitionSupervisorOptions shards;
  shards.child = coppice::child<Shard>("shard", std::size_t{0});
  shards.with_arguments = [](coppice::ChildSpec, std::size_t i) { return coppice::child<Shard>("shard", i); };
  shards.partitions = options.partitions;
  shards.name = shards_name;
  shards.intensity = options.intensity;
  shards.period = options.period;

  // Each connection looks the shards' supervisor up once, as it starts. rest_for_one: if the
  // shards' supervisor itself gives up and is restarted (a new pid), the pool and its
  // connections restart after it, so no connection keeps the old pid.
  const std::size_t partitions = options.partitions;
  auto connection = [partitions](coppice::net::Socket socket) -> coppice::Async<void> {
    ConnectionOptions o;
    o.shards = coppice::whereis(shards_name);
    o.partitions = partitions;
    return serve_connection(std::move(socket), o);
  };
  std::vector<coppice::ChildSpec> children{
      coppice::PartitionSupervisor::child_spec("shards", std::move(shards)),
      coppice::net::acceptor_pool("connections", *listener, options.acceptors, connection),
  };
  coppice::SupervisorFlags flags;
  flags.strategy = coppice::Strategy::rest_for_one;
  auto top = coppice::Supervisor::start(runtime, std::move(children), flags);
  if (!top) return top.error();
  return Server{*top, port};
}

}  // namespace kv
