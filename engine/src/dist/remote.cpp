// A remote process as a local one: the proxy (a process spawned with SpawnOptions::proxy, see
// src/runtime/proxy.hpp) that stands for a pid or a registered name of another node. What local
// processes do to it goes on the wire from its turn: messages as SEND or REG_SEND, links, unlinks,
// monitors, exits, GenServer calls and casts in OTP's `$gen_call` and `$gen_cast` forms. What the
// remote process does the reader applies in the proxy's name (node.cpp); the proxy keeps what it
// must answer later: the monitors the remote process holds on local ones, the calls it made.
#include <algorithm>
#include <cctype>

#include "dist/node_impl.hpp"
#include "runtime/proxy.hpp"

namespace coppice {

namespace detail {

namespace {

bool plain_atom(std::string_view s) {
  if (s.empty() || s.size() > 255 || !std::islower(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '_' || c == '@';
  });
}

}  // namespace

Term reason_term(const ExitReason& reason) {
  using K = ExitReason::Kind;
  switch (reason.kind()) {
    case K::normal: return Term::atom("normal");
    case K::shutdown:
      if (!reason.has_detail()) return Term::atom("shutdown");
      return Term::tuple({Term::atom("shutdown"), Term::binary(std::string(reason.detail()))});
    case K::kill: return Term::atom("kill");
    case K::killed: return Term::atom("killed");
    case K::noproc: return Term::atom("noproc");
    case K::timeout: return Term::atom("timeout");
    case K::error:
      return Term::tuple({Term::atom("error"), Term::binary(std::string(reason.error_type())),
                          Term::binary(std::string(reason.detail()))});
    case K::other: {
      const std::string_view text = reason.detail();
      return plain_atom(text) ? Term::atom(std::string(text)) : Term::binary(std::string(text));
    }
  }
  return Term::atom("normal");
}

ExitReason reason_of(const Term& term) {
  if (term.is(Term::Kind::atom)) {
    const std::string& a = term.atom_name();
    if (a == "normal") return ExitReason::normal();
    if (a == "shutdown") return ExitReason::shutdown();
    if (a == "kill") return ExitReason::kill();
    if (a == "killed") return ExitReason::killed();
    if (a == "noproc") return ExitReason::noproc();
    if (a == "timeout") return ExitReason::timeout();
    return ExitReason::other(a);
  }
  if (term.is_tagged("shutdown", 2)) {
    const Term& d = term.elements()[1];
    return ExitReason::shutdown(d.is(Term::Kind::binary) ? d.bytes() : d.to_string());
  }
  if (term.is(Term::Kind::binary)) return ExitReason::other(term.bytes());
  return ExitReason::other(term.to_string());
}

namespace {

// The proxy. Its pid is what local code holds for the remote process; Node::pid_of gives back
// the remote pid.
class RemoteProcess final : public Process {
 public:
  static constexpr std::string_view observed_behaviour = "remote";

  RemoteProcess(std::shared_ptr<Node::Impl> node, RemoteTarget target)
      : node_(std::move(node)), target_(std::move(target)) {}
  ~RemoteProcess() override {
    if (!pending_.empty()) (void)node_->write_packets(node_of(target_), pending_, /*connect=*/false);
    // The monitors the remote process held on local ones end with it.
    for (auto& [ref, w] : watches_) proxy_demonitor(node_->rt, self_, w.local, Ref::from_bits(ref));
    node_->forget_proxy(self_);
  }

  void init() override { self_ = self(); }

