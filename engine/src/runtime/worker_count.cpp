// The default worker count: affinity mask, cgroup CPU quota, the host's cores (see worker_count.hpp).
#include "runtime/worker_count.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace coppice::detail {

namespace {

// The first whitespace-separated fields of a file; empty when it cannot be read.
std::vector<std::string> fields_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> fields;
  for (std::string field; fields.size() < 2 && in >> field;) fields.push_back(field);
  return fields;
}

// A positive number, or nullopt ("max", "-1", garbage).
std::optional<double> positive(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const double value = std::strtod(text.c_str(), nullptr);
  if (value <= 0) return std::nullopt;
  return value;
}

// cgroup v2: "max 100000" (no limit) or "<quota> <period>".
std::optional<double> v2_limit(const std::filesystem::path& dir) {
  const auto f = fields_of(dir / "cpu.max");
  if (f.size() != 2) return std::nullopt;
  const auto quota = positive(f[0]), period = positive(f[1]);
  if (!quota || !period) return std::nullopt;
  return *quota / *period;
}

// cgroup v1: cpu.cfs_quota_us is -1 when there is no limit.
std::optional<double> v1_limit(const std::filesystem::path& dir) {
  const auto q = fields_of(dir / "cpu.cfs_quota_us"), p = fields_of(dir / "cpu.cfs_period_us");
  if (q.size() != 1 || p.size() != 1) return std::nullopt;
  const auto quota = positive(q[0]), period = positive(p[0]);
  if (!quota || !period) return std::nullopt;
  return *quota / *period;
}

// The smallest limit from `mount`/`path` up to `mount` itself, each level read by `limit_at`.
template <class LimitAt>
std::optional<double> smallest_on_the_way_up(const std::filesystem::path& mount, std::string_view path,
                                             LimitAt limit_at) {
  std::optional<double> smallest;
  std::filesystem::path relative = std::filesystem::path(path).relative_path().lexically_normal();
  for (;;) {
    // A path that climbs out of the mount ("..") is not ours to read.
    if (!relative.empty() && *relative.begin() == "..") relative.clear();
    if (auto limit = limit_at(mount / relative)) smallest = smallest ? std::min(*smallest, *limit) : *limit;
    if (relative.empty() || relative == ".") break;
    relative = relative.parent_path();
  }
  return smallest;
}

}  // namespace

std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root, std::string_view self_cgroup) {
  // Lines "hierarchy-id:controllers:path"; v2's is "0::path".
  std::optional<std::string> v2_path;
  std::optional<std::pair<std::string, std::string>> v1;  // mount directory name, path
  for (std::size_t pos = 0; pos < self_cgroup.size();) {
    std::size_t end = self_cgroup.find('\n', pos);
    if (end == std::string_view::npos) end = self_cgroup.size();
    const std::string_view line = self_cgroup.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t first = line.find(':');
    const std::size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string_view path = line.substr(second + 1);
    if (line.substr(0, first) == "0" && controllers.empty()) {
      v2_path = std::string(path);
      continue;
    }
    // v1: the hierarchy whose controller list names "cpu" (mounted as cpu, or cpu,cpuacct).
    for (std::size_t c = 0; c <= controllers.size();) {
      std::size_t comma = controllers.find(',', c);
      if (comma == std::string_view::npos) comma = controllers.size();
      if (controllers.substr(c, comma - c) == "cpu") v1.emplace(std::string(controllers), std::string(path));
      c = comma + 1;
    }
  }
  if (v2_path) {
    if (auto limit = smallest_on_the_way_up(root, *v2_path, v2_limit)) return limit;
  }
  if (v1) {
    std::error_code ec;
    // Mounted under its controller list; systems that also link "cpu" to it are covered by
    // trying the list first.
    std::filesystem::path mount = root / v1->first;
    if (!std::filesystem::is_directory(mount, ec)) mount = root / "cpu";
    return smallest_on_the_way_up(mount, v1->second, v1_limit);
  }
  return std::nullopt;
}

std::optional<double> cgroup_cpu_limit() {
  std::ifstream in("/proc/self/cgroup");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cgroup_cpu_limit("/sys/fs/cgroup", text);
}

unsigned affinity_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

unsigned resolve_worker_count(const RuntimeOptions& options, unsigned cpus, std::optional<double> cpu_limit) {
  if (options.workers != 0) return options.workers;
  unsigned n = cpus != 0 ? cpus : std::thread::hardware_concurrency();
  if (n == 0) n = 1;
  // Rounded up: a quota of 1.5 cores keeps two workers busy half the time each, which the
  // kernel allows; rounding down would leave half a core unused.
  if (cpu_limit) n = std::min(n, std::max(1u, static_cast<unsigned>(std::ceil(*cpu_limit))));
  return n > options.host_cores ? n - options.host_cores : 1;
}

unsigned resolve_worker_count(const RuntimeOptions& options) {
  if (options.workers != 0) return options.workers;
  return resolve_worker_count(options, affinity_cpu_count(), cgroup_cpu_limit());
}

}  // namespace coppice::detail
