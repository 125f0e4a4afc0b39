// HostBridge: a host thread's calls complete through drain() with an in-runtime call's
// outcomes, wake the eventfd (timeouts included), and end safely at stop and destruction.
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

using namespace coppice;
using namespace host_test;

namespace {

// Where a callback puts what it got, and how many times it ran.
struct Got {
  std::optional<Result<int>> result;
  int calls = 0;
  auto callback() {
    return [this](Result<int> r) {
      result = std::move(r);
      ++calls;
    };
  }
};

// The bridge's process_info, asked from another thread while this one drains (the bridge
// answers the request in drain(), like everything else that reaches it).
std::size_t monitors_of(Runtime& rt, HostBridge& bridge, HostLoop& loop) {
  std::promise<Result<ProcessInfo>> answer;
  std::future<Result<ProcessInfo>> info = answer.get_future();
  std::thread asker([&] {
    answer.set_value(rt.process_info(bridge.pid(), wait_time));
    bridge.send(bridge.pid(), Marker{});  // wakes the loop below once the answer is in
  });
  EXPECT_TRUE(loop.run_until([&] { return info.wait_for(0s) == std::future_status::ready; }));
  asker.join();
  Result<ProcessInfo> r = info.get();
  EXPECT_TRUE(r) << r.error();
  return r ? r->monitors.size() : 999;
}

}  // namespace

TEST(HostBridge, CallGetsTheReplyThroughTheCallback) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  Got got;
  bridge.call<int>(server, Ask{41}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_TRUE(*got.result) << got.result->error();
  EXPECT_EQ(**got.result, 42);
  EXPECT_EQ(bridge.outstanding(), 0u);
  EXPECT_EQ(monitors_of(rt, bridge, loop), 0u) << "the call's monitor outlived it";
}

TEST(HostBridge, CallByNameGetsTheReply) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  ASSERT_TRUE(rt.register_name("server", rt.spawn<Server>()));
  Got got;
  bridge.call<int>("server", Ask{1}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_TRUE(*got.result) << got.result->error();
  EXPECT_EQ(**got.result, 2);
}

TEST(HostBridge, AFutureIsCompletedByWhicheverThreadDrains) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  const Pid server = rt.spawn<Server>();
  std::future<Result<int>> answer = bridge.call_future<int>(server, Ask{6});
  std::thread drainer([&] {
    HostLoop loop(bridge);
    (void)loop.run_until([&] { return bridge.outstanding() == 0; });
  });
  ASSERT_EQ(answer.wait_for(wait_time), std::future_status::ready);
  drainer.join();
  Result<int> r = answer.get();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 7);
}

TEST(HostBridge, ReplyOfAnotherTypeIsInvalidArgument) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  std::optional<Result<std::string>> got;
  bridge.call<std::string>(server, Ask{1}, wait_time, [&](Result<std::string> r) { got = std::move(r); });
  ASSERT_TRUE(loop.run_until([&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().kind(), ErrorKind::invalid_argument) << got->error();
}

// The deadline is a runtime timer that sends to the bridge: the fd becomes readable with no
// drain in between, and the late reply is dropped (the Marker sent after it is all that comes).
TEST(HostBridge, ATimeoutWakesTheFdAndTheLateReplyIsDropped) {
  Runtime rt(workers(2));
  std::vector<Message> messages;
  HostBridge bridge(rt, {.on_message = [&](Message m) { messages.push_back(std::move(m)); }});
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  Got got;
  bridge.call<int>(server, Hold{}, 20ms, got.callback());
  ASSERT_TRUE(loop.readable()) << "the deadline did not wake the fd";
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::timeout) << got.result->error();
  EXPECT_EQ(got.result->error().pid(), server);

  bridge.send(server, Release{});  // the server now replies to the abandoned call, then sends a Marker
  ASSERT_TRUE(loop.run_until([&] { return !messages.empty(); }));
  EXPECT_TRUE(messages.front().is<Marker>()) << "the late reply reached the handler: " << messages.front().type_name();
  EXPECT_EQ(messages.size(), 1u);
  EXPECT_EQ(got.calls, 1) << "the callback ran again";
  EXPECT_EQ(monitors_of(rt, bridge, loop), 0u);
}

TEST(HostBridge, CallToADeadPidIsNoproc) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  Got first;
  bridge.call<int>(server, CrashOnCall{ExitReason::normal()}, wait_time, first.callback());
  ASSERT_TRUE(loop.run_until([&] { return first.calls > 0; }));
  Got got;
  bridge.call<int>(server, Ask{1}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::noproc) << got.result->error();
}

// Refused before anything is sent, yet still through the fd and drain(), as every outcome.
TEST(HostBridge, CallToANameNobodyHoldsIsNoprocNamingIt) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  Got got;
  bridge.call<int>("nobody_here", Ask{1}, wait_time, got.callback());
  EXPECT_EQ(got.calls, 0) << "the callback ran inside call()";
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::noproc) << got.result->error();
  EXPECT_NE(got.result->error().message().find("nobody_here"), std::string::npos) << got.result->error();
}

