// GenServer callbacks: call outcomes, deferred replies, casts, continue, timeouts, terminate.
#include <atomic>

#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::CallReturn;
using coppice::ErrorKind;
using coppice::Exit;
using coppice::ExitReason;
using coppice::From;
using coppice::GenServer;
using coppice::Init;
using coppice::Message;
using coppice::NoReply;
using coppice::Pid;
using coppice::Result;
using coppice::StartOptions;

struct Get {};
struct Put {
  int value;
};
struct DelayedAnswer {  // answered when a Release arrives
};
struct Release {};
struct CallSelf {};
struct StopSelf {};
struct StopWith {
  ExitReason reason;
};
struct Crash {
  std::string what;
};
struct Forward {  // handed to `helper`, which replies in the server's place
  Pid helper;
};
struct ReplyFor {
  From from;
  int value;
};

// Records the order in which its callbacks ran.
struct Trace {
  std::vector<std::string> events;
};

class Server : public GenServer<Server> {
 public:
  using calls = coppice::Protocol<Get, DelayedAnswer, CallSelf, StopSelf, StopWith, Crash, Forward>;
  using casts = coppice::Protocol<Put, Release>;
  using infos = coppice::Protocol<Exit, coppice::Timeout, int>;

  Server(Pid observer, bool trap) : observer_(observer), trap_(trap) {}

  Init init() {
    if (trap_) coppice::trap_exit(true);
    return ok();
  }
  int handle_call(Get) { return value_; }
  CallReturn<int> handle_call(DelayedAnswer, const From& from) {
    waiting_.push_back(from);
    return noreply();
  }
  Async<CallReturn<int>> handle_call(CallSelf) {
    auto c = Server::call(coppice::self(), Get{}, 100ms);
    Result<int> r = co_await c;
    co_return reply(r ? 0 : static_cast<int>(r.error().kind()));
  }
  Async<CallReturn<int>> handle_call(StopSelf) {
    coppice::ServerRef me = coppice::self();
    auto s = coppice::stop(me);
    coppice::Status st = co_await s;
    co_return reply(st ? 0 : static_cast<int>(st.error().kind()));
  }
  CallReturn<int> handle_call(StopWith s) { return stop_with(s.reason, 1); }
  int handle_call(Crash c) { throw std::runtime_error(c.what); }
  CallReturn<int> handle_call(Forward f, const From& from) {
    coppice::send(f.helper, ReplyFor{from, value_ * 2});
    return noreply();
  }

  void handle_cast(Put p) { value_ = p.value; }
  void handle_cast(Release) {
    for (const From& f : waiting_) reply(f, value_);
    waiting_.clear();
  }

  NoReply handle_info(Exit e) {
    tell("info exit " + e.reason.to_string());
    return noreply();
  }
  void handle_info(coppice::Timeout) { tell("timeout"); }
  NoReply handle_info(int n) {
    tell("info " + std::to_string(n));
    if (n < 0) return noreply(std::chrono::milliseconds(-n));
    return noreply();
  }

  void terminate(const ExitReason& reason) { tell("terminate " + reason.to_string()); }

 private:
  void tell(std::string what) {
    if (observer_) coppice::send(observer_, std::move(what));
  }
  Pid observer_;
  bool trap_;
  int value_ = 0;
  std::vector<From> waiting_;
};

std::optional<std::string> next_event(coppice::Inbox& inbox, std::chrono::nanoseconds timeout = wait_time) {
  return inbox.receive<std::string>(timeout);
}

// A plain thread's own Inbox carries the typed call (no Inbox is made per call), with a
// timeout in any std::chrono unit; a reply that comes after the timeout is dropped before the
// inbox, which stays usable for the next call.
TEST(GenServerCall, ThroughAThreadsOwnInboxWithATimeoutInAnyUnit) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, Pid{}, false).value();
  Server::cast(rt, s, Put{7});
  EXPECT_EQ(Server::call(inbox, s, Get{}, std::chrono::seconds(10)).value(), 7);
  EXPECT_EQ(Server::call(inbox, s, Get{}, std::chrono::microseconds(10'000'000)).value(), 7);
  Result<int> late = Server::call(inbox, s, DelayedAnswer{}, std::chrono::microseconds(1500));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().kind(), ErrorKind::timeout);
  Server::cast(rt, s, Release{});  // the server now answers the abandoned call
  EXPECT_EQ(Server::call(inbox, s, Get{}).value(), 7);
  EXPECT_EQ(inbox.queued(), 0u);
}

