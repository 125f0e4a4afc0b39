// One shard's part of the keyspace: its data, the operations a connection sends it in a
// batch, and the GenServer that owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <coppice/gen_server.hpp>

namespace kv {

// What a shard can do. The connection has checked the arguments' count; multi-key commands
// (MSET, DEL, EXISTS) and whole-keyspace ones (DBSIZE, FLUSHALL) reach each shard as one
// op holding only that shard's keys, and the connection adds up the parts.
enum class Op : std::uint8_t {
  get, set, incr, decr, incrby, lpush, rpush, lpop, rpop, llen,
  mset,      // args: key value key value ...; part of an MSET
  del,       // args: keys; result.count: how many existed
  exists,    // args: keys (repeats count again, as Redis's); result.count
  dbsize,    // result.count: keys in this shard
  flushall,  // drops this shard's keys
  crash,     // DEBUG CRASH: the shard answers the ops before it, then stops abnormally
};

struct ShardOp {
  Op op;
  std::uint32_t slot;              // the request's place in the connection's reply order
  std::vector<std::string> args;   // without the command's name
};

// An op's outcome: a whole RESP reply, or for the parts of a multi-key command, a count.
struct ShardResult {
  std::string reply;
  long long count = 0;
};

// One read's worth of ops for one shard, and their results.
struct Batch {
  std::vector<ShardOp> ops;
};
struct BatchReply {
  std::vector<ShardResult> results;  // one per op, in order
};

// What a connection casts to a shard, and what the shard sends back. A cast and a plain
// reply, not a call: a call (send_request) would also monitor the shard and make an alias
// for every request; the connection instead monitors each shard once, for as long as the
// shard's pid stays the same, and matches a reply by its sequence number.
struct ShardRequest {
  coppice::Pid connection;
  std::uint64_t sequence;
  Batch batch;
};
struct ShardReply {
  std::uint64_t sequence;
  std::size_t shard;
  BatchReply reply;
};

// The data: strings and lists, as Redis keeps them. Plain data, tested without a runtime.
class Keyspace {
 public:
  ShardResult execute(ShardOp& op);
  std::size_t size() const { return keys_.size(); }

 private:
  using List = std::deque<std::string>;
  using Value = std::variant<std::string, List>;
  ShardResult add(ShardOp& op, long long delta);
  ShardResult push(ShardOp& op, bool front);
  ShardResult pop(ShardOp& op, bool front);
  std::unordered_map<std::string, Value> keys_;
};

// A shard: one GenServer per partition of the PartitionSupervisor, its index given by
// with_arguments. It takes ShardRequests and answers each with one ShardReply.
class Shard : public coppice::GenServer<Shard> {
 public:
  using casts = coppice::Protocol<ShardRequest>;
  explicit Shard(std::size_t index) : index_(index) {}
  coppice::NoReply handle_cast(ShardRequest request);

 private:
  std::size_t index_;
  Keyspace keyspace_;
};

// "-ERR shard N restarting\r\n": the reply to a request whose shard is down.
std::string shard_down_reply(std::size_t shard);

}  // namespace kv
