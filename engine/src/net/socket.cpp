// coppice::net's handles: Socket (a connection), Listener, connect, and the poller's figures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "coppice/net.hpp"
#include "coppice/process.hpp"
#include "coppice/runtime.hpp"
#include "net/poller.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::net {

using detail::Poller;
using detail::SocketState;

namespace {

Error io_error(const char* what, int err) {
  return Error(ErrorKind::io_error, std::string(what) + ": " + std::strerror(err));
}
Error closed_error(const char* what) { return Error(ErrorKind::closed, std::string(what) + ": the socket is closed"); }

Result<sockaddr_in> ipv4(std::string_view host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  std::string h(host.empty() ? "0.0.0.0" : host);
  if (h == "localhost") h = "127.0.0.1";
  if (::inet_pton(AF_INET, h.c_str(), &a.sin_addr) != 1) {
    return Error(ErrorKind::invalid_argument, "not an IPv4 address: '" + h + "'");
  }
  return a;
}

std::uint16_t port_of(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
               : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return r == 0 ? ntohs(a.sin_port) : 0;
}

std::shared_ptr<Poller> poller_or_error(coppice::detail::RuntimeCore& core, Error& error) {
  auto poller = Poller::of(core);
  if (!poller) {
    error = Error(ErrorKind::runtime_stopped,
                  "no new sockets: the runtime is stopping (or its workers could not be given the epoll set)");
  }
  return poller;
}

}  // namespace

// ---- Socket -------------------------------------------------------------------------------

Socket::Socket(Socket&&) noexcept = default;
Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    state_ = std::move(other.state_);
  }
  return *this;
}
Socket::~Socket() { close(); }

SocketId Socket::id() const { return state_ ? state_->id : SocketId{}; }
Pid Socket::owner() const { return state_ ? Pid::from_bits(state_->owner.load(std::memory_order_relaxed)) : Pid{}; }

Status Socket::set_owner(Pid owner) {
  if (!state_) return closed_error("set_owner");
  state_->owner.store(owner.bits(), std::memory_order_relaxed);
  return {};
}

Status Socket::set_active_once() {
  if (!state_) return closed_error("set_active_once");
  std::lock_guard lock(state_->mutex);
  if (state_->closed || state_->ended) return closed_error("set_active_once");
  if (state_->read_armed) return {};
  if (state_->readable) {
    // Bytes came while we were not armed: read them now, here (see poller.cpp).
    state_->poller->read_now(*state_);
    return {};
  }
  state_->read_armed = true;
  return {};
}

Result<std::size_t> Socket::send(std::string_view bytes) {
  if (!state_) return closed_error("send");
  SocketState& s = *state_;
  std::lock_guard lock(s.mutex);
  if (s.closed) return closed_error("send");
  const std::size_t queued = s.out.size() - s.out_offset;
  if (queued != 0) {
    // Behind queued bytes: append, to keep the order, up to the high watermark.
    if (queued + bytes.size() > s.high_watermark) {
      return Error(ErrorKind::would_block, "send: " + std::to_string(queued) + " bytes queued already (high watermark " +
                                               std::to_string(s.high_watermark) + "): wait for Sent");
    }
    s.out.append(bytes);
    s.out_total += bytes.size();
    return std::size_t{0};
  }
  std::size_t taken = 0;
  while (taken < bytes.size()) {
    ssize_t w = ::send(s.fd, bytes.data() + taken, bytes.size() - taken, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      taken += static_cast<std::size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return io_error("send", errno);
    }
  }
  if (taken == bytes.size()) return taken;
  // The kernel's buffer is full: queue the rest (whole, whatever its size: the watermark
  // refuses only later sends) and ask epoll for writability.
  if (s.out_offset != 0) {
    s.out.clear();
    s.out_offset = 0;
  }
  s.out.assign(bytes.substr(taken));
  s.out_total = s.out.size();
  // No re-arming: the fd is in epoll for writes, edge-triggered; the space the kernel frees
  // comes as an EPOLLOUT edge, handled by the poller once we release the mutex.
  return taken;
}

void Socket::close() {
  if (!state_) return;
  std::shared_ptr<SocketState> s = std::move(state_);
  {
    std::lock_guard lock(s->mutex);
    if (s->closed) return;
    s->closed = true;
    s->read_armed = false;
    s->out.clear();
    s->out_offset = 0;
  }
  s->poller->retire(*s);
}

std::uint16_t Socket::local_port() const { return state_ ? port_of(state_->fd, false) : 0; }
std::uint16_t Socket::peer_port() const { return state_ ? port_of(state_->fd, true) : 0; }
std::size_t Socket::queued_bytes() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->out.size() - state_->out_offset;
}