  void handle(Message m) override {
    if (m.is<Flush>()) {
      flush_sent_ = false;
      return flush();
    }
    if (auto* s = m.get_if<ProxySignal>()) return signal(*s);
    if (auto* g = m.get_if<ProxyGone>()) {
      // What local processes sent before the news goes out if the connection is still there.
      (void)node_->write_packets(node_of(target_), pending_, /*connect=*/false);
      pending_.clear();
      return stop_self(g->reason);
    }
    if (auto* w = m.get_if<ProxyWatch>()) {
      watches_[w->ref.bits()] = Watch{w->local, w->wire_ref, w->watched};
      return;
    }
    if (auto* u = m.get_if<ProxyUnwatch>()) {
      for (auto it = watches_.begin(); it != watches_.end(); ++it) {
        if (it->second.wire_ref != u->wire_ref) continue;
        proxy_demonitor(node_->rt, self_, it->second.local, Ref::from_bits(it->first));
        watches_.erase(it);
        break;
      }
      return;
    }
    if (auto* c = m.get_if<ProxyCallIn>()) {
      calls_in_[c->ref.bits()] = c->tag;
      return;
    }
    const detail::Envelope* e = m.envelope();
    if (e->addressing() == Addressing::alias) {  // a local server's reply to a call from the remote process
      auto it = calls_in_.find(e->ref);
      if (it == calls_in_.end()) return;
      Term tag = std::move(it->second);
      calls_in_.erase(it);
      const Term* reply = m.get_if<Term>();
      if (reply == nullptr) {
        // Only a Term crosses the wire: the caller is told in the reply's place.
        const Term answer = Term::tuple(
            {tag, Term::tuple({Term::atom("error"), Term::atom("reply_not_a_term"), Term::binary(m.type_name())})});
        return put(send_control(), &answer);
      }
      const Term answer = Term::tuple({std::move(tag), *reply});
      return put(send_control(), &answer);
    }
    const Term* term = m.get_if<Term>();
    if (term == nullptr) return;  // only a Term crosses the wire; anything else is dropped here
    if (auto from = m.reply_to()) {
      // A GenServer call to the remote process: {'$gen_call', {From, Tag}, Request}; the reply,
      // {Tag, Reply} at the caller's pid, the reader hands to the caller (node.cpp).
      const ErlRef tag = node_->make_ref();
      {
        std::lock_guard lock(node_->mutex);
        node_->calls_out[key_of(tag)] = Node::Impl::CallOut{*from, self_};
      }
      const Term call =
          Term::tuple({Term::atom("$gen_call"), Term::tuple({Term(node_->wire(from->pid)), Term(tag)}), *term});
      return put(send_control(m.from()), &call);
    }
    if (m.is_cast()) {
      const Term cast = Term::tuple({Term::atom("$gen_cast"), *term});
      return put(send_control(m.from()), &cast);
    }
    put(send_control(m.from()), term);
  }

 private:
  struct Watch {
    Pid local;
    ErlRef wire_ref;
    Term watched;
  };

  // SEND to a pid, REG_SEND to a name (which needs a sender: `from`'s pid on the wire).
  Term send_control(Pid from = {}) {
    if (const auto* pid = std::get_if<ErlPid>(&target_)) return Term::tuple({op_send, Term::atom(""), Term(*pid)});
    return Term::tuple({op_reg_send, Term(node_->wire(from)), Term::atom(""), target_term(target_)});
  }

  // Puts a packet on the wire: at once when nothing more waits for this proxy; otherwise it joins
  // the next ones, and all go out in one write when the queue is empty, or when the Flush this
  // proxy sends itself comes round (a burst of sends is one system call, not one per message).
  // A term that cannot be encoded is dropped (only a user's Term can be: a non-finite float, say).
  void put(const Term& control, const Term* message = nullptr) {
    Result<std::string> p = node_->packet(control, message);
    if (!p) return;
    pending_ += *p;
    if (pending_.size() < max_batch && detail::proxy_more_queued()) {
      if (!flush_sent_) {
        send(self_, Flush{});
        flush_sent_ = true;
      }
      return;
    }
    flush();
  }

  // A connection that cannot be made or broke: the remote process is out of reach, and the proxy
  // exits with noconnection, telling its links and monitors.
  void flush() {
    if (pending_.empty()) return;
    Status s = node_->write_packets(node_of(target_), pending_);
    pending_.clear();
    if (!s && (s.error().kind() == ErrorKind::noconnection || s.error().kind() == ErrorKind::not_allowed))
      stop_self(ExitReason::other("noconnection"));
  }

