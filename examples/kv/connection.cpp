// The connection process (see connection.hpp).
#include "connection.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <coppice/partition_supervisor.hpp>
#include <coppice/process.hpp>
#include <coppice/signals.hpp>

#include "keyspace.hpp"
#include "pipeline.hpp"
#include "resp.hpp"

namespace kv {

namespace {

using coppice::net::Socket;

// Writes `bytes` whole, or false when the connection is gone. Beyond the socket's high
// watermark (a client that does not read its replies) it waits for the queue to drain
// before writing more: this is what bounds a slow reader's memory here.
// An empty `bytes` waits until nothing is queued.
coppice::Async<bool> write_all(Socket& socket, const std::string& bytes) {
  for (;;) {
    if (bytes.empty() && socket.queued_bytes() == 0) co_return true;
    if (!bytes.empty()) {
      auto taken = socket.send(bytes);
      if (taken) co_return true;  // all taken, or the rest queued (a Sent follows; ignored)
      if (taken.error().kind() != coppice::ErrorKind::would_block) co_return false;
    }
    const auto id = socket.id();
    coppice::Message m = co_await coppice::receive_if([id](const coppice::Message& m) {
      if (auto* s = m.get_if<coppice::net::Sent>()) return s->socket == id;
      if (auto* c = m.get_if<coppice::net::Closed>()) return c->socket == id;
      return false;
    });
    if (m.is<coppice::net::Closed>()) co_return false;
  }
}

}  // namespace

// The shard a connection sends to, as this connection knows it: the pid it monitors (the
// same monitor for every batch, until that pid goes down), and whether a reply is due.
struct ShardWatch {
  coppice::Pid pid;
  coppice::Ref monitor;
  bool waiting = false;
};

coppice::Async<void> serve_connection(Socket socket, ConnectionOptions options) {
  resp::Parser parser;
  Pipeline pipeline(options.partitions);
  resp::Command command;
  std::vector<ShardWatch> shards(options.partitions);
  std::uint64_t sequence = 0;
  std::string out;
  const coppice::Pid me = coppice::self();
  // A shard's monitor fired: forget the pid (the next batch monitors its successor), and
  // answer its batch in flight, if any, with an error. False if the Down is not a shard's.
  auto shard_down = [&](const coppice::Down& down) {
    for (std::size_t s = 0; s < shards.size(); ++s) {
      if (shards[s].monitor != down.ref) continue;
      if (shards[s].waiting) pipeline.fail(s);
      shards[s] = ShardWatch{};
      return true;
    }
    return false;
  };

  if (!socket.set_active_once()) co_return;
  for (;;) {
    coppice::Message m = co_await coppice::receive_any();
    auto* data = m.get_if<coppice::net::Data>();
    if (data == nullptr) {
      if (m.is<coppice::net::Closed>()) co_return;
      if (auto* down = m.get_if<coppice::Down>()) (void)shard_down(*down);
      continue;  // a Sent for a write already complete, or a late ShardReply
    }
    parser.feed(data->bytes);
    for (;;) {
      const auto status = parser.next(command);
      if (status == resp::Parser::Status::command) {
        pipeline.add(std::move(command));
        continue;
      }
      if (status == resp::Parser::Status::error) pipeline.add_protocol_error(parser.error());
      break;
    }
    if (pipeline.empty()) {  // half a request: wait for the rest
      if (!socket.set_active_once()) co_return;
      continue;
    }
    // One cast per shard touched, all in flight at once.
    ++sequence;
    std::size_t waiting = 0;
    for (std::size_t shard : pipeline.touched()) {
      auto pid = coppice::PartitionSupervisor::whereis(options.shards, shard);
      if (!pid) {  // between the shard's crash and its restart
        (void)pipeline.take_batch(shard);
        pipeline.fail(shard);
        continue;
      }
      ShardWatch& watch = shards[shard];
      if (watch.pid != *pid) {  // first use, or a restarted shard: monitor the new pid
        if (watch.monitor) coppice::demonitor(watch.monitor, {.flush = true});
        watch.pid = *pid;
        watch.monitor = coppice::monitor(*pid);
      }
      Shard::cast(*pid, ShardRequest{me, sequence, pipeline.take_batch(shard)});
      watch.waiting = true;
      ++waiting;
    }
    // The next read overlaps the shards' work; its Data waits in the mailbox, after this
    // read's replies, so the order of replies is the order of requests.
    if (!pipeline.close_after_write() && !socket.set_active_once()) co_return;
    while (waiting > 0) {
      auto reply = co_await coppice::receive_if(
          [&](const coppice::Message& r) {
            if (auto* done = r.get_if<ShardReply>()) return done->sequence == sequence;
            return r.is<coppice::Down>();
          },
          options.shard_timeout);
      if (!reply) {  // a shard alive but stuck: answer for it, and drop its reply if it comes
        for (std::size_t s = 0; s < shards.size(); ++s)
          if (shards[s].waiting) pipeline.fail(s), shards[s].waiting = false;
        break;
      }
      if (auto* done = reply->get_if<ShardReply>()) {
        if (!shards[done->shard].waiting) continue;
        pipeline.complete(done->shard, done->reply);
        shards[done->shard].waiting = false;
        --waiting;
      } else {
        const auto& down = reply->get<coppice::Down>();
        for (std::size_t s = 0; s < shards.size(); ++s)
          if (shards[s].monitor == down.ref && shards[s].waiting) --waiting;
        (void)shard_down(down);
      }
    }
    out.clear();
    pipeline.write(out);
    if (!co_await write_all(socket, out)) co_return;
    if (pipeline.close_after_write()) {  // QUIT, or a protocol error answered
      // Closing drops what the kernel has not taken yet: let the last reply go first.
      if (socket.queued_bytes() > 0) (void)co_await write_all(socket, {});
      co_return;
    }
  }
}

}  // namespace kv
