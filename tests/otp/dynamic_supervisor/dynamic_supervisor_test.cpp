// DynamicSupervisor: start_child results, restarts and intensity, terminate_child, counts,
// max_children, extra_arguments, starts in flight, and shutdown.
//
// Erlang's simple_one_for_one scenarios (42, 56, 58, 59, 60) are run against DynamicSupervisor,
// Elixir's replacement for it, with Elixir's results where the two differ (ignore is
// ErrorKind::ignore and nothing is stored; terminate_child of a pid that is not a child is
// not_found; specs counts children, not the one template).
#include "coppice/dynamic_supervisor.hpp"

#include <atomic>
#include <set>

#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::ChildSpec;
using coppice::DynamicSupervisor;
using coppice::DynamicSupervisorOptions;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Inbox;
using coppice::Init;
using coppice::Pid;
using coppice::Restart;
using coppice::Result;
using coppice::Shutdown;
using coppice::StartArgs;
using Counts = DynamicSupervisor::ChildCounts;

// ---- a scripted child ------------------------------------------------------------------------

// What the n-th init of a child built from one spec does (the last entry repeats).
enum class InitDoes { ok, ignore, error, stop, raise, wait_for_go };

struct Script {
  Script(Pid report, std::vector<InitDoes> s) : report_to(report), starts(std::move(s)) {}
  Pid report_to;
  std::vector<InitDoes> starts;
  std::atomic<std::size_t> inits{0};
  InitDoes next() {
    const std::size_t n = inits++;
    return starts[std::min(n, starts.size() - 1)];
  }
};

// Sent to the test by a child whose init has returned ok, with the extra arguments it got.
struct Started {
  Pid pid;
  std::vector<int> extra;
};
// Sent by a child whose init waits for Go.
struct InInit {
  Pid pid;
};
// Sent by a child whose init returns ignore, just before it does.
struct Ignoring {
  Pid pid;
};
struct Go {};
struct Get {};
struct ExitWith {
  ExitReason reason;
};
struct UnlinkFrom {
  Pid pid;
};

class Worker : public coppice::GenServer<Worker> {
 public:
  using calls = coppice::Protocol<Get>;
  using casts = coppice::Protocol<ExitWith, UnlinkFrom>;
  // The supervisor's extra_arguments come first (ints, in these tests).
  Worker(const std::vector<std::any>& extra, std::shared_ptr<Script> script) : script_(std::move(script)) {
    for (const std::any& a : extra) extra_.push_back(std::any_cast<int>(a));
  }

  Async<Init> init() {
    switch (script_->next()) {
      case InitDoes::ok:
        break;
      case InitDoes::ignore:
        coppice::send(script_->report_to, Ignoring{coppice::self()});
        co_return ignore();
      case InitDoes::error:
        co_return error(ExitReason::other("found"));
      case InitDoes::stop:
        co_return stop_with(ExitReason::other("stopped"));
      case InitDoes::raise:
        throw std::runtime_error("init blew up");
      case InitDoes::wait_for_go: {
        coppice::send(script_->report_to, InInit{coppice::self()});
        Go go = co_await coppice::receive<Go>();
        (void)go;
        break;
      }
    }
    if (script_->report_to) coppice::send(script_->report_to, Started{coppice::self(), extra_});
    co_return ok();
  }
  int handle_call(Get) { return 1; }
  coppice::NoReply handle_cast(ExitWith e) { return stop_with(e.reason); }
  void handle_cast(UnlinkFrom u) { coppice::unlink(u.pid); }

 private:
  std::shared_ptr<Script> script_;
  std::vector<int> extra_;
};

DynamicSupervisor::SharedSpec worker_spec(Inbox& inbox, std::vector<InitDoes> starts,
                                          Restart restart = Restart::permanent) {
  auto script = std::make_shared<Script>(inbox.pid(), std::move(starts));
  return DynamicSupervisor::share(coppice::child<Worker>("worker", script).with_restart(restart));
}

Started wait_started(Inbox& inbox) {
  std::optional<Started> s = inbox.receive<Started>(wait_time);
  EXPECT_TRUE(s.has_value()) << "no child reported its start";
  return s.value_or(Started{});
}

// A child reports Started from its init, before its acknowledgement reaches the supervisor.
// Once the child answers a call, that acknowledgement is in the supervisor's mailbox ahead of
// any request we send next.
Pid started_and_stored(coppice::Runtime& rt, Inbox& inbox) {
  Pid child = wait_started(inbox).pid;
  EXPECT_TRUE(Worker::call(rt, child, Get{}).has_value());
  return child;
}

