// Pids of another Runtime in the same program (SEMANTICS.md 1.1): never delivered to the local
// process that has the same slot and generation; a call, link, monitor or register with one is
// an error, a plain send or exit signal is dropped as one to a dead pid.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

// Two runtimes, each with one puppet spawned the same way from this thread, so that on a
// table without runtime identity both would get the same slot and generation.
struct TwoRuntimes {
  Runtime a{workers(2)};
  Runtime b{workers(2)};
  Inbox seen_in_a{a};
  Inbox seen_in_b{b};
  Pid pa = a.spawn<Puppet>(seen_in_a.pid());
  Pid pb = b.spawn<Puppet>(seen_in_b.pid());

  // Neither puppet was told anything: each answers a Ping and has nothing to report.
  void expect_both_untouched() {
    EXPECT_TRUE(answers(seen_in_a, pa)) << "A's process is gone";
    EXPECT_TRUE(answers(seen_in_b, pb)) << "B's process (same slot and generation) is gone";
    EXPECT_FALSE(seen_in_a.receive_any(0ms)) << "A's process was reached through B";
    EXPECT_FALSE(seen_in_b.receive_any(0ms)) << "B's process got what was meant for A's";
  }
};

std::optional<Error> error_of(const Status& s) { return s ? std::nullopt : std::optional<Error>(s.error()); }

}  // namespace

TEST(ForeignPids, TwoRuntimesNeverHandOutTheSamePid) {
  TwoRuntimes t;
  EXPECT_EQ(t.pa.slot(), t.pb.slot());
  EXPECT_EQ(t.pa.generation(), t.pb.generation());
  EXPECT_NE(t.pa, t.pb) << "both runtimes handed out " << t.pa;
  EXPECT_TRUE(t.a.alive(t.pa));
  EXPECT_FALSE(t.b.alive(t.pa)) << t.pa << " of runtime A is alive in runtime B";
}

TEST(ForeignPids, ASendOrExitToAPidOfAnotherRuntimeReachesNobody) {
  TwoRuntimes t;
  t.b.send(t.pa, 1);
  t.seen_in_b.send(t.pa, 2);
  Pid sender = t.b.spawn<Puppet>();
  ASSERT_TRUE(t.seen_in_b.call<Done>(sender, SendInt{t.pa, 3}, wait_time));
  t.b.exit(t.pa, ExitReason::kill());
  t.seen_in_b.exit(t.pa, ExitReason::kill());
  ASSERT_TRUE(t.seen_in_b.call<Done>(sender, SendExit{t.pa, ExitReason::kill()}, wait_time));
  t.expect_both_untouched();
}

TEST(ForeignPids, ACallToAPidOfAnotherRuntimeIsAForeignPidError) {
  TwoRuntimes t;
  Result<Pong> from_inbox = t.seen_in_b.call<Pong>(t.pa, Ping{}, wait_time);
  ASSERT_FALSE(from_inbox) << "answered by " << from_inbox->pid;
  EXPECT_EQ(from_inbox.error().kind(), ErrorKind::foreign_pid) << from_inbox.error();

  Inbox caller_result(t.b);
  t.b.spawn([](Pid server, Pid observer) -> Async<void> {
    Result<Pong> r = co_await call<Pong>(server, Ping{}, wait_time);
    send(observer, Outcome{r ? std::nullopt : std::optional<Error>(r.error())});
  }, t.pa, caller_result.pid());
  std::optional<Outcome> from_process = caller_result.receive<Outcome>(wait_time);
  ASSERT_TRUE(from_process);
  ASSERT_TRUE(from_process->error) << "a process's call was answered";
  EXPECT_EQ(from_process->error->kind(), ErrorKind::foreign_pid) << *from_process->error;

  Result<ProcessInfo> info = t.b.process_info(t.pa);
  ASSERT_FALSE(info) << "B gave the process_info of its own process for A's pid";
  EXPECT_EQ(info.error().kind(), ErrorKind::foreign_pid) << info.error();
  t.expect_both_untouched();
}

