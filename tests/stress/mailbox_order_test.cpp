// Many senders into one mailbox: every sender's messages arrive complete and in the order sent.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress.hpp"

using namespace std::chrono_literals;
using coppice::stress::scale;

namespace {

struct Seq {
  std::uint32_t sender;
  std::uint64_t n;  // 1, 2, 3, ... per sender
};
struct Noise {
  std::uint64_t n;
};
struct Report {
  std::uint64_t received = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t noise = 0;
  std::string first_error;
  std::vector<std::uint64_t> last;  // per sender: the last n seen
};

// Receives by handle(): checks each sender's sequence goes up by exactly one, and reports
// once the expected total is in.
struct OrderChecker : coppice::Process {
  OrderChecker(coppice::Pid report_to, std::uint32_t senders, std::uint64_t total)
      : report_to_(report_to), total_(total) {
    report_.last.assign(senders, 0);
  }
  void handle(coppice::Message m) override {
    if (auto* s = m.get_if<Seq>()) {
      std::uint64_t& last = report_.last.at(s->sender);
      if (s->n != last + 1) {
        if (report_.out_of_order++ == 0)
          report_.first_error = "sender " + std::to_string(s->sender) + ": got " + std::to_string(s->n) +
                                " after " + std::to_string(last);
      }
      last = s->n;
      if (++report_.received == total_) coppice::send(report_to_, std::move(report_));
    } else if (m.is<Noise>()) {
      ++report_.noise;
    }
  }
  coppice::Pid report_to_;
  std::uint64_t total_;
  Report report_;
};

// A sender process: `count` messages in chunks, yielding between chunks (a message to
// itself) so that senders sharing a worker interleave too.
struct SeqSender : coppice::Process {
  struct Go {};
  SeqSender(coppice::Pid to, std::uint32_t id, std::uint64_t count, bool noisy)
      : to_(to), id_(id), count_(count), noisy_(noisy) {}
  void init() override { coppice::send(coppice::self(), Go{}); }
  void handle(coppice::Message m) override {
    if (!m.is<Go>()) return;
    const std::uint64_t chunk = 1 + (id_ * 7 + sent_) % 61;
    for (std::uint64_t i = 0; i < chunk && sent_ < count_; ++i) {
      coppice::send(to_, Seq{id_, ++sent_});
      if (noisy_ && sent_ % 128 == 0) coppice::send(to_, Noise{sent_});
    }
    if (sent_ < count_) coppice::send(coppice::self(), Go{});
  }
  coppice::Pid to_;
  std::uint32_t id_;
  std::uint64_t count_;
  bool noisy_;
  std::uint64_t sent_ = 0;
};

struct Plan {
  std::uint32_t process_senders;
  std::uint32_t runtime_send_threads;  // plain threads using Runtime::send
  std::uint32_t inbox_threads;         // plain threads using Inbox::send
  std::uint64_t per_sender;
  std::uint32_t senders() const { return process_senders + runtime_send_threads + inbox_threads; }
};

// Starts every sender against `receiver` and returns the plain threads to join.
std::vector<std::thread> start_senders(coppice::Runtime& rt, coppice::Pid receiver, const Plan& plan, bool noisy) {
  std::vector<std::thread> threads;
  std::uint32_t id = 0;
  for (; id < plan.process_senders; ++id) rt.spawn<SeqSender>(receiver, id, plan.per_sender, noisy);
  for (std::uint32_t t = 0; t < plan.runtime_send_threads; ++t, ++id) {
    threads.emplace_back([&rt, receiver, id, n = plan.per_sender] {
      for (std::uint64_t i = 1; i <= n; ++i) rt.send(receiver, Seq{id, i});
    });
  }
  for (std::uint32_t t = 0; t < plan.inbox_threads; ++t, ++id) {
    threads.emplace_back([&rt, receiver, id, n = plan.per_sender, noisy] {
      coppice::Inbox inbox(rt);
      for (std::uint64_t i = 1; i <= n; ++i) {
        inbox.send(receiver, Seq{id, i});
        if (noisy && i % 100 == 0) inbox.send(receiver, Noise{i});
      }
    });
  }
  return threads;
}

void expect_complete(const Report& r, const Plan& plan) {
  EXPECT_EQ(r.received, std::uint64_t{plan.senders()} * plan.per_sender);
  EXPECT_EQ(r.out_of_order, 0u) << r.first_error;
  for (std::uint32_t s = 0; s < plan.senders(); ++s) EXPECT_EQ(r.last[s], plan.per_sender) << "sender " << s;
}

}  // namespace

TEST(MailboxStress, ManySendersKeepPerSenderOrder) {
  coppice::stress::Watchdog watchdog("ManySendersKeepPerSenderOrder", 2 * coppice::stress::patience);
  const Plan plan{.process_senders = 8, .runtime_send_threads = 2, .inbox_threads = 2,
                  .per_sender = 4000 * std::uint64_t{scale}};
  for (unsigned workers : {2u, 4u}) {
    coppice::Runtime rt(coppice::stress::options(workers));
    coppice::Inbox results(rt);
    coppice::Pid receiver = rt.spawn<OrderChecker>(results.pid(), plan.senders(), plan.senders() * plan.per_sender);
    auto threads = start_senders(rt, receiver, plan, false);
    for (auto& t : threads) t.join();
    auto report = results.receive<Report>(coppice::stress::patience);
    ASSERT_TRUE(report) << "the receiver never got every message (workers=" << workers << ")";
    expect_complete(*report, plan);
  }
}

// The receiver is a coroutine taking only Seq by selective receive while Noise piles up
// around it: the order among the messages it takes must still be each sender's. (Noise is
// rare: each receive scans past all of it, as a selective receive does in Erlang.)
TEST(MailboxStress, SelectiveReceiveKeepsPerSenderOrder) {
  coppice::stress::Watchdog watchdog("SelectiveReceiveKeepsPerSenderOrder", 2 * coppice::stress::patience);
  const Plan plan{.process_senders = 6, .runtime_send_threads = 1, .inbox_threads = 2,
                  .per_sender = 2000 * std::uint64_t{scale}};
  coppice::Runtime rt(coppice::stress::options(3, 0us, 7));
  coppice::Inbox results(rt);
  coppice::Pid receiver = rt.spawn(
      [](coppice::Pid report_to, std::uint32_t senders, std::uint64_t total) -> coppice::Async<void> {
        Report r;
        r.last.assign(senders, 0);
        while (r.received < total) {
          Seq s = co_await coppice::receive<Seq>();
          std::uint64_t& last = r.last.at(s.sender);
          if (s.n != last + 1 && r.out_of_order++ == 0)
            r.first_error = "sender " + std::to_string(s.sender) + ": got " + std::to_string(s.n) + " after " +
                            std::to_string(last);
          last = s.n;
          ++r.received;
        }
        // Every Noise is still queued, in its own order: take what is there.
        while (auto n = co_await coppice::receive<Noise>(0ms)) ++r.noise;
        coppice::send(report_to, std::move(r));
      },
      results.pid(), plan.senders(), std::uint64_t{plan.senders()} * plan.per_sender);
  auto threads = start_senders(rt, receiver, plan, true);
  for (auto& t : threads) t.join();
  auto report = results.receive<Report>(coppice::stress::patience);
  ASSERT_TRUE(report) << "the receiver never got every message";
  expect_complete(*report, plan);
  EXPECT_GT(report->noise, 0u);
}