Counts counts(coppice::Runtime& rt, Pid sup) { return DynamicSupervisor::count_children(rt, sup).value(); }

// Kills `child` and waits until its exit has reached the supervisor (its EXIT to the
// supervisor goes out before its DOWN to us, and our next request to the supervisor after that).
void kill_and_wait(coppice::Runtime& rt, Inbox& inbox, Pid child, ExitReason how = ExitReason::kill()) {
  coppice::Ref ref = inbox.monitor(child);
  rt.exit(child, std::move(how));
  EXPECT_TRUE(down_for(inbox, ref).has_value());
}

// ---- a hand-written start function (a spec without `spawn`) -----------------------------------

// A plain process child: traps exits, tells the test it runs, and on its first exit signal
// exits with `on_exit` (never, when `on_exit` is empty: it ignores shutdown).
Async<void> plain_child(std::optional<ExitReason> on_exit, Pid report_to) {
  coppice::trap_exit(true);
  coppice::send(report_to, Started{coppice::self(), {}});
  for (;;) {
    coppice::Exit e = co_await coppice::receive<coppice::Exit>();
    (void)e;
    if (on_exit) coppice::exit(*on_exit);
  }
}

ChildSpec plain_spec(std::optional<ExitReason> on_exit, Pid report_to) {
  ChildSpec spec;
  spec.id = "plain";
  spec.start = [on_exit, report_to](const StartArgs&) -> Async<Result<Pid>> {
    return [](std::optional<ExitReason> r, Pid to) -> Async<Result<Pid>> {
      co_return coppice::spawn_link(plain_child, std::move(r), to);
    }(on_exit, report_to);
  };
  return spec;
}

// A spec whose start function does `start` (Elixir's "with different returns").
ChildSpec start_spec(std::function<Async<Result<Pid>>()> start) {
  ChildSpec spec;
  spec.id = "custom";
  spec.start = [start = std::move(start)](const StartArgs&) { return start(); };
  return spec;
}

// ---- scenarios -----------------------------------------------------------------------------

TEST(DynamicSupervisor, StartsChildrenAndCountsThem) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  auto spec = worker_spec(inbox, {InitDoes::ok});
  Pid a = DynamicSupervisor::start_child(rt, sup, spec).value();
  Pid b = DynamicSupervisor::start_child(rt, sup, spec).value();
  EXPECT_NE(a, b);
  EXPECT_EQ(Worker::call(rt, a, Get{}).value(), 1);
  EXPECT_EQ(counts(rt, sup), (Counts{2, 2, 0, 2}));
  auto children = DynamicSupervisor::which_children(rt, sup).value();
  ASSERT_EQ(children.size(), 2u);
  std::set<Pid> pids{children[0].pid, children[1].pid};
  EXPECT_EQ(pids, (std::set<Pid>{a, b}));
  EXPECT_FALSE(children[0].restarting);
  EXPECT_EQ(children[0].type, coppice::ChildType::worker);
  EXPECT_EQ(children[0].modules, std::vector<std::string>{"GenServer"});
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  EXPECT_FALSE(rt.alive(a));
  EXPECT_FALSE(rt.alive(b));
}

TEST(DynamicSupervisor, OptionsAreValidatedByField) {
  coppice::Runtime rt(workers(2));
  DynamicSupervisorOptions bad_restarts;
  bad_restarts.intensity = -1;
  Result<Pid> r = DynamicSupervisor::start(rt, bad_restarts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::invalid_argument);
  EXPECT_NE(r.error().message().find("intensity"), std::string::npos);
  DynamicSupervisorOptions bad_period;
  bad_period.period = std::chrono::milliseconds(0);
  r = DynamicSupervisor::start(rt, bad_period);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("period"), std::string::npos);
}

