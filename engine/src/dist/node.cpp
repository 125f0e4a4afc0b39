// A coppice node: ei's cnode, published to epmd; one thread accepting connections and one reading
// each connection (ei's receive is blocking, and answers the other node's ticks itself). Writes are
// serialised per connection by its mutex. What arrives is decoded with coppice's own bounded
// decoder (term.cpp) and sent to the local process as a Term.
//
// Not coppice's sockets (coppice/net.hpp) yet: ei does the handshake and the framing on a file
// descriptor it owns, in blocking calls. ei_connect_xinit_ussi takes socket callbacks, which is the
// way to put these connections on coppice's own sockets (engine/ARCHITECTURE.md "Distribution").
#include "coppice/node.hpp"

#include <arpa/inet.h>
#include <ei.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "coppice/runtime.hpp"

namespace coppice {

namespace {

std::once_flag ei_once;

std::string short_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

ErlPid from_ei(const erlang_pid& p) { return ErlPid{p.node, p.num, p.serial, p.creation}; }
erlang_pid to_ei(const ErlPid& p) {
  erlang_pid e{};
  const std::size_t n = std::min(p.node.size(), std::size_t{MAXATOMLEN_UTF8 - 1});
  std::memcpy(e.node, p.node.data(), n);
  e.num = p.id;
  e.serial = p.serial;
  e.creation = p.creation;
  return e;
}

// Asks epmd on `host` whether a node `alive` is registered there (PORT_PLEASE2_REQ, as ei and
// net_adm do). 1: yes; 0: no; -1: epmd cannot be asked. ei says EIO both for a node epmd does not
// know and for a refused handshake; this tells them apart.
int epmd_knows(const std::string& host, const std::string& alive) {
  const char* env = std::getenv("ERL_EPMD_PORT");
  const std::string port = env != nullptr && *env != '\0' ? env : "4369";
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int answer = -1;
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    std::string req;
    const std::size_t n = 1 + alive.size();
    req += static_cast<char>(n >> 8);
    req += static_cast<char>(n & 0xff);
    req += static_cast<char>(122);
    req += alive;
    unsigned char resp[2] = {};
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()) &&
        ::recv(fd, resp, 2, MSG_WAITALL) == 2 && resp[0] == 119)
      answer = resp[1] == 0 ? 1 : 0;
  }
  if (fd >= 0) ::close(fd);
  freeaddrinfo(res);
  return answer;
}

struct PidKey {
  std::uint32_t id, serial;
  friend auto operator<=>(const PidKey&, const PidKey&) = default;
};

}  // namespace

struct Node::Impl {
  Runtime& rt;
  NodeOptions options;
  std::string full_name;
  ei_cnode ec{};
  int listen_fd = -1;
  int epmd_fd = -1;
  std::atomic<bool> stopping{false};
  std::thread acceptor;

  struct Connection {
    std::string node;
    std::mutex m;  // the fd's life (-1 once closed) and writes, one whole message at a time
    int fd = -1;
    std::atomic<bool> open{true};
  };
  mutable std::mutex mutex;  // connections, readers, and the pid maps
  std::map<std::string, std::shared_ptr<Connection>, std::less<>> connections;
  std::vector<std::thread> readers;             // one per connection ever made, joined by the destructor
  std::map<std::uint64_t, erlang_pid> wire_of;  // local pid bits -> its pid on the wire
  std::map<PidKey, Pid> local_of;

  explicit Impl(Runtime& r, NodeOptions o) : rt(r), options(std::move(o)) {}

  // The connection to `node`, made now if there is none.
  Result<std::shared_ptr<Connection>> connection(std::string_view node) {
    {
      std::lock_guard lock(mutex);
      if (auto it = connections.find(node); it != connections.end() && it->second->open) return it->second;
    }
    if (stopping) return Error(ErrorKind::noconnection, "the node " + full_name + " is stopping");
    std::string target(node);
    if (target.find('@') == std::string::npos)
      return Error(ErrorKind::invalid_argument, "not a node name (name@host): " + target);
    const int fd = ei_connect_tmo(&ec, target.data(), static_cast<unsigned>(options.connect_timeout.count()));
    if (fd < 0) {
      const int err = erl_errno;
      // ei says EIO both for a node epmd does not know and for a refused handshake (a wrong
      // cookie): epmd_knows tells them apart.
      const std::size_t at = target.find('@');
      const int known = epmd_knows(target.substr(at + 1), target.substr(0, at));
      if (known == 0) return Error(ErrorKind::noconnection, "cannot connect to " + target + ": epmd does not know it");
      if (known == 1 && err == EIO)
        return Error(ErrorKind::not_allowed, "the node " + target + " refused the handshake (a wrong cookie?)");
      return Error(ErrorKind::noconnection, "cannot connect to " + target + ": " + std::strerror(err));
    }
    return add(target, fd);
  }

