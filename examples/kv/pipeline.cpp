// Requests to shard ops and replies back in order (see pipeline.hpp).
#include "pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <coppice/partition_supervisor.hpp>

namespace kv {

namespace {

bool is(std::string_view word, std::string_view lower_name) {
  return word.size() == lower_name.size() &&
         std::equal(word.begin(), word.end(), lower_name.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

std::string lower(std::string_view word) {
  std::string s(word);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string error_reply(std::string_view text) {
  std::string out;
  resp::append_error(out, text);
  return out;
}

// CONFIG GET as Redis 7 answers it for the two parameters redis-benchmark asks about at its
// start (an array of name, value); anything else matches nothing here (an empty array).
std::string config_get(std::string_view parameter) {
  std::string out;
  // This server keeps no snapshot and no append-only file: Redis configured so says this.
  if (is(parameter, "save") || is(parameter, "appendonly")) {
    const bool save = is(parameter, "save");
    resp::append_array_header(out, 2);
    resp::append_bulk(out, save ? "save" : "appendonly");
    resp::append_bulk(out, save ? "" : "no");
  } else {
    resp::append_array_header(out, 0);
  }
  return out;
}

}  // namespace

Pipeline::Pipeline(std::size_t shards) : batches_(shards), in_flight_(shards) {}

std::size_t Pipeline::shard_of(std::string_view key) const {
  return coppice::PartitionSupervisor::partition_for(key, batches_.size());
}

std::uint32_t Pipeline::answer(std::string reply) {
  slots_.push_back(Slot{Kind::reply, std::move(reply), 0});
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

std::uint32_t Pipeline::open(Kind kind) {
  slots_.push_back(Slot{kind, {}, 0});
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

void Pipeline::to_shard(std::size_t shard, Op op, std::uint32_t slot, std::vector<std::string> args) {
  auto& batch = batches_[shard];
  if (batch.empty()) touched_.push_back(shard);
  batch.push_back(ShardOp{op, slot, std::move(args)});
}

void Pipeline::to_every_shard(Op op, Kind kind) {
  const std::uint32_t slot = open(kind);
  for (std::size_t s = 0; s < batches_.size(); ++s) to_shard(s, op, slot, {});
}

void Pipeline::wrong_arguments(std::string_view name) {
  answer(error_reply("ERR wrong number of arguments for '" + lower(name) + "' command"));
}

void Pipeline::add(resp::Command command) {
  if (command.empty()) return;
  const std::string_view name = command[0];
  const std::size_t argc = command.size();
  // One key, the rest as they came: the common shape, in order of how often it is sent.
  auto single = [&](Op op, bool ok) {
    if (!ok) return wrong_arguments(name);
    const std::size_t shard = shard_of(command[1]);
    command.erase(command.begin());
    to_shard(shard, op, open(Kind::reply), std::move(command));
  };
  // Keys spread over shards, each shard given its own keys (with their values, if `pairs`).
  auto spread = [&](Op op, Kind kind, std::size_t stride) {
    const std::uint32_t slot = open(kind);
    std::vector<std::vector<std::string>> parts(batches_.size());
    for (std::size_t i = 1; i + stride - 1 < argc; i += stride) {
      auto& part = parts[shard_of(command[i])];
      for (std::size_t j = 0; j < stride; ++j) part.push_back(std::move(command[i + j]));
    }
    for (std::size_t s = 0; s < parts.size(); ++s)
      if (!parts[s].empty()) to_shard(s, op, slot, std::move(parts[s]));
  };

  if (is(name, "get")) return single(Op::get, argc == 2);
  if (is(name, "set")) {
    if (argc > 3) return (void)answer(error_reply("ERR syntax error"));  // no EX/PX/NX/XX here
    return single(Op::set, argc == 3);
  }
  if (is(name, "incr")) return single(Op::incr, argc == 2);
  if (is(name, "lpush")) return single(Op::lpush, argc >= 3);
  if (is(name, "lpop")) return single(Op::lpop, argc == 2);
  if (is(name, "ping")) {
    if (argc == 1) return (void)answer("+PONG\r\n");
    if (argc != 2) return wrong_arguments(name);
    std::string out;
    resp::append_bulk(out, command[1]);
    return (void)answer(std::move(out));
  }
  if (is(name, "mset")) {
    if (argc < 3 || argc % 2 == 0) return wrong_arguments(name);
    return spread(Op::mset, Kind::ok, 2);
  }
  if (is(name, "rpush")) return single(Op::rpush, argc >= 3);
  if (is(name, "rpop")) return single(Op::rpop, argc == 2);
  if (is(name, "decr")) return single(Op::decr, argc == 2);
  if (is(name, "incrby")) return single(Op::incrby, argc == 3);
  if (is(name, "llen")) return single(Op::llen, argc == 2);
  if (is(name, "del")) return argc < 2 ? wrong_arguments(name) : spread(Op::del, Kind::sum, 1);
  if (is(name, "exists")) return argc < 2 ? wrong_arguments(name) : spread(Op::exists, Kind::sum, 1);
  if (is(name, "dbsize")) return argc != 1 ? wrong_arguments(name) : to_every_shard(Op::dbsize, Kind::sum);
  if (is(name, "flushall") || is(name, "flushdb")) {
    if (argc > 2) return (void)answer(error_reply("ERR syntax error"));  // [ASYNC|SYNC]: always sync here
    return to_every_shard(Op::flushall, Kind::ok);
  }
  if (is(name, "echo")) {
    if (argc != 2) return wrong_arguments(name);
    std::string out;
    resp::append_bulk(out, command[1]);
    return (void)answer(std::move(out));
  }
  if (is(name, "config")) {
    if (argc == 3 && is(command[1], "get")) return (void)answer(config_get(command[2]));
    return (void)answer(error_reply("ERR only CONFIG GET <parameter> is supported"));
  }
  if (is(name, "debug")) {
    std::size_t shard = 0;
    if (argc == 3 && is(command[1], "crash")) {
      const std::string& n = command[2];
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), shard);
      if (ec == std::errc() && end == n.data() + n.size() && shard < batches_.size())
        return to_shard(shard, Op::crash, open(Kind::reply), {});
      return (void)answer(error_reply("ERR no such shard: " + n + " (there are " + std::to_string(batches_.size()) + ")"));
    }
    if (argc == 3 && is(command[1], "shard")) {  // which shard a key lives in: for tests
      std::string out;
      resp::append_integer(out, static_cast<long long>(shard_of(command[2])));
      return (void)answer(std::move(out));
    }
    return (void)answer(error_reply("ERR only DEBUG CRASH <shard> and DEBUG SHARD <key> are supported"));
  }
  if (is(name, "select")) {
    if (argc != 2) return wrong_arguments(name);
    return (void)answer(command[1] == "0" ? std::string("+OK\r\n") : error_reply("ERR DB index is out of range"));
  }
  if (is(name, "command")) return (void)answer("*0\r\n");  // redis-cli's COMMAND DOCS: no docs here
  if (is(name, "quit")) {
    close_ = true;
    return (void)answer("+OK\r\n");
  }
  // Redis 7's words: the name and up to its first arguments, each quoted.
  std::string text = "ERR unknown command '" + std::string(name).substr(0, 128) + "', with args beginning with: ";
  for (std::size_t i = 1; i < argc && text.size() < 256; ++i) text += "'" + command[i].substr(0, 128) + "' ";
  answer(error_reply(text));
}

void Pipeline::add_protocol_error(std::string_view message) {
  answer(error_reply("ERR " + std::string(message)));
  close_ = true;
}

Batch Pipeline::take_batch(std::size_t shard) {
  auto& slots = in_flight_[shard];
  slots.clear();
  for (auto& op : batches_[shard]) slots.push_back(op.slot);
  Batch batch{std::move(batches_[shard])};
  batches_[shard].clear();
  return batch;
}

void Pipeline::complete(std::size_t shard, BatchReply& reply) {
  const auto& slots = in_flight_[shard];
  for (std::size_t i = 0; i < slots.size() && i < reply.results.size(); ++i) {
    Slot& slot = slots_[slots[i]];
    ShardResult& result = reply.results[i];
    if (slot.kind == Kind::reply) {
      slot.reply = std::move(result.reply);
    } else if (!result.reply.empty() && result.reply[0] == '-') {
      if (slot.reply.empty()) slot.reply = std::move(result.reply);
    } else {
      slot.sum += result.count;
    }
  }
}

void Pipeline::fail(std::size_t shard) {
  for (std::uint32_t index : in_flight_[shard]) {
    Slot& slot = slots_[index];
    if (slot.kind == Kind::reply || slot.reply.empty()) slot.reply = shard_down_reply(shard);
  }
}

void Pipeline::write(std::string& out) {
  for (Slot& slot : slots_) {
    if (!slot.reply.empty()) {
      out += slot.reply;  // a whole reply, or the error of a multi-shard request's part
    } else if (slot.kind == Kind::sum) {
      resp::append_integer(out, slot.sum);
    } else {
      out += "+OK\r\n";
    }
  }
  slots_.clear();
  touched_.clear();
  for (auto& slots : in_flight_) slots.clear();
}

}  // namespace kv