TEST(DynamicSupervisor, SignificantAndMissingStartAreInvalidChildSpecs) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  ChildSpec significant = coppice::child<Worker>("w", std::make_shared<Script>(inbox.pid(), std::vector{InitDoes::ok}));
  significant.with_restart(Restart::temporary).as_significant();
  Result<Pid> r = DynamicSupervisor::start_child(rt, sup, significant);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::invalid_child_spec);
  EXPECT_NE(r.error().message().find("significant"), std::string::npos);
  ChildSpec no_start;
  r = DynamicSupervisor::start_child(rt, sup, no_start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::invalid_child_spec);
  EXPECT_NE(r.error().message().find("start"), std::string::npos);
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// The child's init decides (the spawn path): ignore stores nothing; error, stop and a raise
// are start errors carrying the reason.
TEST(DynamicSupervisor, InitResultsOfAChild) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  Result<Pid> r = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ignore}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::ignore);
  r = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::error}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(r.error().reason(), ExitReason::other("found"));
  r = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::stop}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(r.error().reason(), ExitReason::other("stopped"));
  r = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::raise}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(r.error().reason().kind(), ExitReason::Kind::error);
  EXPECT_EQ(r.error().reason().detail(), "init blew up");
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(DynamicSupervisor::which_children(rt, sup).value().empty());
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// 74. [EX dynamic_supervisor_test "with different returns"], with hand-written start functions
// run by the supervisor. {:ok, pid, :extra} has no C++ form (a start returns a pid); a
// non-conforming return such as :unknown cannot be written either, so an error of another kind
// stands for it and comes back unchanged. C++ has no throw-a-value: `throw :oops` is a throw of
// a non-std type, `raise` a std::runtime_error, and `exit(:oops)` is coppice::exit(reason).
TEST(Scenario, dynamic_supervisor_test_with_different_returns) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();

  Result<Pid> ok = DynamicSupervisor::start_child(rt, sup, start_spec([report = inbox.pid()]() -> Async<Result<Pid>> {
    return [](Pid to) -> Async<Result<Pid>> { co_return coppice::spawn_link(plain_child, ExitReason::shutdown(), to); }(report);
  }));
  ASSERT_TRUE(ok);
  wait_started(inbox);

  Result<Pid> ignore = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    co_return coppice::Error(ErrorKind::ignore, "ignore");
  }));
  ASSERT_FALSE(ignore);
  EXPECT_EQ(ignore.error().kind(), ErrorKind::ignore);

  Result<Pid> found = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    co_return coppice::Error(ErrorKind::start_error, "found", Pid{}, ExitReason::other("found"));
  }));
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(found.error().reason(), ExitReason::other("found"));

  Result<Pid> unknown = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    co_return coppice::Error(ErrorKind::invalid_argument, "unknown");
  }));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(unknown.error().message(), "unknown");

  Result<Pid> thrown = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    throw 42;
  }));
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(thrown.error().reason().kind(), ExitReason::Kind::error);

  Result<Pid> raised = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    throw std::runtime_error("oops");
  }));
  ASSERT_FALSE(raised);
  EXPECT_EQ(raised.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(raised.error().reason(), ExitReason::error("std::runtime_error", "oops"));

  Result<Pid> exited = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    coppice::exit(ExitReason::other("oops"));
  }));
  ASSERT_FALSE(exited);
  EXPECT_EQ(exited.error().kind(), ErrorKind::start_error);
  EXPECT_EQ(exited.error().reason(), ExitReason::other("oops"));

  // Only the first is a child; the supervisor survived every failed start.
  EXPECT_EQ(counts(rt, sup), (Counts{1, 1, 0, 1}));
  EXPECT_EQ(DynamicSupervisor::which_children(rt, sup).value().at(0).pid, *ok);
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// 42. [SUPT child_adm_simple] on DynamicSupervisor: empty counts; two children; terminate by
// pid ok, then (Elixir) not_found; a live pid that is not a child: not_found, and it lives on.
// (Terminating by id does not type-check: terminate_child takes a Pid.)
TEST(Scenario, supervisor_SUITE_child_adm_simple) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  auto spec = worker_spec(inbox, {InitDoes::ok});
  Pid c1 = DynamicSupervisor::start_child(rt, sup, spec).value();
  Pid c2 = DynamicSupervisor::start_child(rt, sup, spec).value();
  EXPECT_EQ(counts(rt, sup), (Counts{2, 2, 0, 2}));
  coppice::Ref ref = inbox.monitor(c1);
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, c1));
  std::optional<coppice::Down> d = down_for(inbox, ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::shutdown());
  coppice::Status again = DynamicSupervisor::terminate_child(rt, sup, c1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind(), ErrorKind::not_found);
  Pid stranger = rt.spawn<Puppet>();
  coppice::Status foreign = DynamicSupervisor::terminate_child(rt, sup, stranger);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().kind(), ErrorKind::not_found);
  EXPECT_TRUE(rt.alive(stranger));
  EXPECT_EQ(counts(rt, sup), (Counts{1, 1, 0, 1}));
  EXPECT_EQ(DynamicSupervisor::which_children(rt, sup).value().at(0).pid, c2);
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  rt.exit(stranger, ExitReason::kill());
}