// A process that replies for a server with a From it was handed.
class Replier : public coppice::Process {
 public:
  void handle(Message m) override {
    if (auto* r = m.get_if<ReplyFor>()) coppice::reply(r->from, r->value);
  }
};

TEST(GenServerCall, RepliesCastsAndDeferredRepliesFromAnyProcess) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  Server::cast(rt, s, Put{21});
  EXPECT_EQ(Server::call(rt, s, Get{}).value(), 21);
  Pid helper = rt.spawn<Replier>();
  EXPECT_EQ(Server::call(rt, s, Forward{helper}).value(), 42);
  EXPECT_TRUE(coppice::stop(rt, s).has_value());
  EXPECT_EQ(next_event(inbox), "terminate normal");
}

// [GST call] {delayed_answer,...} with timeout 1 => timeout; the server still answers the
// next call; no late reply in the caller's mailbox.
TEST(Scenario, gen_server_SUITE_call_timeout_leaves_no_late_reply) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  ExitReason r = run_process(rt, [s]() -> Async<void> {
    auto late = Server::call(s, DelayedAnswer{}, 1ms);
    Result<int> v = co_await late;
    CO_ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().kind(), ErrorKind::timeout);
    coppice::cast(s, Release{});  // the server now answers the abandoned call
    auto next = Server::call(s, Get{});
    Result<int> w = co_await next;
    EXPECT_EQ(w.value_or(-1), 0);
    std::optional<Message> stray = co_await coppice::receive_any(50ms);
    EXPECT_FALSE(stray.has_value()) << (stray ? stray->type_name() : "");
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [EX gen_server_test "call/3 exit messages"] call to self => calling_self; to a dead pid
// => noproc; a noreply handler with timeout 1 => timeout.
TEST(Scenario, gen_server_test_call_exit_messages) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  EXPECT_EQ(Server::call(rt, s, CallSelf{}).value(), static_cast<int>(ErrorKind::calling_self));
  Pid dead = dead_pid(rt, inbox);
  EXPECT_EQ(Server::call(rt, dead, Get{}).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Server::call(rt, "nobody", Get{}).error().kind(), ErrorKind::noproc);
  EXPECT_EQ(Server::call(rt, s, DelayedAnswer{}, 1ms).error().kind(), ErrorKind::timeout);
}

// [EX gen_server_test "stop/3"] stop from inside the server's own callback => calling_self.
TEST(Scenario, gen_server_test_stop_from_inside_is_calling_self) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  EXPECT_EQ(Server::call(rt, s, StopSelf{}).value(), static_cast<int>(ErrorKind::calling_self));
  EXPECT_TRUE(rt.alive(s));
}

// [GST stop1-4] stop => ok and dead, a second stop => noproc; stop with another reason =>
// ok; a timeout that expires => timeout, server alive.
TEST(Scenario, gen_server_SUITE_stop) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid a = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  EXPECT_TRUE(coppice::stop(rt, a).has_value());
  EXPECT_FALSE(rt.alive(a));
  EXPECT_EQ(coppice::stop(rt, a).error().kind(), ErrorKind::noproc);
  Pid b = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  EXPECT_TRUE(coppice::stop(rt, b, ExitReason::other("other_reason")).has_value());
  // A server busy in a call that never ends (suspended) does not exit in time.
  Pid c = Server::start(rt, StartOptions{}, Pid{}, false).value();
  ASSERT_TRUE(coppice::sys::suspend(rt, c).has_value());
  // Suspended, it still serves system requests, stop included: use a plain busy process.
  EXPECT_TRUE(coppice::stop(rt, c).has_value());
  Pid busy = rt.spawn<Puppet>();
  EXPECT_EQ(coppice::stop(rt, busy, ExitReason::normal(), 20ms).error().kind(), ErrorKind::timeout);
  EXPECT_TRUE(rt.alive(busy));
}

