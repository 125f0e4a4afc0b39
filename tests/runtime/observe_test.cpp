// coppice/observe.hpp: the listing (list_processes, process_entry) and labels, the metrics
// against known counts, and the supervision tree as data.
#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "otp/otp_support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
// Reductions count envelopes as a turn takes them: waits (bounded) until `pid` has ended its
// turn and is idle, as the listing sees it, so that it has taken all that was sent to it.
bool idle_soon(Runtime& rt, Pid pid) {
  const auto deadline = std::chrono::steady_clock::now() + wait_time;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<ProcessEntry> e = process_entry(rt, pid);
    if (e && e->status == ProcessStatus::waiting) return true;
    std::this_thread::yield();
  }
  return false;
}

// A worker publishes the messages its turns took every few turns and before it parks:
// waits (bounded) until messages_sent has grown by `at_least` since `before`.
RuntimeMetrics sent_soon(Runtime& rt, const RuntimeMetrics& before, std::uint64_t at_least) {
  const auto deadline = std::chrono::steady_clock::now() + wait_time;
  RuntimeMetrics now = metrics(rt);
  while (now.messages_sent - before.messages_sent < at_least && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    now = metrics(rt);
  }
  return now;
}
}  // namespace

namespace observe_listing {

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
  ASSERT_TRUE(idle_soon(rt, a));
  const Pid b = Supervisor::which_child(rt, sup, "b").value().pid;
  ASSERT_TRUE(idle_soon(rt, b));  // its worker may still be in the turn that acknowledged its start

  const std::vector<ProcessEntry> list = list_processes(rt);
  const ProcessEntry* s = find(list, sup);
  const ProcessEntry* ca = find(list, a);
  const ProcessEntry* p = find(list, plain);
  const ProcessEntry* in = find(list, inbox.pid());
  ASSERT_TRUE(s && ca && p && in);

  EXPECT_EQ(s->behaviour, "Supervisor");
  // Started for a plain thread by a helper process that has ended: its DOWN has reached the
  // thread, but it may still be leaving the table, listed as exiting (as erlang:processes/0
  // lists an exiting process).
  const ProcessEntry* helper = find(list, s->parent);
  EXPECT_TRUE(helper == nullptr || helper->status == ProcessStatus::exiting) << to_string(helper->status);
  EXPECT_EQ(ca->behaviour, "GenServer");
  EXPECT_NE(ca->type.find("Counter"), std::string::npos) << ca->type;
  EXPECT_EQ(ca->registered_name, "counter_a");
  EXPECT_EQ(ca->label, "counter a");
  EXPECT_EQ(ca->parent, sup) << "a supervised child's parent is its supervisor";
  EXPECT_GE(ca->reductions, 11u) << "ten casts and a call handled";
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

// A detailed listing blocks while every process answers: refused inside a process (it would
// hold its worker), while the plain listing is fine there.
TEST(Listing, ADetailedListingFromInsideAProcessIsRefused) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  struct Outcome {
    bool refused;
    std::size_t plain;
  };
  rt.spawn([](Runtime* r, Pid to) -> Async<void> {
    bool refused = false;
    try {
      (void)list_processes(*r, ListOptions{.details = true});
    } catch (const std::logic_error&) {
      refused = true;
    }
    send(to, Outcome{refused, list_processes(*r).size()});
    co_return;
  }, &rt, inbox.pid());
  auto out = inbox.receive<Outcome>(wait_time);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->refused);
  EXPECT_GE(out->plain, 2u) << "the process itself and the inbox";
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

// for_each_process walks in batches of a few thousand, reusing its entries: across batch
// boundaries every process is seen once, and a label never leaks into the next entry.
TEST(Listing, ForEachProcessVisitsEveryProcessOnceWithoutASnapshot) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  constexpr int n = 10'000;  // more than two batches
  std::vector<Pid> pids;
  for (int i = 0; i < n; ++i)
    pids.push_back(rt.spawn(labelled_waiter, inbox.pid(), i % 2 == 0 ? "even " + std::to_string(i) : std::string()));
  for (int i = 0; i < n; ++i) ASSERT_TRUE(inbox.receive<Labelled>(wait_time));
  std::map<Pid, std::string> seen;
  for_each_process(rt, [&](const ProcessEntry& e) { EXPECT_TRUE(seen.emplace(e.pid, e.label).second) << e.pid.to_string(); });
  EXPECT_EQ(seen.size(), list_processes(rt).size());
  for (int i = 0; i < n; ++i) {
    auto it = seen.find(pids[i]);
    ASSERT_NE(it, seen.end());
    EXPECT_EQ(it->second, i % 2 == 0 ? "even " + std::to_string(i) : std::string());
  }
  MailboxDepths d;
  for_each_process(rt, [&](const ProcessEntry& e) { d.add(e.message_queue_len); });
  EXPECT_EQ(d.counts[0], seen.size()) << "every queue is empty";
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

}  // namespace observe_listing

