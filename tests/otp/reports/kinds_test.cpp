// Reports as data: one test per report kind (the fields a tool reads: who, which child, the
// reason, the counts), the default handler's lines, a handler that throws, and tree_died for a
// top-level supervisor only.
#include <gtest/gtest.h>

#include <stdexcept>

#include "coppice/coppice.hpp"
#include "otp/reports/report_queue.hpp"

namespace coppice_test::reports {
namespace {

void crash(coppice::Runtime& rt, Pid child, ExitReason reason) { Worker::cast(rt, child, Crash{std::move(reason)}); }

struct Boom {};
// A server whose cast raises, and which has no handle_info(Message): a crash, or an
// unexpected message.
class Fragile : public GenServer<Fragile> {
 public:
  using casts = coppice::Protocol<Boom>;
  void handle_cast(Boom) { throw std::runtime_error("boom"); }
};

TEST(Reports, AServerThatCrashesIsReportedWithItsNameWhereAndReason) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  coppice::StartOptions o;
  o.name = "fragile";
  Pid server = Fragile::start(rt, o).value();
  Fragile::cast(rt, server, Boom{});
  std::optional<Report> r = reports.next(ReportKind::crash);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pid, server);
  EXPECT_EQ(r->name, coppice::ServerRef("fragile").to_string());
  EXPECT_EQ(r->behaviour, "GenServer");
  EXPECT_EQ(r->reason, ExitReason::error("std::runtime_error", "boom"));
  EXPECT_EQ(r->context, coppice::Message::of(Boom{}).type_name());
  EXPECT_FALSE(r->child.has_value());
  EXPECT_EQ(r->line(), "coppice: GenServer " + server.to_string() + " " + r->name + " terminating in " + r->context +
                           ": {error, std::runtime_error: boom}");
}

TEST(Reports, APlainProcessThatRaisesIsReportedAsACrash) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Pid p = rt.spawn([]() -> Async<void> {
    throw std::runtime_error("plain");
    co_return;
  });
  std::optional<Report> r = reports.next(ReportKind::crash);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pid, p);
  EXPECT_EQ(r->behaviour, "process");
  EXPECT_EQ(r->reason, ExitReason::error("std::runtime_error", "plain"));
  EXPECT_EQ(r->line(), "coppice: process " + p.to_string() + " crashed: {error, std::runtime_error: plain}");
}

TEST(Reports, AMessageNoHandlerTakesIsReportedWithItsType) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Pid server = Fragile::start(rt, {}).value();
  rt.send(server, 2.5);
  std::optional<Report> r = reports.next(ReportKind::unexpected_message);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pid, server);
  EXPECT_EQ(r->behaviour, "GenServer");
  EXPECT_EQ(r->context, "double");
  EXPECT_EQ(r->line(), "coppice: GenServer " + server.to_string() +
                           " received an unexpected message of type double (no handler for it; dropped)");
}

TEST(Reports, EveryChildStartedIsReportedWithItsSpecButNotPrintedByDefault) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  ChildSpec b = worker("b", inbox.pid());
  b.restart = Restart::transient;
  b.shutdown = Shutdown::brutal_kill();
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid()), b}, flags(Strategy::one_for_one)).value();
  Pid a = started_pid(inbox, "a");
  Pid bp = started_pid(inbox, "b");
  std::optional<Report> first = reports.next(ReportKind::child_started);
  std::optional<Report> second = reports.next(ReportKind::child_started);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->pid, sup);
  EXPECT_EQ(first->behaviour, "Supervisor");
  ASSERT_TRUE(first->child && second->child);
  EXPECT_EQ(first->child->id, "a");
  EXPECT_EQ(first->child->pid, a);
  EXPECT_EQ(first->child->restart, Restart::permanent);
  EXPECT_EQ(first->child->shutdown, Shutdown::timeout(5000ms));
  EXPECT_EQ(first->child->type, ChildType::worker);
  EXPECT_EQ(second->child->id, "b");
  EXPECT_EQ(second->child->pid, bp);
  EXPECT_EQ(second->child->restart, Restart::transient);
  EXPECT_EQ(second->child->shutdown, Shutdown::brutal_kill());

  // Without a handler nothing is built for it, and nothing is printed.
  CapturedLog log;
  coppice::Runtime plain(log.options());
  Inbox observer(plain);
  Supervisor::start(plain, {worker("a", observer.pid())}, flags(Strategy::one_for_one)).value();
  started_pid(observer, "a");
  plain.stop();
  EXPECT_EQ(log.count("child_started"), 0u);
  EXPECT_EQ(coppice::supervisor_totals(plain).reports_delivered, 0u);
}

