// What the observer serves, as text: JSON for the page, Prometheus' text format for /metrics.
// Internal to coppice::observer (tested in tests/observer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "coppice/observe.hpp"
#include "coppice/report.hpp"
#include "coppice/result.hpp"

namespace coppice::observer::detail {

// `s` as a JSON string, quoted and escaped: quotes, backslashes and control bytes escaped,
// valid UTF-8 kept as it is, an invalid byte replaced by U+FFFD (a label is any bytes).
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

// One process: every field of ProcessEntry; with `state`, also "state" (sys::get_status).
std::string entry_json(const ProcessEntry& entry, const std::string* state = nullptr);
// {"processes":[...]}
std::string processes_json(const std::vector<ProcessEntry>& listing);

// One tree per root, with the name it was asked by (a pid's text, a name) and its error.
struct RootTree {
  std::string root;
  Result<TreeNode> tree;
};
// {"roots":[{"root":..., "error":..., "tree":{...}}]}
std::string trees_json(const std::vector<RootTree>& trees);

// What /api/metrics and /metrics show: a metrics() snapshot and the mailbox depths of a
// listing without details (with the sum of its queue lengths, for the histogram's _sum).
struct Snapshot {
  RuntimeMetrics metrics;
  MailboxDepths depths;
  std::uint64_t queued = 0;
  double time = 0;  // seconds since the epoch, when it was taken
  std::vector<SupervisorStats> supervisors;  // the running supervisors' counts
  SupervisorTotals supervisor_totals;        // every supervisor's, live or gone, and the reports'
};
std::string metrics_json(const Snapshot& snapshot);

// The snapshot as Prometheus metric families, built on each scrape.
class SnapshotCollectable : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(Snapshot snapshot) : snapshot_(std::move(snapshot)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Snapshot snapshot_;
};
// The families serialized by prometheus::TextSerializer (format 0.0.4).
std::string prometheus_text(const Snapshot& snapshot);

}  // namespace coppice::observer::detail