// ---- connect ------------------------------------------------------------------------------

namespace {

Result<Socket> connect_in(coppice::detail::RuntimeCore& core, std::string_view host, std::uint16_t port,
                          const ConnectOptions& options) {
  Error error(ErrorKind::runtime_stopped, {});
  auto poller = poller_or_error(core, error);
  if (!poller) return error;
  auto address = ipv4(host, port);
  if (!address) return address.error();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error("socket", errno);
  int r;
  do {
    r = ::connect(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_in));
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    int err = errno;
    ::close(fd);
    return io_error("connect", err);
  }
  if (options.no_delay) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto state = std::make_shared<SocketState>(fd, poller, poller->next_id(), options.read_size, options.high_watermark);
  state->owner.store(self().bits(), std::memory_order_relaxed);
  if (!poller->add(state)) return Error(ErrorKind::runtime_stopped, "the runtime is stopping: no new sockets");
  return poller->make_socket(std::move(state));
}

}  // namespace

Result<Socket> connect(Runtime& runtime, std::string_view host, std::uint16_t port, ConnectOptions options) {
  return connect_in(coppice::detail::core_of(runtime), host, port, options);
}

Result<Socket> connect(std::string_view host, std::uint16_t port, ConnectOptions options) {
  coppice::detail::RuntimeCore* core = coppice::detail::current_core_or_null();
  if (core == nullptr) return Error(ErrorKind::not_in_process, "net::connect: outside a process, pass the Runtime");
  return connect_in(*core, host, port, options);
}

// ---- Listener -----------------------------------------------------------------------------

namespace {

Result<Listener> listen_in(coppice::detail::RuntimeCore& core, std::string_view host, std::uint16_t port,
                           const ListenOptions& options, std::shared_ptr<detail::ListenerState>& out) {
  Error error(ErrorKind::runtime_stopped, {});
  auto poller = poller_or_error(core, error);
  if (!poller) return error;
  auto address = ipv4(host, port);
  if (!address) return address.error();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error("socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_in)) != 0 ||
      ::listen(fd, options.backlog) != 0) {
    int err = errno;
    ::close(fd);
    return io_error("listen", err);
  }
  out = std::make_shared<detail::ListenerState>(fd, poller, options, port_of(fd, false));
  if (!poller->add(out)) return Error(ErrorKind::runtime_stopped, "the runtime is stopping: no new sockets");
  return Listener();
}

}  // namespace

Result<Listener> Listener::listen(Runtime& runtime, std::string_view host, std::uint16_t port, ListenOptions options) {
  std::shared_ptr<detail::ListenerState> state;
  auto r = listen_in(coppice::detail::core_of(runtime), host, port, options, state);
  if (!r) return r;
  Listener l;
  l.state_ = std::shared_ptr<detail::ListenerState>(state.get(), [state](detail::ListenerState*) mutable {
    // The last copy of the handle: stop listening.
    state->poller->retire(*state);
    state.reset();
  });
  return l;
}

Result<Listener> Listener::listen(std::string_view host, std::uint16_t port, ListenOptions options) {
  coppice::detail::RuntimeCore* core = coppice::detail::current_core_or_null();
  if (core == nullptr) return Error(ErrorKind::not_in_process, "Listener::listen: outside a process, pass the Runtime");
  std::shared_ptr<detail::ListenerState> state;
  auto r = listen_in(*core, host, port, options, state);
  if (!r) return r;
  Listener l;
  l.state_ = std::shared_ptr<detail::ListenerState>(state.get(), [state](detail::ListenerState*) mutable {
    state->poller->retire(*state);
    state.reset();
  });
  return l;
}

std::uint16_t Listener::port() const { return state_ ? state_->port : 0; }

Status Listener::accept_once() {
  if (!state_) return closed_error("accept_once");
  Pid me = self();
  if (!me) return Error(ErrorKind::not_in_process, "accept_once: the Accepted goes to a process; call it from one");
  detail::ListenerState& l = *state_;
  std::lock_guard lock(l.mutex);
  if (l.closed) return closed_error("accept_once");
  l.waiters.push_back(me);
  if (!l.armed) {
    l.armed = true;
    l.poller->arm_listener(l);
  }
  return {};
}

void Listener::close() {
  if (!state_) return;
  std::lock_guard lock(state_->mutex);
  if (state_->closed) return;
  state_->closed = true;
  state_->waiters.clear();
  // The fd stays open (no new connections are taken) until the last copy goes.
  ::shutdown(state_->fd, SHUT_RD);
}

PollerStats poller_stats(Runtime& runtime) {
  auto poller = Poller::of(coppice::detail::core_of(runtime));
  return poller ? poller->stats() : PollerStats{};
}

}  // namespace coppice::net
