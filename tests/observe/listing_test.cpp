// The listing (list_processes, process_entry), labels, the supervision tree as data and the
// metrics, against what the test set up: names, labels, behaviours, parents, statuses, counts.
#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "runtime/support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {

struct Get {};
struct Hold {};  // the server blocks its worker until `release` is set
struct Release {};

class Counter : public GenServer<Counter> {
 public:
  using calls = coppice::Protocol<Get>;
  using casts = coppice::Protocol<int>;
  explicit Counter(std::string label = {}) : label_(std::move(label)) {}
  Init init() {
    if (!label_.empty()) set_label(label_);
    return ok();
  }
  int handle_call(Get) { return total_; }
  void handle_cast(int n) { total_ += n; }
  std::string format_status() const { return "total=" + std::to_string(total_); }

 private:
  std::string label_;
  int total_ = 0;
};

const ProcessEntry* find(const std::vector<ProcessEntry>& list, Pid pid) {
  auto it = std::find_if(list.begin(), list.end(), [&](const ProcessEntry& e) { return e.pid == pid; });
  return it == list.end() ? nullptr : &*it;
}
bool has(const std::vector<Pid>& v, Pid p) { return std::find(v.begin(), v.end(), p) != v.end(); }

struct Labelled {};
// Labels itself, says so, then waits for a string that never comes: ints sent to it stay queued.
Async<void> labelled_waiter(Pid observer, std::string label) {
  set_label(std::move(label));
  send(observer, Labelled{});
  co_await receive<std::string>();
}

}  // namespace

TEST(Listing, ShowsEachProcessWithItsNameLabelBehaviourClassAndParent) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {child<Counter>("a", std::string("counter a")).name("counter_a"), child<Counter>("b")},
                              SupervisorFlags{})
                .value();
  const Pid a = rt.whereis("counter_a");
  ASSERT_TRUE(a);
  const Pid plain = rt.spawn(labelled_waiter, inbox.pid(), std::string("plain one"));
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  for (int i = 0; i < 10; ++i) Counter::cast(rt, a, 1);
  ASSERT_EQ(Counter::call(rt, a, Get{}).value(), 10);

  const std::vector<ProcessEntry> list = list_processes(rt);
  const ProcessEntry* s = find(list, sup);
  const ProcessEntry* ca = find(list, a);
  const ProcessEntry* p = find(list, plain);
  const ProcessEntry* in = find(list, inbox.pid());
  ASSERT_TRUE(s && ca && p && in);

  EXPECT_EQ(s->behaviour, "Supervisor");
  EXPECT_EQ(find(list, s->parent), nullptr) << "started for a plain thread by a process that has ended";
  EXPECT_EQ(ca->behaviour, "GenServer");
  EXPECT_NE(ca->type.find("Counter"), std::string::npos) << ca->type;
  EXPECT_EQ(ca->registered_name, "counter_a");
  EXPECT_EQ(ca->label, "counter a");
  EXPECT_EQ(ca->parent, sup) << "a supervised child's parent is its supervisor";
  // The call's reply may come before the server's turn has ended (and counted the call).
  EXPECT_GE(ca->reductions, 10u) << "ten casts handled before the call";
  const Pid b = Supervisor::which_child(rt, sup, "b").value().pid;
  ASSERT_TRUE(find(list, b));
  EXPECT_EQ(find(list, b)->status, ProcessStatus::waiting) << "idle since its start";
  EXPECT_GT(ca->memory, sizeof(Counter));
  EXPECT_EQ(p->behaviour, "plain");
  EXPECT_EQ(p->label, "plain one");
  EXPECT_EQ(in->behaviour, "inbox");
  EXPECT_EQ(label_of(rt, plain), "plain one");
  EXPECT_FALSE(ca->detailed) << "no details asked";

  // Both children under the supervisor, nothing listed twice.
  std::map<Pid, int> seen;
  for (const ProcessEntry& e : list) ++seen[e.pid];
  for (auto& [pid, n] : seen) EXPECT_EQ(n, 1) << pid.to_string();
  EXPECT_EQ(std::count_if(list.begin(), list.end(), [&](const ProcessEntry& e) { return e.parent == sup; }), 2);
}

TEST(Listing, DetailsComeFromTheProcessItselfWithItsLinksMonitorsAndQueue) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid w = rt.spawn(labelled_waiter, inbox.pid(), std::string("waiter"));
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  ASSERT_TRUE(inbox.link(w));
  inbox.monitor(w);
  for (int i = 0; i < 5; ++i) inbox.send(w, i);

  Result<ProcessEntry> e = process_entry(rt, w, ListOptions{.details = true});
  ASSERT_TRUE(e) << e.error();
  EXPECT_TRUE(e->detailed);
  EXPECT_EQ(e->links, std::vector<Pid>{inbox.pid()});
  EXPECT_TRUE(has(e->monitored_by, inbox.pid()));
  EXPECT_EQ(e->message_queue_len, 5u) << "the five ints wait behind the receive of a string";
  EXPECT_GE(e->memory, 5 * 32u);

  const std::vector<ProcessEntry> all = list_processes(rt, ListOptions{.details = true});
  const ProcessEntry* again = find(all, w);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->detailed);
  EXPECT_EQ(again->message_queue_len, 5u);
  EXPECT_EQ(again->label, "waiter");
}

