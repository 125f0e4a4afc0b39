// SEMANTICS.md 9: monitor(self()) returns a reference and creates nothing (what ERTS does).
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::Pid;
using coppice::Ref;

struct Looped {
  Pid pid;
  bool demonitor_of_one;  // what demonitor returned for one of the references
  bool distinct;          // the references differ
};
struct Done {};

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int loop = 100000;  // the sanitizers run 5-20x slower
#else
constexpr int loop = 1000000;
#endif

// A million monitor(self()) store nothing: the process monitors nobody and nobody monitors
// it, demonitor of such a reference is false, and (the process being alive) no DOWN comes:
// the next message it receives is the test's Done.
TEST(MonitorSelf, ReturnsAReferenceAndCreatesNothing) {
  coppice::Runtime rt(workers(2));
  coppice::Inbox inbox(rt);
  Pid p = rt.spawn(
      [](Pid test) -> Async<void> {
        const Ref first = coppice::monitor(coppice::self());
        Ref last = first;
        for (int i = 1; i < loop; ++i) last = coppice::monitor(coppice::self());
        const bool demonitored = coppice::demonitor(first);
        coppice::send(test, Looped{coppice::self(), demonitored, first != last && bool(first)});
        coppice::Message next = co_await coppice::receive_any();
        EXPECT_TRUE(next.is<Done>()) << "a DOWN or another message came before Done";
      },
      inbox.pid());
  const Ref watch = inbox.monitor(p);
  std::optional<Looped> looped = inbox.receive<Looped>(4 * wait_time);
  ASSERT_TRUE(looped);
  EXPECT_FALSE(looped->demonitor_of_one);
  EXPECT_TRUE(looped->distinct);
  coppice::Result<coppice::ProcessInfo> info = rt.process_info(p);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->monitors.size(), 0u);
  EXPECT_EQ(info->monitored_by.size(), 1u) << "only the test's own monitor";
  inbox.send(p, Done{});
  std::optional<coppice::Down> d = down_for(inbox, watch);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, coppice::ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test
