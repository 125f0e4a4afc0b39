// Timers and receive timeouts: send_after delivers, cancel_timer stops it (or says it fired), timeouts end receives.
#include "coppice/test_hooks.hpp"
#include "support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
using Clock = std::chrono::steady_clock;
}

TEST(Timers, SendAfterDeliversNoSoonerThanTheDelay) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const auto start = Clock::now();
  TimerRef t = rt.send_after(50ms, inbox.pid(), std::string("tick"));
  EXPECT_TRUE(t);
  std::optional<std::string> got = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "tick");
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(Timers, SendAfterFromAProcessDelivers) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid observer) -> Async<void> {
    send_after(10ms, self(), 7);
    int n = co_await receive<int>();
    send(observer, n + 1);
  }, inbox.pid());
  std::optional<int> got = inbox.receive<int>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 8);
}

TEST(Timers, FireInDeadlineOrderNotStartOrder) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.send_after(120ms, inbox.pid(), 2);
  rt.send_after(60ms, inbox.pid(), 1);
  std::optional<int> first = inbox.receive<int>(wait_time);
  std::optional<int> second = inbox.receive<int>(wait_time);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(*second, 2);
}

// Checked by order, not by waiting: had the cancelled timer fired, its message would come
// before the marker's.
TEST(Timers, CancelBeforeFiringReturnsTrueAndNothingArrives) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  TimerRef cancelled = rt.send_after(150ms, inbox.pid(), std::string("cancelled"));
  EXPECT_TRUE(rt.cancel_timer(cancelled));
  rt.send_after(300ms, inbox.pid(), std::string("marker"));
  std::optional<std::string> first = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "marker");
  EXPECT_FALSE(inbox.receive_any(0ms));
}

TEST(Timers, CancelInsideAProcessBeforeFiringStopsIt) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  rt.spawn([](Pid observer) -> Async<void> {
    TimerRef t = send_after(150ms, self(), std::string("cancelled"));
    const bool stopped = cancel_timer(t);
    send_after(300ms, self(), std::string("marker"));
    std::string first = co_await receive<std::string>();
    send(observer, std::string(stopped ? "true " : "false ") + first);
  }, inbox.pid());
  std::optional<std::string> got = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "true marker");
}

TEST(Timers, CancelAfterFiringReturnsFalse) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  TimerRef t = rt.send_after(1ms, inbox.pid(), 1);
  ASSERT_TRUE(inbox.receive<int>(wait_time));
  EXPECT_FALSE(rt.cancel_timer(t));
  EXPECT_FALSE(inbox.receive_any(0ms));
}

TEST(Timers, CancelTwiceReturnsFalseTheSecondTime) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  TimerRef t = rt.send_after(std::chrono::hours(1), inbox.pid(), 1);
  EXPECT_TRUE(rt.cancel_timer(t));
  EXPECT_FALSE(rt.cancel_timer(t));
  EXPECT_FALSE(rt.cancel_timer(TimerRef{}));
}

// A handle of a fired timer whose slot was reused must not cancel the new timer.
TEST(Timers, StaleHandleDoesNotCancelALaterTimer) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  TimerRef old = rt.send_after(1ms, inbox.pid(), 1);
  ASSERT_TRUE(inbox.receive<int>(wait_time));
  rt.send_after(20ms, inbox.pid(), 2);
  EXPECT_FALSE(rt.cancel_timer(old));
  std::optional<int> got = inbox.receive<int>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 2);
}

TEST(Timers, TimerToADeadProcessIsDropped) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid dead = dead_pid(rt, inbox);
  rt.send_after(1ms, dead, 1);
  rt.send_after(20ms, inbox.pid(), 2);
  std::optional<int> got = inbox.receive<int>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 2);
}

TEST(Timers, ReceiveWithTimeoutReturnsNulloptAfterTheTimeout) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Waited {
    bool got_something;
    Clock::duration waited;
  };
  rt.spawn([](Pid observer) -> Async<void> {
    const auto start = Clock::now();
    std::optional<int> n = co_await receive<int>(50ms);
    send(observer, Waited{n.has_value(), Clock::now() - start});
  }, inbox.pid());
  std::optional<Waited> w = inbox.receive<Waited>(wait_time);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->got_something);
  EXPECT_GE(w->waited, 50ms);
}

TEST(Timers, ReceiveWithTimeoutReturnsAMessageThatComesInTime) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    send(observer, std::string("waiting"));
    std::optional<int> n = co_await receive<int>(wait_time);
    send(observer, n.value_or(-1));
  }, inbox.pid());
  ASSERT_TRUE(inbox.receive<std::string>(wait_time));
  inbox.send(a, 42);
  std::optional<int> got = inbox.receive<int>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 42);
}

