// coppice/node.hpp against a real Erlang node (Debian's erlang-nox): the test starts its own epmd
// on a private port and an `erl -sname` node on loopback, and stops both at the end. Messages both
// ways, by registered name and by pid, terms of every kind, and the errors: a wrong cookie, a node
// that is not there, a bad name.
#include "coppice/node.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"

extern char** environ;

using namespace coppice;
using namespace std::chrono_literals;

namespace {

constexpr auto wait_time = 10s;

// Starts a program whose `fd` (1 or 2) goes into a pipe, and waits until it writes a line holding
// `marker` (epmd -d's "epmd running" once it listens, an Erlang script's "ready" once its processes
// are registered): the program says it is ready, so no test waits on time for it. What it writes
// afterwards is read to its end by a thread of its own (copied to stderr when `echo`), so that
// it never blocks on a full pipe. -1 if it did not start or did not say so within `timeout`.
pid_t start_and_wait(std::vector<std::string> argv, int fd, std::string_view marker, std::chrono::seconds timeout,
                     bool echo) {
  int p[2];
  if (::pipe(p) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, p[1], fd);
  posix_spawn_file_actions_addclose(&actions, p[0]);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(p[1]);
  if (spawned != 0) {
    ::close(p[0]);
    return -1;
  }
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool ready = false;
  while (!ready) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{p[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    if (echo) (void)!::write(2, buf, static_cast<std::size_t>(n));
    seen.append(buf, static_cast<std::size_t>(n));
    ready = seen.find(marker) != std::string::npos;
  }
  std::thread([rd = p[0], echo] {
    char buf[4096];
    for (ssize_t n; (n = ::read(rd, buf, sizeof buf)) > 0;)
      if (echo) (void)!::write(2, buf, static_cast<std::size_t>(n));
    ::close(rd);
  }).detach();
  if (!ready) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// An Erlang node running `script`, which prints "ready" once its processes are registered.
pid_t start_erlang(const std::string& sname, const std::string& cookie, const std::string& script,
                   std::vector<std::string> more = {}) {
  std::vector<std::string> argv{"erl", "-sname", sname, "-setcookie", cookie, "-noshell", "-noinput"};
  argv.insert(argv.end(), more.begin(), more.end());
  argv.push_back("-eval");
  argv.push_back(script);
  return start_and_wait(std::move(argv), 1, "ready", 60s, true);
}

// A port no one listens on now, as the kernel picks one (a fixed range could hold another
// connection's local port): epmd takes it a moment later.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port != 0 ? port : 40000 + static_cast<int>(::getpid() % 20000);
}

void stop_program(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// The Erlang side: `echo`, registered, answers {From, N} with {pong, N+1}, {echo, From, T} with
// {echoed, T}, and {go, CNode, ReplyTo} by calling coppice's `cserver` with {self(), 41} and
// telling ReplyTo what came back.
const char* erlang_script = R"(
% kv: a gen_server compiled here, registered as kv: {add, N} adds and replies {sum, Total}; crash
% exits; {stop, R} stops with R.
Forms = [begin {ok, Ts, _} = erl_scan:string(S), {ok, F} = erl_parse:parse_form(Ts), F end || S <- [
  "-module(kv).",
  "-behaviour(gen_server).",
  "-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).",
  "init(N) -> {ok, N}.",
  "handle_call({add, K}, _From, N) -> {reply, {sum, N + K}, N + K};"
  " handle_call(crash, _From, _N) -> exit(crashed);"
  " handle_call({stop, R}, _From, N) -> {stop, R, stopped, N}.",
  "handle_cast({set, K}, _N) -> {noreply, K}.",
  "handle_info(_M, N) -> {noreply, N}."]],
{ok, kv, Bin} = compile:forms(Forms),
{module, kv} = code:load_binary(kv, "kv.erl", Bin),
{ok, _} = gen_server:start({local, kv}, kv, 0, []),
% coppice_child, from the repository (COPPICE_CHILD_ERL), and csup: a supervisor of one coppice
% child of kind worker on the node it is given.
{ok, coppice_child, ChildBin} = compile:file(os:getenv("COPPICE_CHILD_ERL"), [binary, return_errors]),
{module, coppice_child} = code:load_binary(coppice_child, "coppice_child.erl", ChildBin),
SupForms = [begin {ok, Ts, _} = erl_scan:string(S), {ok, F} = erl_parse:parse_form(Ts), F end || S <- [
  "-module(csup).",
  "-behaviour(supervisor).",
  "-export([init/1]).",
  "init(Node) -> {ok, {#{strategy => one_for_one, intensity => 5, period => 10},"
  " [#{id => worker, start => {coppice_child, start_link, [Node, worker, [1, 2]]}, shutdown => 2000}]}}."]],
{ok, csup, SupBin} = compile:forms(SupForms),
{module, csup} = code:load_binary(csup, "csup.erl", SupBin),
% A waiter: says who it is, then exits when told ({exit, R}), traps exits when told (trap), links
% or monitors a pid when told and reports what that brings ({waiter_got, M}); its death is reported
% as {waiter_down, Reason} to ReplyTo.
Waiter = fun(ReplyTo) ->
  {W, Ref} = spawn_monitor(fun() ->
    ReplyTo ! {waiter, self()},
    (fun Loop() ->
      receive
        {exit, R} -> exit(R);
        trap -> process_flag(trap_exit, true), ReplyTo ! trapping;
        {link, P} -> link(P), ReplyTo ! {linked, P};
        {unlink, P} -> unlink(P), ReplyTo ! {unlinked, P};
        {monitor, P} -> ReplyTo ! {monitoring, monitor(process, P)};
        {exit_other, P, R} -> exit(P, R), ReplyTo ! {sent_exit, P};
        M -> ReplyTo ! {waiter_got, M}
      end,
      Loop()
    end)()
  end),
  receive {'DOWN', Ref, process, W, Why} -> ReplyTo ! {waiter_down, Why} end
end,
Echo = fun Loop() ->
  receive
    {From, N} when is_pid(From), is_integer(N) -> From ! {pong, N + 1};
    {echo, From, T} -> From ! {echoed, T};
    {spawn_victim, From, Trap} ->
      % The victim says who it is once it traps (or not), and is monitored from its first moment.
      {V, Ref} = spawn_monitor(fun() ->
        process_flag(trap_exit, Trap),
        From ! {victim, self()},
        receive M -> From ! {victim_got, M} end
      end),
      receive {'DOWN', Ref, process, V, R} -> From ! {victim_down, R} after 5000 -> From ! {victim_down, timeout} end;
    {spawn_waiter, ReplyTo} -> spawn(fun() -> Waiter(ReplyTo) end);
    {call, Server, Request, ReplyTo} ->
      spawn(fun() -> ReplyTo ! {called, catch gen_server:call(Server, Request, 5000)} end);
    {cast, Server, Request} -> gen_server:cast(Server, Request);
    {burst_then_exit, To, N, ReplyTo} ->
      % N messages to To, then exit(To, done): To must see them all before the exit signal.
      spawn(fun() -> [To ! {n, I} || I <- lists:seq(1, N)], exit(To, done), ReplyTo ! burst_sent end);
    {count_then_exit, ReplyTo} ->
      % A trapping process that counts {n, I} in order until an EXIT comes, and says what it saw.
      spawn(fun() ->
        process_flag(trap_exit, true),
        ReplyTo ! {counter, self()},
        (fun Count(Next) ->
          receive
            {n, Next} -> Count(Next + 1);
            {n, Other} -> ReplyTo ! {out_of_order, Next, Other};
            {'EXIT', _, Why} -> ReplyTo ! {counted, Next - 1, Why}
          end
        end)(1)
      end);
    {start_sup, CNode, ReplyTo} ->
      % The supervisor's parent stays alive (a supervisor exits with its parent).
      spawn(fun() ->
        ReplyTo ! {sup, supervisor:start_link(csup, CNode), self()},
        receive {terminate_child, S, R} -> R ! {terminated, supervisor:terminate_child(S, worker)} end,
        receive stop -> ok end
      end);
    {undecodable, From} -> From ! {big, 1 bsl 70}, From ! {a_fun, fun() -> ok end}, From ! after_them;
    {go, CNode, ReplyTo} ->
      {cserver, CNode} ! {self(), 41},
      receive {pong, _} = R -> ReplyTo ! {erlang_saw, R} after 5000 -> ReplyTo ! {erlang_saw, timeout} end
  end,
  Loop()
end,
register(echo, spawn(Echo)),
io:format("ready~n"),
receive stop -> ok end.
)";

// A second or third Erlang node: `lonely` answers {who, P} with {me, self()}.
const char* lonely_script =
    "register(lonely, spawn(fun L() -> receive {who, P} -> P ! {me, self()}, L() end end)), "
    "io:format(\"ready~n\"), receive stop -> ok end.";

class ErlangNode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    port_ = free_port();
    ::setenv("ERL_EPMD_PORT", std::to_string(port_).c_str(), 1);  // ei and erl both read it
    ::setenv("COPPICE_CHILD_ERL", COPPICE_CHILD_ERL, 1);          // the script loads it
    epmd_ = start_and_wait({"epmd", "-d", "-port", std::to_string(port_)}, 2, "epmd running", 10s, false);
    beam_name_ = "beam" + std::to_string(::getpid());
    if (epmd_ > 0) beam_ = start_erlang(beam_name_, cookie_, erlang_script);
  }
  void SetUp() override {
    ASSERT_GT(epmd_, 0) << "epmd did not start";
    ASSERT_GT(beam_, 0) << "the Erlang node did not start";
  }
  static void TearDownTestSuite() {
    stop_program(beam_);
    stop_program(epmd_);
  }