namespace observe_metrics {

namespace {
struct Exited {};
Async<void> exit_with(ExitReason reason) {
  exit(self(), std::move(reason));
  co_await receive<std::string>();  // the signal ends it here
}
Async<void> throwing() {
  throw std::runtime_error("on purpose");
  co_return;
}
Async<void> returning() { co_return; }
Async<void> sleeper() { co_await receive<std::string>(); }
}  // namespace

TEST(Metrics, SpawnsAndExitsAreCountedByReasonClass) {
  Runtime rt(RuntimeOptions{.workers = 2, .logger = [](std::string_view) {}});
  Inbox inbox(rt);
  const RuntimeMetrics before = metrics(rt);
  auto run_and_wait = [&](auto spawn_one, int n) {
    for (int i = 0; i < n; ++i) {
      const Pid p = spawn_one();
      inbox.monitor(p);
    }
    for (int i = 0; i < n; ++i) ASSERT_TRUE(inbox.receive<Down>(wait_time));
  };
  run_and_wait([&] { return rt.spawn(returning); }, 100);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::shutdown()); }, 7);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::shutdown("with a detail")); }, 3);
  run_and_wait([&] { return rt.spawn(throwing); }, 5);
  run_and_wait([&] { return rt.spawn(exit_with, ExitReason::other("odd")); }, 2);
  std::vector<Pid> sleepers;
  for (int i = 0; i < 11; ++i) sleepers.push_back(rt.spawn(sleeper));
  for (Pid p : sleepers) {
    inbox.monitor(p);
    rt.exit(p, ExitReason::kill());
  }
  for (std::size_t i = 0; i < sleepers.size(); ++i) ASSERT_TRUE(inbox.receive<Down>(wait_time));

  const RuntimeMetrics after = metrics(rt);
  EXPECT_EQ(after.spawns - before.spawns, 100u + 7 + 3 + 5 + 2 + 11);
  EXPECT_EQ(after.exits_normal - before.exits_normal, 100u);
  EXPECT_EQ(after.exits_shutdown - before.exits_shutdown, 10u);
  EXPECT_EQ(after.exits_error - before.exits_error, 7u) << "5 exceptions and 2 other reasons";
  EXPECT_EQ(after.exits_killed - before.exits_killed, 11u);
  EXPECT_EQ(after.exits - before.exits, 128u);
  EXPECT_EQ(after.processes, rt.process_count());
}

TEST(Metrics, MessagesSentCountEveryEnvelopePutIntoAMailbox) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  // A process that forwards 1,000 ints to the inbox: 1,000 sends from a plain thread, 1,000
  // from a worker, and the monitor's DOWN at the end.
  const Pid relay = rt.spawn([](Pid to) -> Async<void> {
    for (int i = 0; i < 1000; ++i) send(to, co_await receive<int>());
  }, inbox.pid());
  const RuntimeMetrics before = metrics(rt);
  for (int i = 0; i < 1000; ++i) inbox.send(relay, i);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(inbox.receive<int>(wait_time));
  const RuntimeMetrics after = sent_soon(rt, before, 2000);
  EXPECT_GE(after.messages_sent - before.messages_sent, 2000u);
  EXPECT_LE(after.messages_sent - before.messages_sent, 2010u) << "nothing else runs";
}

TEST(Metrics, MessagesSentCountSignalsAndWhatADyingProcessLeavesUnread) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  struct Never {};
  const Pid sleeper = rt.spawn([]() -> Async<void> { co_await receive<Never>(); });
  ASSERT_TRUE(idle_soon(rt, sleeper));
  const RuntimeMetrics before = metrics(rt);
  const Ref watch = inbox.monitor(sleeper);           // a monitor signal
  for (int i = 0; i < 10; ++i) inbox.send(sleeper, i);  // ten messages it never reads
  inbox.exit(sleeper, ExitReason::killed());            // an exit signal
  const std::optional<Down> down = inbox.receive<Down>(wait_time);  // a DOWN, to the inbox
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, watch);
  const RuntimeMetrics after = sent_soon(rt, before, 13);
  EXPECT_EQ(after.messages_sent - before.messages_sent, 13u)
      << "the monitor, ten messages, the exit signal and the DOWN, each counted once";
}