TEST(HostBridge, CallToItselfIsCallingSelf) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  Got got;
  bridge.call<int>(bridge.pid(), Ask{1}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::calling_self) << got.result->error();
}

TEST(HostBridge, CallToAPidOfAnotherRuntimeIsForeignPid) {
  Runtime a(workers(1));
  Runtime b(workers(1));
  HostBridge bridge(b);
  HostLoop loop(bridge);
  Got got;
  bridge.call<int>(a.spawn<Server>(), Ask{1}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::foreign_pid) << got.result->error();
}

TEST(HostBridge, AServerThatDiesMidRequestGivesItsExitReason) {
  Runtime rt(quiet(workers(2)));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  Got got;
  bridge.call<int>(server, CrashOnCall{ExitReason::other("boom")}, wait_time, got.callback());
  ASSERT_TRUE(loop.run_until([&] { return got.calls > 0; }));
  ASSERT_FALSE(*got.result);
  EXPECT_EQ(got.result->error().kind(), ErrorKind::exited) << got.result->error();
  EXPECT_EQ(got.result->error().reason(), ExitReason::other("boom"));
  EXPECT_EQ(got.result->error().pid(), server);
}

// A server killed by the stop ends its call as exited (killed), as an Inbox call does; a
// call that nothing the stop kills would answer (here, to an Inbox) ends runtime_stopped,
// and so does a call made after the stop.
TEST(HostBridge, TheStopCompletesEveryOutstandingRequest) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  Inbox silent(rt);
  const Pid server = rt.spawn<Server>();
  std::vector<Got> to_server(50);
  std::vector<Got> to_inbox(50);
  for (Got& g : to_server) bridge.call<int>(server, Hold{}, HostBridge::no_timeout, g.callback());
  for (Got& g : to_inbox) bridge.call<int>(silent.pid(), Ask{1}, HostBridge::no_timeout, g.callback());
  ASSERT_TRUE(silent.receive_any(wait_time));  // a request has reached the inbox
  rt.stop();
  ASSERT_TRUE(loop.run_until([&] { return bridge.outstanding() == 0; }));
  for (Got& g : to_server) {
    ASSERT_EQ(g.calls, 1);
    ASSERT_FALSE(*g.result);
    EXPECT_EQ(g.result->error().kind(), ErrorKind::exited) << g.result->error();
    EXPECT_EQ(g.result->error().reason(), ExitReason::killed());
  }
  for (Got& g : to_inbox) {
    ASSERT_EQ(g.calls, 1);
    ASSERT_FALSE(*g.result);
    EXPECT_EQ(g.result->error().kind(), ErrorKind::runtime_stopped) << g.result->error();
  }
  Got after;
  bridge.call<int>(server, Ask{1}, wait_time, after.callback());
  ASSERT_TRUE(loop.run_until([&] { return after.calls > 0; }));
  EXPECT_EQ(after.result->error().kind(), ErrorKind::runtime_stopped) << after.result->error();
}

TEST(HostBridge, OutlivesItsRuntime) {
  auto rt = std::make_unique<Runtime>(workers(2));
  HostBridge bridge(*rt);
  HostLoop loop(bridge);
  Inbox silent(*rt);
  Got pending;
  bridge.call<int>(silent.pid(), Ask{1}, HostBridge::no_timeout, pending.callback());
  ASSERT_TRUE(silent.receive_any(wait_time));
  const Pid server = rt->spawn<Server>();
  rt.reset();
  ASSERT_TRUE(loop.run_until([&] { return pending.calls > 0; }));
  EXPECT_EQ(pending.result->error().kind(), ErrorKind::runtime_stopped) << pending.result->error();
  Got after;
  bridge.call<int>(server, Ask{1}, wait_time, after.callback());
  ASSERT_TRUE(loop.run_until([&] { return after.calls > 0; }));
  EXPECT_EQ(after.result->error().kind(), ErrorKind::runtime_stopped) << after.result->error();
  bridge.send(server, Ask{1});  // dropped
  EXPECT_FALSE(bridge.monitor(server));
  EXPECT_EQ(bridge.outstanding(), 0u);
}

// The callbacks of outstanding calls are destroyed, never called; a future is broken; the
// servers' later replies go to a dead pid.
TEST(HostBridge, DestroyedWithRequestsOutstandingItCallsNoCallback) {
  Runtime rt(workers(2));
  Inbox watcher(rt);
  const Pid server = rt.spawn<Server>();
  auto alive = std::make_shared<int>(0);
  int called = 0;
  std::future<Result<int>> future;
  Pid bridge_pid;
  {
    HostBridge bridge(rt);
    bridge_pid = bridge.pid();
    for (int i = 0; i < 100; ++i)
      bridge.call<int>(server, Hold{}, wait_time, [alive, &called](Result<int>) { ++called; });
    future = bridge.call_future<int>(server, Hold{});
    watcher.monitor(bridge_pid);
    ASSERT_EQ(watcher.call<int>(server, Ask{0}, wait_time).value(), 1);  // every Hold has arrived
  }
  EXPECT_EQ(alive.use_count(), 1) << "a callback outlived its bridge";
  EXPECT_EQ(called, 0);
  EXPECT_THROW((void)future.get(), std::future_error);
  ASSERT_TRUE(watcher.receive<Down>(wait_time)) << "the bridge's pid did not go down";
  watcher.send(server, Release{});
  EXPECT_EQ(watcher.call<int>(server, Ask{1}, wait_time).value(), 2) << "the server survived its late replies";
}