// [GST crash] {stop,{shutdown,reason},...} from a call => the caller gets the reason, the
// linked trapping starter gets EXIT {shutdown,reason}, and no crash report.
TEST(Scenario, gen_server_SUITE_crash_shutdown_is_not_reported) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  ExitReason r = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    StartOptions o;
    auto start = Server::start_link(o, Pid{}, false);
    Result<Pid> s = co_await start;
    CO_ASSERT_TRUE(s.has_value());
    auto c = Server::call(*s, StopWith{ExitReason::shutdown("reason")});
    Result<int> v = co_await c;
    EXPECT_EQ(v.value_or(0), 1) << "stop with a reply: the reply still goes";
    Exit e = co_await coppice::receive<Exit>();
    EXPECT_EQ(e.from, *s);
    EXPECT_EQ(e.reason, ExitReason::shutdown("reason"));
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(log.count("terminating"), 0u);
}

// [GST crash] a callback that raises => the caller gets the server's exit reason, the
// server's terminate runs with it, a crash report is written, and the trapping linked
// starter gets the EXIT. (C++ has no bad return value: the type system rules it out, so
// OTP's bad_return_value case maps to an exception.)
TEST(Scenario, gen_server_SUITE_call_crash_reaches_the_caller_and_the_parent) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    coppice::trap_exit(true);
    StartOptions o;
    auto start = Server::start_link(o, observer, false);
    Result<Pid> s = co_await start;
    CO_ASSERT_TRUE(s.has_value());
    auto c = Server::call(*s, Crash{"crashed"});
    Result<int> v = co_await c;
    CO_ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().kind(), ErrorKind::exited);
    EXPECT_EQ(v.error().reason().detail(), "crashed");
    Exit e = co_await coppice::receive<Exit>();
    EXPECT_EQ(e.reason.detail(), "crashed");
  });
  EXPECT_EQ(r, ExitReason::normal());
  std::optional<std::string> t = next_event(inbox);
  ASSERT_TRUE(t.has_value());
  EXPECT_NE(t->find("terminate {error"), std::string::npos) << *t;
  EXPECT_EQ(log.count("GenServer"), 1u);
  EXPECT_EQ(log.count("crashed"), 1u) << "one report, not the runtime's too";
}

// [GS terminate] a trapping server whose start_link parent sends exit(S, shutdown) runs
// terminate(shutdown) and exits shutdown; the same from an unrelated linked process goes to
// handle_info(EXIT) and terminate does not run.
TEST(Scenario, gen_server_terminate_on_parent_exit_when_trapping) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    coppice::trap_exit(true);
    StartOptions o;
    auto start = Server::start_link(o, observer, true);
    Result<Pid> s = co_await start;
    CO_ASSERT_TRUE(s.has_value());
    // An unrelated linked process exits shutdown: handle_info.
    Pid other = coppice::spawn<Puppet>();
    coppice::send(*s, 0);  // a marker, to keep the order visible
    coppice::exit(*s, ExitReason::shutdown());  // from the parent: terminate
    (void)other;
    Exit e = co_await coppice::receive<Exit>();
    EXPECT_EQ(e.from, *s);
    EXPECT_EQ(e.reason, ExitReason::shutdown());
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(next_event(inbox), "info 0");
  EXPECT_EQ(next_event(inbox), "terminate shutdown");
}

TEST(Scenario, gen_server_terminate_not_called_for_an_exit_from_a_non_parent) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), true).value();
  // The inbox is not the server's parent (start does not link); link and exit from it.
  ASSERT_TRUE(inbox.link(s).has_value());
  inbox.exit(s, ExitReason::shutdown());
  EXPECT_EQ(next_event(inbox), "info exit shutdown");
  EXPECT_TRUE(rt.alive(s));
  inbox.unlink(s);
}

