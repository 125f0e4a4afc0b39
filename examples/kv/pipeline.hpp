// One read's worth of requests on a connection: each answered at once or turned into shard
// ops (one batch per shard touched), and the replies written back in request order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keyspace.hpp"
#include "resp.hpp"

namespace kv {

class Pipeline {
 public:
  explicit Pipeline(std::size_t shards);

  std::size_t shards() const { return batches_.size(); }
  // The shard a key lives in (a hash of the key, as PartitionSupervisor routes).
  std::size_t shard_of(std::string_view key) const;

  // Takes one request: answers it now (PING, CONFIG GET, errors...) or adds its op(s) to
  // the batches of the shards it touches. QUIT marks the connection to close after the write.
  void add(resp::Command command);
  // A protocol error ends the stream: its reply goes last, and the connection closes.
  void add_protocol_error(std::string_view message);
  bool close_after_write() const { return close_; }
  bool empty() const { return slots_.empty(); }

  // The shards with ops waiting, and each one's batch (moved out: call once per shard).
  const std::vector<std::size_t>& touched() const { return touched_; }
  Batch take_batch(std::size_t shard);
  // A shard's answer to its batch, or its failure (every op of it answers "shard N restarting").
  void complete(std::size_t shard, BatchReply& reply);
  void fail(std::size_t shard);

  // Appends every reply, in request order, and starts the next read's worth.
  void write(std::string& out);

 private:
  enum class Kind : std::uint8_t { reply, sum, ok };
  struct Slot {
    Kind kind = Kind::reply;
    std::string reply;   // reply: the whole RESP reply; sum/ok: an error if a part failed
    long long sum = 0;   // sum: the parts' counts added
  };
  std::uint32_t answer(std::string reply);
  std::uint32_t open(Kind kind);
  void to_shard(std::size_t shard, Op op, std::uint32_t slot, std::vector<std::string> args);
  void to_every_shard(Op op, Kind kind);
  void wrong_arguments(std::string_view name);

  std::vector<Slot> slots_;
  std::vector<std::vector<ShardOp>> batches_;          // per shard
  std::vector<std::vector<std::uint32_t>> in_flight_;  // per shard: the slots of its batch's ops
  std::vector<std::size_t> touched_;
  bool close_ = false;
};

}  // namespace kv
