// What the socket tests share: a plain blocking client for the test thread, and an echo body.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "coppice/coppice.hpp"
#include "coppice/net.hpp"
#include "runtime/support.hpp"

namespace coppice_test {

namespace net = coppice::net;

// A blocking loopback client for the test's own thread; every read gives up after wait_time,
// so a failing test ends instead of hanging.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{static_cast<time_t>(wait_time.count() / 1000), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Exactly n bytes, or what came before the peer closed or wait_time passed.
  std::string read(std::size_t n) {
    std::string out;
    char buffer[65536];
    while (out.size() < n) {
      ssize_t r = ::recv(fd_, buffer, std::min(sizeof buffer, n - out.size()), 0);
      if (r <= 0) break;
      out.append(buffer, static_cast<std::size_t>(r));
    }
    return out;
  }
  // True when the peer has closed: a read returns 0 (or a reset) before wait_time.
  bool peer_closed() {
    char c;
    ssize_t r = ::recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }
  // Closes with a reset (SO_LINGER 0): the peer sees ECONNRESET, not an orderly close.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The soft limit on open files raised to `wanted` (up to the hard limit); the limit now.
inline rlim_t raise_open_files(rlim_t wanted) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < wanted) {
    r.rlim_cur = std::min(wanted, r.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &r);
    ::getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

// What an echo connection tells its observer when it ends.
struct EchoEnded {
  net::SocketId socket;
  coppice::Error reason;
};

// A connection that writes back what it reads until the peer closes, then tells `observer`.
inline coppice::Async<void> echo(net::Socket socket, coppice::Pid observer) {
  if (!socket.set_active_once()) co_return;
  for (;;) {
    coppice::Message m = co_await coppice::receive_any();
    if (auto* d = m.get_if<net::Data>()) {
      (void)socket.send(d->bytes);
      (void)socket.set_active_once();
    } else if (auto* c = m.get_if<net::Closed>()) {
      coppice::send(observer, EchoEnded{c->socket, c->reason});
      co_return;
    }
  }
}

// Accepts one connection from `listener` and echoes on it.
inline coppice::Async<void> accept_and_echo(net::Listener listener, coppice::Pid observer) {
  if (!listener.accept_once()) co_return;
  net::Accepted accepted = co_await coppice::receive<net::Accepted>();
  co_await echo(std::move(accepted.socket), observer);
}

}  // namespace coppice_test
