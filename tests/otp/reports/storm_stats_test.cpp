// The reports' rate limit under a restart storm (what it drops is counted, to the report), and
// the supervisors' counters against known counts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "coppice/coppice.hpp"
#include "otp/reports/report_queue.hpp"

namespace coppice_test::reports {
namespace {

void crash(coppice::Runtime& rt, Pid child, ExitReason reason) { Worker::cast(rt, child, Crash{std::move(reason)}); }

struct Calm {};
// Crashes right after its init while `left` says so; then tells the observer and stays.
class Stormy : public GenServer<Stormy> {
 public:
  Stormy(Pid observer, std::shared_ptr<std::atomic<int>> left) : observer_(observer), left_(std::move(left)) {}
  coppice::Init init() {
    if (left_->fetch_sub(1) > 0) return ok(continue_with(CrashNow{}));
    coppice::send(observer_, Calm{});
    return ok();
  }
  NoReply handle_continue(CrashNow) { return stop_with(ExitReason::other("storm")); }

 private:
  Pid observer_;
  std::shared_ptr<std::atomic<int>> left_;
};

// 10,000 crashes under a supervisor that never gives up: 30,001 reports are made (the
// server's crash and the supervisor's child_terminated per crash, a child_started per start). The handler gets at most
// burst + rate * elapsed of them, plus the summary at stop, and every one dropped is counted
// in the `dropped` of a report that went.
TEST(ReportRateLimit, ARestartStormDeliversAtMostTheBucketAndCountsEveryDrop) {
  constexpr int crashes = 10'000;
  ReportQueue reports;
  coppice::RuntimeOptions o = reports.options();
  o.report_burst = 50;
  o.reports_per_second = 100;
  const auto began = std::chrono::steady_clock::now();
  {
    coppice::Runtime rt(o);
    Inbox inbox(rt);
    auto left = std::make_shared<std::atomic<int>>(crashes);
    ChildSpec stormy = coppice::child<Stormy>("stormy", inbox.pid(), left);
    SupervisorFlags f = flags(Strategy::one_for_one, 1'000'000, 3600s);
    Pid sup = Supervisor::start(rt, {stormy}, f).value();
    ASSERT_TRUE(inbox.receive<Calm>(60s).has_value());
    // Once answered, the supervisor is done with the last restart and its reports.
    EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
    coppice::SupervisorTotals t = coppice::supervisor_totals(rt);
    EXPECT_EQ(t.restarts, static_cast<std::uint64_t>(crashes));
    EXPECT_EQ(t.children_started, static_cast<std::uint64_t>(crashes + 1));
    EXPECT_EQ(t.reports_delivered + t.reports_dropped, static_cast<std::uint64_t>(3 * crashes + 1));
    rt.stop();
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::vector<Report> got = reports.all();
  std::uint64_t dropped = 0;
  std::size_t summaries = 0;
  for (const Report& r : got) {
    dropped += r.dropped;
    if (r.kind == ReportKind::reports_dropped) ++summaries;
  }
  EXPECT_EQ(got.size() - summaries + dropped, static_cast<std::uint64_t>(3 * crashes + 1)) << "every report went or was counted";
  EXPECT_LE(static_cast<double>(got.size() - summaries), 50 + 100 * elapsed);
  EXPECT_LE(summaries, 1u);
  EXPECT_GT(dropped, 0u);
}

TEST(ReportRateLimit, ZeroMeansNoLimit) {
  ReportQueue reports;
  coppice::RuntimeOptions o = reports.options();
  o.report_burst = 0;
  coppice::Runtime rt(o);
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("a", inbox.pid())}, flags(Strategy::one_for_one, 1000, 3600s)).value();
  Pid a = started_pid(inbox, "a");
  for (int i = 0; i < 300; ++i) {
    crash(rt, a, ExitReason::other("crash"));
    a = started_pid(inbox, "a");
  }
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));
  EXPECT_EQ(reports.count(ReportKind::child_terminated), 300u);
  EXPECT_EQ(coppice::supervisor_totals(rt).reports_dropped, 0u);
}

coppice::SupervisorStats stats_of(coppice::Runtime& rt, Pid pid) {
  for (const coppice::SupervisorStats& s : coppice::supervisor_stats(rt))
    if (s.pid == pid) return s;
  ADD_FAILURE() << "no stats for " << pid;
  return {};
}

