// A client's connection: a process that owns its socket, reads requests under active-once
// flow control, sends each read's requests to the shards as one batch per shard, and
// writes the replies back in request order with one send.
#pragma once

#include <chrono>
#include <cstddef>

#include <coppice/async.hpp>
#include <coppice/net.hpp>
#include <coppice/pid.hpp>

namespace kv {

struct ConnectionOptions {
  coppice::Pid shards;     // the shards' PartitionSupervisor
  std::size_t partitions;  // how many shards it has
  // A shard that is alive but does not answer a batch in this time (it is stuck, or
  // suspended with sys): the batch's requests are answered with an error instead. A shard
  // that dies is noticed at once, through the request's monitor, whatever this says.
  std::chrono::milliseconds shard_timeout{10000};
};

// The connection process's body (a net::ConnectionFactory once bound to its options).
coppice::Async<void> serve_connection(coppice::net::Socket socket, ConnectionOptions options);

}  // namespace kv
