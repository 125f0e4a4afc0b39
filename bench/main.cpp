// coppice_bench's main: Google Benchmark's, with the machine the figures were measured on
// added to the JSON context (CPU, cores, memory, kernel, compiler, build type, commit), and an
// exit status that says whether every benchmark passed its own check.
#include <benchmark/benchmark.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef COPPICE_BUILD_TYPE
#define COPPICE_BUILD_TYPE "unknown"
#endif
#ifndef COPPICE_GIT_COMMIT
#define COPPICE_GIT_COMMIT "unknown"
#endif

namespace {

// The value of the first "key : value" line of a /proc file whose key is `key`.
std::string proc_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view name(line.data(), colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (name != key) continue;
    std::size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return "unknown";
}

std::string memory() {
  // MemTotal is in kB; the GiB figure is what BENCHMARKS.md quotes machines by.
  const std::string kb = proc_field("/proc/meminfo", "MemTotal");
  const double gib = std::strtod(kb.c_str(), nullptr) / (1024.0 * 1024.0);
  char text[64];
  std::snprintf(text, sizeof text, "%.1f GiB", gib);
  return std::string(text) + " (" + kb + ")";
}

std::string kernel() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

// True when the command line already gives `key` through --benchmark_context.
bool context_given(int argc, char** argv, std::string_view key) {
  const std::string_view flag = "--benchmark_context=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, flag.size()) != flag) continue;
    arg.remove_prefix(flag.size());
    // key=value pairs separated by commas
    for (std::size_t pos = 0; pos <= arg.size();) {
      std::size_t end = arg.find(',', pos);
      if (end == std::string_view::npos) end = arg.size();
      std::string_view pair = arg.substr(pos, end - pos);
      if (pair.substr(0, pair.find('=')) == key) return true;
      pos = end + 1;
    }
  }
  return false;
}

// The display reporter Google Benchmark would have used (--benchmark_format), which also keeps
// the runs that failed (SkipWithError: a workload's check, a driver that never reported):
// RunSpecifiedBenchmarks returns only how many benchmarks matched, and the library's own main
// exits 0 after a failed one, so a script that trusts the exit status would take a broken run
// for a good one. The JSON file still marks them ("error_occurred").
class FailureRecorder final : public benchmark::BenchmarkReporter {
 public:
  FailureRecorder() : display_(benchmark::CreateDefaultDisplayReporter()) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs)
      if (run.error_occurred) failures_.push_back(run.benchmark_name() + ": " + run.error_message);
    display_->ReportRuns(runs);
  }

  void Finalize() override { display_->Finalize(); }

  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::unique_ptr<benchmark::BenchmarkReporter> display_;
  std::vector<std::string> failures_;
};

}  // namespace

int main(int argc, char** argv) {
  // tools/bench passes the commit of the working tree; the one from configure time may be stale.
  const bool commit_given = context_given(argc, argv, "commit");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  benchmark::AddCustomContext("cpu_model", proc_field("/proc/cpuinfo", "model name"));
  benchmark::AddCustomContext("cores", std::to_string(std::thread::hardware_concurrency()));
  benchmark::AddCustomContext("memory", memory());
  benchmark::AddCustomContext("kernel", kernel());
  benchmark::AddCustomContext("compiler", compiler());
  benchmark::AddCustomContext("build_type", COPPICE_BUILD_TYPE);
  if (!commit_given) benchmark::AddCustomContext("commit", COPPICE_GIT_COMMIT);

  FailureRecorder reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  // Exit 1 when any benchmark failed, each named on stderr with its reason (tools/regress and
  // tools/bench read the JSON for the figures, and the status for whether to trust them).
  for (const std::string& failure : reporter.failures()) std::fprintf(stderr, "coppice_bench: FAILED: %s\n", failure.c_str());
  return reporter.failures().empty() ? 0 : 1;
}
