// A coppice runtime as a node of an Erlang cluster, through Erlang's own distribution library
// (`ei`, Debian's erlang-dev) for the handshake and epmd: registered with epmd, connecting to other
// nodes on first use and accepting their connections, exchanging terms (coppice/term.hpp) in the
// external format. Library coppice::dist (it links ei; the engine does not).
//
//   coppice::NodeOptions options;
//   options.name = "cnode";
//   options.cookie = "secret";
//   auto node = coppice::Node::start(rt, options).value();   // cnode@<this host>
//   Pid echo = node->remote("beam@host", "echo").value();   // {echo, 'beam@host'} as a local pid
//   send(echo, Term::tuple({to_term(node->pid_of(self())), 41}));
//
// A remote process is a local pid: remote() gives a proxy process that stands for it. Sending to
// it, link, monitor, exit and GenServer call and cast (coppice::call with a Term request) work on
// it as on any process, and reach the remote process as OTP's distribution signals; the remote
// process's signals to local processes arrive as from that pid. When the remote process dies, or
// the connection to its node is lost, the proxy exits with its reason (noconnection for a lost
// connection): every local process linked to it or monitoring it is told, as in OTP.
//
// What reaches this node for a registered name ({Name, 'cnode@host'} ! Msg) or for a pid handed out
// by pid_of() is delivered to that coppice process as a coppice::Term message (or, for bytes that
// do not decode, an UndecodableTerm). Erlang's gen_server:call and cast to a coppice process arrive
// as a request (Message::reply_to) and a cast, whose Term reply goes back to the caller.
// engine/ARCHITECTURE.md "Distribution" says what of OTP's distribution this covers.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/term.hpp"

namespace coppice {

class Runtime;

// What arrives for a local process but does not decode (an integer beyond 64 bits, a fun, a port,
// ...): the process gets this in place of the Term, with the error saying what and the bytes as
// they came, rather than the message being dropped in silence.
struct UndecodableTerm {
  Error error;
  std::string bytes;  // the external format, with its version byte
};

struct NodeOptions {
  std::string name = "coppice";  // the part before '@'
  std::string host;              // empty: this machine's short host name, as erl -sname uses
  std::string cookie;            // required, as ~/.erlang.cookie or -setcookie gives Erlang
  std::chrono::milliseconds connect_timeout{5000};
  // A connection on which nothing arrives for this long (Erlang ticks every quarter of its own
  // net_ticktime), or that takes no bytes for as long, is lost: noconnection to everything across it.
  std::chrono::milliseconds net_ticktime{60000};
  // A packet larger than this ends its connection (one sent is refused as bad_term).
  std::size_t max_packet_bytes = std::size_t{64} << 20;
};

// A node that is alive from start() to its destructor, which closes its connections (every proxy
// of theirs exits with noconnection) and leaves epmd. It must not outlive its Runtime.
class Node {
 public:
  // Errors: invalid_argument (an empty name or cookie, a name with '@'), io_error (no epmd to
  // register with, or no port to listen on; the message says which).
  static Result<std::unique_ptr<Node>> start(Runtime& runtime, NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const;  // "cnode@host"

  // {Name, Node} ! Message: to the process registered as `name` on `node`, connecting first if need
  // be. `from`, a local process, is the sender the receiver sees (its pid_of), or this node's own
  // pid. Errors: noconnection (the node cannot be reached, or its connection broke), not_allowed
  // (the node refused the handshake: a wrong cookie), bad_term (the message).
  Status send(std::string_view node, std::string_view name, const Term& message, Pid from = {});
  // Pid ! Message, to a process on another node.
  Status send(const ErlPid& to, const Term& message);
  // exit(Pid, Reason) to a process on another node (the EXIT2 signal): it dies with `reason`
  // unless it traps exits (then it gets {'EXIT', From, Reason}); the atom kill kills it.
  // `from` is the local process it comes from (its pid_of), or this node's own pid.
  Status exit(const ErlPid& to, const Term& reason, Pid from = {});
  template <TermConvertible T>
  Status send(std::string_view node, std::string_view name, const T& message, Pid from = {}) {
    return send(node, name, to_term(message), from);
  }
  template <TermConvertible T>
  Status send(const ErlPid& to, const T& message) {
    return send(to, to_term(message));
  }

  // The pid a local process has on the wire, the same every time it is asked; Erlang code sends to
  // it as to any pid (for a proxy, the remote pid it stands for). And the local process behind one
  // (noproc if it names none of ours).
  ErlPid pid_of(Pid local);
  Result<Pid> local_pid(const ErlPid& pid) const;

  // A local pid that stands for the remote process `pid` (its proxy), the same one for as long as
  // the proxy lives; a pid of this node gives the local process itself. The node is connected to
  // when the proxy first puts something on the wire. Errors: invalid_argument (not a node's pid),
  // noproc (a pid of this node that names no process), runtime_stopped.
  Result<Pid> remote(const ErlPid& pid);
  // The same for the name registered on `node` ({Name, Node}): messages, monitors and GenServer
  // calls go to whoever holds the name; a link to it is refused (noproc), as a link needs a pid.
  Result<Pid> remote(std::string_view node, std::string_view name);

  // Children of Erlang supervisors. An Erlang child spec whose start is
  // {coppice_child, start_link, [Node, Kind, Args]} (engine/erlang/coppice_child.erl, loaded on the
  // Erlang side) asks this node for a child of `kind`: `start` starts it (Worker::start(...), not
  // start_link: the node links it) and returns its pid. The child comes back to the supervisor
  // linked to it, as OTP's start protocol leaves a child, so that its exit reaches the supervisor
  // (which restarts it and counts its intensity) and the supervisor's shutdown reaches it.
  // `start` runs in this node's starter process, which Erlang reaches as {coppice_children, Node};
  // an error it returns goes back as {error, Reason}. Replaces an earlier `start` for that kind.
  // Errors: invalid_argument (an empty kind or no function), runtime_stopped.
  using ChildStart = std::function<Async<Result<Pid>>(Term args)>;
  Status serve_child(std::string kind, ChildStart start);

  // Connects now (as net_kernel:connect_node/1), rather than on the first send.
  Status connect(std::string_view node);
  std::vector<std::string> connected_nodes() const;  // as nodes(connected) lists them

  struct Impl;

 private:
  explicit Node(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the proxies, which may outlive the node
};

// A local process's pid as a term: the ErlPid its node gives it.
template <>
struct TermCodec<ErlPid> {
  static Term to_term(const ErlPid& p) { return Term(p); }
  static Result<ErlPid> from_term(const Term& t) {
    if (!t.is(Term::Kind::pid)) return Error(ErrorKind::bad_term, "expected a pid, got " + t.to_string());
    return t.pid();
  }
};

}  // namespace coppice