// [GS terminate] not trapping: the parent's exit(S, shutdown) kills it, no terminate.
TEST(Scenario, gen_server_no_terminate_when_not_trapping) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  std::atomic<std::uint64_t> server{0};
  ExitReason r = run_process(rt, [observer, &server]() -> Async<void> {
    StartOptions o;
    auto start = Server::start_link(o, observer, false);
    Result<Pid> s = co_await start;
    CO_ASSERT_TRUE(s.has_value());
    server = s->bits();
    coppice::unlink(*s);  // so the test process itself survives
    coppice::Ref mon = coppice::monitor(*s);
    coppice::exit(*s, ExitReason::shutdown());
    auto is_down = [mon](const Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == mon; };
    Message d = co_await coppice::receive_if(is_down);
    EXPECT_EQ(d.get<coppice::Down>().reason, ExitReason::shutdown());
  });
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_FALSE(next_event(inbox, 50ms).has_value()) << "terminate must not run";
}

// [GS terminate] a trapping server whose parent exits normal: terminate(normal) runs and the
// server stops (the parent rule applies to normal too).
TEST(Scenario, gen_server_parent_exits_normal) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    StartOptions o;
    auto start = Server::start_link(o, observer, true);
    Result<Pid> s = co_await start;
    CO_ASSERT_TRUE(s.has_value());
    coppice::send(observer, *s);
  });
  EXPECT_EQ(r, ExitReason::normal());
  std::optional<Pid> s = inbox.receive<Pid>(wait_time);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(next_event(inbox), "terminate normal");
  // Gone (or going: a monitor set while it exits still sees normal).
  std::optional<ExitReason> gone = exit_reason_of(inbox, *s);
  ASSERT_TRUE(gone.has_value());
  EXPECT_TRUE(*gone == ExitReason::normal() || *gone == ExitReason::noproc()) << *gone;
}

// A timeout a callback asks for: handle_info(Timeout) when nothing arrives; a message that
// arrives first cancels it; a system request does not.
TEST(GenServerTimeout, FiresWhenNothingArrivesAndAMessageCancelsIt) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Server::start(rt, StartOptions{}, inbox.pid(), false).value();
  inbox.send(s, -20);  // handle_info(int) asks for a 20 ms timeout
  EXPECT_EQ(next_event(inbox), "info -20");
  EXPECT_EQ(next_event(inbox), "timeout");
  inbox.send(s, -5000);  // a long timeout, then a message before it
  EXPECT_EQ(next_event(inbox), "info -5000");
  EXPECT_TRUE(coppice::sys::get_status(rt, s).has_value());  // a system request: not a cancel
  inbox.send(s, 1);
  EXPECT_EQ(next_event(inbox), "info 1");
  EXPECT_FALSE(next_event(inbox, 100ms).has_value()) << "the timeout was cancelled";
}

// [GST continue] {ok,S,{continue,C}}: handle_continue runs before any queued message;
// continue chains run in order before the next message; stop from continue => DOWN normal.
struct Step1 {};
struct Step2 {};
struct StopNow {};
class Continuing : public GenServer<Continuing> {
 public:
  using infos = coppice::Protocol<int>;
  explicit Continuing(Pid observer) : observer_(observer) {}
  Init init() {
    // A message is already queued before init returns: continue still goes first.
    coppice::send(coppice::self(), 1);
    return ok(continue_with(Step1{}));
  }
  NoReply handle_continue(Step1) {
    coppice::send(observer_, std::string("continue 1"));
    return noreply(continue_with(Step2{}));
  }
  void handle_continue(Step2) { coppice::send(observer_, std::string("continue 2")); }
  NoReply handle_continue(StopNow) { return stop_with(ExitReason::normal()); }
  NoReply handle_info(int n) {
    coppice::send(observer_, "info " + std::to_string(n));
    if (n == 2) return noreply(continue_with(StopNow{}));
    return noreply();
  }

 private:
  Pid observer_;
};

TEST(Scenario, gen_server_SUITE_continue) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = Continuing::start(rt, StartOptions{}, inbox.pid()).value();
  EXPECT_EQ(next_event(inbox), "continue 1");
  EXPECT_EQ(next_event(inbox), "continue 2");
  EXPECT_EQ(next_event(inbox), "info 1");
  coppice::Ref mon = inbox.monitor(s);
  inbox.send(s, 2);
  EXPECT_EQ(next_event(inbox), "info 2");
  EXPECT_EQ(down_for(inbox, mon)->reason, ExitReason::normal());
}

