// PartitionSupervisor: ids, counts, with_arguments, routing by key, resize, restarts of a
// partition, and partitions of DynamicSupervisors with many children.
#include "coppice/partition_supervisor.hpp"

#include <set>

#include "coppice/dynamic_supervisor.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::ChildCounts;
using coppice::DynamicSupervisor;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Inbox;
using coppice::PartitionSupervisor;
using coppice::PartitionSupervisorOptions;
using coppice::Pid;
using coppice::Result;

struct WhichPartition {};

// A partition that knows its index.
class Partition : public coppice::GenServer<Partition> {
 public:
  using calls = coppice::Protocol<WhichPartition>;
  explicit Partition(std::size_t index) : index_(index) {}
  std::size_t handle_call(WhichPartition) { return index_; }

 private:
  std::size_t index_;
};

PartitionSupervisorOptions indexed(std::size_t n, std::string name) {
  PartitionSupervisorOptions o;
  o.child = coppice::child<Partition>("partition", std::size_t{0});
  o.partitions = n;
  o.with_arguments = [](coppice::ChildSpec, std::size_t i) { return coppice::child<Partition>("partition", i); };
  if (!name.empty()) o.name = std::move(name);
  return o;
}

// 82. [EX partition_supervisor_test] which_children has ids 0..N-1; keys are routed to their
// partition; resize may shrink, and grow back to the number started with, not beyond.
TEST(Scenario, partition_supervisor_test) {
  coppice::Runtime rt(workers(2));
  Pid sup = PartitionSupervisor::start(rt, indexed(4, "partitions")).value();
  auto children = PartitionSupervisor::which_children(rt, "partitions").value();
  ASSERT_EQ(children.size(), 4u);
  std::set<std::string> ids;
  for (const auto& c : children) {
    ids.insert(c.id);
    EXPECT_TRUE(c.pid);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value(), (ChildCounts{4, 4, 0, 4}));
  EXPECT_EQ(PartitionSupervisor::partitions(rt, "partitions").value(), 4u);

  // Integer keys: |key| mod N; the partition's own index answers.
  for (long key : {0L, 1L, 6L, -7L, 4000000001L}) {
    Pid p = PartitionSupervisor::whereis(rt, "partitions", key).value();
    EXPECT_EQ(Partition::call(rt, p, WhichPartition{}).value(), static_cast<std::size_t>(std::labs(key) % 4));
  }
  // Any other key: std::hash mod N, the same partition every time.
  Pid by_name = PartitionSupervisor::whereis(rt, "partitions", std::string("user-42")).value();
  EXPECT_EQ(PartitionSupervisor::whereis(rt, sup, std::string("user-42")).value(), by_name);
  EXPECT_EQ(Partition::call(rt, by_name, WhichPartition{}).value(), PartitionSupervisor::partition_for(std::string("user-42"), 4));
  EXPECT_EQ(PartitionSupervisor::partition_for(-9, 4), 1u);

  EXPECT_EQ(PartitionSupervisor::resize(rt, "partitions", 2).value(), 4u);
  EXPECT_EQ(PartitionSupervisor::partitions(rt, "partitions").value(), 2u);
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value(), (ChildCounts{4, 2, 0, 4}));
  EXPECT_EQ(Partition::call(rt, PartitionSupervisor::whereis(rt, sup, 3).value(), WhichPartition{}).value(), 1u);
  EXPECT_EQ(PartitionSupervisor::resize(rt, "partitions", 4).value(), 2u);
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value(), (ChildCounts{4, 4, 0, 4}));
  Result<std::size_t> grow = PartitionSupervisor::resize(rt, "partitions", 5);
  ASSERT_FALSE(grow);
  EXPECT_EQ(grow.error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(PartitionSupervisor::partitions(rt, sup).value(), 4u);

  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
  Result<Pid> gone = PartitionSupervisor::whereis(rt, sup, 1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::noproc);
}

TEST(PartitionSupervisor, DefaultsToOnePartitionPerWorker) {
  coppice::Runtime rt(workers(3));
  PartitionSupervisorOptions o = indexed(0, "");
  Pid sup = PartitionSupervisor::start(rt, o).value();
  EXPECT_EQ(PartitionSupervisor::partitions(rt, sup).value(), 3u);
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value().active, 3u);
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