  // The Erlang node's full name (it said it was ready before any test ran).
  std::string beam(Runtime&, Node& node) { return beam_name_ + node.name().substr(node.name().find('@')); }

  static inline int port_ = 0;
  static inline pid_t epmd_ = -1;
  static inline pid_t beam_ = -1;
  static inline std::string beam_name_;
  static inline std::string cookie_ = "coppice_test_cookie";
};

NodeOptions options(std::string name, std::string cookie) {
  NodeOptions o;
  o.name = std::move(name);
  o.cookie = std::move(cookie);
  return o;
}

std::unique_ptr<Node> start_node(Runtime& rt, std::string name, std::string cookie = "coppice_test_cookie") {
  Result<std::unique_ptr<Node>> n = Node::start(rt, options(name + std::to_string(::getpid()), cookie));
  if (!n) {
    ADD_FAILURE() << n.error().message();
    return nullptr;
  }
  return std::move(*n);
}

}  // namespace

TEST_F(ErlangNode, CoppiceSendsToARegisteredErlangProcessAndGetsTheReplyAtItsPid) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c1");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  ASSERT_TRUE(node->send(b, "echo", Term::tuple({Term(node->pid_of(inbox.pid())), 41}), inbox.pid()));
  std::optional<Term> reply = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, Term::tuple({Term::atom("pong"), 42})) << reply->to_string();
  EXPECT_EQ(node->local_pid(node->pid_of(inbox.pid())).value(), inbox.pid());
}

