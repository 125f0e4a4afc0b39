// The server's supervision tree: the shards (a PartitionSupervisor of Shard servers) and the
// acceptor pool whose connection processes talk to them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <coppice/pid.hpp>
#include <coppice/result.hpp>
#include <coppice/runtime.hpp>

namespace kv {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the kernel picks one (Server::port says which)
  // Shards. More than the workers lets a batch's shards run in parallel and spreads a hot
  // spot; each shard touched by a read costs that read one request, so not many more.
  std::size_t partitions = 8;
  unsigned acceptors = 4;
  // The shards' restart intensity. A crash every 100 ms is 10 restarts a second; 100 in one
  // second is ten times that, so the tree rides out DEBUG CRASH from several clients at
  // once, while a shard that cannot start (it crashes in init, a restart taking
  // microseconds) still uses it up within the second and escalates, as it should.
  int intensity = 100;
  std::chrono::milliseconds period{1000};
};

struct Server {
  coppice::Pid supervisor;  // the top of the tree: stop it to stop the server
  std::uint16_t port = 0;
};

// Listens and starts the tree (from a plain thread). The name "kv_shards" is registered.
coppice::Result<Server> start(coppice::Runtime& runtime, const ServerOptions& options);

}  // namespace kv