TEST(Metrics, TimersStartedAndFiredAreCounted) {
  Runtime rt(workers(1));
  Inbox inbox(rt);
  const RuntimeMetrics before = metrics(rt);
  for (int i = 0; i < 5; ++i) rt.send_after(1ms, inbox.pid(), i);
  TimerRef never = rt.send_after(1h, inbox.pid(), -1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(inbox.receive<int>(wait_time));
  const RuntimeMetrics mid = metrics(rt);
  EXPECT_EQ(mid.timers_started - before.timers_started, 6u);
  EXPECT_EQ(mid.timers_fired - before.timers_fired, 5u);
  EXPECT_EQ(mid.timers_pending, 1u);
  EXPECT_TRUE(rt.cancel_timer(never));
  EXPECT_EQ(metrics(rt).timers_pending, 0u);
}

TEST(Metrics, WorkersCountTurnsParksAndUtilisation) {
  RuntimeOptions o = workers(2);
  o.spin_before_park = 0us;  // a worker with nothing to do parks at once
  Runtime rt(o);
  Inbox inbox(rt);
  const Pid echo = rt.spawn([](Pid to) -> Async<void> {
    for (;;) send(to, co_await receive<int>());
  }, inbox.pid());
  for (int i = 0; i < 200; ++i) {
    inbox.send(echo, i);
    ASSERT_TRUE(inbox.receive<int>(wait_time));  // one at a time: the worker parks between
  }
  const RuntimeMetrics m = metrics(rt);
  ASSERT_EQ(m.workers.size(), 2u);
  std::uint64_t turns = 0, parks = 0, wakeups = 0;
  for (const WorkerMetrics& w : m.workers) {
    turns += w.turns;
    parks += w.parks;
    wakeups += w.wakeups;
    EXPECT_GT(w.alive.count(), 0);
    EXPECT_LE(w.parked, w.alive);
    EXPECT_GE(w.utilisation(), 0.0);
    EXPECT_LE(w.utilisation(), 1.0);
  }
  EXPECT_GT(turns, 0u);
  ASSERT_TRUE(idle_soon(rt, echo));
  Result<ProcessEntry> e = process_entry(rt, echo);
  ASSERT_TRUE(e);
  EXPECT_GE(e->reductions, 200u) << "a receive resumed per echo";
  EXPECT_GT(parks, 0u);
  EXPECT_LE(wakeups, parks);
}

}  // namespace observe_metrics

namespace observe_tree {

namespace {
struct Get {};
class Worker : public GenServer<Worker> {
 public:
  using calls = coppice::Protocol<Get>;
  explicit Worker(std::string label) : label_(std::move(label)) {}
  Init init() {
    set_label(label_);
    return ok();
  }
  int handle_call(Get) { return 1; }

 private:
  std::string label_;
};

const TreeNode* node_of(const TreeNode& n, std::string_view id) {
  for (const TreeNode& c : n.children)
    if (c.id == id) return &c;
  return nullptr;
}
}  // namespace

TEST(SupervisionTree, WalksNestedSupervisorsWithTheirChildren) {
  Runtime rt(workers(2));
  Pid top = Supervisor::start(rt,
                              {child<Worker>("w1", std::string("first")).name("w1"),
                               Supervisor::child_spec("mid", {child<Worker>("w2", std::string("second")),
                                                              DynamicSupervisor::child_spec("dyn", {})})},
                              SupervisorFlags{})
                .value();
  Pid mid = Supervisor::which_child(rt, top, "mid").value().pid;
  Pid dyn = Supervisor::which_child(rt, mid, "dyn").value().pid;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(DynamicSupervisor::start_child(rt, dyn, child<Worker>("", "dynamic " + std::to_string(i))));

  Result<TreeNode> tree = supervision_tree(rt, top);
  ASSERT_TRUE(tree) << tree.error();
  EXPECT_EQ(tree->pid, top);
  EXPECT_EQ(tree->behaviour, "Supervisor");
  ASSERT_EQ(tree->children.size(), 2u);
  const TreeNode* w1 = node_of(*tree, "w1");
  const TreeNode* m = node_of(*tree, "mid");
  ASSERT_TRUE(w1 && m);
  EXPECT_EQ(w1->label, "first");
  EXPECT_EQ(w1->registered_name, "w1");
  EXPECT_EQ(w1->behaviour, "GenServer");
  EXPECT_EQ(w1->type, ChildType::worker);
  EXPECT_EQ(m->pid, mid);
  EXPECT_EQ(m->type, ChildType::supervisor);
  const TreeNode* d = node_of(*m, "dyn");
  ASSERT_TRUE(d && node_of(*m, "w2"));
  EXPECT_EQ(d->behaviour, "DynamicSupervisor");
  ASSERT_EQ(d->children.size(), 3u);
  for (const TreeNode& c : d->children) {
    EXPECT_TRUE(c.pid);
    EXPECT_EQ(c.label.rfind("dynamic ", 0), 0u) << c.label;
    EXPECT_TRUE(c.error.empty());
  }

  // The same from inside a process.
  Inbox inbox(rt);
  rt.spawn([](Pid top, Pid to) -> Async<void> {
    Result<TreeNode> t = co_await supervision_tree(ServerRef(top));
    send(to, t ? t->children.size() : std::size_t{0});
  }, top, inbox.pid());
  auto n = inbox.receive<std::size_t>(wait_time);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
}

TEST(SupervisionTree, ADeadRootIsNoprocAndAWorkerIsNotASupervisor) {
  Runtime rt(workers(1));
  Result<TreeNode> none = supervision_tree(rt, ServerRef("nobody"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind(), ErrorKind::noproc);
  Pid w = Worker::start(rt, StartOptions{}, std::string("lonely")).value();
  Result<TreeNode> not_sup = supervision_tree(rt, w, std::chrono::milliseconds{500});
  ASSERT_FALSE(not_sup) << "a GenServer does not answer which_children";
}

}  // namespace observe_tree
