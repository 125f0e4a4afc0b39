// Figures for coppice::net: ping-pong round trip and pipelined echo throughput over loopback,
// against a coppice echo (acceptor pool, a process per connection) or a plain epoll echo loop.
//
//   net_echo_bench coppice|epoll [connections=50] [depth=16] [messages=400000] [workers=2]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"
#include "coppice/net.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t message_size = 64;

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One connection, one message in flight: the round trip's median and 99th percentile.
void ping_pong(std::uint16_t port, int rounds) {
  int fd = connect_to(port);
  char buffer[message_size];
  std::memset(buffer, 'p', sizeof buffer);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(rounds));
  for (int i = 0; i < rounds + 1000; ++i) {
    auto t0 = Clock::now();
    if (::send(fd, buffer, sizeof buffer, 0) != static_cast<ssize_t>(sizeof buffer)) std::exit(1);
    std::size_t got = 0;
    while (got < sizeof buffer) {
      ssize_t r = ::recv(fd, buffer + got, sizeof buffer - got, 0);
      if (r <= 0) std::exit(1);
      got += static_cast<std::size_t>(r);
    }
    if (i >= 1000) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::close(fd);
  std::sort(us.begin(), us.end());
  std::printf("ping-pong: %d round trips of %zu bytes: p50 %.1f us, p99 %.1f us\n", rounds, message_size,
              us[us.size() / 2], us[us.size() * 99 / 100]);
}

// `connections` connections, `depth` messages in flight on each, from one epoll thread.
void throughput(std::uint16_t port, int connections, int depth, long messages) {
  int ep = ::epoll_create1(0);
  std::vector<int> fds;
  std::vector<long> pending(static_cast<std::size_t>(connections), 0);
  std::vector<std::size_t> partial(static_cast<std::size_t>(connections), 0);
  std::string burst(message_size * static_cast<std::size_t>(depth), 'm');
  for (int i = 0; i < connections; ++i) {
    int fd = connect_to(port);
    fds.push_back(fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  long sent = 0, done = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < connections; ++i) {
    ::send(fds[static_cast<std::size_t>(i)], burst.data(), burst.size(), 0);
    sent += depth;
  }
  std::vector<char> buffer(1 << 16);
  epoll_event events[64];
  while (done < messages) {
    int n = ::epoll_wait(ep, events, 64, 5000);
    if (n <= 0) {
      std::fprintf(stderr, "throughput: stalled at %ld of %ld\n", done, messages);
      std::exit(1);
    }
    for (int k = 0; k < n; ++k) {
      std::size_t i = events[k].data.u32;
      ssize_t r = ::recv(fds[i], buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (r <= 0) continue;
      partial[i] += static_cast<std::size_t>(r);
      long complete = static_cast<long>(partial[i] / message_size);
      partial[i] %= message_size;
      done += complete;
      long more = std::min(complete, messages - sent);
      if (more > 0) {
        ::send(fds[i], burst.data(), static_cast<std::size_t>(more) * message_size, 0);
        sent += more;
      }
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("throughput: %d connections, %d in flight each, %ld echoes of %zu bytes: %.0f echoes/s\n", connections,
              depth, messages, message_size, static_cast<double>(messages) / seconds);
  for (int fd : fds) ::close(fd);
  ::close(ep);
}

// The baseline: one thread, level-triggered epoll, read then write back.
std::uint16_t start_epoll_echo(std::atomic<bool>& stop, std::thread& thread) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(lfd, 1024);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  thread = std::thread([lfd, &stop] {
    int ep = ::epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::vector<char> buffer(1 << 16);
    epoll_event events[256];
    while (!stop.load(std::memory_order_relaxed)) {
      int n = ::epoll_wait(ep, events, 256, 100);
      for (int k = 0; k < n; ++k) {
        int fd = events[k].data.fd;
        if (fd == lfd) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) continue;
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          continue;
        }
        ssize_t r = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (r <= 0) {
          ::close(fd);
          continue;
        }
        ::send(fd, buffer.data(), static_cast<std::size_t>(r), MSG_NOSIGNAL);
      }
    }
    ::close(ep);
    ::close(lfd);
  });
  return ntohs(a.sin_port);
}

coppice::Async<void> echo(coppice::net::Socket socket) {
  if (!socket.set_active_once()) co_return;
  for (;;) {
    coppice::Message m = co_await coppice::receive_any();
    if (auto* d = m.get_if<coppice::net::Data>()) {
      (void)socket.send(d->bytes);
      (void)socket.set_active_once();
    } else if (m.is<coppice::net::Closed>()) {
      co_return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "coppice";
  int connections = argc > 2 ? std::atoi(argv[2]) : 50;
  int depth = argc > 3 ? std::atoi(argv[3]) : 16;
  long messages = argc > 4 ? std::atol(argv[4]) : 400000;
  unsigned workers = argc > 5 ? static_cast<unsigned>(std::atoi(argv[5])) : 2;
  if (mode == "epoll") {
    std::atomic<bool> stop{false};
    std::thread server;
    std::uint16_t port = start_epoll_echo(stop, server);
    std::printf("server: plain epoll echo, one thread\n");
    ping_pong(port, 20000);
    throughput(port, connections, depth, messages);
    stop = true;
    server.join();
    return 0;
  }
  coppice::RuntimeOptions options;
  options.workers = workers;
  coppice::Runtime rt(options);
  auto listener = coppice::net::Listener::listen(rt, "127.0.0.1", 0);
  if (!listener) {
    std::fprintf(stderr, "%s\n", listener.error().to_string().c_str());
    return 1;
  }
  auto sup = coppice::Supervisor::start(rt, {coppice::net::acceptor_pool("echo", *listener, 4, echo)});
  if (!sup) return 1;
  std::printf("server: coppice echo, a process per connection, %u workers (which poll the sockets)\n", workers);
  ping_pong(listener->port(), 20000);
  throughput(listener->port(), connections, depth, messages);
  auto stats = coppice::net::poller_stats(rt);
  std::printf("poller: %zu Data messages, %.1f bytes each on average\n", stats.data_messages,
              stats.data_messages ? static_cast<double>(stats.bytes_read) / static_cast<double>(stats.data_messages) : 0.0);
  return 0;
}
