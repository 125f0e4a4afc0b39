// The inside of a coppice node (coppice/node.hpp), shared by its files: node.cpp (start, the
// connections, the reader that applies what arrives) and remote.cpp (the proxy process that stands
// for a remote process, and what it puts on the wire).
#pragma once

#include <ei.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "coppice/node.hpp"
#include "coppice/runtime.hpp"

namespace coppice::detail {

// A process of another node: its pid, or a name registered there ({Name, Node}).
struct RemoteName {
  std::string node;
  std::string name;
  friend bool operator==(const RemoteName&, const RemoteName&) = default;
};
using RemoteTarget = std::variant<ErlPid, RemoteName>;
const std::string& node_of(const RemoteTarget& t);
Term target_term(const RemoteTarget& t);  // the pid, or the name's atom

// The distribution's control message tags (erl_dist_protocol).
enum Op : std::int64_t {
  op_link = 1,
  op_send = 2,
  op_exit = 3,
  op_unlink = 4,
  op_reg_send = 6,
  op_exit2 = 8,
  op_send_tt = 12,
  op_exit_tt = 13,
  op_reg_send_tt = 16,
  op_exit2_tt = 18,
  op_monitor_p = 19,
  op_demonitor_p = 20,
  op_monitor_p_exit = 21,
  op_send_sender = 22,
  op_send_sender_tt = 23,
  op_payload_exit = 24,
  op_payload_exit_tt = 25,
  op_payload_exit2 = 26,
  op_payload_exit2_tt = 27,
  op_payload_monitor_p_exit = 28,
  op_unlink_id = 35,
  op_unlink_id_ack = 36,
};

// Keys for the maps: ErlPid and ErlRef have no order of their own.
using PidKey = std::tuple<std::string, std::uint32_t, std::uint32_t, std::uint32_t>;
using RefKey = std::tuple<std::string, std::uint32_t, std::vector<std::uint32_t>>;
inline PidKey key_of(const ErlPid& p) { return {p.node, p.id, p.serial, p.creation}; }
inline RefKey key_of(const ErlRef& r) { return {r.node, r.creation, r.ids}; }

// An exit reason on the wire and back: atoms for OTP's (normal, shutdown, kill, killed, noproc,
// timeout, noconnection), {shutdown, Detail}; a C++ exception's as {error, Type, What} with
// binaries; any other reason as the term it was (its printed form when it came from Erlang).
Term reason_term(const ExitReason& reason);
ExitReason reason_of(const Term& term);

// What the reader tells a proxy (remote.cpp), in order with the signals it applies in its name.
struct ProxyGone {  // the remote process is gone (or its connection): the proxy exits with this
  ExitReason reason;
};
struct ProxyWatch {  // the remote process monitors `local` (MONITOR_P); `watched` as it named it
  Pid local;
  Ref ref;
  ErlRef wire_ref;
  Term watched;
};
struct ProxyUnwatch {  // DEMONITOR_P
  ErlRef wire_ref;
};
struct ProxyCallIn {  // a `$gen_call` from the remote process: the reply to `ref` goes out as {Tag, Reply}
  Ref ref;
  Term tag;
};

}  // namespace coppice::detail

namespace coppice {

struct Node::Impl : std::enable_shared_from_this<Node::Impl> {
  struct Connection {
    std::string node;
    std::mutex m;  // writes, one whole packet at a time, and the fd's life (-1 once closed)
    int fd = -1;
    std::atomic<bool> open{true};
  };
  // A call a local process made through a proxy, waiting for {Tag, Reply} at the caller's pid.
  struct CallOut {
    From caller;
    Pid proxy;
  };

  Runtime& rt;
  NodeOptions options;
  std::string full_name;
  ei_cnode ec{};
  std::uint32_t creation = 0;
  int listen_fd = -1;
  int epmd_fd = -1;
  std::atomic<bool> stopping{false};
  std::thread acceptor;

  // Guards everything below. A connection's own mutex is never taken while this one is held.
  mutable std::mutex mutex;
  std::condition_variable connect_done;
  std::map<std::string, std::shared_ptr<Connection>, std::less<>> connections;
  std::set<std::string, std::less<>> connecting;  // one connect in flight per node
  std::map<std::thread::id, std::thread> readers;
  std::vector<std::thread::id> finished;                            // readers that have ended, joined by the next add()
  std::map<std::uint64_t, erlang_pid> wire_of;                      // a local pid -> its pid on the wire
  std::map<std::pair<std::uint32_t, std::uint32_t>, Pid> local_of;  // (id, serial) -> local pid
  std::map<detail::PidKey, Pid> proxy_of;                           // a remote pid -> its proxy
  std::map<std::pair<std::string, std::string>, Pid> name_proxy_of;  // (node, name) -> its proxy
  std::map<std::uint64_t, detail::RemoteTarget> target_of;           // a proxy -> what it stands for
  std::map<detail::RefKey, CallOut> calls_out;
  // Remote pids known dead (their EXIT or MONITOR_P_EXIT came), the latest dead_limit of them: a
  // proxy asked for one afterwards is dead from the start (a link or monitor of it says noproc, as
  // OTP says of a dead pid), and a later notice of the same death reaches no newer proxy.
  static constexpr std::size_t dead_limit = 65536;
  std::set<detail::PidKey> dead;
  std::deque<detail::PidKey> dead_order;
  std::uint64_t next_unlink_id = 1;
  Pid starter;  // the children's starter (children.cpp), spawned by the first serve_child
  std::map<std::string, std::shared_ptr<const ChildStart>, std::less<>> child_kinds;

  explicit Impl(Runtime& r, NodeOptions o) : rt(r), options(std::move(o)) {}

  // ---- Connections (node.cpp) ----
  Result<std::shared_ptr<Connection>> connection(std::string_view node);
  std::shared_ptr<Connection> add(const std::string& node, int fd);
  static void close_connection(Connection& c);
  void read(const std::shared_ptr<Connection>& c);
  void accept_loop();
  // One packet: [length][112][control][message], the message optional; and its writing.
  Result<std::string> packet(const Term& control, const Term* message = nullptr) const;
  Status write(std::string_view node, const Term& control, const Term* message = nullptr);
  // Whole packets, in one go; with `connect` false, only on a connection that is already there.
  Status write_packets(std::string_view node, std::string_view packets, bool connect = true);

  // ---- What arrives (node.cpp) ----
  void apply(Connection& c, const Term& control, std::string_view message);
  void deliver(Pid to, std::string_view name, std::string_view bytes, const Term* from);
  Pid named(std::string_view name);  // a registered name, or coppice_children: this node's starter
  void gone(const detail::RemoteTarget& target, ExitReason reason);  // its proxy exits with `reason`
  void connection_lost(const std::string& node);

  // ---- Pids (node.cpp, remote.cpp) ----
  erlang_pid wire_pid(Pid local);
  ErlPid wire(Pid local);                      // as an ErlPid; a proxy's is the remote pid it stands for
  Pid local_of_wire(const ErlPid& pid) const;  // Pid{} for none
  ErlRef make_ref();
  // The proxy for `target`, spawned if there is none. Pid{} if the runtime is stopping.
  Pid proxy(const detail::RemoteTarget& target);
  void forget_proxy(Pid proxy);  // the proxy has exited
};

}  // namespace coppice
