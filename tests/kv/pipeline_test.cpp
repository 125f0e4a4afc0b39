// A read's worth of requests: answered now or batched per shard, one batch per shard
// touched, replies in request order, a crashed shard's requests answered with an error.
// The shards here are plain Keyspaces (no runtime): the pipeline is the connection's logic.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "keyspace.hpp"
#include "pipeline.hpp"

namespace {

using kv::resp::Command;

// Runs every batch on its shard's keyspace, as the shard servers would, and writes the replies.
std::string run(kv::Pipeline& p, std::vector<kv::Keyspace>& shards, std::vector<std::size_t> down = {}) {
  for (std::size_t s : std::vector<std::size_t>(p.touched())) {
    kv::Batch batch = p.take_batch(s);
    if (std::find(down.begin(), down.end(), s) != down.end()) {
      p.fail(s);
      continue;
    }
    kv::BatchReply reply;
    for (auto& op : batch.ops) reply.results.push_back(shards[s].execute(op));
    p.complete(s, reply);
  }
  std::string out;
  p.write(out);
  return out;
}

std::string one(kv::Pipeline& p, std::vector<kv::Keyspace>& shards, Command c) {
  p.add(std::move(c));
  return run(p, shards);
}

TEST(KvPipeline, TheBenchmarksCommandsGetRedissReplies) {
  kv::Pipeline p(4);
  std::vector<kv::Keyspace> shards(4);
  EXPECT_EQ(one(p, shards, {"PING"}), "+PONG\r\n");
  EXPECT_EQ(one(p, shards, {"ping", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(one(p, shards, {"SET", "a", "1"}), "+OK\r\n");
  EXPECT_EQ(one(p, shards, {"GET", "a"}), "$1\r\n1\r\n");
  EXPECT_EQ(one(p, shards, {"GET", "nothing"}), "$-1\r\n");
  EXPECT_EQ(one(p, shards, {"INCR", "a"}), ":2\r\n");
  EXPECT_EQ(one(p, shards, {"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(one(p, shards, {"LPUSH", "l", "x", "y"}), ":2\r\n");
  EXPECT_EQ(one(p, shards, {"LPOP", "l"}), "$1\r\ny\r\n");
  EXPECT_EQ(one(p, shards, {"LPOP", "l"}), "$1\r\nx\r\n");
  EXPECT_EQ(one(p, shards, {"LPOP", "l"}), "$-1\r\n");
  EXPECT_EQ(one(p, shards, {"MSET", "k1", "v1", "k2", "v2", "k3", "v3", "k4", "v4"}), "+OK\r\n");
  EXPECT_EQ(one(p, shards, {"GET", "k3"}), "$2\r\nv3\r\n");
  EXPECT_EQ(one(p, shards, {"EXISTS", "k1", "k2", "zz", "k1"}), ":3\r\n");
  EXPECT_EQ(one(p, shards, {"DBSIZE"}), ":6\r\n");  // a, n, k1..k4 (the list went when emptied)
  EXPECT_EQ(one(p, shards, {"DEL", "k1", "k2", "zz"}), ":2\r\n");
  EXPECT_EQ(one(p, shards, {"FLUSHALL"}), "+OK\r\n");
  EXPECT_EQ(one(p, shards, {"DBSIZE"}), ":0\r\n");
  EXPECT_EQ(one(p, shards, {"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(one(p, shards, {"CONFIG", "GET", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
}

TEST(KvPipeline, ErrorsAreRedissWords) {
  kv::Pipeline p(2);
  std::vector<kv::Keyspace> shards(2);
  EXPECT_EQ(one(p, shards, {"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(one(p, shards, {"NOPE", "x"}), "-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n");
  one(p, shards, {"LPUSH", "l", "x"});
  EXPECT_EQ(one(p, shards, {"GET", "l"}), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  EXPECT_EQ(one(p, shards, {"INCR", "l"}), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  one(p, shards, {"SET", "s", "abc"});
  EXPECT_EQ(one(p, shards, {"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  one(p, shards, {"SET", "big", "9223372036854775807"});
  EXPECT_EQ(one(p, shards, {"INCR", "big"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(one(p, shards, {"DEBUG", "CRASH", "7"}), "-ERR no such shard: 7 (there are 2)\r\n");
}

TEST(KvPipeline, PipelinedRequestsMakeOneBatchPerShardAndRepliesKeepTheirOrder) {
  const std::size_t n = 4;
  kv::Pipeline p(n);
  std::vector<kv::Keyspace> shards(n);
  std::string expected;
  for (int i = 0; i < 16; ++i) {
    const std::string key = "key" + std::to_string(i);
    p.add({"SET", key, std::to_string(i)});
    p.add({"PING"});
    p.add({"GET", key});
    expected += "+OK\r\n+PONG\r\n$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) + "\r\n";
  }
  EXPECT_LE(p.touched().size(), n);
  EXPECT_EQ(run(p, shards), expected);
  EXPECT_TRUE(p.empty());
}

TEST(KvPipeline, ADownShardsRequestsAreErrorsAndTheOthersAreAnswered) {
  const std::size_t n = 4;
  kv::Pipeline p(n);
  std::vector<kv::Keyspace> shards(n);
  // Two keys on different shards.
  std::string a = "a", b = "b";
  for (int i = 0; p.shard_of(b) == p.shard_of(a); ++i) b = "b" + std::to_string(i);
  const std::size_t down = p.shard_of(a);
  p.add({"SET", a, "1"});
  p.add({"SET", b, "2"});
  p.add({"MSET", a, "1", b, "2"});
  p.add({"EXISTS", b});
  const std::string err = "-ERR shard " + std::to_string(down) + " restarting\r\n";
  EXPECT_EQ(run(p, shards, {down}), err + "+OK\r\n" + err + ":1\r\n");
}

TEST(KvPipeline, AProtocolErrorIsAnsweredLastAndClosesTheConnection) {
  kv::Pipeline p(1);
  std::vector<kv::Keyspace> shards(1);
  p.add({"PING"});
  p.add_protocol_error("Protocol error: invalid bulk length");
  EXPECT_TRUE(p.close_after_write());
  EXPECT_EQ(run(p, shards), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
}

TEST(KvPipeline, DebugCrashGoesToTheNamedShard) {
  kv::Pipeline p(3);
  p.add({"DEBUG", "CRASH", "2"});
  ASSERT_EQ(p.touched(), std::vector<std::size_t>{2});
  kv::Batch b = p.take_batch(2);
  ASSERT_EQ(b.ops.size(), 1u);
  EXPECT_EQ(b.ops[0].op, kv::Op::crash);
}

}  // namespace
