// A coppice node: ei's cnode for the handshake and epmd, and coppice's own framing after it. One
// thread accepts connections and one reads each: it decodes every control message with coppice's
// bounded decoder (term.cpp) and applies it, messages and signals alike, so that what one remote
// process sends one local process keeps its order. Writes are whole packets under the connection's
// mutex, ticks answered among them.
//
// Not coppice's sockets (coppice/net.hpp) yet: ei does the handshake on a descriptor in blocking
// calls. ei_connect_xinit_ussi takes socket callbacks, which is the way to put these connections on
// coppice's own sockets (engine/ARCHITECTURE.md "Distribution").
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "dist/node_impl.hpp"
#include "runtime/proxy.hpp"

// ei's own TCP callbacks: exported by libei (the callbacks ei_connect_xinit uses), not declared in ei.h.
extern "C" ei_socket_callbacks ei_default_socket_callbacks;

namespace coppice {

using namespace detail;  // the control message tags (node_impl.hpp)

namespace {

std::once_flag ei_once;

// The handshake's flags, as ei writes them, with DFLAG_DIST_MONITOR_NAME (0x20) added. ei offers
// DFLAG_DIST_MONITOR without it, and an Erlang node treats a peer without both as a "primitive"
// C node: it sends it no MONITOR_P and no MONITOR_P_EXIT, so that a monitor across the connection
// only ever says noconnection. This node takes both, by pid and by name (node.cpp's apply), so it
// says so. The flags are outside the handshake's digest, which covers the cookie and the
// challenge. The packets: send_name and send_challenge, [Length:16]['N' or 'n']..., their flags
// at bytes 3-10 ('N', 64 bits) or 5-8 ('n', 32 bits), both ending at the same low byte.
int write_offering_monitors(void* ctx, const char* buf, ssize_t* len, unsigned tmo) {
  constexpr unsigned char dflag_dist_monitor_name = 0x20;
  const auto* b = reinterpret_cast<const unsigned char*>(buf);
  const bool handshake_name =
      *len >= 11 && (b[2] == 'N' || b[2] == 'n') && static_cast<ssize_t>((std::size_t{b[0]} << 8) | b[1]) == *len - 2;
  if (!handshake_name) return ei_default_socket_callbacks.write(ctx, buf, len, tmo);
  std::string patched(buf, static_cast<std::size_t>(*len));
  patched[b[2] == 'N' ? 10 : 8] = static_cast<char>(b[b[2] == 'N' ? 10 : 8] | dflag_dist_monitor_name);
  return ei_default_socket_callbacks.write(ctx, patched.data(), len, tmo);
}

ei_socket_callbacks* socket_callbacks() {
  static ei_socket_callbacks callbacks = [] {
    ei_socket_callbacks c = ei_default_socket_callbacks;
    c.write = write_offering_monitors;
    return c;
  }();
  return &callbacks;
}

std::string short_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

ErlPid from_ei(const erlang_pid& p) { return ErlPid{p.node, p.num, p.serial, p.creation}; }

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

bool read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;  // closed, shut down, or nothing for net_ticktime (SO_RCVTIMEO)
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;  // broken, or the peer read nothing for net_ticktime (SO_SNDTIMEO)
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

namespace detail {

const std::string& node_of(const RemoteTarget& t) {
  return std::holds_alternative<ErlPid>(t) ? std::get<ErlPid>(t).node : std::get<RemoteName>(t).node;
}

Term target_term(const RemoteTarget& t) {
  return std::holds_alternative<ErlPid>(t) ? Term(std::get<ErlPid>(t)) : Term::atom(std::get<RemoteName>(t).name);
}

}  // namespace detail

// ---- Connections ---------------------------------------------------------------------

Result<std::shared_ptr<Node::Impl::Connection>> Node::Impl::connection(std::string_view node) {
  std::string target(node);
  if (target.find('@') == std::string::npos)
    return Error(ErrorKind::invalid_argument, "not a node name (name@host): " + target);
  if (target == full_name) return Error(ErrorKind::invalid_argument, target + " is this node itself");
  {
    std::unique_lock lock(mutex);
    for (;;) {
      if (stopping) return Error(ErrorKind::noconnection, "the node " + full_name + " is stopping");
      if (auto it = connections.find(target); it != connections.end() && it->second->open) return it->second;
      if (!connecting.contains(target)) break;
      connect_done.wait(lock);  // another thread is connecting to it: its connection will do
    }
    connecting.insert(target);
  }
  struct Done {
    Impl* n;
    const std::string& t;
    ~Done() {
      std::lock_guard lock(n->mutex);
      n->connecting.erase(t);
      n->connect_done.notify_all();
    }
  } done{this, target};
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
  std::shared_ptr<Connection> c = add(target, fd);
  if (!c) return Error(ErrorKind::noconnection, "the node " + full_name + " is stopping");
  return c;
}

std::shared_ptr<Node::Impl::Connection> Node::Impl::add(const std::string& node, int fd) {
  // A peer that sends nothing, not even a tick, for net_ticktime is gone; one that reads nothing
  // for as long makes a write fail. Either ends the connection.
  const auto tick = std::chrono::duration_cast<std::chrono::microseconds>(options.net_ticktime).count();
  timeval tv{static_cast<time_t>(tick / 1000000), static_cast<suseconds_t>(tick % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;  // a packet is written whole: nothing is gained by holding it back (Nagle)
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_shared<Connection>();
  c->node = node;
  c->fd = fd;
  std::shared_ptr<Connection> replaced;
  std::vector<std::thread> ended;
  {
    std::lock_guard lock(mutex);
    if (stopping) {
      ::close(fd);
      return nullptr;
    }
    if (auto it = connections.find(node); it != connections.end()) replaced = it->second;
    connections[node] = c;
    std::thread t([this, c] { read(c); });
    readers.emplace(t.get_id(), std::move(t));
    for (std::thread::id id : finished) {
      auto it = readers.find(id);
      ended.push_back(std::move(it->second));
      readers.erase(it);
    }
    finished.clear();
  }
  // Both sides connected at once, or a reconnection: the newest wins, the old one closes.
  if (replaced) close_connection(*replaced);
  for (auto& t : ended) t.join();
  return c;
}

void Node::Impl::close_connection(Connection& c) {
  std::lock_guard lock(c.m);
  c.open = false;
  if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
}

void Node::Impl::read(const std::shared_ptr<Connection>& c) {
  std::string packet;
  for (;;) {
    unsigned char head[4];
    if (!read_exact(c->fd, reinterpret_cast<char*>(head), 4)) break;
    const std::uint32_t n =
        (std::uint32_t{head[0]} << 24) | (std::uint32_t{head[1]} << 16) | (std::uint32_t{head[2]} << 8) | head[3];
    if (n == 0) {  // a tick: answered with one, so that the other node sees this one alive
      std::lock_guard lock(c->m);
      if (c->fd >= 0 && !write_all(c->fd, "\0\0\0\0", 4)) break;
      continue;
    }
    if (n > options.max_packet_bytes) break;  // more than this node takes: the connection ends
    packet.resize(n);
    if (!read_exact(c->fd, packet.data(), n)) break;
    // [112][131 control][131 message]: the pass-through form, the only one ei's handshake asks for.
    if (packet[0] != 112 || n < 2 || static_cast<unsigned char>(packet[1]) != 131) break;
    std::size_t at = 2;
    Result<Term> control = decode_from(packet, at);
    if (!control) continue;  // a control message this node cannot read: skipped, as one it does not know
    std::string_view message;
    if (at < n) message = std::string_view(packet).substr(at);
    apply(*c, *control, message);
  }
  bool current = false;
  {
    std::lock_guard lock(mutex);
    if (auto it = connections.find(c->node); it != connections.end() && it->second == c) {
      connections.erase(it);
      current = true;
    }
  }
  {
    std::lock_guard lock(c->m);
    c->open = false;
    ::close(c->fd);
    c->fd = -1;
  }
  if (current) connection_lost(c->node);
  std::lock_guard lock(mutex);
  finished.push_back(std::this_thread::get_id());
}

void Node::Impl::accept_loop() {
  while (!stopping) {
    ErlConnect conp{};
    const int fd = ei_accept_tmo(&ec, listen_fd, &conp, 200);
    if (fd < 0) continue;  // a timeout (to look at `stopping`), or a refused handshake
    add(conp.nodename, fd);
  }
}

Result<std::string> Node::Impl::packet(const Term& control, const Term* message) const {
  Result<std::string> head = encode(control);
  if (!head) return head.error();
  std::string body;
  if (message != nullptr) {
    Result<std::string> m = encode(*message);
    if (!m) return m.error();
    body = std::move(*m);
  }
  const std::size_t n = 1 + head->size() + body.size();
  if (n > options.max_packet_bytes)
    return Error(ErrorKind::bad_term, "a message of " + std::to_string(n) + " bytes is more than max_packet_bytes");
  std::string out;
  out.reserve(4 + n);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  out += static_cast<char>(112);
  out += *head;
  out += body;
  return out;
}

Status Node::Impl::write(std::string_view node, const Term& control, const Term* message) {
  Result<std::string> p = packet(control, message);
  if (!p) return p.error();
  return write_packets(node, *p);
}

Status Node::Impl::write_packets(std::string_view node, std::string_view packets, bool connect) {
  if (packets.empty()) return {};
  if (!connect) {
    std::lock_guard lock(mutex);
    auto it = connections.find(node);
    if (it == connections.end() || !it->second->open) return Error(ErrorKind::noconnection, "not connected");
  }
  Result<std::shared_ptr<Connection>> c = connection(node);
  if (!c) return c.error();
  std::unique_lock lock((*c)->m);
  if ((*c)->fd < 0 || !write_all((*c)->fd, packets.data(), packets.size())) {
    lock.unlock();
    close_connection(**c);
    return Error(ErrorKind::noconnection, "the connection to " + std::string(node) + " broke while sending");
  }
  return {};
}

// ---- What arrives ----------------------------------------------------------------------

void Node::Impl::apply(Connection& c, const Term& control, std::string_view message) {
  if (!control.is(Term::Kind::tuple) || control.elements().empty() || !control.elements()[0].is(Term::Kind::integer))
    return;
  const std::vector<Term>& e = control.elements();
  auto pid_at = [&](std::size_t i) -> const ErlPid* {
    return i < e.size() && e[i].is(Term::Kind::pid) ? &e[i].pid() : nullptr;
  };
  auto payload = [&]() -> Term {  // a PAYLOAD_ signal's reason, in the message's place
    Result<Term> t = decode(message);
    return t ? std::move(*t) : Term::atom("badarg");
  };
  const ErlPid* from = pid_at(1);
  switch (e[0].integer()) {
    case op_send:
    case op_send_tt:
      if (const ErlPid* to = pid_at(2)) deliver(local_of_wire(*to), {}, message, nullptr);
      return;
    case op_send_sender:
    case op_send_sender_tt:
      if (const ErlPid* to = pid_at(2)) deliver(local_of_wire(*to), {}, message, &e[1]);
      return;
    case op_reg_send:
    case op_reg_send_tt:
      if (e.size() >= 4 && e[3].is(Term::Kind::atom)) deliver({}, e[3].atom_name(), message, &e[1]);
      return;
    case op_link: {
      const ErlPid* to = pid_at(2);
      if (from == nullptr || to == nullptr) return;
      const Pid local = local_of_wire(*to);
      if (!local) {  // none of ours: the linker gets EXIT noproc, as from a dead process
        (void)write(c.node, Term::tuple({op_exit, Term(*to), Term(*from), Term::atom("noproc")}));
        return;
      }
      if (const Pid p = proxy(*from)) detail::proxy_link(rt, p, local);
      return;
    }
    case op_unlink:
    case op_unlink_id: {
      const bool with_id = e[0].integer() == op_unlink_id;
      from = pid_at(with_id ? 2 : 1);
      const ErlPid* to = pid_at(with_id ? 3 : 2);
      if (from == nullptr || to == nullptr) return;
      const Pid local = local_of_wire(*to);
      if (local) {
        if (const Pid p = proxy(*from)) detail::proxy_unlink(rt, p, local);
      }
      if (with_id) (void)write(c.node, Term::tuple({op_unlink_id_ack, e[1], Term(*to), Term(*from)}));
      return;
    }
    case op_unlink_id_ack: return;
    case op_exit:
    case op_exit_tt:
    case op_payload_exit:
    case op_payload_exit_tt: {
      // A remote process linked to one of ours is gone: its proxy exits with its reason, and so
      // every local process linked to it or monitoring it is told.
      if (from == nullptr) return;
      const std::int64_t op = e[0].integer();
      const Term reason = op == op_exit || op == op_exit_tt ? e.back() : payload();
      gone(*from, detail::reason_of(reason));
      return;
    }
    case op_monitor_p_exit:
    case op_payload_monitor_p_exit: {
      if (e.size() < 4) return;
      const Term reason = e[0].integer() == op_monitor_p_exit ? e.back() : payload();
      if (e[1].is(Term::Kind::pid)) {
        gone(e[1].pid(), detail::reason_of(reason));
      } else if (e[1].is(Term::Kind::atom)) {
        gone(detail::RemoteName{c.node, e[1].atom_name()}, detail::reason_of(reason));
      }
      return;
    }
    case op_exit2:
    case op_exit2_tt:
    case op_payload_exit2:
    case op_payload_exit2_tt: {
      const ErlPid* to = pid_at(2);
      if (from == nullptr || to == nullptr) return;
      const std::int64_t op = e[0].integer();
      const Term reason = op == op_exit2 || op == op_exit2_tt ? e.back() : payload();
      const Pid local = local_of_wire(*to);
      if (!local) return;
      if (const Pid p = proxy(*from)) detail::proxy_exit(rt, p, local, detail::reason_of(reason));
      return;
    }
    case op_monitor_p: {
      if (from == nullptr || e.size() < 4 || !e[3].is(Term::Kind::ref)) return;
      const Term& watched = e[2];
      Pid local;
      if (watched.is(Term::Kind::pid)) {
        local = local_of_wire(watched.pid());
      } else if (watched.is(Term::Kind::atom)) {
        local = named(watched.atom_name());
      }
      if (!local) {  // none of ours, or no one by that name: DOWN noproc at once
        (void)write(c.node, Term::tuple({op_monitor_p_exit, watched, Term(*from), e[3], Term::atom("noproc")}));
        return;
      }
      const Pid p = proxy(*from);
      if (!p) return;
      const Ref ref = detail::proxy_make_ref(rt);
      rt.send(p, detail::ProxyWatch{local, ref, e[3].ref(), watched});
      detail::proxy_monitor(rt, p, local, ref);
      return;
    }
    case op_demonitor_p: {
      if (from == nullptr || e.size() < 4 || !e[3].is(Term::Kind::ref)) return;
      Pid p;
      {
        std::lock_guard lock(mutex);
        if (auto it = proxy_of.find(detail::key_of(*from)); it != proxy_of.end()) p = it->second;
      }
      if (p) rt.send(p, detail::ProxyUnwatch{e[3].ref()});
      return;
    }
    default: return;  // a control message this node does not take part in (spawn, aliases, group leader)
  }
}

void Node::Impl::deliver(Pid to, std::string_view name, std::string_view bytes, const Term* from) {
  // An unknown name or a pid of none of ours: dropped, as OTP drops a send to them.
  Result<Term> t = decode(bytes);
  auto send = [&](auto&& value) {
    if (to) {
      rt.send(to, std::forward<decltype(value)>(value));
    } else {
      (void)rt.send(name, std::forward<decltype(value)>(value));
    }
  };
  if (!t) {
    send(UndecodableTerm{t.error(), std::string(bytes)});
    return;
  }
  if (!to && !named(name)) return;
  const std::vector<Term>* e = t->is(Term::Kind::tuple) ? &t->elements() : nullptr;
  // {Tag, Reply}: the answer to a call a local process made through a proxy (remote.cpp).
  if (to && e != nullptr && e->size() == 2 && (*e)[0].is(Term::Kind::ref)) {
    std::optional<From> caller;
    {
      std::lock_guard lock(mutex);
      if (auto it = calls_out.find(detail::key_of((*e)[0].ref()));
          it != calls_out.end() && it->second.caller.pid == to) {
        caller = it->second.caller;
        calls_out.erase(it);
      }
    }
    if (caller) {
      rt.reply(*caller, Term((*e)[1]));
      return;
    }
  }
  // gen_server:call and cast from Erlang: a request (or a cast) to the local process, in the name
  // of the caller's proxy, which sends the reply back as {Tag, Reply}.
  if (e != nullptr && t->is_tagged("$gen_call", 3) && (*e)[1].is(Term::Kind::tuple) && (*e)[1].elements().size() == 2 &&
      (*e)[1].elements()[0].is(Term::Kind::pid)) {
    const Pid target = to ? to : named(name);
    const Pid p = proxy((*e)[1].elements()[0].pid());
    if (!target || !p) return;
    const Ref ref = detail::proxy_make_ref(rt);
    rt.send(p, detail::ProxyCallIn{ref, (*e)[1].elements()[1]});
    detail::proxy_request(rt, p, target, ref, Message::of(Term((*e)[2])));
    return;
  }
  if (e != nullptr && t->is_tagged("$gen_cast", 2)) {
    const Pid target = to ? to : named(name);
    if (target) detail::proxy_cast(rt, target, Message::of(Term((*e)[1])));
    return;
  }
  (void)from;
  if (!to) to = named(name);
  if (to) rt.send(to, std::move(*t));
}

void Node::Impl::gone(const detail::RemoteTarget& target, ExitReason reason) {
  Pid p;
  {
    std::lock_guard lock(mutex);
    if (std::holds_alternative<ErlPid>(target)) {
      const detail::PidKey key = detail::key_of(std::get<ErlPid>(target));
      if (auto it = proxy_of.find(key); it != proxy_of.end()) {
        p = it->second;
        proxy_of.erase(it);
      }
      if (dead.insert(key).second) {
        dead_order.push_back(key);
        if (dead_order.size() > dead_limit) {
          dead.erase(dead_order.front());
          dead_order.pop_front();
        }
      }
    } else {
      const auto& n = std::get<detail::RemoteName>(target);
      if (auto it = name_proxy_of.find({n.node, n.name}); it != name_proxy_of.end()) {
        p = it->second;
        name_proxy_of.erase(it);
      }
    }
  }
  if (p) rt.send(p, detail::ProxyGone{std::move(reason)});
}

void Node::Impl::connection_lost(const std::string& node) {
  // Every proxy of that node exits with noconnection: its links and monitors are told, as OTP
  // tells them when a connection goes down.
  std::vector<Pid> proxies;
  {
    std::lock_guard lock(mutex);
    for (auto it = proxy_of.begin(); it != proxy_of.end();) {
      if (std::get<0>(it->first) == node) {
        proxies.push_back(it->second);
        it = proxy_of.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = name_proxy_of.begin(); it != name_proxy_of.end();) {
      if (it->first.first == node) {
        proxies.push_back(it->second);
        it = name_proxy_of.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Pid p : proxies) rt.send(p, detail::ProxyGone{ExitReason::other("noconnection")});
}

// ---- Pids ------------------------------------------------------------------------------

erlang_pid Node::Impl::wire_pid(Pid local) {
  if (!local) return *ei_self(&ec);
  std::lock_guard lock(mutex);
  if (auto it = wire_of.find(local.bits()); it != wire_of.end()) return it->second;
  erlang_pid p{};
  ei_make_pid(&ec, &p);
  wire_of[local.bits()] = p;
  local_of[{p.num, p.serial}] = local;
  return p;
}

ErlPid Node::Impl::wire(Pid local) {
  {
    std::lock_guard lock(mutex);
    if (auto it = target_of.find(local.bits()); it != target_of.end() && std::holds_alternative<ErlPid>(it->second))
      return std::get<ErlPid>(it->second);
  }
  return from_ei(wire_pid(local));
}

Pid Node::Impl::local_of_wire(const ErlPid& pid) const {
  // The creation too: a pid of an earlier run of this node names none of this run's processes.
  if (pid.node != full_name || pid.creation != creation) return {};
  std::lock_guard lock(mutex);
  auto it = local_of.find({pid.id, pid.serial});
  return it == local_of.end() ? Pid{} : it->second;
}

ErlRef Node::Impl::make_ref() {
  erlang_ref r{};
  {
    std::lock_guard lock(mutex);
    ei_make_ref(&ec, &r);
  }
  ErlRef out{r.node, r.creation, {}};
  for (int i = 0; i < r.len && i < 5; ++i) out.ids.push_back(r.n[i]);
  return out;
}

// ---- Node ------------------------------------------------------------------------------

Node::Node(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Node>> Node::start(Runtime& runtime, NodeOptions options) {
  if (options.name.empty() || options.name.find('@') != std::string::npos)
    return Error(ErrorKind::invalid_argument,
                 "Node::start: the name must be non-empty and without '@' (the host is separate)");
  if (options.cookie.empty()) return Error(ErrorKind::invalid_argument, "Node::start: a cookie is required");
  if (options.net_ticktime.count() <= 0)
    return Error(ErrorKind::invalid_argument, "Node::start: net_ticktime must be positive");
  std::call_once(ei_once, [] { ei_init(); });
  auto impl = std::make_shared<Impl>(runtime, options);
  const std::string host = options.host.empty() ? short_host_name() : options.host;
  impl->full_name = options.name + "@" + host;
  struct in_addr addr {};
  addr.s_addr = htonl(INADDR_LOOPBACK);
  // Creation tells this instance of the node from earlier ones of the same name: from the clock.
  impl->creation =
      static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count() % 0x7ffffff0) + 4;
  if (ei_connect_xinit_ussi(&impl->ec, host.c_str(), options.name.c_str(), impl->full_name.c_str(), &addr,
                            options.cookie.c_str(), impl->creation, socket_callbacks(), sizeof(ei_socket_callbacks),
                            nullptr) < 0)
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
  {
    std::lock_guard lock(n.mutex);
    for (auto& [name, c] : n.connections) all.push_back(c);
  }
  for (auto& c : all) Impl::close_connection(*c);
  // No reader is added any more (add() looks at `stopping` under the mutex): each ends as its
  // connection closes, telling its node's proxies noconnection.
  std::map<std::thread::id, std::thread> readers;
  {
    std::lock_guard lock(n.mutex);
    readers.swap(n.readers);
    n.finished.clear();
  }
  for (auto& [id, t] : readers) t.join();
  ::close(n.listen_fd);
  ::close(n.epmd_fd);  // epmd forgets the node when this closes
}

const std::string& Node::name() const { return impl_->full_name; }

Status Node::send(std::string_view node, std::string_view name, const Term& message, Pid from) {
  const Term control =
      Term::tuple({op_reg_send, Term(impl_->wire(from)), Term::atom(""), Term::atom(std::string(name))});
  return impl_->write(node, control, &message);
}

Status Node::send(const ErlPid& to, const Term& message) {
  return impl_->write(to.node, Term::tuple({op_send, Term::atom(""), Term(to)}), &message);
}

Status Node::exit(const ErlPid& to, const Term& reason, Pid from) {
  return impl_->write(to.node, Term::tuple({op_exit2, Term(impl_->wire(from)), Term(to), reason}));
}

ErlPid Node::pid_of(Pid local) { return impl_->wire(local); }

Result<Pid> Node::local_pid(const ErlPid& pid) const {
  if (pid.node != impl_->full_name)
    return Error(ErrorKind::noproc, pid.to_string() + " is not a pid of " + impl_->full_name);
  const Pid local = impl_->local_of_wire(pid);
  if (!local) return Error(ErrorKind::noproc, pid.to_string() + " names no process of this node");
  return local;
}

Result<Pid> Node::remote(const ErlPid& pid) {
  if (pid.node == impl_->full_name) return local_pid(pid);
  if (pid.node.find('@') == std::string::npos)
    return Error(ErrorKind::invalid_argument, "not a pid of a node (name@host): " + pid.to_string());
  const Pid p = impl_->proxy(pid);
  if (!p) return Error(ErrorKind::runtime_stopped, "the runtime is stopping: no proxy for " + pid.to_string());
  return p;
}

Result<Pid> Node::remote(std::string_view node, std::string_view name) {
  if (node.find('@') == std::string::npos)
    return Error(ErrorKind::invalid_argument, "not a node name (name@host): " + std::string(node));
  if (node == impl_->full_name) {
    const Pid local = impl_->rt.whereis(name);
    if (!local) return Error(ErrorKind::unknown_name, "no process is registered as " + std::string(name));
    return local;
  }
  if (name.empty()) return Error(ErrorKind::invalid_argument, "an empty name");
  const Pid p = impl_->proxy(detail::RemoteName{std::string(node), std::string(name)});
  if (!p) return Error(ErrorKind::runtime_stopped, "the runtime is stopping: no proxy for " + std::string(name));
  return p;
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