// 56. [SUPT simple_one_for_one] a crashed child of two is restarted; crashes beyond
// intensity 2 make the supervisor exit shutdown.
TEST(Scenario, supervisor_SUITE_simple_one_for_one) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.intensity = 2;
  o.period = std::chrono::hours(1);
  Pid sup = DynamicSupervisor::start(rt, o).value();
  coppice::Ref sup_ref = inbox.monitor(sup);
  auto spec = worker_spec(inbox, {InitDoes::ok});
  DynamicSupervisor::start_child(rt, sup, spec).value();
  Pid c2 = DynamicSupervisor::start_child(rt, sup, spec).value();
  wait_started(inbox);
  wait_started(inbox);
  kill_and_wait(rt, inbox, c2, ExitReason::other("crash"));
  Pid c3 = started_and_stored(rt, inbox);
  EXPECT_EQ(counts(rt, sup), (Counts{2, 2, 0, 2}));
  kill_and_wait(rt, inbox, c3, ExitReason::other("crash"));
  Pid c4 = wait_started(inbox).pid;
  rt.exit(c4, ExitReason::other("crash"));  // the third restart within the period: too many
  std::optional<coppice::Down> d = down_for(inbox, sup_ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::shutdown());
  EXPECT_EQ(log.count("reached_max_restart_intensity"), 1u);
}

// 58. [SUPT simple_one_for_one_restart_ignore], transient and permanent: a killed child is
// restarted; killed again, its restart returns ignore: it is gone, the supervisor lives on.
TEST(Scenario, supervisor_SUITE_simple_one_for_one_restart_ignore) {
  for (Restart restart : {Restart::transient, Restart::permanent}) {
    coppice::Runtime rt(workers(2));
    Inbox inbox(rt);
    Pid sup = DynamicSupervisor::start(rt, {}).value();
    auto spec = worker_spec(inbox, {InitDoes::ok, InitDoes::ok, InitDoes::ignore}, restart);
    Pid c1 = DynamicSupervisor::start_child(rt, sup, spec).value();
    wait_started(inbox);
    kill_and_wait(rt, inbox, c1);
    Pid c2 = wait_started(inbox).pid;
    EXPECT_NE(c2, c1);
    kill_and_wait(rt, inbox, c2);
    // The restart's init returns ignore; its acknowledgement reaches the supervisor before
    // its exit, and so before our next request.
    std::optional<Ignoring> ignoring = inbox.receive<Ignoring>(wait_time);
    ASSERT_TRUE(ignoring);
    std::optional<ExitReason> gone = exit_reason_of(inbox, ignoring->pid);
    EXPECT_TRUE(gone.has_value());
    EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
    EXPECT_TRUE(DynamicSupervisor::which_children(rt, sup).value().empty());
    EXPECT_TRUE(rt.alive(sup));
    EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  }
}

// 59. [SUPT sup_start_child_returns_error_simple] start errors come back as they are.
TEST(Scenario, supervisor_SUITE_sup_start_child_returns_error_simple) {
  coppice::Runtime rt(workers(2));
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  Result<Pid> r = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    co_return coppice::Error(ErrorKind::start_error, "reason", Pid{}, ExitReason::other("reason"));
  }));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason(), ExitReason::other("reason"));
  EXPECT_EQ(r.error().message(), "reason");
  r = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> {
    co_return coppice::Error(ErrorKind::start_error, "error_reason", Pid{}, ExitReason::other("error_reason"));
  }));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason(), ExitReason::other("error_reason"));
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// 60. [SUPT sup_stop_non_shutdown_exit_dynamic] children that exit with normal, shutdown,
// shutdown with a detail or another reason while the supervisor shuts down: the supervisor
// exits shutdown, and each child's reason is its own.
TEST(Scenario, supervisor_SUITE_sup_stop_non_shutdown_exit_dynamic) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  const std::vector<ExitReason> reasons{ExitReason::normal(), ExitReason::shutdown(), ExitReason::shutdown("test"),
                                        ExitReason::other("other")};
  std::vector<coppice::Ref> refs;
  for (const ExitReason& r : reasons) {
    Pid c = DynamicSupervisor::start_child(rt, sup, plain_spec(r, inbox.pid())).value();
    wait_started(inbox);
    refs.push_back(inbox.monitor(c));
  }
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    std::optional<coppice::Down> d = down_for(inbox, refs[i]);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, reasons[i]);
  }
  // A permanent child exiting normal or shutdown with a detail is not what was asked for.
  EXPECT_EQ(log.count("shutdown_error"), 3u);
}

