// The default worker count (engine/src/runtime/worker_count.hpp): cgroup quotas read from
// v2 and v1 trees written to a temporary directory, and the count resolved from CPUs, quota
// and the host's cores.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "runtime/worker_count.hpp"

namespace fs = std::filesystem;
using coppice::RuntimeOptions;
using coppice::detail::cgroup_cpu_limit;
using coppice::detail::resolve_worker_count;

namespace {

// A cgroup root of our own, removed at the end of the test.
class CgroupTree {
 public:
  CgroupTree() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("coppice-cgroup-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~CgroupTree() { fs::remove_all(root_); }
  // Writes `text` to root/relative, making the directories on the way.
  void write(const std::string& relative, const std::string& text) const {
    const fs::path file = root_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

RuntimeOptions with(unsigned workers, unsigned host_cores) {
  RuntimeOptions options;
  options.workers = workers;
  options.host_cores = host_cores;
  return options;
}

}  // namespace

TEST(CgroupCpuLimit, V2QuotaIsQuotaOverPeriod) {
  CgroupTree tree;
  tree.write("app/cpu.max", "150000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/app\n"), 1.5);
}

TEST(CgroupCpuLimit, V2MaxMeansNoLimit) {
  CgroupTree tree;
  tree.write("app/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/app\n"), std::nullopt);
}

TEST(CgroupCpuLimit, V2TheSmallestQuotaOnTheWayToTheRootWins) {
  CgroupTree tree;
  tree.write("outer/cpu.max", "50000 100000\n");
  tree.write("outer/inner/cpu.max", "max 100000\n");
  tree.write("outer/inner/app/cpu.max", "300000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/outer/inner/app\n"), 0.5);
}

// A container with its own cgroup namespace sees its cgroup at the root of the mount.
TEST(CgroupCpuLimit, V2ContainerSeesItsQuotaAtTheRoot) {
  CgroupTree tree;
  tree.write("cpu.max", "200000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/\n"), 2.0);
}

// Without a cgroup namespace /proc/self/cgroup names the host's path, absent in the mount.
TEST(CgroupCpuLimit, V2PathMissingFromTheMountFallsBackToTheRoot) {
  CgroupTree tree;
  tree.write("cpu.max", "100000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/system.slice/docker-1234.scope\n"), 1.0);
}

TEST(CgroupCpuLimit, V1QuotaFromTheCpuController) {
  CgroupTree tree;
  tree.write("cpu,cpuacct/job/cpu.cfs_quota_us", "250000\n");
  tree.write("cpu,cpuacct/job/cpu.cfs_period_us", "100000\n");
  tree.write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  tree.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "4:memory:/job\n3:cpu,cpuacct:/job\n2:cpuset:/\n"), 2.5);
}

TEST(CgroupCpuLimit, V1MinusOneMeansNoLimit) {
  CgroupTree tree;
  tree.write("cpu/cpu.cfs_quota_us", "-1\n");
  tree.write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "2:cpuacct:/\n1:cpu:/\n0::/\n"), std::nullopt);
}

// A hybrid host: the v2 hierarchy has no cpu controller, the v1 one has the quota.
TEST(CgroupCpuLimit, HybridHostReadsV1WhenV2HasNoQuota) {
  CgroupTree tree;
  tree.write("cpu/cpu.cfs_quota_us", "100000\n");
  tree.write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "1:cpu:/\n0::/\n"), 1.0);
}

TEST(CgroupCpuLimit, NoFilesAndGarbageMeanNoLimit) {
  CgroupTree tree;
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/\n"), std::nullopt);
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), ""), std::nullopt);
  tree.write("cpu.max", "lots 0\n");
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "0::/\n"), std::nullopt);
  EXPECT_EQ(cgroup_cpu_limit(tree.root(), "no colons here\n"), std::nullopt);
}

TEST(ResolveWorkerCount, OneWorkerPerCpuWithoutQuota) {
  EXPECT_EQ(resolve_worker_count(with(0, 0), 8, std::nullopt), 8u);
}

TEST(ResolveWorkerCount, QuotaCapsTheCountRoundedUp) {
  EXPECT_EQ(resolve_worker_count(with(0, 0), 8, 1.5), 2u);
  EXPECT_EQ(resolve_worker_count(with(0, 0), 8, 0.2), 1u);
  EXPECT_EQ(resolve_worker_count(with(0, 0), 2, 4.0), 2u);  // more quota than CPUs
}

TEST(ResolveWorkerCount, HostCoresAreTakenOffButOneWorkerRemains) {
  EXPECT_EQ(resolve_worker_count(with(0, 1), 8, std::nullopt), 7u);
  EXPECT_EQ(resolve_worker_count(with(0, 1), 8, 3.0), 2u);
  EXPECT_EQ(resolve_worker_count(with(0, 2), 2, std::nullopt), 1u);
  EXPECT_EQ(resolve_worker_count(with(0, 5), 2, std::nullopt), 1u);
}

TEST(ResolveWorkerCount, AnExplicitCountWins) {
  EXPECT_EQ(resolve_worker_count(with(3, 2), 1, 0.5), 3u);
}

// This machine: what a Runtime starts with the defaults is the affinity count capped by the
// quota it reads.
TEST(ResolveWorkerCount, ThisMachineUsesItsAffinityMaskAndQuota) {
  const unsigned cpus = coppice::detail::affinity_cpu_count();
  ASSERT_GT(cpus, 0u);
  EXPECT_EQ(resolve_worker_count(with(0, 0)), resolve_worker_count(with(0, 0), cpus, cgroup_cpu_limit()));
  EXPECT_LE(resolve_worker_count(with(0, 0)), cpus);
}