TEST(Listing, ADeadOrForeignPidIsAnErrorAndALabelGoesWithItsProcess) {
  Runtime rt(workers(1));
  Runtime other(workers(1));
  Inbox inbox(rt);
  const Pid w = rt.spawn(labelled_waiter, inbox.pid(), std::string("short-lived"));
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  EXPECT_EQ(label_of(rt, w), "short-lived");
  inbox.monitor(w);
  rt.exit(w, ExitReason::kill());
  ASSERT_TRUE(inbox.receive<Down>(wait_time));
  EXPECT_EQ(label_of(rt, w), "") << "the label left with the process";
  Result<ProcessEntry> gone = process_entry(rt, w);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::noproc);
  Inbox foreign(other);
  Result<ProcessEntry> f = process_entry(rt, foreign.pid());
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().kind(), ErrorKind::foreign_pid);
  EXPECT_THROW(set_label("from a plain thread"), std::logic_error);
}

TEST(Listing, ALongLabelIsCutAndAnEmptyOneRemovesIt) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  const Pid w = rt.spawn(labelled_waiter, inbox.pid(), std::string(1000, 'x'));
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  EXPECT_EQ(label_of(rt, w), std::string(256, 'x'));
  const Pid v = rt.spawn(labelled_waiter, inbox.pid(), std::string());
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  EXPECT_EQ(label_of(rt, v), "");
}

// One worker held by a callback that waits for the test: the holder is running, a process
// woken meanwhile is runnable, an idle one waiting.
TEST(Listing, StatusIsRunningRunnableOrWaiting) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  std::atomic<bool> release{false};
  struct Holding {};
  const Pid holder = rt.spawn(
      [](Pid observer, std::atomic<bool>* r) -> Async<void> {
        co_await receive<Hold>();
        send(observer, Holding{});
        while (!r->load()) std::this_thread::yield();
      },
      inbox.pid(), &release);
  const Pid idle = rt.spawn(labelled_waiter, inbox.pid(), std::string("idle"));
  ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  rt.send(holder, Hold{});
  ASSERT_TRUE(inbox.receive<Holding>(wait_time));
  const Pid woken = rt.spawn(labelled_waiter, inbox.pid(), std::string("woken"));  // queued behind the holder

  const std::vector<ProcessEntry> list = list_processes(rt);
  release = true;
  ASSERT_TRUE(find(list, holder) && find(list, idle) && find(list, woken));
  EXPECT_EQ(find(list, holder)->status, ProcessStatus::running);
  EXPECT_EQ(find(list, woken)->status, ProcessStatus::runnable);
  EXPECT_EQ(find(list, idle)->status, ProcessStatus::waiting);
  EXPECT_EQ(to_string(ProcessStatus::runnable), "runnable");
}

// Processes spawn and die on both workers while a plain thread lists them, with and without
// details: every entry is a process that was alive, none twice (TSan runs this).
TEST(Listing, ASnapshotTakenUnderChurnListsOnlyLiveProcessesOnce) {
  Runtime rt(workers(2));
  std::atomic<bool> stop{false};
  std::atomic<long> spawned{0};
  std::thread churn([&] {
    while (!stop.load()) {
      for (int i = 0; i < 50; ++i) {
        rt.spawn([](long n) -> Async<void> {
          if (n % 3 == 0) set_label("churn " + std::to_string(n));
          for (int k = 0; k < 3; ++k) {
            send(self(), k);
            co_await receive<int>();
          }
        }, spawned.fetch_add(1));
      }
      std::this_thread::yield();
    }
  });
  long listed = 0;
  for (int round = 0; round < 40 || spawned.load() < 5000; ++round) {
    const std::vector<ProcessEntry> list = list_processes(rt, ListOptions{.details = round % 4 == 0});
    std::map<Pid, int> seen;
    for (const ProcessEntry& e : list) {
      ASSERT_TRUE(e.pid);
      ASSERT_EQ(++seen[e.pid], 1) << e.pid.to_string();
      ASSERT_FALSE(e.behaviour.empty());
      if (!e.label.empty()) {
        ASSERT_EQ(e.label.rfind("churn ", 0), 0u) << e.label;
      }
    }
    listed += static_cast<long>(list.size());
  }
  stop = true;
  churn.join();
  EXPECT_GT(spawned.load(), 0);
  EXPECT_GT(listed, 0);
}

TEST(Listing, MailboxDepthsCountProcessesByPowerOfTwoBuckets) {
  std::vector<ProcessEntry> list(6);
  list[0].message_queue_len = 0;
  list[1].message_queue_len = 1;
  list[2].message_queue_len = 2;
  list[3].message_queue_len = 3;
  list[4].message_queue_len = 7;
  list[5].message_queue_len = 100;
  const MailboxDepths d = mailbox_depths(list);
  ASSERT_EQ(d.upper.size(), d.counts.size());
  EXPECT_EQ(d.upper[0], 0u);
  EXPECT_EQ(d.upper[3], 7u);
  EXPECT_EQ(d.counts[0], 1u);
  EXPECT_EQ(d.counts[1], 1u);
  EXPECT_EQ(d.counts[2], 2u);
  EXPECT_EQ(d.counts[3], 1u);
  EXPECT_EQ(d.counts[7], 1u) << "100 is in 64-127";
  EXPECT_EQ(d.max, 100u);
}