// 76. [EX dynamic_supervisor_test temporary/transient/permanent] Every restart type against
// every kind of exit reason. The expected answer is written out from the contract (SEMANTICS.md
// 0 "transient children", 3.5, 4), never computed with the engine's classification: permanent
// is restarted whatever the reason; transient is not restarted after normal, shutdown or
// shutdown with a detail, and is after anything else (killed included); temporary never is.
TEST(Scenario, dynamic_supervisor_test_restart_types) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.intensity = 100;
  Pid sup = DynamicSupervisor::start(rt, o).value();
  struct Row {
    Restart restart;
    const char* how;      // "cast": the child stops itself with `reason`; "kill": exit(child, kill)
    ExitReason reason;    // the reason the child dies with
    bool restarted;       // the contract's answer
  };
  const ExitReason detail = ExitReason::shutdown("detail");
  const ExitReason other = ExitReason::other("whatever");
  const std::vector<Row> table{
      {Restart::permanent, "cast", ExitReason::normal(), true},
      {Restart::permanent, "cast", ExitReason::shutdown(), true},
      {Restart::permanent, "cast", detail, true},
      {Restart::permanent, "cast", other, true},
      {Restart::permanent, "kill", ExitReason::killed(), true},
      {Restart::transient, "cast", ExitReason::normal(), false},
      {Restart::transient, "cast", ExitReason::shutdown(), false},
      {Restart::transient, "cast", detail, false},
      {Restart::transient, "cast", other, true},
      {Restart::transient, "kill", ExitReason::killed(), true},
      {Restart::temporary, "cast", ExitReason::normal(), false},
      {Restart::temporary, "cast", ExitReason::shutdown(), false},
      {Restart::temporary, "cast", detail, false},
      {Restart::temporary, "cast", other, false},
      {Restart::temporary, "kill", ExitReason::killed(), false},
  };
  for (const Row& row : table) {
    SCOPED_TRACE(std::string(coppice::to_string(row.restart)) + " " + row.how + " " + row.reason.to_string());
    Pid c = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok}, row.restart)).value();
    wait_started(inbox);
    coppice::Ref ref = inbox.monitor(c);
    if (std::string_view(row.how) == "kill") {
      rt.exit(c, ExitReason::kill());
    } else {
      Worker::cast(rt, c, ExitWith{row.reason});
    }
    std::optional<coppice::Down> d = down_for(inbox, ref);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, row.reason);
    // The child's EXIT reached the supervisor before its DOWN reached us, so this request is
    // served after the supervisor acted on it: a child being restarted is counted in specs
    // (its new init may still be running: DynamicSupervisor starts without blocking).
    const Counts after = counts(rt, sup);
    if (row.restarted) {
      EXPECT_EQ(after.specs, 1u) << "not restarted";
      EXPECT_EQ(after.workers, 1u);
      const Pid again = started_and_stored(rt, inbox);
      EXPECT_NE(again, c);
      EXPECT_EQ(counts(rt, sup), (Counts{1, 1, 0, 1}));
      EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, again));
    } else {
      EXPECT_EQ(after, (Counts{0, 0, 0, 0})) << "restarted, and must not be";
      std::optional<Started> none = inbox.receive<Started>(std::chrono::milliseconds(0));
      EXPECT_FALSE(none.has_value()) << "restarted, and must not be";
    }
  }
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// 78. [EX dynamic_supervisor_test "child triggers maximum restarts"] intensity 1 and a
// child whose start fails on restart: the failed attempts count, and the supervisor exits
// shutdown.
TEST(Scenario, dynamic_supervisor_test_child_triggers_maximum_restarts) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.intensity = 1;
  Pid sup = DynamicSupervisor::start(rt, o).value();
  coppice::Ref sup_ref = inbox.monitor(sup);
  Pid c = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok, InitDoes::error})).value();
  wait_started(inbox);
  rt.exit(c, ExitReason::kill());
  std::optional<coppice::Down> d = down_for(inbox, sup_ref);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, ExitReason::shutdown());
  EXPECT_GE(log.count("(while restarting)"), 1u);
}