// Unexpected messages: handle_info's default logs and drops them; an undeclared request is
// answered with an error at once.
class Minimal : public GenServer<Minimal> {
 public:
  using calls = coppice::Protocol<Get>;
  int handle_call(Get) { return 1; }
};

TEST(GenServerInfo, AnUnexpectedMessageIsLoggedAndDroppedAndAnUnexpectedCallAnswered) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Pid s = Minimal::start(rt, StartOptions{}).value();
  rt.send(s, 3.5);
  Result<int> r = coppice::call<int>(rt, s, std::string("what?"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(Minimal::call(rt, s, Get{}).value(), 1) << "still serving";
  EXPECT_EQ(log.count("unexpected message of type double"), 1u);
}

// System requests: get_state, replace_state, suspend/resume (messages wait, in order),
// get_status; from the server itself they are calling_self.
struct Counter : GenServer<Counter> {
  using casts = coppice::Protocol<int>;
  using calls = coppice::Protocol<Get>;
  void handle_cast(int n) { total = total * 10 + n; }
  int handle_call(Get) { return total; }
  std::string format_status() const { return "total=" + std::to_string(total); }
  int total = 0;
};

TEST(GenServerSys, GetReplaceSuspendResumeStatus) {
  coppice::Runtime rt(quiet(workers(2)));
  StartOptions o;
  o.name = "counter";
  Pid s = Counter::start(rt, o).value();
  Counter::cast(rt, s, 1);
  EXPECT_EQ(coppice::sys::get_state<Counter>(rt, "counter").value().total, 1);
  ASSERT_TRUE(coppice::sys::replace_state<Counter>(rt, s, [](Counter& c) { c.total = 5; }).has_value());
  EXPECT_EQ(Counter::call(rt, s, Get{}).value(), 5);
  ASSERT_TRUE(coppice::sys::suspend(rt, s).has_value());
  Counter::cast(rt, s, 2);
  Counter::cast(rt, s, 3);
  // Suspended: casts wait, system requests are served.
  EXPECT_EQ(coppice::sys::get_state<Counter>(rt, s).value().total, 5);
  coppice::ServerStatus st = coppice::sys::get_status(rt, s).value();
  EXPECT_TRUE(st.suspended);
  EXPECT_EQ(st.behaviour, "GenServer");
  EXPECT_EQ(st.name, "'counter'");
  EXPECT_EQ(st.state, "total=5");
  EXPECT_EQ(Counter::call(rt, s, Get{}, 50ms).error().kind(), ErrorKind::timeout);
  ASSERT_TRUE(coppice::sys::resume(rt, s).has_value());
  EXPECT_EQ(Counter::call(rt, s, Get{}).value(), 523) << "the waiting casts ran in order";
  EXPECT_FALSE(coppice::sys::get_status(rt, s).value().suspended);
  EXPECT_EQ(coppice::sys::get_state<Server>(rt, s).error().kind(), ErrorKind::invalid_argument);
}

// terminate that raises: the server exits with that error.
struct BadTerminate : GenServer<BadTerminate> {
  void terminate(const ExitReason&) { throw std::logic_error("terminate failed"); }
};

TEST(GenServerTerminate, AnExceptionInTerminateIsTheExitReason) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  Pid s = BadTerminate::start(rt, StartOptions{}).value();
  coppice::Ref mon = inbox.monitor(s);
  coppice::Status st = coppice::stop(rt, s);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().kind(), ErrorKind::exited);
  EXPECT_EQ(down_for(inbox, mon)->reason.detail(), "terminate failed");
}

// A coroutine handle_call that calls another server while its worker runs other processes:
// on one worker, a chain A -> B -> C of calls completes.
struct Chain : GenServer<Chain> {
  using calls = coppice::Protocol<Get>;
  explicit Chain(Pid next) : next_(next) {}
  Async<int> handle_call(Get) {
    if (!next_) co_return 1;
    auto c = Chain::call(next_, Get{});
    Result<int> r = co_await c;
    co_return r.value_or(-100) + 1;
  }
  Pid next_;
};

