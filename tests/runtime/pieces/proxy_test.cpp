// Proxies on their own (engine/src/runtime/proxy.hpp), without a node: a process spawned with
// SpawnOptions::proxy is told of each signal a local process gives it, keeps its links and the
// monitors on it, is killed by none, and tells them when it exits; the signals applied in its
// name reach local processes as from it. Run under both sanitizers (no Erlang node needed).
#include "runtime/proxy.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "coppice/coppice.hpp"

using namespace coppice;
using coppice::detail::ProxySignal;
using namespace std::chrono_literals;

namespace {

constexpr auto wait_time = 10s;

// A proxy that hands each ProxySignal (and any other message) to `to`; told `stop`, it exits with
// the reason it carries.
struct StopWith {
  ExitReason reason;
};
class Recorder final : public Process {
 public:
  explicit Recorder(Pid to) : to_(to) {}
  void handle(Message m) override {
    if (auto* s = m.get_if<StopWith>()) return stop_self(s->reason);
    if (auto* s = m.get_if<ProxySignal>()) return send(to_, *s);
    if (m.envelope()->addressing() == detail::Addressing::alias) return send(to_, Replied{m.take<int>()});
  }
  struct Replied {
    int value;
  };

 private:
  Pid to_;
};

Pid spawn_proxy(Runtime& rt, Pid to) {
  return detail::spawn_in<Recorder>(detail::core_of(rt), detail::SpawnOptions{.proxy = true}, to);
}

std::optional<ProxySignal> next_signal(Inbox& inbox) { return inbox.receive<ProxySignal>(wait_time); }

}  // namespace

TEST(Proxy, IsToldOfLinksMonitorsAndExitsAndIsKilledByNone) {
  Runtime rt;
  Inbox watcher(rt);
  Inbox local(rt);
  const Pid p = spawn_proxy(rt, watcher.pid());
  ASSERT_TRUE(local.link(p));
  std::optional<ProxySignal> s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::link);
  EXPECT_EQ(s->from, local.pid());
  const Ref m = local.monitor(p);
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::monitor);
  EXPECT_EQ(s->ref, m);
  EXPECT_TRUE(local.demonitor(m));
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::demonitor);
  EXPECT_EQ(s->ref, m);
  local.unlink(p);
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::unlink);
  // exit/2 with kill: reported, and the proxy lives on.
  local.exit(p, ExitReason::kill());
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::exit);
  EXPECT_TRUE(s->reason.is_kill());
  EXPECT_TRUE(rt.alive(p));
  // A linked process that exits: exit_linked with its reason.
  const Pid c = rt.spawn([]() -> Async<void> { co_await receive<int>(); });
  detail::link_both(rt, c, p);
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::link);  // link_both: the proxy reports its new link
  rt.exit(c, ExitReason::other("gone"));
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::exit_linked);
  EXPECT_EQ(s->from, c);
  EXPECT_EQ(s->reason, ExitReason::other("gone"));
}

TEST(Proxy, SignalsInItsNameComeFromItAndItsExitTellsItsLinksAndMonitors) {
  Runtime rt;
  Inbox watcher(rt);
  Inbox local(rt);  // traps exits: links arrive as Exit
  const Pid p = spawn_proxy(rt, watcher.pid());
  // The remote process links `local`: both sides have the link, the proxy reports nothing.
  detail::proxy_link(rt, p, local.pid());
  // It monitors a local process, which exits: the proxy gets down with the ref.
  const Pid c = rt.spawn([]() -> Async<void> { co_await receive<int>(); });
  const Ref r = detail::proxy_make_ref(rt);
  detail::proxy_monitor(rt, p, c, r);
  rt.exit(c, ExitReason::shutdown());
  std::optional<ProxySignal> s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::down);  // not a link report: proxy_link reports none
  EXPECT_EQ(s->ref, r);
  EXPECT_EQ(s->from, c);
  EXPECT_EQ(s->reason, ExitReason::shutdown());
  // A link to a process that is gone: the proxy hears exit_linked noproc.
  detail::proxy_link(rt, p, c);
  s = next_signal(watcher);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, ProxySignal::Kind::exit_linked);
  EXPECT_EQ(s->reason, ExitReason::noproc());
  // exit/2 in its name.
  detail::proxy_exit(rt, p, local.pid(), ExitReason::other("please"));
  std::optional<Exit> e = local.receive<Exit>(wait_time);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->from, p);
  EXPECT_EQ(e->reason, ExitReason::other("please"));
  // A request in its name: the reply reaches the proxy though no call of its own waits for it.
  const Pid server = rt.spawn([]() -> Async<void> {
    Message m = co_await receive_any();
    if (auto from = m.reply_to()) reply(*from, 42);
  });
  detail::proxy_request(rt, p, server, detail::proxy_make_ref(rt), Message::of(1));
  std::optional<Recorder::Replied> replied = watcher.receive<Recorder::Replied>(wait_time);
  ASSERT_TRUE(replied);
  EXPECT_EQ(replied->value, 42);
  // It exits (a lost connection): the link and a monitor are told, from it.
  const Ref m = local.monitor(p);
  ASSERT_TRUE(next_signal(watcher));  // its monitor report
  rt.send(p, StopWith{ExitReason::other("noconnection")});
  std::optional<Exit> linked = local.receive<Exit>(wait_time);
  ASSERT_TRUE(linked);
  EXPECT_EQ(linked->from, p);
  EXPECT_EQ(linked->reason, ExitReason::other("noconnection"));
  std::optional<Down> down = local.receive<Down>(wait_time);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ref, m);
  EXPECT_EQ(down->reason, ExitReason::other("noconnection"));
}

// Threads linking, monitoring, exiting and messaging one proxy at once while it reports: every
// report arrives (none lost, none twice), and the proxy outlives every exit signal.
TEST(Proxy, ManyThreadsSignallingOneProxyLoseNothing) {
  Runtime rt;
  Inbox watcher(rt);
  const Pid p = spawn_proxy(rt, watcher.pid());
  constexpr int threads = 4;
  constexpr int rounds = 200;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      Inbox me(rt);
      for (int i = 0; i < rounds; ++i) {
        (void)me.link(p);
        const Ref m = me.monitor(p);
        me.exit(p, i % 2 == 0 ? ExitReason::kill() : ExitReason::other("x"));
        me.demonitor(m);
        me.unlink(p);
      }
    });
  }
  for (auto& t : ts) t.join();
  int counts[8] = {};
  for (int n = 0; n < threads * rounds * 5; ++n) {
    std::optional<ProxySignal> s = next_signal(watcher);
    ASSERT_TRUE(s) << "after " << n;
    ++counts[static_cast<int>(s->kind)];
  }
  EXPECT_EQ(counts[static_cast<int>(ProxySignal::Kind::link)], threads * rounds);
  EXPECT_EQ(counts[static_cast<int>(ProxySignal::Kind::unlink)], threads * rounds);
  EXPECT_EQ(counts[static_cast<int>(ProxySignal::Kind::monitor)], threads * rounds);
  EXPECT_EQ(counts[static_cast<int>(ProxySignal::Kind::demonitor)], threads * rounds);
  EXPECT_EQ(counts[static_cast<int>(ProxySignal::Kind::exit)], threads * rounds);
  EXPECT_TRUE(rt.alive(p));
}