  std::shared_ptr<Connection> add(const std::string& node, int fd) {
    auto c = std::make_shared<Connection>();
    c->node = node;
    c->fd = fd;
    std::lock_guard lock(mutex);
    if (auto it = connections.find(node); it != connections.end()) {
      // Both sides connected at once, or a reconnection: the newest wins, the old one closes.
      close_connection(*it->second);
    }
    connections[node] = c;
    readers.emplace_back([this, c] { read(c); });
    return c;
  }

  // Ends the connection: its reader wakes with an error and closes the fd.
  static void close_connection(Connection& c) {
    std::lock_guard lock(c.m);
    c.open = false;
    if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
  }

  void read(const std::shared_ptr<Connection>& c) {
    ei_x_buff x;
    ei_x_new(&x);
    while (!stopping) {
      erlang_msg msg{};
      x.index = 0;
      const int r = ei_xreceive_msg(c->fd, &msg, &x);
      if (r == ERL_TICK) continue;
      if (r == ERL_ERROR) {
        const int err = erl_errno;
        if ((err == EAGAIN || err == EINTR) && c->open) continue;  // interrupted: read on
        break;  // closed by the other node or by close_connection (EIO), or unusable: ends here
      }
      deliver(msg, std::string_view(x.buff, static_cast<std::size_t>(x.index)));
    }
    ei_x_free(&x);
    {
      std::lock_guard lock(mutex);
      if (auto it = connections.find(c->node); it != connections.end() && it->second == c) connections.erase(it);
    }
    std::lock_guard lock(c->m);
    c->open = false;
    ::close(c->fd);
    c->fd = -1;
  }

  void deliver(const erlang_msg& msg, std::string_view payload) {
    switch (msg.msgtype) {
      case ERL_SEND:
      case ERL_SEND_TT:
      case ERL_REG_SEND:
      case ERL_REG_SEND_TT: {
        Result<Term> t = decode(payload);
        // An unknown name or a pid of none of ours: dropped, as OTP drops a send to them.
        auto to_process = [&](auto&& send) {
          if (t) {
            send(std::move(*t));
          } else {
            send(UndecodableTerm{t.error(), std::string(payload)});
          }
        };
        if (msg.msgtype == ERL_REG_SEND || msg.msgtype == ERL_REG_SEND_TT) {
          const std::string_view name(msg.toname);
          to_process([&](auto&& value) { (void)rt.send(name, std::forward<decltype(value)>(value)); });
          return;
        }
        Pid to;
        {
          std::lock_guard lock(mutex);
          auto it = local_of.find(PidKey{msg.to.num, msg.to.serial});
          if (it != local_of.end()) to = it->second;
        }
        if (to) to_process([&](auto&& value) { rt.send(to, std::forward<decltype(value)>(value)); });
        return;
      }
      default:
        // Links, monitors and exit signals across nodes are the next step (node.hpp).
        return;
    }
  }

  void accept_loop() {
    while (!stopping) {
      ErlConnect conp{};
      const int fd = ei_accept_tmo(&ec, listen_fd, &conp, 200);
      if (fd < 0) continue;  // a timeout (to look at `stopping`), or a refused handshake
      if (stopping) {
        ::close(fd);
        break;
      }
      add(conp.nodename, fd);
    }
  }

  erlang_pid wire_pid(Pid local) {
    if (!local) return *ei_self(&ec);
    std::lock_guard lock(mutex);
    if (auto it = wire_of.find(local.bits()); it != wire_of.end()) return it->second;
    erlang_pid p{};
    ei_make_pid(&ec, &p);
    wire_of[local.bits()] = p;
    local_of[PidKey{p.num, p.serial}] = local;
    return p;
  }