TEST_F(ErlangNode, ErlangSendsToARegisteredCoppiceProcessWhichRepliesToTheErlangPid) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c2");
  ASSERT_TRUE(node);
  Node* n = node.get();
  const Pid server = rt.spawn([n]() -> Async<void> {
    for (;;) {
      Term t = co_await receive<Term>();
      if (t.is(Term::Kind::tuple) && t.elements().size() == 2 && t.elements()[0].is(Term::Kind::pid))
        (void)n->send(t.elements()[0].pid(), Term::tuple({Term::atom("pong"), t.elements()[1].integer() + 1}));
    }
  });
  ASSERT_TRUE(rt.register_name("cserver", server));
  const std::string b = beam(rt, *node);
  ASSERT_TRUE(node->send(b, "echo",
                         Term::tuple({Term::atom("go"), Term::atom(node->name()), Term(node->pid_of(inbox.pid()))})));
  std::optional<Term> saw = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(saw);
  EXPECT_EQ(*saw, Term::tuple({Term::atom("erlang_saw"), Term::tuple({Term::atom("pong"), 42})})) << saw->to_string();
}

TEST_F(ErlangNode, TermsOfEveryKindComeBackFromErlangAsTheyWent) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c3");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  const ErlPid me = node->pid_of(inbox.pid());
  Term::List improper{{1, 2}, std::make_shared<const Term>(3)};
  const Term all = Term::tuple({
      0,
      255,
      -1,
      std::int64_t{1} << 40,
      -(std::int64_t{1} << 62),
      std::int64_t{INT64_MAX},
      3.25,
      -0.5,
      Term::atom("ok"),
      Term::atom("Hello World"),
      Term::atom("ünïcödé"),
      Term::binary("bytes\0with nul"),
      Term::binary(std::string(100000, 'b')),
      Term::string("a charlist"),
      Term::tuple({}),
      Term::list({}),
      Term::list({Term::atom("a"), Term::tuple({1})}),
      Term(std::move(improper)),
      Term::map({{Term::atom("k"), Term::list({1, 2})}}),
      Term(me),
      Term(ErlRef{node->name(), 0, {1, 2, 3}}),
  });
  ASSERT_TRUE(node->send(b, "echo", Term::tuple({Term::atom("echo"), Term(me), all})));
  std::optional<Term> back = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(back);
  ASSERT_TRUE(back->is_tagged("echoed", 2)) << back->to_string().substr(0, 300);
  const Term& got = back->elements()[1];
  ASSERT_EQ(got.elements().size(), all.elements().size());
  for (std::size_t i = 0; i < all.elements().size(); ++i) {
    if (all.elements()[i].is(Term::Kind::ref)) {  // Erlang may rewrite a ref's creation: same
                                                  // node and words
      EXPECT_EQ(got.elements()[i].ref().node, node->name());
      EXPECT_EQ(got.elements()[i].ref().ids, all.elements()[i].ref().ids);
      continue;
    }
    EXPECT_EQ(got.elements()[i], all.elements()[i])
        << "element " << i << ": " << got.elements()[i].to_string().substr(0, 100);
  }
}

TEST_F(ErlangNode, AWrongCookieANodeThatIsNotThereAndABadNameAreClearErrors) {
  Runtime rt;
  auto good = start_node(rt, "c4");
  ASSERT_TRUE(good);
  const std::string b = beam(rt, *good);
  ASSERT_TRUE(good->connect(b));
  EXPECT_TRUE(good->connect(b));  // connected already: the same connection
  auto wrong = start_node(rt, "c5", "not_the_cookie");
  ASSERT_TRUE(wrong);
  Status refused = wrong->connect(b);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::not_allowed) << refused.error().message();
  Status absent = good->send("nobody@" + good->name().substr(good->name().find('@') + 1), "x", Term(1));
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().kind(), ErrorKind::noconnection) << absent.error().message();
  const std::vector<std::string> nodes = good->connected_nodes();
  EXPECT_NE(std::find(nodes.begin(), nodes.end(), b), nodes.end()) << "connected to " << b;
  Result<Pid> foreign = good->local_pid(ErlPid{b, 1, 0, 0});
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().kind(), ErrorKind::noproc);
  Result<Pid> unknown = good->local_pid(ErlPid{good->name(), 999999, 7, 0});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind(), ErrorKind::noproc);
  NodeOptions no_tick = options("c4b", "coppice_test_cookie");
  no_tick.net_ticktime = std::chrono::milliseconds(0);
  Result<std::unique_ptr<Node>> refused_options = Node::start(rt, no_tick);
  ASSERT_FALSE(refused_options);
  EXPECT_EQ(refused_options.error().kind(), ErrorKind::invalid_argument);
  Status no_host = good->send("no_at_sign", "x", Term(1));
  ASSERT_FALSE(no_host);
  EXPECT_EQ(no_host.error().kind(), ErrorKind::invalid_argument);
  Result<std::unique_ptr<Node>> bad = Node::start(rt, options("a@b", "c"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), ErrorKind::invalid_argument);
  Result<std::unique_ptr<Node>> no_cookie = Node::start(rt, options("x", ""));
  ASSERT_FALSE(no_cookie);
  EXPECT_EQ(no_cookie.error().kind(), ErrorKind::invalid_argument);
}

TEST_F(ErlangNode, WhatDoesNotDecodeReachesTheProcessAsAnErrorWithItsBytes) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c6");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  ASSERT_TRUE(node->send(b, "echo", Term::tuple({Term::atom("undecodable"), Term(node->pid_of(inbox.pid()))})));
  std::optional<UndecodableTerm> big = inbox.receive<UndecodableTerm>(wait_time);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->error.kind(), ErrorKind::bad_term);
  EXPECT_NE(big->error.message().find("beyond 64 bits"), std::string::npos) << big->error.message();
  ASSERT_FALSE(big->bytes.empty());
  EXPECT_EQ(static_cast<unsigned char>(big->bytes[0]), 131u);
  std::optional<UndecodableTerm> fun = inbox.receive<UndecodableTerm>(wait_time);
  ASSERT_TRUE(fun);
  EXPECT_NE(fun->error.message().find("a fun"), std::string::npos) << fun->error.message();
  std::optional<Term> after = inbox.receive<Term>(wait_time);  // the connection goes on
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->is_atom("after_them")) << after->to_string();
}

