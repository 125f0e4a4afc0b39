// Exceptions escaping init(), handle(), a coroutine body or awaited work crash only that process, with the type and what() in the reason.
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct InitFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct BodyFailure : std::logic_error {
  using std::logic_error::logic_error;
};

class FailsInInit : public Process {
 public:
  void init() override { throw InitFailure("init went wrong"); }
  void handle(Message) override {}
};

class FailsInAwaitedWork : public Process {
 public:
  void handle(Message m) override {
    if (m.is<std::string>()) await(work());
  }

 private:
  static Async<void> work() {
    co_await receive<int>();
    throw BodyFailure("work went wrong");
  }
};

// Spawns P (monitored, from a helper process so it cannot die unobserved) and returns its
// exit reason.
template <class P>
std::optional<ExitReason> reason_of_spawned(Runtime& rt, Inbox& inbox) {
  rt.spawn([](Pid observer) -> Async<void> {
    spawn_monitor<P>();
    Down d = co_await receive<Down>();
    send(observer, d.reason);
  }, inbox.pid());
  return inbox.receive<ExitReason>(wait_time);
}

void expect_error(const ExitReason& reason, std::string_view type, std::string_view what) {
  EXPECT_EQ(reason.kind(), ExitReason::Kind::error) << reason;
  EXPECT_NE(reason.error_type().find(type), std::string::npos) << reason.error_type();
  EXPECT_EQ(reason.detail(), what);
  EXPECT_NE(reason.to_string().find(what), std::string::npos) << reason;
}

}  // namespace

TEST(Exceptions, EscapingInitCrashesTheProcessWithTypeAndWhat) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  std::optional<ExitReason> reason = reason_of_spawned<FailsInInit>(rt, inbox);
  ASSERT_TRUE(reason);
  expect_error(*reason, "InitFailure", "init went wrong");
}

TEST(Exceptions, EscapingHandleCrashesTheProcessWithTypeAndWhat) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  const Pid bystander = rt.spawn<Puppet>();
  const Ref ref = inbox.monitor(a);
  inbox.send(a, Throw{"handle went wrong"});
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  expect_error(d->reason, "PuppetError", "handle went wrong");
  EXPECT_TRUE(answers(inbox, bystander));
}

TEST(Exceptions, EscapingACoroutineBodyCrashesTheProcessWithTypeAndWhat) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn([]() -> Async<void> {
    co_await receive<int>();  // after a suspension, so the throw comes from a resumed body
    throw BodyFailure("body went wrong");
  });
  const Ref ref = inbox.monitor(a);
  inbox.send(a, 1);
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  expect_error(d->reason, "BodyFailure", "body went wrong");
}

TEST(Exceptions, EscapingACoroutineBodyBeforeItsFirstSuspensionCrashesToo) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  rt.spawn([](Pid observer) -> Async<void> {
    auto [child, ref] = spawn_monitor([]() -> Async<void> {
      throw BodyFailure("at once");
      co_return;
    });
    (void)child;
    (void)ref;
    Down d = co_await receive<Down>();
    send(observer, d.reason);
  }, inbox.pid());
  std::optional<ExitReason> reason = inbox.receive<ExitReason>(wait_time);
  ASSERT_TRUE(reason);
  expect_error(*reason, "BodyFailure", "at once");
}

TEST(Exceptions, EscapingAwaitedWorkCrashesTheProcess) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn<FailsInAwaitedWork>();
  const Ref ref = inbox.monitor(a);
  inbox.send(a, std::string("start"));
  inbox.send(a, 1);
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  expect_error(d->reason, "BodyFailure", "work went wrong");
}

TEST(Exceptions, ANonStandardExceptionIsStillAnErrorReason) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn([]() -> Async<void> {
    co_await receive<int>();
    throw 42;
  });
  const Ref ref = inbox.monitor(a);
  inbox.send(a, 1);
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason.kind(), ExitReason::Kind::error) << d->reason;
}

// Result::value() on an error crashes the process, as a failed match does in Erlang.
TEST(Exceptions, ValueOfAFailedResultCrashesWithTheError) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn([]() -> Async<void> {
    co_await receive<int>();
    unregister_name("not_a_name").value();
  });
  const Ref ref = inbox.monitor(a);
  inbox.send(a, 1);
  std::optional<Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason.kind(), ExitReason::Kind::error) << d->reason;
  EXPECT_NE(d->reason.error_type().find("BadResultAccess"), std::string::npos) << d->reason;
  EXPECT_NE(d->reason.detail().find("not_registered"), std::string::npos) << d->reason;
}

// The process's links fire with the error, and the linked trapping process lives on.
TEST(Exceptions, CrashReachesLinksAndTheRestCarriesOn) {
  Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  inbox.send(a, Throw{"linked crash"});
  std::optional<Exit> e = exit_from(inbox, a);
  ASSERT_TRUE(e);
  expect_error(e->reason, "PuppetError", "linked crash");
  Result<int> still = inbox.call<int>(rt.spawn([]() -> Async<void> {
    Message m = co_await receive_any();
    if (auto from = m.reply_to()) reply(*from, 1);
  }), 0, wait_time);
  ASSERT_TRUE(still) << still.error();
}
