// The shard's commands on its data (see keyspace.hpp).
#include "keyspace.hpp"

#include <charconv>
#include <limits>

#include "resp.hpp"

namespace kv {

namespace {

constexpr std::string_view wrong_type = "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr std::string_view not_integer = "ERR value is not an integer or out of range";

ShardResult error(std::string_view text) {
  ShardResult r;
  resp::append_error(r.reply, text);
  return r;
}
ShardResult integer(long long n) {
  ShardResult r;
  resp::append_integer(r.reply, n);
  r.count = n;
  return r;
}

bool to_integer(std::string_view text, long long& out) {
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

std::string shard_down_reply(std::size_t shard) {
  std::string out;
  resp::append_error(out, "ERR shard " + std::to_string(shard) + " restarting");
  return out;
}

ShardResult Keyspace::execute(ShardOp& op) {
  auto& a = op.args;
  switch (op.op) {
    case Op::get: {
      auto it = keys_.find(a[0]);
      ShardResult r;
      if (it == keys_.end()) {
        resp::append_null(r.reply);
      } else if (auto* s = std::get_if<std::string>(&it->second)) {
        resp::append_bulk(r.reply, *s);
      } else {
        return error(wrong_type);
      }
      return r;
    }
    case Op::set: {
      keys_.insert_or_assign(std::move(a[0]), Value(std::move(a[1])));
      return ShardResult{"+OK\r\n", 0};
    }
    case Op::mset:
      for (std::size_t i = 0; i + 1 < a.size(); i += 2) keys_.insert_or_assign(std::move(a[i]), Value(std::move(a[i + 1])));
      return ShardResult{"+OK\r\n", 0};
    case Op::incr: return add(op, 1);
    case Op::decr: return add(op, -1);
    case Op::incrby: {
      long long delta = 0;
      if (!to_integer(a[1], delta)) return error(not_integer);
      return add(op, delta);
    }
    case Op::lpush: return push(op, true);
    case Op::rpush: return push(op, false);
    case Op::lpop: return pop(op, true);
    case Op::rpop: return pop(op, false);
    case Op::llen: {
      auto it = keys_.find(a[0]);
      if (it == keys_.end()) return integer(0);
      if (auto* l = std::get_if<List>(&it->second)) return integer(static_cast<long long>(l->size()));
      return error(wrong_type);
    }
    case Op::del: {
      long long n = 0;
      for (auto& k : a) n += static_cast<long long>(keys_.erase(k));
      return integer(n);
    }
    case Op::exists: {
      long long n = 0;
      for (auto& k : a) n += static_cast<long long>(keys_.count(k));
      return integer(n);
    }
    case Op::dbsize: return integer(static_cast<long long>(keys_.size()));
    case Op::flushall:
      keys_.clear();
      return ShardResult{"+OK\r\n", 0};
    case Op::crash: return ShardResult{"+OK\r\n", 0};
  }
  return error("ERR unknown shard operation");
}

ShardResult Keyspace::add(ShardOp& op, long long delta) {
  auto [it, inserted] = keys_.try_emplace(op.args[0], Value(std::string("0")));
  auto* s = std::get_if<std::string>(&it->second);
  if (s == nullptr) return error(wrong_type);
  long long value = 0;
  if (!to_integer(*s, value)) {
    if (inserted) keys_.erase(it);
    return error(not_integer);
  }
  if ((delta > 0 && value > std::numeric_limits<long long>::max() - delta) ||
      (delta < 0 && value < std::numeric_limits<long long>::min() - delta))
    return error("ERR increment or decrement would overflow");
  value += delta;
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  s->assign(digits, end);
  return integer(value);
}

ShardResult Keyspace::push(ShardOp& op, bool front) {
  auto [it, inserted] = keys_.try_emplace(op.args[0], Value(List{}));
  auto* l = std::get_if<List>(&it->second);
  if (l == nullptr) return error(wrong_type);
  for (std::size_t i = 1; i < op.args.size(); ++i) {
    if (front) {
      l->push_front(std::move(op.args[i]));
    } else {
      l->push_back(std::move(op.args[i]));
    }
  }
  return integer(static_cast<long long>(l->size()));
}

ShardResult Keyspace::pop(ShardOp& op, bool front) {
  auto it = keys_.find(op.args[0]);
  ShardResult r;
  if (it == keys_.end()) {
    resp::append_null(r.reply);
    return r;
  }
  auto* l = std::get_if<List>(&it->second);
  if (l == nullptr) return error(wrong_type);
  if (front) {
    resp::append_bulk(r.reply, l->front());
    l->pop_front();
  } else {
    resp::append_bulk(r.reply, l->back());
    l->pop_back();
  }
  if (l->empty()) keys_.erase(it);  // Redis deletes a list when its last element goes
  return r;
}

coppice::NoReply Shard::handle_cast(ShardRequest request) {
  ShardReply done{request.sequence, index_, {}};
  auto& ops = request.batch.ops;
  auto& results = done.reply.results;
  results.reserve(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    results.push_back(keyspace_.execute(ops[i]));
    if (ops[i].op == Op::crash) {
      // The ops after the crash in this batch never run: they get what a request to a
      // crashed shard gets. The reply goes before the stop, so DEBUG CRASH is answered.
      for (std::size_t j = i + 1; j < ops.size(); ++j) results.push_back(ShardResult{shard_down_reply(index_), 0});
      coppice::send(request.connection, std::move(done));
      return stop_with(coppice::ExitReason::error("kv::debug_crash", "DEBUG CRASH " + std::to_string(index_)));
    }
  }
  coppice::send(request.connection, std::move(done));
  return {};
}

}  // namespace kv