// 2 failed start_child calls, 7 restarts, then the 8th crash trips the intensity of 7.
TEST(SupervisorStats, CountRestartsTripsStartFailuresAndStarts) {
  coppice::Runtime rt(quiet(workers(2)));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {worker("w", inbox.pid())}, flags(Strategy::one_for_one, 7, 3600s)).value();
  Pid w = started_pid(inbox, "w");
  coppice::Error no(ErrorKind::start_error, "no");
  EXPECT_FALSE(Supervisor::start_child(rt, sup, failing("f1", no)).has_value());
  EXPECT_FALSE(Supervisor::start_child(rt, sup, failing("f2", no)).has_value());
  for (int i = 0; i < 7; ++i) {
    crash(rt, w, ExitReason::other("crash"));
    w = started_pid(inbox, "w");
  }
  EXPECT_EQ(Supervisor::count_children(rt, sup).value(), counts(1, 1, 0, 1));  // done restarting
  coppice::SupervisorStats s = stats_of(rt, sup);
  EXPECT_EQ(s.behaviour, "Supervisor");
  EXPECT_TRUE(s.top_level);
  EXPECT_EQ(s.restarts, 7u);
  EXPECT_EQ(s.intensity_trips, 0u);
  EXPECT_EQ(s.start_failures, 2u);
  EXPECT_EQ(s.children_started, 8u);

  coppice::Ref watch = inbox.monitor(sup);
  crash(rt, w, ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, watch)->reason, ExitReason::shutdown());
  EXPECT_TRUE(coppice::supervisor_stats(rt).empty()) << "an exited supervisor leaves the list";
  coppice::SupervisorTotals t = coppice::supervisor_totals(rt);
  EXPECT_EQ(t.supervisors, 0u);
  EXPECT_EQ(t.restarts, 7u);
  EXPECT_EQ(t.intensity_trips, 1u);
  EXPECT_EQ(t.start_failures, 2u);
  EXPECT_EQ(t.children_started, 8u);
}

TEST(SupervisorStats, ADynamicSupervisorCountsItsStartsAndRestarts) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  coppice::StartOptions named;
  named.name = "jobs";
  Pid sup = coppice::DynamicSupervisor::start(rt, {}, named).value();
  std::vector<Pid> kids;
  for (int i = 0; i < 3; ++i) {
    kids.push_back(coppice::DynamicSupervisor::start_child(rt, sup, worker("job", inbox.pid())).value());
    started_pid(inbox, "job");
  }
  coppice::Error no(ErrorKind::start_error, "no");
  EXPECT_FALSE(coppice::DynamicSupervisor::start_child(rt, sup, failing("bad", no)).has_value());
  crash(rt, kids[0], ExitReason::other("crash"));
  // A restart does not hold the supervisor: its child_started (made once it has counted the
  // start) says it is done.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(reports.next(ReportKind::child_started).has_value());
  coppice::SupervisorStats s = stats_of(rt, sup);
  EXPECT_EQ(s.behaviour, "DynamicSupervisor");
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(s.start_failures, 1u);
  EXPECT_EQ(s.children_started, 4u);
}

// Parent-wide intensity 2: two restarts, and the third crash trips it.
TEST(SupervisorStats, AParentCountsAndReportsInTheParentLibrarysWords) {
  ReportQueue reports;
  coppice::Runtime rt(reports.options());
  Inbox inbox(rt);
  coppice::ParentOptions po;
  po.intensity = 2;
  po.period = 3600s;
  Pid parent = coppice::ParentSupervisor::start(rt, {coppice::ParentChildSpec(worker("w", inbox.pid()))}, po).value();
  Pid w = started_pid(inbox, "w");
  for (int i = 0; i < 2; ++i) {
    crash(rt, w, ExitReason::other("crash"));
    w = started_pid(inbox, "w");
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reports.next(ReportKind::child_started).has_value());
  coppice::SupervisorStats s = stats_of(rt, parent);
  EXPECT_EQ(s.behaviour, "Parent.Supervisor");
  EXPECT_TRUE(s.top_level);
  EXPECT_EQ(s.restarts, 2u);
  EXPECT_EQ(s.intensity_trips, 0u);
  EXPECT_EQ(s.children_started, 3u);

  coppice::Ref watch = inbox.monitor(parent);
  crash(rt, w, ExitReason::other("crash"));
  EXPECT_EQ(down_for(inbox, watch)->reason, coppice::too_many_restarts());
  std::optional<Report> r = reports.next(ReportKind::reached_max_restart_intensity);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->parent);
  EXPECT_FALSE(r->child.has_value());
  EXPECT_EQ(r->line(), "coppice: Parent.Supervisor " + parent.to_string() + " Too many restarts in parent process, stopping every child");
  std::optional<Report> died = reports.next(ReportKind::tree_died);
  ASSERT_TRUE(died.has_value());
  EXPECT_EQ(died->pid, parent);
  EXPECT_EQ(died->reason, coppice::too_many_restarts());
  EXPECT_EQ(coppice::supervisor_totals(rt).intensity_trips, 1u);
}

TEST(SupervisorStats, APartitionSupervisorIsNamedSoAndItsPartitionsAreNotTopLevel) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::PartitionSupervisorOptions o;
  o.child = coppice::DynamicSupervisor::child_spec("part", {});
  o.partitions = 2;
  Pid top = coppice::PartitionSupervisor::start(rt, o).value();
  std::vector<coppice::SupervisorStats> stats = coppice::supervisor_stats(rt);
  ASSERT_EQ(stats.size(), 3u);
  std::size_t partitions = 0;
  for (const coppice::SupervisorStats& s : stats) {
    if (s.pid == top) {
      EXPECT_EQ(s.behaviour, "PartitionSupervisor");
      EXPECT_TRUE(s.top_level);
      EXPECT_EQ(s.children_started, 2u);
    } else {
      ++partitions;
      EXPECT_EQ(s.behaviour, "DynamicSupervisor");
      EXPECT_FALSE(s.top_level);
    }
  }
  EXPECT_EQ(partitions, 2u);
}

}  // namespace
}  // namespace coppice_test::reports
