// process_info: links, monitors, monitored_by, registered name, trap_exit and queue length as they are; noproc for the dead.
#include <algorithm>

#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Ready {};

// Traps exits, takes a name, monitors `watched`, then waits for a string that never comes,
// so that ints sent to it stay queued.
Async<void> subject(Pid observer, Pid watched) {
  trap_exit(true);
  (void)register_name("subject");
  monitor(watched);
  send(observer, Ready{});
  co_await receive<std::string>();
}

bool has(const std::vector<Pid>& v, Pid p) { return std::find(v.begin(), v.end(), p) != v.end(); }

}  // namespace

TEST(ProcessInfo, ReportsLinksMonitorsNameTrapExitAndQueueLength) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid watched = rt.spawn<Puppet>();
  const Pid s = rt.spawn(subject, inbox.pid(), watched);
  ASSERT_TRUE(inbox.receive<Ready>(wait_time));
  ASSERT_TRUE(inbox.link(s));
  inbox.monitor(s);
  for (int i = 0; i < 3; ++i) inbox.send(s, i);

  Result<ProcessInfo> info = rt.process_info(s);
  ASSERT_TRUE(info) << info.error();
  EXPECT_EQ(info->pid, s);
  EXPECT_EQ(info->links, std::vector<Pid>{inbox.pid()});
  EXPECT_EQ(info->monitors, std::vector<Pid>{watched});
  EXPECT_EQ(info->monitored_by, std::vector<Pid>{inbox.pid()});
  EXPECT_EQ(info->registered_name, "subject");
  EXPECT_TRUE(info->trap_exit);
  EXPECT_EQ(info->message_queue_len, 3u);

  Result<ProcessInfo> watched_info = rt.process_info(watched);
  ASSERT_TRUE(watched_info) << watched_info.error();
  EXPECT_TRUE(has(watched_info->monitored_by, s));
  EXPECT_TRUE(watched_info->monitors.empty());
  EXPECT_TRUE(watched_info->links.empty());
  EXPECT_FALSE(watched_info->trap_exit);
  EXPECT_EQ(watched_info->registered_name, "");
  EXPECT_EQ(watched_info->message_queue_len, 0u);
}

TEST(ProcessInfo, FollowsUnlinkAndDemonitor) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.link(a));
  const Ref ref = inbox.monitor(a);
  inbox.unlink(a);
  inbox.demonitor(ref);
  Result<ProcessInfo> info = rt.process_info(a);
  ASSERT_TRUE(info) << info.error();
  EXPECT_TRUE(info->links.empty());
  EXPECT_TRUE(info->monitored_by.empty());
}

TEST(ProcessInfo, DeadPidIsNoproc) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  Result<ProcessInfo> info = rt.process_info(dead);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind(), ErrorKind::noproc) << info.error();
}

TEST(ProcessInfo, FromInsideAProcessAndOfItself) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Seen {
    Result<ProcessInfo> other;
    Result<ProcessInfo> dead;
    ProcessInfo mine;
  };
  const Pid dead = dead_pid(rt, inbox);
  const Pid other = rt.spawn<Puppet>();
  ASSERT_TRUE(rt.register_name("other", other));
  rt.spawn([](Pid observer, Pid target, Pid gone) -> Async<void> {
    trap_exit(true);
    send(self(), 1);
    Result<ProcessInfo> of_other = co_await process_info(target);
    Result<ProcessInfo> of_dead = co_await process_info(gone);
    send(observer, Seen{std::move(of_other), std::move(of_dead), self_info()});
  }, inbox.pid(), other, dead);
  std::optional<Seen> seen = inbox.receive<Seen>(wait_time);
  ASSERT_TRUE(seen);
  ASSERT_TRUE(seen->other) << seen->other.error();
  EXPECT_EQ(seen->other->registered_name, "other");
  ASSERT_FALSE(seen->dead);
  EXPECT_EQ(seen->dead.error().kind(), ErrorKind::noproc);
  EXPECT_TRUE(seen->mine.trap_exit);
  EXPECT_EQ(seen->mine.message_queue_len, 1u) << "the int sent to itself";
  EXPECT_TRUE(seen->mine.monitors.empty()) << "process_info left its monitor behind";
}

TEST(ProcessInfo, IsRefusedOnAWorkerThreadWhereItWouldBlock) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid observer, Runtime* runtime) -> Async<void> {
    Result<ProcessInfo> r = runtime->process_info(observer);
    send(observer, r ? std::optional<ErrorKind>() : std::optional<ErrorKind>(r.error().kind()));
    co_return;
  }, inbox.pid(), &rt);
  std::optional<std::optional<ErrorKind>> kind = inbox.receive<std::optional<ErrorKind>>(wait_time);
  ASSERT_TRUE(kind);
  ASSERT_TRUE(*kind);
  EXPECT_EQ(**kind, ErrorKind::blocking_in_process);
}
