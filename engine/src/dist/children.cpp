// Children of Erlang supervisors (Node::serve_child): the node's starter process, which Erlang's
// coppice_child:start_link/3 (engine/erlang/coppice_child.erl) calls as {coppice_children, Node}.
// It starts a child of the kind asked, links it to the caller (the supervisor's proxy, which puts
// the LINK on the wire ahead of the reply) and replies {ok, Pid}.
#include "dist/node_impl.hpp"
#include "runtime/proxy.hpp"

namespace coppice {

namespace {

constexpr std::string_view starter_name = "coppice_children";

class ChildStarter final : public Process {
 public:
  explicit ChildStarter(std::shared_ptr<Node::Impl> node) : node_(std::move(node)) {}

  void handle(Message m) override {
    std::optional<From> from = m.reply_to();
    const Term* request = m.get_if<Term>();
    if (!from || request == nullptr) return;  // only calls: {start_link, Kind, Args}
    await(start(*from, *request));
  }

 private:
  Async<void> start(From from, Term request) {
    auto error = [](std::string_view what, Term detail) {
      return Term::tuple({Term::atom("error"), Term::tuple({Term::atom(std::string(what)), std::move(detail)})});
    };
    if (!request.is_tagged("start_link", 3) || !request.elements()[1].is(Term::Kind::atom)) {
      reply(from, error("badarg", request));
      co_return;
    }
    const std::string& kind = request.elements()[1].atom_name();
    std::shared_ptr<const Node::ChildStart> start;  // held across the await: the kind may be replaced meanwhile
    {
      std::lock_guard lock(node_->mutex);
      if (auto it = node_->child_kinds.find(kind); it != node_->child_kinds.end()) start = it->second;
    }
    if (!start) {
      reply(from, error("unknown_child_kind", request.elements()[1]));
      co_return;
    }
    Result<Pid> child = co_await (*start)(request.elements()[2]);
    if (!child) {
      reply(from, error(to_string(child.error().kind()), Term::binary(child.error().message())));
      co_return;
    }
    // The link first: the caller's proxy puts it on the wire before the reply that follows it.
    detail::link_both(node_->rt, *child, from.pid);
    reply(from, Term::tuple({Term::atom("ok"), Term(node_->wire(*child))}));
  }

  std::shared_ptr<Node::Impl> node_;
};

}  // namespace

Pid Node::Impl::named(std::string_view name) {
  if (name == starter_name) {
    std::lock_guard lock(mutex);
    return starter;
  }
  return rt.whereis(name);
}

Status Node::serve_child(std::string kind, ChildStart start) {
  if (kind.empty() || !start) return Error(ErrorKind::invalid_argument, "serve_child: a kind and a start function");
  Impl& n = *impl_;
  std::lock_guard lock(n.mutex);
  if (!n.starter || !n.rt.alive(n.starter)) {
    n.starter = n.rt.spawn<ChildStarter>(impl_);
    if (!n.starter) return Error(ErrorKind::runtime_stopped, "serve_child: the runtime is stopping");
  }
  n.child_kinds[std::move(kind)] = std::make_shared<const ChildStart>(std::move(start));
  return {};
}

}  // namespace coppice