TEST_F(ErlangNode, ExitReachesAnErlangProcessAsExit2KillingItOrTellingATrappingOne) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c7");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  const ErlPid me = node->pid_of(inbox.pid());
  auto victim = [&](bool trap) -> std::optional<ErlPid> {
    EXPECT_TRUE(node->send(b, "echo", Term::tuple({Term::atom("spawn_victim"), Term(me), Term::boolean(trap)})));
    std::optional<Term> v = inbox.receive<Term>(wait_time);
    if (!v || !v->is_tagged("victim", 2)) return std::nullopt;
    return v->elements()[1].pid();
  };
  // Killed.
  std::optional<ErlPid> v1 = victim(false);
  ASSERT_TRUE(v1);
  ASSERT_TRUE(node->exit(*v1, Term::atom("kill"), inbox.pid()));
  std::optional<Term> down1 = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(down1);
  EXPECT_EQ(*down1, Term::tuple({Term::atom("victim_down"), Term::atom("killed")})) << down1->to_string();
  // A reason of ours: it dies with it.
  std::optional<ErlPid> v2 = victim(false);
  ASSERT_TRUE(v2);
  const Term reason = Term::tuple({Term::atom("shutdown"), Term::binary("bye")});
  ASSERT_TRUE(node->exit(*v2, reason, inbox.pid()));
  std::optional<Term> down2 = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(down2);
  EXPECT_EQ(*down2, Term::tuple({Term::atom("victim_down"), reason})) << down2->to_string();
  // Trapping exits: it gets {'EXIT', From, Reason}, From being the inbox's pid on the wire.
  std::optional<ErlPid> v3 = victim(true);
  ASSERT_TRUE(v3);
  ASSERT_TRUE(node->exit(*v3, Term::atom("please"), inbox.pid()));
  std::optional<Term> got = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got,
            Term::tuple({Term::atom("victim_got"), Term::tuple({Term::atom("EXIT"), Term(me), Term::atom("please")})}))
      << got->to_string();
  std::optional<Term> down3 = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(down3);
  EXPECT_EQ(*down3, Term::tuple({Term::atom("victim_down"), Term::atom("normal")})) << down3->to_string();
}

namespace {

// The first Term message {Tag, ...} of `arity` elements, leaving the others in the inbox.
std::optional<Term> receive_tagged(Inbox& inbox, std::string_view tag, std::size_t arity) {
  auto pred = [&](const Message& m) {
    const Term* t = m.get_if<Term>();
    return t != nullptr && t->is_tagged(tag, arity);
  };
  std::optional<Message> m = inbox.receive_if(pred, wait_time);
  if (!m) return std::nullopt;
  return m->take<Term>();
}

// The pid of `lonely` on `beam` (the lonely_script), asked by name.
std::optional<ErlPid> who(Node& node, const std::string& beam, Inbox& inbox) {
  if (!node.send(beam, "lonely", Term::tuple({Term::atom("who"), Term(node.pid_of(inbox.pid()))}), inbox.pid()))
    return std::nullopt;
  std::optional<Term> me = receive_tagged(inbox, "me", 2);
  if (!me) return std::nullopt;
  return me->elements()[1].pid();
}

// {n, I}, made outside a coroutine (g++ 12 refuses an initializer list in one).
Term numbered(int i) { return Term::tuple({Term::atom("n"), i}); }

// An Erlang waiter (the script's Waiter) reporting to `inbox`: its pid.
std::optional<ErlPid> spawn_waiter(Node& node, const std::string& beam, Inbox& inbox) {
  if (!node.send(beam, "echo", Term::tuple({Term::atom("spawn_waiter"), Term(node.pid_of(inbox.pid()))})))
    return std::nullopt;
  std::optional<Term> w = receive_tagged(inbox, "waiter", 2);
  if (!w) return std::nullopt;
  return w->elements()[1].pid();
}

// A server for Erlang's gen_server:call: {add, N} adds N and replies {sum, Total}; {stop, R} stops
// it with reason R after replying; anything else is answered {unknown, Request}. A cast {set, N}
// sets the total.
class Summer : public GenServer<Summer> {
 public:
  using calls = Protocol<Term>;
  using casts = Protocol<Term>;
  CallReturn<Term> handle_call(Term request) {
    if (request.is_tagged("add", 2)) {
      total_ += request.elements()[1].integer();
      return Term::tuple({Term::atom("sum"), total_});
    }
    if (request.is_tagged("stop", 2))
      return CallReturn<Term>::stop(ExitReason::other(request.elements()[1].atom_name()), Term::atom("stopping"));
    return Term::tuple({Term::atom("unknown"), request});
  }
  void handle_cast(Term request) {
    if (request.is_tagged("set", 2)) total_ = request.elements()[1].integer();
  }

 private:
  std::int64_t total_ = 0;
};

}  // namespace