  // A distribution control message of our own, for what ei has no call for: the packet ei
  // itself writes for a send, [length][112 'p'][control term], without a message after it.
  Status control(std::string_view node, const Term& message) {
    return write(node, message, [](int fd, char* buf, int len) {
      // `buf` is the control term with its version byte: frame it and write it whole.
      std::string packet(5, '\0');
      const std::uint32_t n = static_cast<std::uint32_t>(len) + 1;
      packet[0] = static_cast<char>(n >> 24);
      packet[1] = static_cast<char>(n >> 16);
      packet[2] = static_cast<char>(n >> 8);
      packet[3] = static_cast<char>(n);
      packet[4] = static_cast<char>(112);
      packet.append(buf, static_cast<std::size_t>(len));
      for (std::size_t done = 0; done < packet.size();) {
        const ssize_t w = ::send(fd, packet.data() + done, packet.size() - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        done += static_cast<std::size_t>(w);
      }
      return 0;
    });
  }

  Status write(std::string_view node, const Term& message, const std::function<int(int, char*, int)>& send) {
    Result<std::string> bytes = encode(message);
    if (!bytes) return bytes.error();
    Result<std::shared_ptr<Connection>> c = connection(node);
    if (!c) return c.error();
    std::unique_lock lock((*c)->m);
    if ((*c)->fd < 0 || send((*c)->fd, bytes->data(), static_cast<int>(bytes->size())) < 0) {
      lock.unlock();
      close_connection(**c);
      return Error(ErrorKind::noconnection, "the connection to " + std::string(node) + " broke while sending");
    }
    return {};
  }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Node>> Node::start(Runtime& runtime, NodeOptions options) {
  if (options.name.empty() || options.name.find('@') != std::string::npos)
    return Error(ErrorKind::invalid_argument,
                 "Node::start: the name must be non-empty and without '@' (the "
                 "host is separate)");
  if (options.cookie.empty()) return Error(ErrorKind::invalid_argument, "Node::start: a cookie is required");
  std::call_once(ei_once, [] { ei_init(); });
  auto impl = std::make_unique<Impl>(runtime, options);
  const std::string host = options.host.empty() ? short_host_name() : options.host;
  impl->full_name = options.name + "@" + host;
  struct in_addr addr {};
  addr.s_addr = htonl(INADDR_LOOPBACK);
  // Creation tells this instance of the node from earlier ones of the same name: from the clock.
  const auto creation =
      static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count() % 0x7ffffff0) + 4;
  if (ei_connect_xinit(&impl->ec, host.c_str(), options.name.c_str(), impl->full_name.c_str(), &addr,
                       options.cookie.c_str(), creation) < 0)
    return Error(ErrorKind::invalid_argument, "Node::start: ei refused the node name " + impl->full_name);
  int port = 0;
  impl->listen_fd = ei_listen(&impl->ec, &port, 16);
  if (impl->listen_fd < 0)
    return Error(ErrorKind::io_error, std::string("Node::start: cannot listen: ") + std::strerror(erl_errno));
  impl->epmd_fd = ei_publish(&impl->ec, port);
  if (impl->epmd_fd < 0) {
    ::close(impl->listen_fd);
    return Error(ErrorKind::io_error,
                 "Node::start: cannot register " + impl->full_name +
                     " with epmd (is epmd running? is the name taken?): " + std::strerror(erl_errno));
  }
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->accept_loop(); });
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::~Node() {
  Impl& n = *impl_;
  n.stopping = true;
  n.acceptor.join();
  std::vector<std::shared_ptr<Impl::Connection>> all;
  std::vector<std::thread> readers;
  {
    std::lock_guard lock(n.mutex);
    for (auto& [name, c] : n.connections) all.push_back(c);
  }
  for (auto& c : all) Impl::close_connection(*c);
  {
    // No connection is added any more: `stopping` is set and the acceptor has ended; a send racing
    // the destructor is the caller's error (the node must outlive its users).
    std::lock_guard lock(n.mutex);
    readers.swap(n.readers);
  }
  for (auto& t : readers) t.join();
  ::close(n.listen_fd);
  ::close(n.epmd_fd);  // epmd forgets the node when this closes
}

const std::string& Node::name() const { return impl_->full_name; }

Status Node::send(std::string_view node, std::string_view name, const Term& message, Pid from) {
  const erlang_pid sender = impl_->wire_pid(from);
  const std::string to(name);
  return impl_->write(node, message, [&](int fd, char* buf, int len) {
    return ei_send_reg_encoded(fd, &sender, to.c_str(), buf, len);
  });
}

Status Node::send(const ErlPid& to, const Term& message) {
  erlang_pid target = to_ei(to);
  return impl_->write(to.node, message,
                      [&](int fd, char* buf, int len) { return ei_send_encoded(fd, &target, buf, len); });
}

Status Node::exit(const ErlPid& to, const Term& reason, Pid from) {
  const ErlPid sender = from_ei(impl_->wire_pid(from));
  // EXIT2: {8, FromPid, ToPid, Reason}.
  return impl_->control(to.node, Term::tuple({8, Term(sender), Term(to), reason}));
}

ErlPid Node::pid_of(Pid local) { return from_ei(impl_->wire_pid(local)); }

Result<Pid> Node::local_pid(const ErlPid& pid) const {
  if (pid.node != impl_->full_name)
    return Error(ErrorKind::noproc, pid.to_string() + " is not a pid of " + impl_->full_name);
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->local_of.find(PidKey{pid.id, pid.serial});
  if (it == impl_->local_of.end()) return Error(ErrorKind::noproc, pid.to_string() + " names no process of this node");
  return it->second;
}

Status Node::connect(std::string_view node) {
  Result<std::shared_ptr<Impl::Connection>> c = impl_->connection(node);
  if (!c) return c.error();
  return {};
}

std::vector<std::string> Node::connected_nodes() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  for (auto& [name, c] : impl_->connections)
    if (c->open) out.push_back(name);
  return out;
}

}  // namespace coppice
