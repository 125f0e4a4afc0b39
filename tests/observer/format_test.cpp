// The observer's JSON (escaping of any label) and its Prometheus text against known counts.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>

#include "observer/format.hpp"

using namespace coppice;
using namespace coppice::observer::detail;

TEST(JsonString, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(json_string("two\nlines\r\tand\x01\x7f"), "\"two\\nlines\\r\\tand\\u0001\\u007f\"");
  EXPECT_EQ(json_string("<0.12.1>"), "\"<0.12.1>\"");
  EXPECT_EQ(json_string(std::string_view("nul\0byte", 8)), "\"nul\\u0000byte\"");
}

TEST(JsonString, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb3"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb3\"");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(json_string("a\xff" "b"), "\"a" + fffd + "b\"");
  EXPECT_EQ(json_string("cut \xe2\x82"), "\"cut " + fffd + fffd + "\"") << "a sequence cut short";
  EXPECT_EQ(json_string("\xc0\xaf"), "\"" + fffd + fffd + "\"") << "an overlong '/'";
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"") << "a surrogate";
}

TEST(EntryJson, HasEveryFieldWithPidsAsTextAndId) {
  ProcessEntry e;
  e.pid = Pid::from_parts(12, 1, 1);
  e.registered_name = "counter";
  e.label = "a \"quoted\"\nlabel";
  e.behaviour = "GenServer";
  e.type = "Counter";
  e.status = ProcessStatus::waiting;
  e.parent = Pid::from_parts(3, 1, 1);
  e.message_queue_len = 4;
  e.reductions = 99;
  e.memory = 512;
  e.detailed = true;
  e.links = {e.parent};
  e.trap_exit = true;
  const std::string state = "total=3";
  const std::string j = entry_json(e, &state);
  const std::string id = std::to_string(e.pid.bits());
  EXPECT_NE(j.find("\"pid\":\"" + e.pid.to_string() + "\",\"pid_id\":" + id + ",\"pid_id_text\":\"" + id + "\""),
            std::string::npos)
      << j;
  for (const char* field : {"\"registered_name\":\"counter\"", "\"label\":\"a \\\"quoted\\\"\\nlabel\"",
                            "\"behaviour\":\"GenServer\"", "\"type\":\"Counter\"", "\"status\":\"waiting\"",
                            "\"message_queue_len\":4", "\"reductions\":99", "\"memory\":512", "\"detailed\":true",
                            "\"monitors\":[]", "\"monitored_by\":[]", "\"trap_exit\":true", "\"state\":\"total=3\""})
    EXPECT_NE(j.find(field), std::string::npos) << field << " in " << j;
  EXPECT_NE(j.find("\"parent\":\"" + e.parent.to_string() + "\""), std::string::npos);
  EXPECT_NE(j.find("\"links\":[{\"pid\":\"" + e.parent.to_string() + "\""), std::string::npos);
  EXPECT_EQ(entry_json(e).find("\"state\""), std::string::npos) << "no state unless asked";
}

TEST(TreesJson, NestsChildrenAndReportsARootsError) {
  TreeNode root;
  root.pid = Pid::from_parts(1, 1, 1);
  root.behaviour = "Supervisor";
  root.type = ChildType::supervisor;
  TreeNode child;
  child.id = "worker \"one\"";
  child.pid = Pid::from_parts(2, 1, 1);
  child.label = "ticker 1";
  root.children.push_back(child);
  std::vector<RootTree> trees;
  trees.push_back({"app", root});
  trees.push_back({"gone", Error(ErrorKind::noproc, "no process")});
  const std::string j = trees_json(trees);
  EXPECT_NE(j.find("\"root\":\"app\",\"error\":\"\",\"tree\":{\"child_id\":\"\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"children\":[{\"child_id\":\"worker \\\"one\\\"\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"label\":\"ticker 1\""), std::string::npos);
  EXPECT_NE(j.find("\"type\":\"supervisor\""), std::string::npos);
  EXPECT_NE(j.find("\"root\":\"gone\""), std::string::npos);
  EXPECT_NE(j.find("\"tree\":null"), std::string::npos);
}