// A receive that timed out leaves nothing behind: the next receive sees the next message.
TEST(Timers, TimedOutReceiveLeavesNoTraceForTheNextReceive) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const Pid a = rt.spawn([](Pid observer) -> Async<void> {
    for (int round = 0; round < 3; ++round) {
      std::optional<int> none = co_await receive<int>(5ms);
      if (none) send(observer, std::string("unexpected"));
    }
    send(observer, std::string("waiting"));
    Message m = co_await receive_any();
    send(observer, std::string(m.is<int>() ? "int" : "other: " + m.type_name()));
  }, inbox.pid());
  std::optional<std::string> waiting = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(*waiting, "waiting");
  inbox.send(a, 1);
  std::optional<std::string> got = inbox.receive<std::string>(wait_time);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "int");
}

TEST(Timers, ZeroTimeoutOnlyChecksWhatIsAlreadyThere) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  struct Checks {
    bool empty_gave_nothing;
    std::optional<int> queued;
    bool skipped_other_types;
  };
  rt.spawn([](Pid observer) -> Async<void> {
    Checks c{};
    c.empty_gave_nothing = !(co_await receive<int>(0ms)).has_value();
    send(self(), std::string("not an int"));
    send(self(), 9);  // sends to self are in the mailbox when send returns
    c.queued = co_await receive<int>(0ms);
    std::optional<std::string> s = co_await receive<std::string>(0ms);
    c.skipped_other_types = s.has_value() && *s == "not an int";
    send(observer, c);
  }, inbox.pid());
  std::optional<Checks> c = inbox.receive<Checks>(wait_time);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->empty_gave_nothing);
  EXPECT_EQ(c->queued, 9);
  EXPECT_TRUE(c->skipped_other_types);
}

TEST(Timers, InboxReceiveTimesOutAndZeroTimeoutChecksOnly) {
  Runtime rt(workers(2));
  Inbox inbox(rt);
  const auto start = Clock::now();
  EXPECT_FALSE(inbox.receive<int>(30ms));
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_FALSE(inbox.receive<int>(0ms));
  const Pid a = rt.spawn<Puppet>();
  ASSERT_TRUE(inbox.call<Done>(a, SendInt{inbox.pid(), 3}, wait_time));  // 3 is queued before the reply
  std::optional<int> got = inbox.receive<int>(0ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 3);
}

// The same when the thread is slow to take its lock (a loaded host: CI's TSan pass saw 5
// wakes for the 2,000 round trips below). A timeout started and cancelled before the woken
// thread looked at its heap left it waiting with no deadline, so the next start woke it again,
// and again, until it happened to find a timer in the heap. Here the heap is empty for nearly
// all of each round (a timer lives only between its start and its cancel, then a round trip
// to a process follows), so a thread that went back to waiting with none woke tens or hundreds
// of times in about half the runtimes; it sleeps instead until the deadline it was woken for,
// an hour away, in every one of 20.
TEST(Timers, AThreadWokenForATimerCancelledBeforeItLookedSleepsOnToThatDeadline) {
  for (int r = 0; r < 20; ++r) {
    Runtime rt(workers(1));
    Inbox inbox(rt);
    Pid echo = rt.spawn([]() -> Async<void> {
      for (;;) send(co_await receive<Pid>(), 1);
    });
    const std::uint64_t before = test_hooks::timer_thread_wakeups(rt);
    for (int i = 0; i < 500; ++i) {
      const TimerRef t = rt.send_after(1h, inbox.pid(), -1);
      ASSERT_TRUE(rt.cancel_timer(t));
      inbox.send(echo, inbox.pid());
      ASSERT_EQ(inbox.receive<int>(wait_time), 1);
    }
    EXPECT_LE(test_hooks::timer_thread_wakeups(rt) - before, 2u) << "runtime " << r;
  }
}

// A receive timeout that is cancelled by the message it waits for must not wake the timer
// thread: a server that waits with a timeout on every request (a call's 5 s default, a
// connection waiting for its shards) paid a futex wake-up and two context switches of the
// timer thread per request. The thread wakes when a deadline earlier than the one it sleeps
// until is started, or when that deadline comes; 2,000 round trips, each with a 5 s timeout
// started and cancelled, wake it once or twice.
TEST(Timers, TimeoutsCancelledBeforeTheirDeadlineDoNotWakeTheTimerThread) {
  Runtime rt(workers(1));  // the timer thread has a core of its own to wake on
  Inbox inbox(rt);
  constexpr int round_trips = 2000;
  // Without a timeout of its own: the caller's timer is the only one, as a server's often is.
  Pid echo = rt.spawn([]() -> Async<void> {
    for (;;) send(co_await receive<Pid>(), 1);
  });
  const std::uint64_t before = test_hooks::timer_thread_wakeups(rt);
  rt.spawn([](Pid echo, Pid observer) -> Async<void> {
    int answered = 0;
    for (int i = 0; i < round_trips; ++i) {
      send(echo, self());
      if (co_await receive<int>(5s)) ++answered;
    }
    send(observer, answered);
  }, echo, inbox.pid());
  std::optional<int> answered = inbox.receive<int>(wait_time);
  ASSERT_TRUE(answered);
  EXPECT_EQ(*answered, round_trips);
  EXPECT_LE(test_hooks::timer_thread_wakeups(rt) - before, 4u);
}