// 80. [EX dynamic_supervisor_test terminate_child] ok, then not_found; and on a restarting
// child: one whose restarts keep failing, and one whose restart is still in its init.
TEST(Scenario, dynamic_supervisor_test_terminate_child) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.intensity = 1000000;
  o.period = std::chrono::hours(1);
  Pid sup = DynamicSupervisor::start(rt, o).value();

  Pid c = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok})).value();
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, c));
  coppice::Status again = DynamicSupervisor::terminate_child(rt, sup, c);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind(), ErrorKind::not_found);

  // Restarts that keep failing: the child stays, shown as restarting, until terminated.
  Pid failing = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok, InitDoes::error})).value();
  wait_started(inbox);
  kill_and_wait(rt, inbox, failing);
  auto children = DynamicSupervisor::which_children(rt, sup).value();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].pid, failing);
  EXPECT_TRUE(children[0].restarting);
  EXPECT_EQ(counts(rt, sup), (Counts{1, 0, 0, 1}));
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, failing));
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_FALSE(DynamicSupervisor::terminate_child(rt, sup, failing));

  // A restart in its init: terminating the child stops the half-started replacement too.
  Pid slow = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok, InitDoes::wait_for_go})).value();
  wait_started(inbox);
  kill_and_wait(rt, inbox, slow);
  std::optional<InInit> replacement = inbox.receive<InInit>(wait_time);
  ASSERT_TRUE(replacement);
  coppice::Ref ref = inbox.monitor(replacement->pid);
  children = DynamicSupervisor::which_children(rt, sup).value();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].pid, slow);
  EXPECT_TRUE(children[0].restarting);
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, slow));
  ASSERT_TRUE(down_for(inbox, ref));
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(rt.alive(sup));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

TEST(DynamicSupervisor, MaxChildrenCountsRestartingChildren) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.max_children = 2;
  Pid sup = DynamicSupervisor::start(rt, o).value();
  auto spec = worker_spec(inbox, {InitDoes::ok, InitDoes::ok, InitDoes::wait_for_go});
  Pid c1 = DynamicSupervisor::start_child(rt, sup, spec).value();
  DynamicSupervisor::start_child(rt, sup, spec).value();
  Result<Pid> third = DynamicSupervisor::start_child(rt, sup, spec);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().kind(), ErrorKind::max_children);
  wait_started(inbox);
  wait_started(inbox);
  // c1's restart waits in init: it still counts.
  kill_and_wait(rt, inbox, c1);
  std::optional<InInit> restarting = inbox.receive<InInit>(wait_time);
  ASSERT_TRUE(restarting);
  EXPECT_EQ(counts(rt, sup), (Counts{2, 1, 0, 2}));
  third = DynamicSupervisor::start_child(rt, sup, spec);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().kind(), ErrorKind::max_children);
  inbox.send(restarting->pid, Go{});
  EXPECT_EQ(started_and_stored(rt, inbox), restarting->pid);
  EXPECT_EQ(counts(rt, sup), (Counts{2, 2, 0, 2}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

TEST(DynamicSupervisor, ExtraArgumentsComeFirstAlsoOnRestart) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  DynamicSupervisorOptions o;
  o.extra_arguments = {std::any(1), std::any(2)};
  Pid sup = DynamicSupervisor::start(rt, o).value();
  Pid c = DynamicSupervisor::start_child(rt, sup, worker_spec(inbox, {InitDoes::ok})).value();
  Started first = wait_started(inbox);
  EXPECT_EQ(first.pid, c);
  EXPECT_EQ(first.extra, (std::vector<int>{1, 2}));
  kill_and_wait(rt, inbox, c);
  Started second = wait_started(inbox);
  EXPECT_NE(second.pid, c);
  EXPECT_EQ(second.extra, (std::vector<int>{1, 2}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// Four clients start children whose init waits for the test's Go: the supervisor keeps
// answering meanwhile, and each caller gets its reply only once its own child's init returned.
struct StartReply {
  int client;
  Result<Pid> pid;
};

TEST(DynamicSupervisor, ManyStartsInFlightAtOnce) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  auto spec = worker_spec(inbox, {InitDoes::wait_for_go});
  constexpr int clients = 4;
  for (int i = 0; i < clients; ++i) {
    rt.spawn(
        [](int client, Pid sup, DynamicSupervisor::SharedSpec spec, Pid test) -> Async<void> {
          auto start = DynamicSupervisor::start_child(sup, spec);
          Result<Pid> r = co_await start;
          coppice::send(test, StartReply{client, std::move(r)});
        },
        i, sup, spec, inbox.pid());
  }
  std::vector<Pid> in_init;
  for (int i = 0; i < clients; ++i) {
    std::optional<InInit> s = inbox.receive<InInit>(wait_time);
    ASSERT_TRUE(s);
    in_init.push_back(s->pid);
  }
  // All four inits are pending: the supervisor still answers, and has no children yet.
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(DynamicSupervisor::which_children(rt, sup).value().empty());
  EXPECT_FALSE(inbox.receive<StartReply>(std::chrono::milliseconds(0)).has_value());
  std::set<int> answered;
  for (std::size_t i = 0; i < in_init.size(); ++i) {
    inbox.send(in_init[i], Go{});
    std::optional<StartReply> r = inbox.receive<StartReply>(wait_time);
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->pid);
    EXPECT_EQ(*r->pid, in_init[i]) << "the reply came for the child whose init returned";
    answered.insert(r->client);
    EXPECT_EQ(counts(rt, sup).active, i + 1);
  }
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(clients));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// [EX "terminates children with expired integer shutdown"] a child that ignores shutdown is
// killed once its timeout has passed, by terminate_child and by the supervisor's shutdown.
TEST(DynamicSupervisor, ChildIgnoringShutdownIsKilledAfterItsTimeout) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  ChildSpec stubborn = plain_spec(std::nullopt, inbox.pid());
  stubborn.with_shutdown(Shutdown::timeout(std::chrono::milliseconds(20)));
  Pid a = DynamicSupervisor::start_child(rt, sup, stubborn).value();
  Pid b = DynamicSupervisor::start_child(rt, sup, stubborn).value();
  wait_started(inbox);
  wait_started(inbox);
  coppice::Ref ra = inbox.monitor(a);
  coppice::Ref rb = inbox.monitor(b);
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, a));
  std::optional<coppice::Down> da = down_for(inbox, ra);
  ASSERT_TRUE(da);
  EXPECT_EQ(da->reason, ExitReason::killed());
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  std::optional<coppice::Down> db = down_for(inbox, rb);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->reason, ExitReason::killed());
  EXPECT_EQ(log.count("shutdown_error"), 2u);
}