TEST(Reports, AChildThatCrashesIsReportedWithItsReasonWhatWasDoneAndTheCounts) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 5, 60s)).value();
  Pid a = started_pid(inbox, "a");
  crash(rt, a, ExitReason::other("bad disk"));
  Pid again = started_pid(inbox, "a");
  std::optional<Report> r = reports.next(ReportKind::child_terminated);
  ASSERT_TRUE(r && r->child);
  EXPECT_EQ(r->pid, sup);
  EXPECT_EQ(r->child->id, "a");
  EXPECT_EQ(r->child->pid, a);
  EXPECT_NE(r->child->pid, again);
  EXPECT_EQ(r->reason, ExitReason::other("bad disk"));
  EXPECT_EQ(r->context, "restarted");
  EXPECT_EQ(r->restarts, 1u);
  EXPECT_EQ(r->intensity, 5);
  EXPECT_EQ(r->period, 60s);
  EXPECT_EQ(r->dropped, 0u);
  EXPECT_EQ(r->line(), "coppice: Supervisor " + sup.to_string() + " child_terminated: child 'a' " + a.to_string() +
                           " reason bad disk (restarted)");
}

// A child that traps exits and leaves its terminate with another reason than shutdown.
class Unwilling : public GenServer<Unwilling> {
 public:
  explicit Unwilling(Pid observer) : observer_(observer) {}
  void init() {
    coppice::trap_exit(true);
    coppice::send(observer_, Started{"mule", coppice::self()});
  }
  void terminate(const ExitReason&) { coppice::exit(ExitReason::other("will not go")); }

 private:
  Pid observer_;
};

TEST(Reports, AChildThatDoesNotStopAsAskedIsAShutdownError) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  ChildSpec mule = coppice::child<Unwilling>("mule", inbox.pid());
  Pid sup = Supervisor::start(rt, {mule}, flags(Strategy::one_for_one)).value();
  Pid m = started_pid(inbox, "mule");
  ASSERT_TRUE(Supervisor::terminate_child(rt, sup, "mule"));
  std::optional<Report> r = reports.next(ReportKind::shutdown_error);
  ASSERT_TRUE(r && r->child);
  EXPECT_EQ(r->pid, sup);
  EXPECT_EQ(r->child->id, "mule");
  EXPECT_EQ(r->child->pid, m);
  EXPECT_EQ(r->reason, ExitReason::other("will not go"));
  EXPECT_EQ(r->line(), "coppice: Supervisor " + sup.to_string() + " shutdown_error: child 'mule' " + m.to_string() +
                           " reason will not go");
}

TEST(Reports, AChildThatFailsToStartIsAStartError) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  coppice::Error no(ErrorKind::start_error, "no database");
  Result<Pid> sup = Supervisor::start(rt, {worker("a", inbox.pid()), failing("db", no)}, flags(Strategy::one_for_one));
  EXPECT_FALSE(sup.has_value());
  std::optional<Report> r = reports.next(ReportKind::start_error);
  ASSERT_TRUE(r && r->child);
  EXPECT_EQ(r->behaviour, "Supervisor");
  EXPECT_EQ(r->child->id, "db");
  EXPECT_FALSE(r->child->pid);
  EXPECT_EQ(r->reason, ExitReason::other(no.to_string()));
  EXPECT_EQ(r->line(), "coppice: Supervisor " + r->pid.to_string() + " start_error: child 'db' reason " + no.to_string());
  // A supervisor that failed its init was never a running tree: no tree_died.
  EXPECT_EQ(reports.count(ReportKind::tree_died), 0u);
}

TEST(Reports, ASupervisorThatGivesUpReportsTheIntensityAndATopLevelOneATreeThatDied) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 1, 3600s)).value();
  coppice::Ref watch = inbox.monitor(sup);
  crash(rt, started_pid(inbox, "a"), ExitReason::other("one"));
  crash(rt, started_pid(inbox, "a"), ExitReason::other("two"));
  EXPECT_EQ(down_for(inbox, watch)->reason, ExitReason::shutdown());
  std::optional<Report> r = reports.next(ReportKind::reached_max_restart_intensity);
  ASSERT_TRUE(r && r->child);
  EXPECT_EQ(r->pid, sup);
  EXPECT_EQ(r->child->id, "a");
  EXPECT_EQ(r->reason, ExitReason::other("two"));
  EXPECT_EQ(r->context, "shutting down");
  EXPECT_EQ(r->restarts, 2u) << "the one that tripped is in the window";
  EXPECT_EQ(r->intensity, 1);
  EXPECT_EQ(r->period, 3600s);
  EXPECT_EQ(r->line(), "coppice: Supervisor " + sup.to_string() +
                           " reached_max_restart_intensity: child 'a' reason two (shutting down)");
  std::optional<Report> died = reports.next(ReportKind::tree_died);
  ASSERT_TRUE(died.has_value());
  EXPECT_EQ(died->pid, sup);
  EXPECT_EQ(died->behaviour, "Supervisor");
  EXPECT_FALSE(died->child.has_value());
  EXPECT_EQ(died->reason, ExitReason::shutdown());
  EXPECT_EQ(died->context, "gave up: restart intensity reached");
  EXPECT_EQ(died->line(), "coppice: Supervisor " + sup.to_string() + " tree_died: reason shutdown (gave up: restart intensity reached)");
}