namespace {
Snapshot known_snapshot() {
  Snapshot s;
  s.metrics.processes = 7;
  s.metrics.spawns = 30;
  s.metrics.exits = 23;
  s.metrics.exits_normal = 10;
  s.metrics.exits_shutdown = 6;
  s.metrics.exits_killed = 4;
  s.metrics.exits_error = 3;
  s.metrics.messages_sent = 1234;
  s.metrics.timers_started = 5;
  s.metrics.timers_fired = 2;
  s.metrics.timers_pending = 3;
  for (unsigned i = 0; i < 2; ++i) {
    WorkerMetrics w;
    w.index = i;
    w.turns = 100 + i;
    w.steals = 10 + i;
    w.parks = 20 + i;
    w.wakeups = 30 + i;
    w.parked = std::chrono::milliseconds(250);
    w.alive = std::chrono::seconds(1);
    w.run_queue = i;
    s.metrics.workers.push_back(w);
  }
  // Four processes with queues of 0, 0, 1 and 5: buckets 0, 1, 2-3, 4-7.
  s.depths.upper = {0, 1, 3, 7};
  s.depths.counts = {2, 1, 0, 1};
  s.depths.max = 5;
  s.queued = 6;
  return s;
}
}  // namespace

TEST(PrometheusText, HasTheKnownCountsUnderTheirNames) {
  const std::string text = prometheus_text(known_snapshot());
  for (const char* line : {
           "# TYPE coppice_processes gauge\ncoppice_processes 7\n",
           "# TYPE coppice_spawns_total counter\ncoppice_spawns_total 30\n",
           "coppice_exits_total{reason=\"normal\"} 10\n",
           "coppice_exits_total{reason=\"shutdown\"} 6\n",
           "coppice_exits_total{reason=\"killed\"} 4\n",
           "coppice_exits_total{reason=\"error\"} 3\n",
           "coppice_messages_sent_total 1234\n",
           "coppice_timers_started_total 5\n",
           "coppice_timers_fired_total 2\n",
           "coppice_timers_pending 3\n",
           "coppice_worker_turns_total{worker=\"0\"} 100\n",
           "coppice_worker_turns_total{worker=\"1\"} 101\n",
           "coppice_worker_steals_total{worker=\"1\"} 11\n",
           "coppice_worker_parks_total{worker=\"0\"} 20\n",
           "coppice_worker_wakeups_total{worker=\"1\"} 31\n",
           "coppice_worker_parked_seconds_total{worker=\"0\"} 0.25\n",
           "coppice_worker_utilisation{worker=\"1\"} 0.75\n",
           "coppice_worker_run_queue{worker=\"1\"} 1\n",
           "# TYPE coppice_mailbox_depth histogram\n",
           "coppice_mailbox_depth_count 4\n",
           "coppice_mailbox_depth_sum 6\n",
           "coppice_mailbox_depth_bucket{le=\"0\"} 2\n",
           "coppice_mailbox_depth_bucket{le=\"1\"} 3\n",
           "coppice_mailbox_depth_bucket{le=\"3\"} 3\n",
           "coppice_mailbox_depth_bucket{le=\"7\"} 4\n",
           "coppice_mailbox_depth_bucket{le=\"+Inf\"} 4\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nnot in\n" << text;
}

TEST(PrometheusText, EveryLineIsACommentOrASample) {
  const std::string text = prometheus_text(known_snapshot());
  const std::regex sample(R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+0-9.eEInfa]+)");
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 30);
}

TEST(MetricsJson, CarriesTheCountsWorkersAndDepths) {
  const std::string j = metrics_json(known_snapshot());
  for (const char* field : {"\"processes\":7", "\"spawns\":30", "\"messages_sent\":1234",
                            "\"exits_by_reason\":{\"normal\":10,\"shutdown\":6,\"killed\":4,\"error\":3}",
                            "\"workers\":[{\"index\":0,\"turns\":100", "\"utilisation\":0.75",
                            "\"mailbox_depths\":{\"upper\":[0,1,3,7],\"counts\":[2,1,0,1],\"max\":5,\"queued\":6}"})
    EXPECT_NE(j.find(field), std::string::npos) << field << " in " << j;
}
