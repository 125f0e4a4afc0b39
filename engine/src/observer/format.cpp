// The observer's JSON and Prometheus text (see format.hpp).
#include "observer/format.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace coppice::observer::detail {

namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 if it is not one (overlong forms,
// surrogates and code points above U+10FFFF are not valid).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n;
  std::uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

void append_pid(std::string& out, std::string_view key, Pid pid) {
  // The id twice: a number (Pid::bits) and its text, as JavaScript's numbers lose bits above 2^53.
  out += '"';
  out += key;
  out += "\":";
  append_json_string(out, pid ? pid.to_string() : std::string());
  out += ",\"";
  out += key;
  out += "_id\":";
  out += std::to_string(pid.bits());
  out += ",\"";
  out += key;
  out += "_id_text\":\"";
  out += std::to_string(pid.bits());
  out += '"';
}

void append_pids(std::string& out, std::string_view key, const std::vector<Pid>& pids) {
  out += '"';
  out += key;
  out += "\":[";
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (i > 0) out += ',';
    out += '{';
    append_pid(out, "pid", pids[i]);
    out += '}';
  }
  out += ']';
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
}

template <class N>
void append_number(std::string& out, std::string_view key, N value) {
  out += ",\"";
  out += key;
  out += "\":";
  if constexpr (std::is_floating_point_v<N>) {
    if (!std::isfinite(value)) value = 0;
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6g", static_cast<double>(value));
    out += buffer;
  } else {
    out += std::to_string(value);
  }
}

void append_tree(std::string& out, const TreeNode& node) {
  out += "{\"child_id\":";
  append_json_string(out, node.id);
  out += ',';
  append_pid(out, "pid", node.pid);
  out += ",\"restarting\":";
  out += node.restarting ? "true" : "false";
  append_field(out, "type", node.type == ChildType::supervisor ? "supervisor" : "worker");
  append_field(out, "registered_name", node.registered_name);
  append_field(out, "label", node.label);
  append_field(out, "behaviour", node.behaviour);
  append_field(out, "error", node.error);
  out += ",\"children\":[";
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    if (i > 0) out += ',';
    append_tree(out, node.children[i]);
  }
  out += "]}";
}

double seconds(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; }

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          // Control bytes and DEL as \u escapes (the page shows the text, never parses it as HTML).
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string entry_json(const ProcessEntry& e, const std::string* state) {
  std::string out = "{";
  append_pid(out, "pid", e.pid);
  append_field(out, "registered_name", e.registered_name);
  append_field(out, "label", e.label);
  append_field(out, "behaviour", e.behaviour);
  append_field(out, "type", e.type);
  append_field(out, "status", to_string(e.status));
  out += ',';
  append_pid(out, "parent", e.parent);
  append_number(out, "message_queue_len", e.message_queue_len);
  append_number(out, "reductions", e.reductions);
  append_number(out, "memory", e.memory);
  out += ",\"detailed\":";
  out += e.detailed ? "true" : "false";
  out += ',';
  append_pids(out, "links", e.links);
  out += ',';
  append_pids(out, "monitors", e.monitors);
  out += ',';
  append_pids(out, "monitored_by", e.monitored_by);
  out += ",\"trap_exit\":";
  out += e.trap_exit ? "true" : "false";
  if (state != nullptr) append_field(out, "state", *state);
  out += '}';
  return out;
}

std::string processes_json(const std::vector<ProcessEntry>& listing) {
  std::string out = "{\"processes\":[";
  for (std::size_t i = 0; i < listing.size(); ++i) {
    if (i > 0) out += ",\n";
    out += entry_json(listing[i]);
  }
  out += "]}";
  return out;
}

