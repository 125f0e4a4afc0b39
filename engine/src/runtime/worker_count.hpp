// How many workers a Runtime starts when RuntimeOptions::workers is 0: the CPUs this process
// may run on (its affinity mask), capped by its cgroup's CPU quota, less the host's cores.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "coppice/options.hpp"

namespace coppice::detail {

// The CPU time this process's cgroup allows, in cores (quota / period: 1.5 for
// "150000 100000"), or nullopt when nothing limits it. `root` is where the cgroup file systems
// are mounted (/sys/fs/cgroup) and `self_cgroup` the text of /proc/self/cgroup; both are
// parameters so that tests can give a tree of their own. cgroup v2 first (cpu.max), then the
// v1 cpu controller (cpu.cfs_quota_us / cpu.cfs_period_us). Every level from the process's
// cgroup up to the root is read and the smallest quota wins: the kernel enforces each
// ancestor's. A level whose file is missing (a container sees its own cgroup at the root,
// while /proc/self/cgroup may name the host's path) is skipped.
std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root, std::string_view self_cgroup);
// The same for this process: /sys/fs/cgroup and /proc/self/cgroup.
std::optional<double> cgroup_cpu_limit();

// CPUs in this thread's affinity mask (sched_getaffinity); 0 when it cannot be read.
unsigned affinity_cpu_count();

// The worker count for `options`, given the CPUs available and the cgroup's limit:
// options.workers when it is not 0; else min(cpus, the limit rounded up) less
// options.host_cores, and at least 1. cpus 0 (unknown) counts as
// std::thread::hardware_concurrency.
unsigned resolve_worker_count(const RuntimeOptions& options, unsigned cpus, std::optional<double> cpu_limit);
// The same with this machine's figures: what a Runtime starts.
unsigned resolve_worker_count(const RuntimeOptions& options);

}  // namespace coppice::detail
