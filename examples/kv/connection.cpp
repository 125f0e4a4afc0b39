// The connection process (see connection.hpp).
#include "connection.hpp"

#include <string>
#include <utility>
#include <vector>

#include <coppice/partition_supervisor.hpp>
#include <coppice/process.hpp>

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

coppice::Async<void> serve_connection(Socket socket, ConnectionOptions options) {
  resp::Parser parser;
  Pipeline pipeline(options.partitions);
  resp::Command command;
  std::vector<std::pair<std::size_t, coppice::RequestId>> requests;
  std::string out;
  if (!socket.set_active_once()) co_return;
  for (;;) {
    coppice::Message m = co_await coppice::receive_any();
    auto* data = m.get_if<coppice::net::Data>();
    if (data == nullptr) {
      if (m.is<coppice::net::Closed>()) co_return;
      continue;  // a Sent for a write already complete, or a stray message
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
    // One request per shard touched, all in flight at once; each monitors its shard, so a
    // crash answers its batch with an error instead of leaving the connection waiting.
    for (std::size_t shard : pipeline.touched()) {
      auto pid = coppice::PartitionSupervisor::whereis(options.shards, shard);
      if (!pid) {  // between the shard's crash and its restart
        (void)pipeline.take_batch(shard);
        pipeline.fail(shard);
        continue;
      }
      requests.emplace_back(shard, coppice::send_request(*pid, pipeline.take_batch(shard)));
    }
    // The next read overlaps the shards' work; its Data waits in the mailbox, after this
    // read's replies, so the order of replies is the order of requests.
    if (!pipeline.close_after_write() && !socket.set_active_once()) co_return;
    for (auto& [shard, id] : requests) {
      auto reply = co_await coppice::receive_response<BatchReply>(id, options.shard_timeout);
      if (reply) {
        pipeline.complete(shard, *reply);
      } else {
        pipeline.fail(shard);
      }
    }
    requests.clear();
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