TEST(PartitionSupervisor, AChildSpecWithoutStartIsRejected) {
  coppice::Runtime rt(workers(2));
  PartitionSupervisorOptions o;
  o.partitions = 2;
  Result<Pid> r = PartitionSupervisor::start(rt, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::invalid_argument);
  EXPECT_NE(r.error().message().find("child"), std::string::npos);
}

// A crashed partition is restarted alone, and the key routes to the new pid.
TEST(PartitionSupervisor, RestartsACrashedPartition) {
  CapturedLog log;
  coppice::Runtime rt(log.options());
  Inbox inbox(rt);
  Pid sup = PartitionSupervisor::start(rt, indexed(3, "restarting")).value();
  Pid before = PartitionSupervisor::whereis(rt, sup, 2).value();
  Pid other = PartitionSupervisor::whereis(rt, sup, 1).value();
  coppice::Ref ref = inbox.monitor(before);
  rt.exit(before, ExitReason::other("crash"));
  ASSERT_TRUE(down_for(inbox, ref));
  // The restart happened before the supervisor answers our next request.
  EXPECT_EQ(PartitionSupervisor::count_children(rt, sup).value(), (ChildCounts{3, 3, 0, 3}));
  Pid after = PartitionSupervisor::whereis(rt, sup, 2).value();
  EXPECT_NE(after, before);
  EXPECT_EQ(Partition::call(rt, after, WhichPartition{}).value(), 2u);
  EXPECT_EQ(PartitionSupervisor::whereis(rt, sup, 1).value(), other);
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

// Partitions of DynamicSupervisors (the recipe, scaled down): children started
// through several partitions at once, then everything stopped with the partition supervisor.
TEST(PartitionSupervisor, PartitionsOfDynamicSupervisorsStartAndStopManyChildren) {
  coppice::Runtime rt(workers(2));
  const std::size_t before = rt.process_count();
  ExitReason r = run_process(
      rt,
      []() -> Async<void> {
        coppice::trap_exit(true);
        PartitionSupervisorOptions o;
        o.child = DynamicSupervisor::child_spec("dynamic");
        o.partitions = 4;
        auto start = PartitionSupervisor::start_link(o);
        Result<Pid> sup = co_await start;
        CO_ASSERT_TRUE(sup);
        auto spec = DynamicSupervisor::share(coppice::child<Partition>("leaf", std::size_t{0}));
        constexpr std::size_t per_client = 10000;
        constexpr int clients = 4;
        const Pid me = coppice::self();
        struct Done {
          bool ok;
        };
        for (int c = 0; c < clients; ++c) {
          coppice::spawn(
              [](Pid sup, DynamicSupervisor::SharedSpec spec, int client, Pid report) -> Async<void> {
                bool ok = true;
                for (std::size_t i = 0; i < per_client; ++i) {
                  Result<Pid> partition = PartitionSupervisor::whereis(sup, i * clients + static_cast<std::size_t>(client));
                  if (!partition) {
                    ok = false;
                    break;
                  }
                  auto call = DynamicSupervisor::start_child(*partition, spec);
                  Result<Pid> child = co_await call;
                  ok = ok && child.has_value();
                }
                coppice::send(report, Done{ok});
              },
              *sup, spec, c, me);
        }
        for (int c = 0; c < clients; ++c) {
          Done d = co_await coppice::receive<Done>();
          EXPECT_TRUE(d.ok);
        }
        for (std::size_t p = 0; p < 4; ++p) {
          Result<Pid> partition = PartitionSupervisor::whereis(*sup, p);
          CO_ASSERT_TRUE(partition);
          auto count = DynamicSupervisor::count_children(*partition);
          Result<ChildCounts> counted = co_await count;
          CO_ASSERT_TRUE(counted);
          EXPECT_EQ(counted->active, per_client * clients / 4);
        }
        auto stopping = coppice::stop(*sup, ExitReason::shutdown());
        coppice::Status st = co_await stopping;
        EXPECT_TRUE(st);
      },
      std::chrono::seconds(120));
  EXPECT_EQ(r, ExitReason::normal());
  EXPECT_EQ(rt.process_count(), before);
}

}  // namespace
}  // namespace coppice_test