TEST(HostBridge, AMonitorsDownArrivesThroughDrainWithoutPolling) {
  Runtime rt(quiet(workers(2)));
  std::vector<Down> downs;
  HostBridge bridge(rt, {.on_down = [&](const Down& d) { downs.push_back(d); }});
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  const Ref ref = bridge.monitor(server);
  bridge.send(server, CrashOnCall{ExitReason::other("gone")});  // sent, not called: it still exits
  ASSERT_TRUE(loop.readable()) << "the Down did not wake the fd";
  ASSERT_TRUE(loop.run_until([&] { return !downs.empty(); }));
  EXPECT_EQ(downs.front().ref, ref);
  EXPECT_EQ(downs.front().pid, server);
  EXPECT_EQ(downs.front().reason, ExitReason::other("gone"));
}

// Whether the Down has arrived when demonitor runs or comes after it, no handler sees it.
TEST(HostBridge, ADemonitoredMonitorsDownNeverReachesTheHandler) {
  Runtime rt(quiet(workers(2)));
  std::vector<Message> seen;
  HostBridge bridge(rt, {.on_message = [&](Message m) { seen.push_back(std::move(m)); },
                         .on_down = [&](const Down& d) { seen.push_back(Message::of(d)); }});
  HostLoop loop(bridge);
  Inbox watcher(rt);
  const Pid server = rt.spawn<Server>();
  const Ref ref = bridge.monitor(server);
  watcher.monitor(server);
  bridge.send(server, CrashOnCall{ExitReason::other("gone")});
  ASSERT_TRUE(watcher.receive<Down>(wait_time));
  bridge.demonitor(ref);
  bridge.send(bridge.pid(), Marker{});
  ASSERT_TRUE(loop.run_until([&] { return !seen.empty(); }));
  for (Message& m : seen) EXPECT_FALSE(m.is<Down>()) << "a Down after its demonitor";
}

TEST(HostBridge, PlainMessagesAndExitsGoToTheMessageHandler) {
  Runtime rt(quiet(workers(2)));
  std::vector<Message> seen;
  HostBridge bridge(rt, {.on_message = [&](Message m) { seen.push_back(std::move(m)); }});
  HostLoop loop(bridge);
  rt.send(bridge.pid(), 7);
  const Pid bridge_pid = bridge.pid();
  rt.spawn([](Pid to) -> Async<void> {
    (void)link(to);
    exit(ExitReason::other("bye"));
    co_return;
  }, bridge_pid);
  ASSERT_TRUE(loop.run_until([&] { return seen.size() >= 2; }));
  ASSERT_TRUE(seen[0].is<int>());
  EXPECT_EQ(seen[0].get<int>(), 7);
  ASSERT_TRUE(seen[1].is<Exit>()) << seen[1].type_name();
  EXPECT_EQ(seen[1].get<Exit>().reason, ExitReason::other("bye"));
}

TEST(HostBridge, ACallbackMayCallAgain) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  const Pid server = rt.spawn<Server>();
  int last = 0;
  std::function<void(Result<int>)> next = [&](Result<int> r) {
    last = r.value();
    if (last < 10) bridge.call<int>(server, Ask{last}, wait_time, next);
  };
  bridge.call<int>(server, Ask{0}, wait_time, next);
  ASSERT_TRUE(loop.run_until([&] { return last == 10; }));
}

// Ten thousand calls in flight over one fd: every one completes once, with its own reply.
TEST(HostBridge, TenThousandOutstandingRequestsOverOneFd) {
  Runtime rt(workers(2));
  HostBridge bridge(rt);
  HostLoop loop(bridge);
  std::vector<Pid> servers;
  for (int i = 0; i < 8; ++i) servers.push_back(rt.spawn<Server>());
  constexpr int n = 10'000;
  std::vector<int> calls(n, 0);
  std::vector<int> replies(n, -1);
  int done = 0;
  for (int i = 0; i < n; ++i)
    bridge.call<int>(servers[i % servers.size()], Ask{i}, wait_time, [&, i](Result<int> r) {
      ++calls[i];
      ++done;
      replies[i] = r ? *r : -1;
    });
  ASSERT_TRUE(loop.run_until([&] { return done >= n; })) << done << " of " << n;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(calls[i], 1) << "call " << i;
    ASSERT_EQ(replies[i], i + 1) << "call " << i;
  }
  EXPECT_EQ(bridge.outstanding(), 0u);
}