  void signal(const ProxySignal& s) {
    using K = ProxySignal::Kind;
    const Term target = target_term(target_);
    switch (s.kind) {
      case K::link:
        if (!std::holds_alternative<ErlPid>(target_)) {
          // A link needs a pid: a name's proxy answers as a process that is not there.
          proxy_exit(node_->rt, self_, s.from, ExitReason::noproc(), /*linked=*/true);
          return;
        }
        return put(Term::tuple({op_link, Term(node_->wire(s.from)), target}));
      case K::unlink:
        if (!std::holds_alternative<ErlPid>(target_)) return;
        return put(Term::tuple(
            {op_unlink_id, Term(static_cast<std::int64_t>(next_unlink_id_++)), Term(node_->wire(s.from)), target}));
      case K::monitor: {
        const ErlRef wire_ref = node_->make_ref();
        monitors_[s.ref.bits()] = wire_ref;
        return put(Term::tuple({op_monitor_p, Term(node_->wire(s.from)), target, Term(wire_ref)}));
      }
      case K::demonitor: {
        auto it = monitors_.find(s.ref.bits());
        if (it == monitors_.end()) return;
        const Term wire_ref(it->second);
        monitors_.erase(it);
        return put(Term::tuple({op_demonitor_p, Term(node_->wire(s.from)), target, wire_ref}));
      }
      case K::exit_linked:
        if (!std::holds_alternative<ErlPid>(target_)) return;
        return put(Term::tuple({op_exit, Term(node_->wire(s.from)), target, reason_term(s.reason)}));
      case K::exit:
        if (!std::holds_alternative<ErlPid>(target_)) return;
        return put(Term::tuple({op_exit2, Term(node_->wire(s.from)), target, reason_term(s.reason)}));
      case K::down: {
        auto it = watches_.find(s.ref.bits());
        if (it == watches_.end()) return;  // the remote process took its monitor off
        const Watch w = std::move(it->second);
        watches_.erase(it);
        if (!std::holds_alternative<ErlPid>(target_)) return;
        return put(Term::tuple({op_monitor_p_exit, w.watched, target, Term(w.wire_ref), reason_term(s.reason)}));
      }
    }
  }

  std::shared_ptr<Node::Impl> node_;
  RemoteTarget target_;
  Pid self_;
  std::map<std::uint64_t, ErlRef> monitors_;  // a local monitor of the remote process -> its ref on the wire
  std::map<std::uint64_t, Watch> watches_;    // the remote process's monitors of local ones, by local ref
  std::map<std::uint64_t, Term> calls_in_;    // the remote process's calls: local request ref -> its Tag
  std::uint64_t next_unlink_id_ = 1;
  struct Flush {};
  static constexpr std::size_t max_batch = 64 * 1024;
  std::string pending_;  // packets not yet written (put)
  bool flush_sent_ = false;
};

}  // namespace

}  // namespace detail

Pid Node::Impl::proxy(const detail::RemoteTarget& target) {
  std::lock_guard lock(mutex);
  const auto* pid = std::get_if<ErlPid>(&target);
  const auto* name = std::get_if<detail::RemoteName>(&target);
  Pid known;
  if (pid != nullptr) {
    if (auto it = proxy_of.find(detail::key_of(*pid)); it != proxy_of.end()) known = it->second;
  } else if (auto it = name_proxy_of.find({name->node, name->name}); it != name_proxy_of.end()) {
    known = it->second;
  }
  // A proxy that has exited without being forgotten (the runtime stopped before its first turn)
  // is replaced.
  if (known && rt.alive(known)) return known;
  if (stopping) return {};
  const Pid p = detail::spawn_in<detail::RemoteProcess>(detail::core_of(rt), detail::SpawnOptions{.proxy = true},
                                                        shared_from_this(), target);
  if (!p) return {};
  if (pid != nullptr && dead.contains(detail::key_of(*pid))) {
    rt.send(p, detail::ProxyGone{ExitReason::noproc()});  // dead from the start, and in no map
    return p;
  }
  if (pid != nullptr) {
    proxy_of[detail::key_of(*pid)] = p;
  } else {
    name_proxy_of[{name->node, name->name}] = p;
  }
  target_of[p.bits()] = target;
  return p;
}

void Node::Impl::forget_proxy(Pid proxy) {
  if (!proxy) return;
  std::lock_guard lock(mutex);
  auto it = target_of.find(proxy.bits());
  if (it == target_of.end()) return;
  if (const auto* pid = std::get_if<ErlPid>(&it->second)) {
    if (auto p = proxy_of.find(detail::key_of(*pid)); p != proxy_of.end() && p->second == proxy) proxy_of.erase(p);
  } else {
    const auto& n = std::get<detail::RemoteName>(it->second);
    if (auto p = name_proxy_of.find({n.node, n.name}); p != name_proxy_of.end() && p->second == proxy)
      name_proxy_of.erase(p);
  }
  target_of.erase(it);
  for (auto c = calls_out.begin(); c != calls_out.end();) {
    c = c->second.proxy == proxy ? calls_out.erase(c) : std::next(c);
  }
}

}  // namespace coppice
