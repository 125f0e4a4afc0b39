// D1 node_ping_pong (../shared/BENCHMARKS.md), coppice's side: a coppice node on loopback against
// an Erlang node's d1_echo (bench/cluster/d1.erl), the same work d1:client/3 does between two
// Erlang nodes. A coppice process holds the Erlang process as a local pid (Node::remote) and
// sends to it as to any process; K round trips, M messages out and M in. Prints one line of JSON
// and exits; tools/bench_cluster.py runs it beside the Erlang pair, round after round.
//
//   coppice_node_bench --name N --cookie C --beam beam@host --round-trips K --one-way M [--workers W]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "coppice/coppice.hpp"
#include "coppice/node.hpp"

using namespace coppice;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
  double rt_ns = 0, out_msgs_per_s = 0, in_msgs_per_s = 0;
  bool ok = false;
};

// The messages, made outside the coroutine (g++ 12 refuses an initializer list in one).
Term ping(const Term& me, long n) { return Term::tuple({me, n}); }
Term ask(const char* what, const Term& me, long m) { return Term::tuple({Term::atom(what), me, m}); }
Term numbered(long n) { return Term::tuple({Term::atom("m"), n}); }
bool is_pong(const Term& t, long n) { return t.is_tagged("pong", 2) && t.elements()[1].integer() == n; }

// Fills `out` and returns true, or returns false at the first answer that is not the one expected.
Async<bool> run(Node* node, std::string beam, long k, long m, Figures* out) {
  const Term me(node->pid_of(self()));
  // The first ping connects, and the node or d1_echo may not be there yet: asked again until it
  // answers (a proxy whose connection failed has exited: remote() gives a new one).
  bool up = false;
  Pid echo;
  for (int tries = 0; tries < 150 && !up; ++tries) {
    Result<Pid> p = node->remote(beam, "d1_echo");
    if (!p) co_return false;
    echo = *p;
    send(echo, ping(me, 0));
    std::optional<Term> t = co_await receive<Term>(std::chrono::milliseconds(200));
    up = t && is_pong(*t, 0);
  }
  if (!up) co_return false;
  for (;;) {  // late answers to the tries
    std::optional<Term> late = co_await receive<Term>(std::chrono::milliseconds(50));
    if (!late) break;
  }
  auto t0 = Clock::now();
  for (long i = k; i > 0; --i) {
    send(echo, ping(me, i));
    Term t = co_await receive<Term>();
    if (!is_pong(t, i)) co_return false;
  }
  out->rt_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(k);
  t0 = Clock::now();
  send(echo, ask("sink", me, m));
  for (long i = m; i > 0; --i) send(echo, numbered(i));
  Term sunk = co_await receive<Term>();
  if (!sunk.is_tagged("sunk", 2)) co_return false;
  out->out_msgs_per_s = static_cast<double>(m) / std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  send(echo, ask("blast", me, m));
  for (long i = 0; i < m; ++i) {
    Term t = co_await receive<Term>();
    if (!t.is_tagged("m", 2)) co_return false;
  }
  Term end = co_await receive<Term>();
  if (!end.is_atom("blast_done")) co_return false;
  out->in_msgs_per_s = static_cast<double>(m) / std::chrono::duration<double>(Clock::now() - t0).count();
  co_return true;
}

Async<void> measure(Node* node, std::string beam, long k, long m, Figures* out, Pid done) {
  out->ok = co_await run(node, std::move(beam), k, m, out);
  send(done, 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "d1coppice", cookie, beam;
  long k = 20000, m = 200000;
  unsigned workers = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--name")
      name = v;
    else if (a == "--cookie")
      cookie = v;
    else if (a == "--beam")
      beam = v;
    else if (a == "--round-trips")
      k = std::atol(v.c_str());
    else if (a == "--one-way")
      m = std::atol(v.c_str());
    else if (a == "--workers")
      workers = static_cast<unsigned>(std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "coppice_node_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (cookie.empty() || beam.empty() || k <= 0 || m <= 0) {
    std::fprintf(stderr,
                 "usage: coppice_node_bench --cookie C --beam beam@host [--name N] [--round-trips K] [--one-way M] "
                 "[--workers W]\n");
    return 2;
  }
  RuntimeOptions ro;
  ro.workers = workers;
  Runtime rt(ro);
  NodeOptions no;
  no.name = name;
  no.cookie = cookie;
  Result<std::unique_ptr<Node>> node = Node::start(rt, no);
  if (!node) {
    std::fprintf(stderr, "coppice_node_bench: %s\n", node.error().message().c_str());
    return 1;
  }
  Figures figures;
  Inbox done(rt);
  rt.spawn(measure, node->get(), beam, k, m, &figures, done.pid());
  if (!done.receive<int>(std::chrono::seconds(300)) || !figures.ok) {
    std::fprintf(stderr, "coppice_node_bench: the measurement did not finish\n");
    return 1;
  }
  std::printf("{\"rt_ns\": %.1f, \"out_msgs_per_s\": %.1f, \"in_msgs_per_s\": %.1f}\n", figures.rt_ns,
              figures.out_msgs_per_s, figures.in_msgs_per_s);
  return 0;
}