TEST_F(ErlangNode, ARemotePidIsALocalPidThatSendsToTheErlangProcess) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c8");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  std::optional<ErlPid> w = spawn_waiter(*node, b, inbox);
  ASSERT_TRUE(w);
  Result<Pid> pw = node->remote(*w);
  ASSERT_TRUE(pw) << pw.error().message();
  EXPECT_EQ(node->remote(*w).value(), *pw);                                 // one proxy per remote pid
  EXPECT_EQ(node->pid_of(*pw), *w);                                         // and back
  EXPECT_EQ(node->remote(node->pid_of(inbox.pid())).value(), inbox.pid());  // a pid of ours is ours
  rt.send(*pw, Term::atom("hello"));
  std::optional<Term> got = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->elements()[1].is_atom("hello")) << got->to_string();
  // By name: {echo, Node} as a pid.
  Result<Pid> echo = node->remote(b, "echo");
  ASSERT_TRUE(echo) << echo.error().message();
  rt.send(*echo, Term::tuple({Term(node->pid_of(inbox.pid())), 9}));
  std::optional<Term> pong = receive_tagged(inbox, "pong", 2);
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->elements()[1].integer(), 10);
  EXPECT_EQ(node->remote(ErlPid{"nohost", 1, 0, 0}).error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(node->remote("nohost", "echo").error().kind(), ErrorKind::invalid_argument);
}

TEST_F(ErlangNode, ACoppiceProcessLinksAndMonitorsAnErlangProcessAndHearsOfItsDeath) {
  Runtime rt;
  Inbox inbox(rt);  // an inbox traps exits: the link's signal arrives as Exit
  auto node = start_node(rt, "c9");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  std::optional<ErlPid> w = spawn_waiter(*node, b, inbox);
  ASSERT_TRUE(w);
  const Pid pw = node->remote(*w).value();
  ASSERT_TRUE(inbox.link(pw));
  const Ref mref = inbox.monitor(pw);
  // After the LINK and MONITOR_P, in order: the waiter exits with `bye`.
  inbox.send(pw, Term::tuple({Term::atom("exit"), Term::atom("bye")}));
  std::optional<Exit> exit = inbox.receive<Exit>(wait_time);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->from, pw);
  EXPECT_EQ(exit->reason, ExitReason::other("bye")) << exit->reason;
  std::optional<Down> down = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, mref);
  EXPECT_EQ(down->pid, pw);
  EXPECT_EQ(down->reason, ExitReason::other("bye")) << down->reason;
  // A link to, and a monitor of, the dead process: noproc, as from any dead pid.
  const Pid again = node->remote(*w).value();
  ASSERT_TRUE(inbox.link(again));
  std::optional<Exit> exit2 = inbox.receive<Exit>(wait_time);
  ASSERT_TRUE(exit2);
  EXPECT_EQ(exit2->reason, ExitReason::noproc()) << exit2->reason;
}

TEST_F(ErlangNode, ACoppiceProcessThatExitsTakesALinkedErlangProcessWithIt) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c10");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  std::optional<ErlPid> w = spawn_waiter(*node, b, inbox);
  ASSERT_TRUE(w);
  const Pid pw = node->remote(*w).value();
  const Pid me = inbox.pid();
  // A coppice process links the waiter, says so, and exits with `boom` when told.
  const Pid c = rt.spawn([pw, me]() -> Async<void> {
    (void)link(pw);
    send(me, Term::atom("linked"));
    co_await receive<Term>();
    exit(ExitReason::other("boom"));
  });
  std::optional<Term> linked = inbox.receive<Term>(wait_time);
  ASSERT_TRUE(linked);
  inbox.send(c, Term::atom("go"));
  std::optional<Term> down = receive_tagged(inbox, "waiter_down", 2);
  ASSERT_TRUE(down);
  EXPECT_TRUE(down->elements()[1].is_atom("boom")) << down->to_string();
}

TEST_F(ErlangNode, AnErlangProcessLinksMonitorsAndExitsCoppiceProcesses) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c11");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  std::optional<ErlPid> w = spawn_waiter(*node, b, inbox);
  ASSERT_TRUE(w);
  const Pid pw = node->remote(*w).value();
  auto sleeper = [&] {
    return rt.spawn([]() -> Async<void> {
      for (;;) co_await receive<Term>();
    });
  };
  // The waiter traps exits, links and monitors a coppice process; it exits with shutdown.
  inbox.send(pw, Term::atom("trap"));
  ASSERT_TRUE(inbox.receive<Term>(wait_time));
  const Pid c1 = sleeper();
  const ErlPid c1_wire = node->pid_of(c1);
  const Ref watch = inbox.monitor(c1);
  inbox.send(pw, Term::tuple({Term::atom("link"), Term(c1_wire)}));
  ASSERT_TRUE(receive_tagged(inbox, "linked", 2));
  inbox.send(pw, Term::tuple({Term::atom("monitor"), Term(c1_wire)}));
  std::optional<Term> monitoring = receive_tagged(inbox, "monitoring", 2);
  ASSERT_TRUE(monitoring);
  const Term erlang_ref = monitoring->elements()[1];
  rt.exit(c1, ExitReason::shutdown());
  std::optional<Down> c1_down = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(c1_down);
  EXPECT_EQ(c1_down->ref, watch);
  std::optional<Term> got_exit = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(got_exit);
  EXPECT_EQ(got_exit->elements()[1], Term::tuple({Term::atom("EXIT"), Term(c1_wire), Term::atom("shutdown")}))
      << got_exit->to_string();
  std::optional<Term> got_down = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(got_down);
  EXPECT_EQ(got_down->elements()[1],
            Term::tuple({Term::atom("DOWN"), erlang_ref, Term::atom("process"), Term(c1_wire), Term::atom("shutdown")}))
      << got_down->to_string();
  // exit/2 from Erlang: a non-trapping coppice process dies with the reason, and kill kills.
  const Pid c2 = sleeper();
  const Ref watch2 = inbox.monitor(c2);
  inbox.send(pw, Term::tuple({Term::atom("exit_other"), Term(node->pid_of(c2)), Term::atom("kill")}));
  std::optional<Down> c2_down = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(c2_down);
  EXPECT_EQ(c2_down->ref, watch2);
  EXPECT_EQ(c2_down->reason, ExitReason::killed()) << c2_down->reason;
  // A link to a pid of ours that names no process: {'EXIT', Pid, noproc} at once.
  ErlPid nobody = node->pid_of(inbox.pid());
  nobody.id += 1000;
  inbox.send(pw, Term::tuple({Term::atom("link"), Term(nobody)}));
  ASSERT_TRUE(receive_tagged(inbox, "linked", 2));
  std::optional<Term> noproc = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(noproc);
  EXPECT_EQ(noproc->elements()[1], Term::tuple({Term::atom("EXIT"), Term(nobody), Term::atom("noproc")}))
      << noproc->to_string();
  // An unlinked coppice process's exit reaches the waiter no more.
  const Pid c3 = sleeper();
  const ErlPid c3_wire = node->pid_of(c3);
  inbox.send(pw, Term::tuple({Term::atom("link"), Term(c3_wire)}));
  ASSERT_TRUE(receive_tagged(inbox, "linked", 2));
  inbox.send(pw, Term::tuple({Term::atom("unlink"), Term(c3_wire)}));
  ASSERT_TRUE(receive_tagged(inbox, "unlinked", 2));
  const Ref watch3 = inbox.monitor(c3);
  rt.exit(c3, ExitReason::other("quietly"));
  ASSERT_TRUE(inbox.receive<Down>(wait_time));
  (void)watch3;
  inbox.send(pw, Term::atom("ping"));
  std::optional<Term> next = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->elements()[1].is_atom("ping")) << next->to_string();  // no EXIT came first
}

