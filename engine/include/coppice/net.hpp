// Sockets as processes (OTP's gen_tcp with {active, once}, ranch's acceptor pool): TCP
// listeners and connections owned by processes, data arriving as messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"

namespace coppice {
class Runtime;
}

namespace coppice::net {

namespace detail {
struct SocketState;
struct ListenerState;
class Poller;
}  // namespace detail

// Names a socket in messages: stable for the socket's life, never reused in a runtime.
struct SocketId {
  std::uint64_t bits = 0;
  friend bool operator==(SocketId, SocketId) = default;
  explicit operator bool() const { return bits != 0; }
};

// ---- What a socket's owner receives (plain messages, matched by type) ---------------------

// Bytes read from the peer (at most read_size): one per set_active_once, then disarmed.
struct Data {
  SocketId socket;
  std::string bytes;
};
// The peer closed (ErrorKind::closed) or the connection failed (io_error, with errno's text).
// Sent instead of a Data to an armed socket; nothing follows it.
struct Closed {
  SocketId socket;
  Error reason;
};
// A write that send() had to queue has been taken whole by the kernel: `bytes` were queued.
struct Sent {
  SocketId socket;
  std::size_t bytes;
};

struct ListenOptions {
  int backlog = 1024;
  std::size_t high_watermark = std::size_t{1} << 20;  // bytes send() may queue before would_block
  std::size_t read_size = 64 * 1024;  // at most this many bytes per Data: what a slow owner holds
  bool no_delay = true;               // TCP_NODELAY on accepted sockets: request/response traffic
};
struct ConnectOptions {
  std::size_t high_watermark = std::size_t{1} << 20;
  std::size_t read_size = 64 * 1024;
  bool no_delay = true;
};

// A connection. A move-only handle that owns the connection: destroying it closes it, so a
// process that dies closes its sockets (its frame or object is destroyed), and a socket in a
// message that is never received closes when the message is freed. A handle may be used
// from any thread (one at a time, as any object); send and set_active_once are meant for the
// owner.
class Socket {
 public:
  Socket() = default;
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  explicit operator bool() const { return state_ != nullptr; }
  SocketId id() const;
  Pid owner() const;
  // Where Data, Closed and Sent go from now on (OTP's controlling_process).
  Status set_owner(Pid owner);
  // {active, once}: at most one Data (or Closed) reaches the owner, then the socket waits to
  // be armed again. No system call, unless bytes (or the peer's close) came while it was not
  // armed: then it reads them here, at once, and the Data (or Closed) is in the owner's
  // mailbox when this returns. Arming an armed socket changes nothing. Errors: closed
  // (closed here, or Closed was already delivered).
  Status set_active_once();
  // Never blocks. Writes what the kernel takes now and queues the rest (a Sent follows when
  // the queue has drained); the result is the bytes taken at once (all of them: no Sent).
  // While bytes are queued, a send is appended to the queue, unless the queue would pass
  // high_watermark: then would_block and nothing is queued (wait for Sent). A peer that has
  // gone: io_error (EPIPE, ECONNRESET); a closed socket: closed.
  Result<std::size_t> send(std::string_view bytes);
  // Closes the connection (idempotent). Bytes still queued are dropped.
  void close();

  std::uint16_t local_port() const;
  std::uint16_t peer_port() const;
  std::size_t queued_bytes() const;  // written by send() and not yet taken by the kernel

 private:
  friend class detail::Poller;
  explicit Socket(std::shared_ptr<detail::SocketState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::SocketState> state_;
};

// The answer to Listener::accept_once: a new connection, owned by the acceptor, not armed.
struct Accepted {
  Socket socket;
};

// A listening socket. A shared handle: copies name the same listener (give one to each
// acceptor of a pool); it closes when the last copy goes, or with close().
class Listener {
 public:
  // Binds and listens on host (an IPv4 address such as "127.0.0.1"; "" or "0.0.0.0": any)
  // and port (0: the kernel picks one; port() says which). SO_REUSEADDR is set.
  static Result<Listener> listen(Runtime& runtime, std::string_view host, std::uint16_t port,
                                 ListenOptions options = {});
  // Inside a process: listens in the running process's runtime.
  static Result<Listener> listen(std::string_view host, std::uint16_t port, ListenOptions options = {});

  Listener() = default;
  std::uint16_t port() const;
  // From a process: the next connection accepted is sent to the calling process as Accepted
  // (owned by it, not armed). Several processes may wait on one listener (a pool): each
  // connection goes to one of them, in the order they asked. One Accepted per call. A waiter
  // that has died when its connection comes is skipped. Errors: not_in_process, closed.
  Status accept_once();
  // Stops listening now, for every copy; waiting acceptors get nothing more.
  void close();
  explicit operator bool() const { return state_ != nullptr; }

 private:
  std::shared_ptr<detail::ListenerState> state_;
};

// Connects to host:port (IPv4) and returns the connection, owned by the calling process (or
// by nobody from a plain thread: set_owner before arming). The connect itself blocks the
// caller until the kernel answers (immediate on loopback); meant for tests and clients.
Result<Socket> connect(Runtime& runtime, std::string_view host, std::uint16_t port, ConnectOptions options = {});
Result<Socket> connect(std::string_view host, std::uint16_t port, ConnectOptions options = {});

// The body of a connection process, as ranch's protocol: it runs in a new process that
// already owns the socket (not armed yet); the connection closes when it returns or dies.
using ConnectionFactory = std::function<Async<void>(Socket)>;

struct AcceptorPoolOptions {
  unsigned acceptors = 10;
  std::optional<std::size_t> max_connections;  // the connection supervisor's max_children
};

// Ranch's listener: a supervisor (rest_for_one) of a connection supervisor (a
// DynamicSupervisor whose children are temporary) and `acceptors` acceptor processes that
// loop on accept_once and start `make_connection` under the connection supervisor for each
// connection. A crashed acceptor is restarted; a crashed connection is not. Stopping the
// pool stops its connections.
ChildSpec acceptor_pool(std::string id, Listener listener, AcceptorPoolOptions options, ConnectionFactory make_connection);
ChildSpec acceptor_pool(std::string id, Listener listener, unsigned acceptors, ConnectionFactory make_connection);

// The runtime's poller in figures, for tests and benchmarks (starts the poller if none runs).
struct PollerStats {
  std::size_t sockets = 0;        // sockets and listeners watched now
  std::size_t bytes_read = 0;     // read from the kernel so far, all of it handed out as Data
  std::size_t data_messages = 0;  // Data sent so far
};
PollerStats poller_stats(Runtime& runtime);

}  // namespace coppice::net