TEST(GenServerCall, AnAwaitingCallbackNeverBlocksItsWorker) {
  coppice::Runtime rt(quiet(workers(1)));
  Pid c = Chain::start(rt, StartOptions{}, Pid{}).value();
  Pid b = Chain::start(rt, StartOptions{}, c).value();
  Pid a = Chain::start(rt, StartOptions{}, b).value();
  EXPECT_EQ(Chain::call(rt, a, Get{}).value(), 3);
}

// A server that dies during a call: the caller gets its exit reason.
TEST(GenServerCall, TheCallerGetsTheReasonOfAServerThatDiedFirst) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid s = Server::start(rt, StartOptions{}, Pid{}, false).value();
  ExitReason r = run_process(rt, [s]() -> Async<void> {
    coppice::RequestId id = coppice::send_request(s, DelayedAnswer{});
    auto get = Server::call(s, Get{});
    Result<int> v = co_await get;  // answered after DelayedAnswer was taken
    EXPECT_TRUE(v.has_value());
    coppice::exit(s, ExitReason::other("boom"));
    auto response = coppice::receive_response<int>(id);
    Result<int> answer = co_await response;
    CO_ASSERT_FALSE(answer.has_value());
    EXPECT_EQ(answer.error().kind(), ErrorKind::exited);
    EXPECT_EQ(answer.error().reason(), ExitReason::other("boom"));
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// cast always succeeds, as OTP's gen_server:cast: it returns nothing; to a name nobody holds,
// a dead pid or no server at all the message is dropped, and to a live process it arrives.
TEST(GenServerCast, AlwaysSucceedsAndReturnsNothing) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::Inbox inbox(rt);
  static_assert(std::is_void_v<decltype(coppice::cast(rt, "nobody", 1))>);
  static_assert(std::is_void_v<decltype(Server::cast(rt, "nobody", Put{1}))>);
  coppice::cast(rt, "nobody", 1);
  coppice::cast(rt, dead_pid(rt, inbox), 1);
  coppice::cast(rt, coppice::ServerRef{}, 1);
  coppice::cast(rt, inbox.pid(), 2);
  EXPECT_EQ(inbox.receive<int>(std::chrono::seconds(10)), std::optional<int>(2));
}

// [PAR gen_server_test "call which throws a reply"] handle_call throws its reply, as Elixir's
// `throw {:reply, :response, :new_state}`: the caller gets the reply and the state kept the
// change made before the throw. Plain and coroutine handlers alike.
struct ThrowReply {
  int reply;
  int new_state;
};
struct ThrowReplyLater {
  int reply;
  int new_state;
};
struct ReadState {};

class Thrower : public GenServer<Thrower> {
 public:
  using calls = coppice::Protocol<ThrowReply, ThrowReplyLater, ReadState>;
  int handle_call(ThrowReply t) {
    state_ = t.new_state;
    deep_inside(t.reply);
    return -1;  // never reached
  }
  Async<int> handle_call(ThrowReplyLater t) {
    state_ = t.new_state;
    auto self_call = Thrower::call(coppice::self(), ReadState{});
    Result<int> refused = co_await self_call;  // calling_self: the coroutine goes on
    if (refused) co_return -2;
    deep_inside(t.reply);
    co_return -1;
  }
  int handle_call(ReadState) { return state_; }

 private:
  static void deep_inside(int reply) { throw CallReturn<int>(reply); }
  int state_ = 0;
};

TEST(Scenario, parent_gen_server_test_call_which_throws_a_reply) {
  coppice::Runtime rt(quiet(workers(2)));
  Pid s = Thrower::start(rt, StartOptions{}).value();
  Result<int> r = Thrower::call(rt, s, ThrowReply{42, 7});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(Thrower::call(rt, s, ReadState{}).value(), 7);
  Result<int> later = Thrower::call(rt, s, ThrowReplyLater{43, 8});
  ASSERT_TRUE(later.has_value()) << later.error();
  EXPECT_EQ(*later, 43);
  EXPECT_EQ(Thrower::call(rt, s, ReadState{}).value(), 8);
  EXPECT_TRUE(rt.process_info(s).has_value()) << "a thrown reply is not a crash";
}

}  // namespace
}  // namespace coppice_test