TEST(Reports, ANestedSupervisorThatGivesUpIsNotATreeThatDied) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  ChildSpec inner = Supervisor::child_spec("inner", {worker("w", inbox.pid())}, flags(Strategy::one_for_one, 0, 3600s));
  Pid top = Supervisor::start(rt, {inner}, flags(Strategy::one_for_one, 10, 3600s)).value();
  Pid w = started_pid(inbox, "w");
  std::vector<coppice::SupervisorStats> stats = coppice::supervisor_stats(rt);
  ASSERT_EQ(stats.size(), 2u);
  for (const coppice::SupervisorStats& s : stats) EXPECT_EQ(s.top_level, s.pid == top) << s.pid;
  crash(rt, w, ExitReason::other("crash"));
  started_pid(inbox, "w");  // the top restarted the inner supervisor, which started w again
  // Answered once the top is done with the restart. The inner supervisor's end, and any
  // report of it, came before the top heard of it.
  EXPECT_EQ(Supervisor::count_children(rt, top).value(), counts(1, 1, 1, 0));
  std::optional<Report> gave_up = reports.next(ReportKind::reached_max_restart_intensity);
  ASSERT_TRUE(gave_up.has_value());
  EXPECT_NE(gave_up->pid, top);
  std::size_t inner_starts = 0;
  for (const Report& r : reports.all()) {
    if (r.kind == ReportKind::child_started && r.pid == top) ++inner_starts;
  }
  EXPECT_EQ(inner_starts, 2u);
  EXPECT_EQ(reports.count(ReportKind::tree_died), 0u);
}

TEST(Reports, ATopLevelSupervisorThatIsKilledIsATreeThatDied) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  Pid sup = coppice::DynamicSupervisor::start(rt, {}).value();
  coppice::Ref watch = inbox.monitor(sup);
  inbox.exit(sup, ExitReason::kill());
  EXPECT_EQ(down_for(inbox, watch)->reason, ExitReason::killed());
  std::optional<Report> died = reports.next(ReportKind::tree_died);
  ASSERT_TRUE(died.has_value());
  EXPECT_EQ(died->pid, sup);
  EXPECT_EQ(died->behaviour, "DynamicSupervisor");
  EXPECT_EQ(died->reason, ExitReason::killed());
}

TEST(Reports, ATreeStoppedWithShutdownOrByTheRuntimeDidNotDie) {
  ReportQueue reports;
  {
    coppice::Runtime rt(reports.options());
    Inbox inbox(rt);
    Pid a = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one)).value();
    Pid b = Supervisor::start(rt, {worker("b", inbox.pid())}, flags(Strategy::one_for_one)).value();
    started_pid(inbox, "a");
    started_pid(inbox, "b");
    EXPECT_TRUE(coppice::stop(rt, a, ExitReason::shutdown()));
    (void)b;
    rt.stop();  // b is ended by the stop
  }
  EXPECT_EQ(reports.count(ReportKind::tree_died), 0u);
}

TEST(Reports, TheDefaultHandlerWritesTheLinesAsBefore) {
  CapturedLog log;
  Pid sup, a;
  {
    coppice::Runtime rt(log.options());
    Inbox inbox(rt);
    sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 0, 3600s)).value();
    a = started_pid(inbox, "a");
    coppice::Ref watch = inbox.monitor(sup);
    crash(rt, a, ExitReason::other("gone"));
    EXPECT_TRUE(down_for(inbox, watch).has_value());
  }
  const std::string s = sup.to_string();
  EXPECT_EQ(log.lines(), (std::vector<std::string>{
                             "coppice: GenServer " + a.to_string() + " terminating: gone",  // the worker's own
                             "coppice: Supervisor " + s + " child_terminated: child 'a' " + a.to_string() + " reason gone (giving up)",
                             "coppice: Supervisor " + s + " reached_max_restart_intensity: child 'a' reason gone (shutting down)",
                             "coppice: Supervisor " + s + " tree_died: reason shutdown (gave up: restart intensity reached)",
                         }));
}

TEST(Reports, AHandlerThatThrowsDoesNotStopTheRuntime) {
  coppice::RuntimeOptions o = workers(2);
  std::atomic<int> calls{0};
  o.report_handler = [&calls](const Report&) {
    calls.fetch_add(1);
    throw std::runtime_error("handler broke");
  };
  coppice::Runtime rt(o);
  Inbox inbox(rt);
  testing::internal::CaptureStderr();
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 5)).value();
  Pid a = started_pid(inbox, "a");
  crash(rt, a, ExitReason::other("crash"));
  Pid again = started_pid(inbox, "a");
  // The supervisor carried on past both reports (child_started, child_terminated): it answers.
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(again, a);
  EXPECT_GE(calls.load(), 3);
  EXPECT_NE(err.find("coppice: the report handler threw (std::runtime_error: handler broke) on a child_started report"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("on a child_terminated report"), std::string::npos) << err;
}

}  // namespace
}  // namespace coppice_test::reports