// [SUPT child_unlink] a child that unlinked itself from the supervisor is still stopped.
TEST(DynamicSupervisor, ChildThatUnlinkedItselfIsStillStopped) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  auto spec = worker_spec(inbox, {InitDoes::ok});
  Pid a = DynamicSupervisor::start_child(rt, sup, spec).value();
  Pid b = DynamicSupervisor::start_child(rt, sup, spec).value();
  for (Pid c : {a, b}) {
    Worker::cast(rt, c, UnlinkFrom{sup});
    EXPECT_EQ(Worker::call(rt, c, Get{}).value(), 1);  // the unlink is done
  }
  coppice::Ref ra = inbox.monitor(a);
  coppice::Ref rb = inbox.monitor(b);
  EXPECT_TRUE(DynamicSupervisor::terminate_child(rt, sup, a));
  std::optional<coppice::Down> da = down_for(inbox, ra);
  ASSERT_TRUE(da);
  EXPECT_EQ(da->reason, ExitReason::shutdown());
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  std::optional<coppice::Down> db = down_for(inbox, rb);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->reason, ExitReason::shutdown());
}

// A supervisor stopped by its parent (it traps exits) stops its children, including one
// still in its init, and exits with the parent's reason.
TEST(DynamicSupervisor, StopsWithItsParentEvenWhileAChildIsInInit) {
  coppice::Runtime rt(workers(2));
  ExitReason r = run_process(rt, []() -> Async<void> {
    coppice::trap_exit(true);
    auto start = DynamicSupervisor::start_link(DynamicSupervisorOptions{});
    Result<Pid> sup = co_await start;
    CO_ASSERT_TRUE(sup);
    const Pid s = *sup;
    auto script = std::make_shared<Script>(coppice::self(), std::vector{InitDoes::wait_for_go});
    auto spec = DynamicSupervisor::share(coppice::child<Worker>("worker", script));
    coppice::spawn(
        [](Pid sup, DynamicSupervisor::SharedSpec spec) -> Async<void> {
          auto start = DynamicSupervisor::start_child(sup, spec);
          Result<Pid> r = co_await start;
          EXPECT_FALSE(r);  // the supervisor went away first
        },
        s, spec);
    InInit in_init = co_await coppice::receive<InInit>();
    const coppice::Ref child_ref = coppice::monitor(in_init.pid);
    coppice::exit(s, ExitReason::shutdown());
    auto from_sup = [s](const coppice::Message& m) { return m.is<coppice::Exit>() && m.get<coppice::Exit>().from == s; };
    coppice::Message e = co_await coppice::receive_if(from_sup);
    EXPECT_EQ(e.get<coppice::Exit>().reason, ExitReason::shutdown());
    auto child_down = [child_ref](const coppice::Message& m) {
      return m.is<coppice::Down>() && m.get<coppice::Down>().ref == child_ref;
    };
    coppice::Message d = co_await coppice::receive_if(child_down);
    EXPECT_EQ(d.get<coppice::Down>().reason, ExitReason::shutdown());
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// A small stress test: 100,000 children, then the supervisor stopped; all are gone once its
// DOWN has come.
TEST(DynamicSupervisor, HundredThousandChildrenStartAndStop) {
  coppice::Runtime rt(workers(2));
  Inbox inbox(rt);
  const std::size_t before = rt.process_count();
  constexpr std::size_t n = 100000;
  ExitReason r = run_process(
      rt,
      []() -> Async<void> {
        coppice::trap_exit(true);  // the supervisor is linked to us and exits shutdown
        auto start = DynamicSupervisor::start_link(DynamicSupervisorOptions{});
        Result<Pid> sup = co_await start;
        CO_ASSERT_TRUE(sup);
        auto spec = DynamicSupervisor::share(coppice::child<Worker>(
            "w", std::make_shared<Script>(Pid{}, std::vector{InitDoes::ok})));  // no reports
        Pid last;
        for (std::size_t i = 0; i < n; ++i) {
          auto call = DynamicSupervisor::start_child(*sup, spec);
          Result<Pid> c = co_await call;
          CO_ASSERT_TRUE(c);
          last = *c;
        }
        auto count = DynamicSupervisor::count_children(*sup);
        Result<Counts> counted = co_await count;
        CO_ASSERT_TRUE(counted);
        EXPECT_EQ(*counted, (Counts{n, n, 0, n}));
        const coppice::Ref ref = coppice::monitor(*sup);
        auto stopping = coppice::stop(*sup, ExitReason::shutdown());
        coppice::Status st = co_await stopping;
        EXPECT_TRUE(st);
        auto down = [ref](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref; };
        coppice::Message d = co_await coppice::receive_if(down);
        (void)d;
        EXPECT_FALSE(coppice::is_alive(last));
      },
      std::chrono::seconds(120));
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(rt.process_count(), before);
}

}  // namespace
}  // namespace coppice_test

namespace coppice_test {
namespace {

// A start function that returns Pid{} started nobody: start_child fails with start_error
// saying so, and nothing is stored (SEMANTICS.md 4: any other return X is {:error, X}).
TEST(DynamicSupervisor, StartFunctionReturningNoPidIsAFailedStart) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  Result<Pid> r = DynamicSupervisor::start_child(rt, sup, start_spec([]() -> Async<Result<Pid>> { co_return Pid{}; }));
  ASSERT_FALSE(r) << "counted as child " << r.value();
  EXPECT_EQ(r.error().kind(), ErrorKind::start_error);
  EXPECT_NE(r.error().message().find("returned no pid"), std::string::npos) << r.error().message();
  EXPECT_EQ(counts(rt, sup), (Counts{0, 0, 0, 0}));
  EXPECT_TRUE(DynamicSupervisor::which_children(rt, sup).value().empty());
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// The same during a restart: each attempt that returns Pid{} is a failed restart, counted
// towards the intensity (SEMANTICS.md 4), so the supervisor gives up with shutdown.
TEST(DynamicSupervisor, RestartReturningNoPidIsAFailedRestart) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  auto starts = std::make_shared<std::atomic<int>>(0);
  Pid child = DynamicSupervisor::start_child(rt, sup, start_spec([starts, report = inbox.pid()]() -> Async<Result<Pid>> {
                return [](std::shared_ptr<std::atomic<int>> n, Pid to) -> Async<Result<Pid>> {
                  if ((*n)++ > 0) co_return Pid{};
                  co_return coppice::spawn_link(plain_child, ExitReason::shutdown(), to);
                }(starts, report);
              })).value();
  wait_started(inbox);
  coppice::Ref sup_ref = inbox.monitor(sup);
  rt.exit(child, ExitReason::kill());
  std::optional<coppice::Down> d = down_for(inbox, sup_ref);
  ASSERT_TRUE(d) << "the supervisor took Pid{} for a restarted child";
  EXPECT_EQ(d->reason, ExitReason::shutdown());
  EXPECT_EQ(starts->load(), 1 + 3) << "the first start, then one attempt per allowed restart (3 in 5 s)";
}

}  // namespace
}  // namespace coppice_test
