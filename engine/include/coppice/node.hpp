// A coppice runtime as a node of an Erlang cluster, through Erlang's own distribution library
// (`ei`, Debian's erlang-dev): registered with epmd, connecting to other nodes on first use and
// accepting their connections, exchanging terms (coppice/term.hpp) in the external format. Library
// coppice::dist (it links ei; the engine does not).
//
//   coppice::NodeOptions options;
//   options.name = "cnode";
//   options.cookie = "secret";
//   auto node = coppice::Node::start(rt, options).value();   // cnode@<this host>
//   node->send("beam@host", "echo", Term::tuple({to_term(node->pid_of(me)), 41}), me);
//                                                 // {echo, 'beam@host'} ! {MyPid, 41}
//
// What reaches this node for a registered name ({Name, 'cnode@host'} ! Msg) or for a pid handed out
// by pid_of() is delivered to that coppice process as a coppice::Term message (or, for bytes that
// do not decode, an UndecodableTerm).
//
// This first step covers sending and receiving (SEMANTICS.md 11); links, monitors and exit signals
// across nodes, `$gen_call`, and remote pids inside coppice::Pid are next (engine/ARCHITECTURE.md
// "Distribution").
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
};

// A node that is alive from start() to its destructor, which closes its connections and leaves
// epmd. It must not outlive its Runtime.
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
  // it as to any pid. And the local process behind one (noproc if it names none of ours).
  ErlPid pid_of(Pid local);
  Result<Pid> local_pid(const ErlPid& pid) const;

  // Connects now (as net_kernel:connect_node/1), rather than on the first send.
  Status connect(std::string_view node);
  std::vector<std::string> connected_nodes() const;  // as nodes(connected) lists them

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
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
