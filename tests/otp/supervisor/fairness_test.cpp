// A process whose awaits keep completing at once (calls to a dead pid or an unknown name, a
// receive that matches at once) must still give its worker back, as the BEAM's reductions
// do: the other processes of the runtime run, a supervisor restarts, a kill takes effect.
#include "otp/supervisor/workers.hpp"

namespace coppice_test::sup {
namespace {

struct Spinning {
  Pid pid;
};

// Calls a dead pid forever; every call fails at once with noproc, without suspending.
Async<void> call_the_dead_forever(Pid dead, Pid observer) {
  bool told = false;
  for (;;) {
    Result<Pong> r = co_await coppice::call<Pong>(dead, Ping{});
    if (!told && !r && r.error().kind() == ErrorKind::noproc) {
      coppice::send(observer, Spinning{coppice::self()});
      told = true;
    }
  }
}

// Calls a name nobody holds forever: fails at once, before anything is even sent.
Async<void> call_nobody_forever(Pid observer) {
  bool told = false;
  for (;;) {
    Result<Pong> r = co_await coppice::call<Pong>(std::string_view("nobody holds this name"), Ping{});
    if (!told && !r) {
      coppice::send(observer, Spinning{coppice::self()});
      told = true;
    }
  }
}

// Receives what it has just sent itself, forever: every receive matches at once.
Async<void> receive_own_messages_forever(Pid observer) {
  bool told = false;
  for (int i = 0;; ++i) {
    coppice::send(coppice::self(), i);
    (void)co_await coppice::receive<int>();
    if (!told) {
      coppice::send(observer, Spinning{coppice::self()});
      told = true;
    }
  }
}

TEST(Fairness, ProcessesSpinningOnAwaitsThatCompleteAtOnceDoNotStarveTheRuntime) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid sup = Supervisor::start(rt, {worker("child1", inbox.pid())}, flags(Strategy::one_for_one, 10)).value();
  Pid child = started_pid(inbox, "child1");
  const Pid server = rt.spawn<Puppet>();
  const Pid dead = dead_pid(rt, inbox);

  // More spinners than workers: without a yield each holds a worker for ever.
  std::vector<Pid> spinners = {rt.spawn(call_the_dead_forever, dead, inbox.pid()),
                               rt.spawn(call_the_dead_forever, dead, inbox.pid()),
                               rt.spawn(call_nobody_forever, inbox.pid()),
                               rt.spawn(receive_own_messages_forever, inbox.pid())};
  for (std::size_t i = 0; i < spinners.size(); ++i)
    ASSERT_TRUE(inbox.receive<Spinning>(wait_time)) << "spinner " << i << " never started";

  for (int i = 0; i < 20; ++i) ASSERT_TRUE(answers(inbox, server)) << "call " << i << " to an idle server";
  for (int i = 0; i < 3; ++i) {
    Worker::cast(rt, child, Crash{ExitReason::other("crash")});
    const Pid again = started_pid(inbox, "child1");
    ASSERT_NE(again, child) << "restart " << i;
    child = again;
  }
  EXPECT_EQ(children_of(rt, sup), (std::vector<std::pair<std::string, Pid>>{{"child1", child}}));

  // A kill is acted on at the spinner's next scheduling point: its yield.
  for (const Pid s : spinners) {
    const coppice::Ref ref = inbox.monitor(s);
    inbox.exit(s, ExitReason::kill());
    std::optional<coppice::Down> d = down_for(inbox, ref);
    ASSERT_TRUE(d) << "a spinner survived its kill";
    EXPECT_EQ(d->reason, ExitReason::killed());
  }
}

}  // namespace
}  // namespace coppice_test::sup
