// Recipe: an Erlang system hands latency-sensitive work to a coppice GenServer, and supervises it.
//
// The question: "Our Elixir/Erlang service prices orders in a hot loop. We want the pricing in
// C++, but we want it supervised like the rest of the system: restarted by our supervisor, called
// with gen_server:call, its crash an exit our code already handles."
//
// The answer: the C++ program is a node of the cluster (coppice::Node). It offers a child kind,
// "pricer", that an Erlang supervisor starts with {coppice_child, start_link, [Node, pricer,
// Args]} (engine/erlang/coppice_child.erl): the child comes back linked to the supervisor, so its
// crash reaches the supervisor as any child's, and the supervisor restarts it. The server
// registers a name as it starts, so Erlang code can call {pricer, Node} across restarts, or the
// pid the supervisor lists. Its calls are gen_server calls: the request and the reply are Erlang
// terms (coppice::Term).
//
// This program is the coppice side: `pricer --name N --cookie C`. The Erlang side,
// pricer_client.erl beside it, starts the supervisor, calls the server, crashes it, sees it
// restarted and calls it again by name, then tells this node to stop. tests/dist/erlang runs both.
#include <chrono>
#include <coppice/coppice.hpp>
#include <coppice/node.hpp>
#include <cstdio>
#include <string>

using namespace coppice;
using namespace std::chrono_literals;

// {price, Quantity, UnitCents} -> {ok, TotalCents} (with the discount its start arguments give);
// crash -> the server crashes (a C++ exception in the callback).
class Pricer : public GenServer<Pricer> {
 public:
  using calls = Protocol<Term>;
  explicit Pricer(Term args) {
    // Args from the child spec: #{discount_percent => N}.
    if (args.is(Term::Kind::map))
      for (const auto& [k, v] : args.as_map().entries)
        if (k.is_atom("discount_percent") && v.is(Term::Kind::integer)) discount_ = v.integer();
  }
  Term handle_call(Term request) {
    if (request.is_tagged("price", 3) && request.elements()[1].is(Term::Kind::integer) &&
        request.elements()[2].is(Term::Kind::integer)) {
      const std::int64_t gross = request.elements()[1].integer() * request.elements()[2].integer();
      return Term::tuple({Term::atom("ok"), gross - gross * discount_ / 100});
    }
    if (request.is_atom("crash")) throw std::runtime_error("asked to crash");
    return Term::tuple({Term::atom("error"), Term::atom("bad_request")});
  }

 private:
  std::int64_t discount_ = 0;
};

int main(int argc, char** argv) {
  NodeOptions options;
  options.name = "pricer";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--name") options.name = argv[i + 1];
    if (a == "--cookie") options.cookie = argv[i + 1];
  }
  Runtime rt;
  Result<std::unique_ptr<Node>> node = Node::start(rt, options);
  if (!node) {
    std::fprintf(stderr, "pricer: %s\n", node.error().message().c_str());
    return 1;
  }
  // The child kind the Erlang supervisor starts; `start`, not start_link: the node links the
  // child to the supervisor. The name survives restarts: each start registers it again.
  (void)(*node)->serve_child("pricer", [](Term args) -> Async<Result<Pid>> {
    co_return co_await Pricer::start({.name = "pricer"}, std::move(args));
  });
  // Erlang says when to stop: {pricer_node, Node} ! stop.
  Inbox control(rt);
  (void)rt.register_name("pricer_node", control.pid());
  std::printf("pricer: node %s is up\n", (*node)->name().c_str());
  std::fflush(stdout);
  std::optional<Term> stop = control.receive<Term>(10min);
  std::printf("pricer: %s\n", stop ? "stopping" : "no stop in 10 minutes");
  return stop ? 0 : 1;
}