TEST_F(ErlangNode, GenServerCallsGoBothWays) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c12");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  // Coppice calls Erlang's kv, by name and by pid.
  const Pid kv = node->remote(b, "kv").value();
  Result<Term> sum = inbox.call<Term>(kv, Term::tuple({Term::atom("add"), 5}), wait_time);
  ASSERT_TRUE(sum) << sum.error().message();
  EXPECT_EQ(*sum, Term::tuple({Term::atom("sum"), 5})) << sum->to_string();
  Result<Term> sum2 = inbox.call<Term>(kv, Term::tuple({Term::atom("add"), 2}), wait_time);
  ASSERT_TRUE(sum2) << sum2.error().message();
  EXPECT_EQ(*sum2, Term::tuple({Term::atom("sum"), 7})) << sum2->to_string();
  // From a process, with co_await.
  const Pid me = inbox.pid();
  // (The request is made outside the coroutine: g++ 12 refuses an initializer list inside one.)
  rt.spawn(
      [](Pid server, Pid to, Term request) -> Async<void> {
        Result<Term> r = co_await call<Term>(server, std::move(request), 5s);
        send(to, r ? *r : Term::atom("failed"));
      },
      kv, me, Term::tuple({Term::atom("add"), 1}));
  std::optional<Term> from_process = receive_tagged(inbox, "sum", 2);
  ASSERT_TRUE(from_process);
  EXPECT_EQ(from_process->elements()[1].integer(), 8);
  // A server that crashes in the call: the caller's call fails with its reason.
  Result<Term> crashed = inbox.call<Term>(kv, Term::atom("crash"), wait_time);
  ASSERT_FALSE(crashed);
  EXPECT_EQ(crashed.error().kind(), ErrorKind::exited) << crashed.error().message();
  // A name nobody holds: noproc.
  const Pid nobody = node->remote(b, "nobody_here").value();
  Result<Term> none = inbox.call<Term>(nobody, Term::atom("hello"), wait_time);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind(), ErrorKind::noproc) << none.error().message();

  // Erlang calls a coppice GenServer by name, and casts to it.
  ASSERT_TRUE(Summer::start(rt, {.name = "summer"}));
  const Term server = Term::tuple({Term::atom("summer"), Term::atom(node->name())});
  const Term me_wire(node->pid_of(inbox.pid()));
  ASSERT_TRUE(
      node->send(b, "echo", Term::tuple({Term::atom("call"), server, Term::tuple({Term::atom("add"), 40}), me_wire})));
  std::optional<Term> called = receive_tagged(inbox, "called", 2);
  ASSERT_TRUE(called);
  EXPECT_EQ(called->elements()[1], Term::tuple({Term::atom("sum"), 40})) << called->to_string();
  ASSERT_TRUE(node->send(b, "echo", Term::tuple({Term::atom("cast"), server, Term::tuple({Term::atom("set"), 100})})));
  ASSERT_TRUE(
      node->send(b, "echo", Term::tuple({Term::atom("call"), server, Term::tuple({Term::atom("add"), 1}), me_wire})));
  std::optional<Term> called2 = receive_tagged(inbox, "called", 2);
  ASSERT_TRUE(called2);
  EXPECT_EQ(called2->elements()[1], Term::tuple({Term::atom("sum"), 101})) << called2->to_string();
  // A coppice server that stops in the call: Erlang's caller gets its reply, then the server is gone.
  ASSERT_TRUE(node->send(
      b, "echo",
      Term::tuple({Term::atom("call"), server, Term::tuple({Term::atom("stop"), Term::atom("done")}), me_wire})));
  std::optional<Term> stopped = receive_tagged(inbox, "called", 2);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(stopped->elements()[1].is_atom("stopping")) << stopped->to_string();
  // No one by the name now: Erlang's call exits noproc (its monitor's DOWN noproc, from this node).
  ASSERT_TRUE(
      node->send(b, "echo", Term::tuple({Term::atom("call"), server, Term::tuple({Term::atom("add"), 1}), me_wire})));
  std::optional<Term> gone = receive_tagged(inbox, "called", 2);
  ASSERT_TRUE(gone);
  const Term& why = gone->elements()[1];
  ASSERT_TRUE(why.is_tagged("EXIT", 2)) << why.to_string();
  ASSERT_TRUE(why.elements()[1].is(Term::Kind::tuple)) << why.to_string();
  EXPECT_TRUE(why.elements()[1].elements()[0].is_atom("noproc")) << why.to_string();
}