std::string trees_json(const std::vector<RootTree>& trees) {
  std::string out = "{\"roots\":[";
  for (std::size_t i = 0; i < trees.size(); ++i) {
    if (i > 0) out += ",\n";
    out += "{\"root\":";
    append_json_string(out, trees[i].root);
    append_field(out, "error", trees[i].tree ? std::string() : trees[i].tree.error().message());
    out += ",\"tree\":";
    if (trees[i].tree) {
      append_tree(out, trees[i].tree.value());
    } else {
      out += "null";
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string metrics_json(const Snapshot& s) {
  const RuntimeMetrics& m = s.metrics;
  char t[32];
  std::snprintf(t, sizeof t, "%.3f", s.time);
  std::string out = "{\"time\":";
  out += t;
  append_number(out, "processes", m.processes);
  append_number(out, "spawns", m.spawns);
  append_number(out, "exits", m.exits);
  out += ",\"exits_by_reason\":{\"normal\":" + std::to_string(m.exits_normal) +
         ",\"shutdown\":" + std::to_string(m.exits_shutdown) + ",\"killed\":" + std::to_string(m.exits_killed) +
         ",\"error\":" + std::to_string(m.exits_error) + "}";
  append_number(out, "messages_sent", m.messages_sent);
  append_number(out, "timers_started", m.timers_started);
  append_number(out, "timers_fired", m.timers_fired);
  append_number(out, "timers_pending", m.timers_pending);
  append_number(out, "global_queue", m.global_queue);
  out += ",\"workers\":[";
  for (std::size_t i = 0; i < m.workers.size(); ++i) {
    const WorkerMetrics& w = m.workers[i];
    if (i > 0) out += ',';
    out += "{\"index\":" + std::to_string(w.index);
    append_number(out, "turns", w.turns);
    append_number(out, "steals", w.steals);
    append_number(out, "parks", w.parks);
    append_number(out, "wakeups", w.wakeups);
    append_number(out, "parked_seconds", seconds(w.parked));
    append_number(out, "alive_seconds", seconds(w.alive));
    append_number(out, "run_queue", w.run_queue);
    append_number(out, "utilisation", w.utilisation());
    out += '}';
  }
  out += "],\"mailbox_depths\":{\"upper\":[";
  for (std::size_t i = 0; i < s.depths.upper.size(); ++i) out += (i > 0 ? "," : "") + std::to_string(s.depths.upper[i]);
  out += "],\"counts\":[";
  for (std::size_t i = 0; i < s.depths.counts.size(); ++i) out += (i > 0 ? "," : "") + std::to_string(s.depths.counts[i]);
  out += "]";
  append_number(out, "max", s.depths.max);
  append_number(out, "queued", s.queued);
  out += "}";
  const SupervisorTotals& totals = s.supervisor_totals;
  out += ",\"supervisor_totals\":{\"supervisors\":" + std::to_string(totals.supervisors);
  append_number(out, "restarts", totals.restarts);
  append_number(out, "intensity_trips", totals.intensity_trips);
  append_number(out, "start_failures", totals.start_failures);
  append_number(out, "children_started", totals.children_started);
  append_number(out, "reports_delivered", totals.reports_delivered);
  append_number(out, "reports_dropped", totals.reports_dropped);
  out += "},\"supervisors\":[";
  for (std::size_t i = 0; i < s.supervisors.size(); ++i) {
    const SupervisorStats& st = s.supervisors[i];
    if (i > 0) out += ',';
    out += '{';
    append_pid(out, "pid", st.pid);
    append_field(out, "name", st.name);
    append_field(out, "behaviour", st.behaviour);
    out += ",\"top_level\":";
    out += st.top_level ? "true" : "false";
    append_number(out, "restarts", st.restarts);
    append_number(out, "intensity_trips", st.intensity_trips);
    append_number(out, "start_failures", st.start_failures);
    append_number(out, "children_started", st.children_started);
    out += '}';
  }
  out += "]}";
  return out;
}

std::vector<prometheus::MetricFamily> SnapshotCollectable::Collect() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  const RuntimeMetrics& m = snapshot_.metrics;
  std::vector<MetricFamily> families;
  auto one = [&](std::string name, std::string help, MetricType type, double value) {
    ClientMetric c;
    if (type == MetricType::Counter) {
      c.counter.value = value;
    } else {
      c.gauge.value = value;
    }
    families.push_back(MetricFamily{std::move(name), std::move(help), type, {c}});
  };
  one("coppice_processes", "Processes alive.", MetricType::Gauge, static_cast<double>(m.processes));
  one("coppice_spawns_total", "Processes spawned since the runtime started.", MetricType::Counter,
      static_cast<double>(m.spawns));
  {
    MetricFamily f{"coppice_exits_total", "Processes exited, by reason class.", MetricType::Counter, {}};
    const std::pair<const char*, std::uint64_t> by_reason[] = {
        {"normal", m.exits_normal}, {"shutdown", m.exits_shutdown}, {"killed", m.exits_killed}, {"error", m.exits_error}};
    for (const auto& [reason, count] : by_reason) {
      ClientMetric c;
      c.label.push_back({"reason", reason});
      c.counter.value = static_cast<double>(count);
      f.metric.push_back(std::move(c));
    }
    families.push_back(std::move(f));
  }
  one("coppice_messages_sent_total", "Messages and signals put into mailboxes.", MetricType::Counter,
      static_cast<double>(m.messages_sent));
  one("coppice_timers_started_total", "Timers started.", MetricType::Counter, static_cast<double>(m.timers_started));
  one("coppice_timers_fired_total", "Timers fired.", MetricType::Counter, static_cast<double>(m.timers_fired));
  one("coppice_timers_pending", "Timers started and neither fired nor cancelled.", MetricType::Gauge,
      static_cast<double>(m.timers_pending));
  one("coppice_global_queue", "Processes queued for any worker.", MetricType::Gauge, static_cast<double>(m.global_queue));

  auto per_worker = [&](std::string name, std::string help, MetricType type, auto value_of) {
    MetricFamily f{std::move(name), std::move(help), type, {}};
    for (const WorkerMetrics& w : m.workers) {
      ClientMetric c;
      c.label.push_back({"worker", std::to_string(w.index)});
      const double v = value_of(w);
      if (type == MetricType::Counter) {
        c.counter.value = v;
      } else {
        c.gauge.value = v;
      }
      f.metric.push_back(std::move(c));
    }
    families.push_back(std::move(f));
  };
  using W = const WorkerMetrics&;
  per_worker("coppice_worker_turns_total", "Processes run by the worker.", MetricType::Counter,
             [](W w) { return static_cast<double>(w.turns); });
  per_worker("coppice_worker_steals_total", "Successful steals from another worker's queue.", MetricType::Counter,
             [](W w) { return static_cast<double>(w.steals); });
  per_worker("coppice_worker_parks_total", "Times the worker went to sleep.", MetricType::Counter,
             [](W w) { return static_cast<double>(w.parks); });
  per_worker("coppice_worker_wakeups_total", "Times another thread woke the worker.", MetricType::Counter,
             [](W w) { return static_cast<double>(w.wakeups); });
  per_worker("coppice_worker_parked_seconds_total", "Time the worker spent asleep.", MetricType::Counter,
             [](W w) { return seconds(w.parked); });
  per_worker("coppice_worker_alive_seconds_total", "Time since the worker started.", MetricType::Counter,
             [](W w) { return seconds(w.alive); });
  per_worker("coppice_worker_utilisation", "1 - parked/alive since the worker started.", MetricType::Gauge,
             [](W w) { return w.utilisation(); });
  per_worker("coppice_worker_run_queue", "Processes in the worker's run queue.", MetricType::Gauge,
             [](W w) { return static_cast<double>(w.run_queue); });

  {
    // The buckets of mailbox_depths (0, 1, 2-3, 4-7, ...) as a cumulative histogram.
    MetricFamily f{"coppice_mailbox_depth", "Processes by message queue length.", MetricType::Histogram, {}};
    ClientMetric c;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < snapshot_.depths.upper.size() && i < snapshot_.depths.counts.size(); ++i) {
      cumulative += snapshot_.depths.counts[i];
      c.histogram.bucket.push_back({cumulative, static_cast<double>(snapshot_.depths.upper[i])});
    }
    c.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    c.histogram.sample_count = cumulative;
    c.histogram.sample_sum = static_cast<double>(snapshot_.queued);
    f.metric.push_back(std::move(c));
    families.push_back(std::move(f));
  }
  // Per running supervisor (labelled by pid, and name when it has one), and the runtime's
  // totals (every supervisor that ran, live or gone; the reports delivered and dropped).
  auto per_supervisor = [&](std::string name, std::string help, auto value_of) {
    MetricFamily f{std::move(name), std::move(help), MetricType::Counter, {}};
    for (const SupervisorStats& st : snapshot_.supervisors) {
      ClientMetric c;
      c.label.push_back({"supervisor", st.pid.to_string()});
      c.label.push_back({"name", st.name});
      c.label.push_back({"behaviour", st.behaviour});
      c.counter.value = static_cast<double>(value_of(st));
      f.metric.push_back(std::move(c));
    }
    families.push_back(std::move(f));
  };
  using S = const SupervisorStats&;
  per_supervisor("coppice_supervisor_restarts_total", "Restarts begun by the supervisor.", [](S s) { return s.restarts; });
  per_supervisor("coppice_supervisor_intensity_trips_total", "Times its restart intensity was exceeded.",
                 [](S s) { return s.intensity_trips; });
  per_supervisor("coppice_supervisor_start_failures_total", "Child starts that failed.", [](S s) { return s.start_failures; });
  per_supervisor("coppice_supervisor_children_started_total", "Child starts that returned a pid.",
                 [](S s) { return s.children_started; });
  const SupervisorTotals& t = snapshot_.supervisor_totals;
  one("coppice_supervisors", "Supervisors running.", MetricType::Gauge, static_cast<double>(t.supervisors));
  one("coppice_restarts_total", "Restarts, every supervisor's.", MetricType::Counter, static_cast<double>(t.restarts));
  one("coppice_intensity_trips_total", "Restart intensities exceeded, every supervisor's.", MetricType::Counter,
      static_cast<double>(t.intensity_trips));
  one("coppice_start_failures_total", "Failed child starts, every supervisor's.", MetricType::Counter,
      static_cast<double>(t.start_failures));
  one("coppice_reports_delivered_total", "Reports handed to the report handler.", MetricType::Counter,
      static_cast<double>(t.reports_delivered));
  one("coppice_reports_dropped_total", "Reports dropped by the rate limit.", MetricType::Counter,
      static_cast<double>(t.reports_dropped));
  return families;
}

std::string prometheus_text(const Snapshot& snapshot) {
  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, SnapshotCollectable(snapshot).Collect());
  return out.str();
}

}  // namespace coppice::observer::detail