TEST(ForeignPids, LinkMonitorAndRegisterWithAPidOfAnotherRuntimeAreErrors) {
  TwoRuntimes t;
  std::optional<Error> inbox_link = error_of(t.seen_in_b.link(t.pa));
  ASSERT_TRUE(inbox_link) << "an inbox of B linked to A's pid";
  EXPECT_EQ(inbox_link->kind(), ErrorKind::foreign_pid) << *inbox_link;

  Inbox watcher(t.b);
  Pid trapping = t.b.spawn<Puppet>(watcher.pid(), true);
  Result<Outcome> process_link = watcher.call<Outcome>(trapping, LinkTo{t.pa}, wait_time);
  ASSERT_TRUE(process_link);
  ASSERT_TRUE(process_link->error) << "a process of B linked to A's pid";
  EXPECT_EQ(process_link->error->kind(), ErrorKind::foreign_pid) << *process_link->error;

  // A monitor returns a reference, so its error is its Down: at once, noconnection (what OTP
  // gives for a pid of a node it cannot reach).
  const Ref ref = watcher.monitor(t.pa);
  std::optional<Down> down = down_for(watcher, ref);
  ASSERT_TRUE(down) << "no Down for a monitor of A's pid";
  EXPECT_EQ(down->pid, t.pa);
  EXPECT_EQ(down->reason, ExitReason::other("noconnection"));
  Result<Ref> process_monitor = watcher.call<Ref>(trapping, MonitorOf{t.pa}, wait_time);
  ASSERT_TRUE(process_monitor);
  std::optional<SawDown> seen = watcher.receive<SawDown>(wait_time);
  ASSERT_TRUE(seen) << "no Down for a process's monitor of A's pid";
  EXPECT_EQ(seen->down.ref, *process_monitor);
  EXPECT_EQ(seen->down.reason, ExitReason::other("noconnection"));

  std::optional<Error> named = error_of(t.b.register_name("server", t.pa));
  ASSERT_TRUE(named) << "B registered A's pid";
  EXPECT_EQ(named->kind(), ErrorKind::foreign_pid) << *named;
  EXPECT_FALSE(t.b.whereis("server"));

  // Nothing of it reached B's process with the same bits: it is linked to nobody and
  // monitored by nobody, so its death is reported to no one here.
  t.expect_both_untouched();
  Inbox last(t.b);
  const Ref end = last.monitor(t.pb);
  t.b.exit(t.pb, ExitReason::kill());
  ASSERT_TRUE(down_for(last, end));
  ASSERT_TRUE(answers(watcher, trapping));
  EXPECT_FALSE(t.seen_in_b.receive_any(0ms));
  EXPECT_FALSE(watcher.receive_any(0ms)) << "a link or monitor meant for A's process watched B's";
}

// A pid's 8-bit tag tells 255 live runtimes apart: a 256th is refused by its constructor with
// a message; once one is destroyed, a new one is made with the tag it freed.
TEST(ForeignPids, A256thLiveRuntimeIsRefusedByItsConstructor) {
  std::vector<std::unique_ptr<Runtime>> alive;
  std::optional<std::string> refusal;
  for (int i = 0; i < 300 && !refusal; ++i) {
    try {
      alive.push_back(std::make_unique<Runtime>(workers(1)));
    } catch (const std::length_error& e) {
      refusal = e.what();
    }
  }
  ASSERT_TRUE(refusal) << alive.size() << " runtimes alive at once";
  EXPECT_EQ(alive.size(), 255u);
  EXPECT_NE(refusal->find("255 runtimes"), std::string::npos) << *refusal;

  const std::uint8_t freed = alive[10]->spawn<Puppet>().runtime_tag();
  alive[10].reset();
  alive[10] = std::make_unique<Runtime>(workers(1));
  EXPECT_EQ(alive[10]->spawn<Puppet>().runtime_tag(), freed);
}