TEST_F(ErlangNode, ALostConnectionIsNoconnectionToLinksAndMonitorsOnBothSides) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c13");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  // A second Erlang node, to be killed: `lonely` answers {who, P} with {me, self()}.
  const std::string b2_name = "beam2x" + std::to_string(::getpid());
  const std::string b2 = b2_name + b.substr(b.find('@'));
  const pid_t beam2 = start_erlang(b2_name, cookie_, lonely_script);
  ASSERT_GT(beam2, 0);
  const Pid lonely_by_name = node->remote(b2, "lonely").value();
  std::optional<ErlPid> lonely_erl = who(*node, b2, inbox);
  ASSERT_TRUE(lonely_erl);
  const Pid lonely = node->remote(*lonely_erl).value();
  ASSERT_TRUE(inbox.link(lonely));
  const Ref by_pid = inbox.monitor(lonely);
  const Ref by_name = inbox.monitor(lonely_by_name);
  // The monitors are on the wire once the proxies have had their turn: a round trip through
  // `lonely` after them says so.
  inbox.send(lonely, Term::tuple({Term::atom("who"), Term(node->pid_of(inbox.pid()))}));
  ASSERT_TRUE(receive_tagged(inbox, "me", 2));

  // On the Erlang side: a trapping waiter on the first Erlang node links and monitors a process
  // of a second coppice node, which then goes away.
  std::optional<ErlPid> w = spawn_waiter(*node, b, inbox);
  ASSERT_TRUE(w);
  const Pid pw = node->remote(*w).value();
  inbox.send(pw, Term::atom("trap"));
  ASSERT_TRUE(inbox.receive<Term>(wait_time));
  auto node2 = start_node(rt, "c13b");
  ASSERT_TRUE(node2);
  const Pid c = rt.spawn([]() -> Async<void> {
    for (;;) co_await receive<Term>();
  });
  const ErlPid c_wire = node2->pid_of(c);
  inbox.send(pw, Term::tuple({Term::atom("link"), Term(c_wire)}));
  ASSERT_TRUE(receive_tagged(inbox, "linked", 2));
  inbox.send(pw, Term::tuple({Term::atom("monitor"), Term(c_wire)}));
  std::optional<Term> monitoring = receive_tagged(inbox, "monitoring", 2);
  ASSERT_TRUE(monitoring);

  // Kill the second Erlang node's OS process: its proxies exit with noconnection.
  stop_program(beam2);
  std::optional<Exit> exit = inbox.receive<Exit>(wait_time);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->from, lonely);
  EXPECT_EQ(exit->reason, ExitReason::other("noconnection")) << exit->reason;
  for (int i = 0; i < 2; ++i) {
    std::optional<Down> down = inbox.receive<Down>(wait_time);
    ASSERT_TRUE(down);
    EXPECT_TRUE(down->ref == by_pid || down->ref == by_name);
    EXPECT_EQ(down->reason, ExitReason::other("noconnection")) << down->reason;
  }
  // Stop the second coppice node: the Erlang waiter hears noconnection from its link and monitor.
  node2.reset();
  std::optional<Term> got = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(got);
  std::optional<Term> got2 = receive_tagged(inbox, "waiter_got", 2);
  ASSERT_TRUE(got2);
  const Term exit_term = Term::tuple({Term::atom("EXIT"), Term(c_wire), Term::atom("noconnection")});
  const Term down_term = Term::tuple(
      {Term::atom("DOWN"), monitoring->elements()[1], Term::atom("process"), Term(c_wire), Term::atom("noconnection")});
  const Term& g1 = got->elements()[1];
  const Term& g2 = got2->elements()[1];
  EXPECT_TRUE((g1 == exit_term && g2 == down_term) || (g1 == down_term && g2 == exit_term))
      << g1.to_string() << " " << g2.to_string();
}

namespace {

// A coppice child of an Erlang supervisor: it holds its start arguments, answers calls with them.
class Worker : public GenServer<Worker> {
 public:
  using calls = Protocol<Term>;
  explicit Worker(Term args) : args_(std::move(args)) {}
  Term handle_call(Term) { return args_; }

 private:
  Term args_;
};

struct Started {
  Pid pid;
};

}  // namespace

TEST_F(ErlangNode, AnErlangSupervisorStartsRestartsAndStopsACoppiceChild) {
  Runtime rt;
  Inbox inbox(rt);
  auto node = start_node(rt, "c14");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  const Pid me = inbox.pid();
  ASSERT_TRUE(node->serve_child("worker", [me](Term args) -> Async<Result<Pid>> {
    Result<Pid> child = co_await Worker::start({}, std::move(args));
    if (child) send(me, Started{*child});
    co_return child;
  }));
  EXPECT_EQ(node->serve_child("", nullptr).error().kind(), ErrorKind::invalid_argument);
  ASSERT_TRUE(node->send(
      b, "echo", Term::tuple({Term::atom("start_sup"), Term::atom(node->name()), Term(node->pid_of(inbox.pid()))})));
  std::optional<Started> first = inbox.receive<Started>(wait_time);
  ASSERT_TRUE(first);
  std::optional<Term> sup = receive_tagged(inbox, "sup", 3);
  ASSERT_TRUE(sup);
  ASSERT_TRUE(sup->elements()[1].is_tagged("ok", 2)) << sup->to_string();
  const Term supervisor = sup->elements()[1].elements()[1];
  const ErlPid parent = sup->elements()[2].pid();
  // The child got its start arguments from the child spec.
  Result<Term> args = inbox.call<Term>(first->pid, Term::atom("args"), wait_time);
  ASSERT_TRUE(args) << args.error().message();
  EXPECT_EQ(*args, Term::list({1, 2})) << args->to_string();
  // It crashes: the supervisor, linked to it, starts another.
  inbox.monitor(first->pid);
  rt.exit(first->pid, ExitReason::other("crash"));
  ASSERT_TRUE(inbox.receive<Down>(wait_time));
  std::optional<Started> second = inbox.receive<Started>(wait_time);
  ASSERT_TRUE(second);
  EXPECT_NE(second->pid, first->pid);
  // The supervisor stops it (terminate_child: exit(Pid, shutdown), then the DOWN of its monitor).
  const Ref second_down = inbox.monitor(second->pid);
  ASSERT_TRUE(node->send(parent, Term::tuple({Term::atom("terminate_child"), supervisor, Term(node->pid_of(me))})));
  std::optional<Down> down = inbox.receive<Down>(wait_time);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, second_down);
  EXPECT_EQ(down->reason, ExitReason::shutdown()) << down->reason;
  std::optional<Term> terminated = receive_tagged(inbox, "terminated", 2);
  ASSERT_TRUE(terminated);
  EXPECT_TRUE(terminated->elements()[1].is_atom("ok")) << terminated->to_string();
  EXPECT_FALSE(inbox.receive<Started>(200ms));  // and no restart
}

TEST_F(ErlangNode, MessagesAndSignalsBetweenTwoProcessesKeepTheirOrderBothWays) {
  Runtime rt;
  Inbox inbox(rt);  // traps exits: the exit signal arrives as Exit, after the messages
  auto node = start_node(rt, "c15");
  ASSERT_TRUE(node);
  const std::string b = beam(rt, *node);
  constexpr int n = 5000;
  // Erlang to coppice: n messages, then exit/2.
  ASSERT_TRUE(node->send(b, "echo",
                         Term::tuple({Term::atom("burst_then_exit"), Term(node->pid_of(inbox.pid())), n,
                                      Term(node->pid_of(inbox.pid()))})));
  int next = 1;
  for (;;) {
    std::optional<Message> m = inbox.receive_any(wait_time);
    ASSERT_TRUE(m);
    if (const Exit* e = m->get_if<Exit>()) {
      EXPECT_EQ(e->reason, ExitReason::other("done"));
      break;
    }
    const Term* t = m->get_if<Term>();
    ASSERT_TRUE(t != nullptr);
    if (t->is_atom("burst_sent")) continue;
    ASSERT_TRUE(t->is_tagged("n", 2)) << t->to_string();
    ASSERT_EQ(t->elements()[1].integer(), next) << "out of order";
    ++next;
  }
  EXPECT_EQ(next - 1, n);
  // Coppice to Erlang: a process sends n messages to a trapping Erlang process it is linked to,
  // then exits; the Erlang process sees them all, in order, then the EXIT.
  ASSERT_TRUE(node->send(b, "echo", Term::tuple({Term::atom("count_then_exit"), Term(node->pid_of(inbox.pid()))})));
  std::optional<Term> counter = receive_tagged(inbox, "counter", 2);
  ASSERT_TRUE(counter);
  const Pid target = node->remote(counter->elements()[1].pid()).value();
  rt.spawn(
      [](Pid to, int count) -> Async<void> {
        (void)link(to);
        for (int i = 1; i <= count; ++i) send(to, numbered(i));
        exit(ExitReason::other("sent_all"));
        co_return;
      },
      target, n);
  std::optional<Term> counted = receive_tagged(inbox, "counted", 3);
  ASSERT_TRUE(counted) << "the Erlang side saw a message out of order, or nothing";
  EXPECT_EQ(counted->elements()[1].integer(), n);
  EXPECT_TRUE(counted->elements()[2].is_atom("sent_all")) << counted->to_string();
}

TEST_F(ErlangNode, ANodeThatStopsTickingIsLostAfterNetTicktime) {
  Runtime rt;
  Inbox inbox(rt);
  // Both sides at a net_ticktime of 2 s: the Erlang node ticks every half second, and this node
  // answers each tick; a node that stops (SIGSTOP: alive, but silent) is lost within 2 s.
  NodeOptions o = options("c16" + std::to_string(::getpid()), cookie_);
  o.net_ticktime = std::chrono::milliseconds(2000);
  Result<std::unique_ptr<Node>> started = Node::start(rt, o);
  ASSERT_TRUE(started) << started.error().message();
  std::unique_ptr<Node> node = std::move(*started);
  const std::string host = node->name().substr(node->name().find('@'));
  const std::string b3_name = "beam3x" + std::to_string(::getpid());
  const pid_t beam3 = start_erlang(b3_name, cookie_, lonely_script, {"-kernel", "net_ticktime", "2"});
  ASSERT_GT(beam3, 0);
  std::optional<ErlPid> lonely_erl = who(*node, b3_name + host, inbox);
  ASSERT_TRUE(lonely_erl);
  const Pid lonely = node->remote(*lonely_erl).value();
  ASSERT_TRUE(inbox.link(lonely));
  // Silent from here: no tick comes, and the connection is lost within net_ticktime (the wait's
  // bound, 10 s, is far below the 60 s a default net_ticktime would take).
  ::kill(beam3, SIGSTOP);
  std::optional<Exit> exit = inbox.receive<Exit>(wait_time);
  ::kill(beam3, SIGCONT);
  stop_program(beam3);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->from, lonely);
  EXPECT_EQ(exit->reason, ExitReason::other("noconnection")) << exit->reason;
}
