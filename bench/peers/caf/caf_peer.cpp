// The CAF peer: BENCHMARKS.md's workloads W1 and W3 to W7 written as CAF 0.17 would naturally
// write them, with event-based (class-based) actors on CAF's default work-stealing scheduler.
// One workload per run of the program (bench/peers/caf/run starts a fresh process for each):
//
//   caf_peer WORKLOAD        e.g. caf_peer W5_ping_pong/workers:1
//
// It prints one JSON line on standard output (the peers' contract, bench/peers/README.md):
// the figures, or an `error` when its own check fails (exit status 2 then).
//
// The benchmark's side (the driver that counts, kills and waits) is an actor in every
// workload; the main thread only starts the actor system and waits for the driver's report.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace caf;

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}
double us_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// VmRSS of /proc/self/status, in bytes.
double resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtod(line + 6, nullptr);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024.0;
}

// What a driver actor hands back to main: counters in order, or an error.
struct Report {
  std::vector<std::pair<std::string, double>> counters;
  std::string error;
};
using ReportPromise = std::promise<Report>;

// Atoms (CAF 0.17 spells message tags as atom constants).
using ack_atom = atom_constant<atom("ack")>;
using stop_atom = atom_constant<atom("stop")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using ready_atom = atom_constant<atom("ready")>;
using done_atom = atom_constant<atom("done")>;

// ---------------------------------------------------------------------------------------------
// W1 spawn_idle_1m: a million actors; each acknowledges once running, then waits for `stop`.

// CAF_W1_N overrides the count, for trying the program out; the figures are for a million.
const std::size_t w1_actors = std::getenv("CAF_W1_N") ? std::strtoul(std::getenv("CAF_W1_N"), nullptr, 10) : 1'000'000;

class idle_actor final : public event_based_actor {
 public:
  idle_actor(actor_config& cfg, actor driver) : event_based_actor(cfg), driver_(std::move(driver)) {}

  behavior make_behavior() override {
    send(driver_, ack_atom::value);
    driver_ = nullptr;  // only needed for the acknowledgement
    return {[=](stop_atom) { quit(); }};
  }

 private:
  actor driver_;
};

// The benchmark's side is a scoped_actor: CAF's blocking actor, with its own mailbox, running
// in the main thread. Not an event-based driver: CAF 0.17's work-stealing queue walks the whole
// queue on every steal (double_ended_queue::take_tail -> find_predecessor from the head), so
// a million spawns from inside an actor, which all land on that worker's own queue while the
// idle workers steal from it, are quadratic (10k: 50 ms, 20k: 0.3 s, 40k: 1.1 s here). Spawns
// from a thread outside the scheduler are spread over the workers round-robin instead.
void w1_spawn_idle(actor_system& system, ReportPromise* out) {
  scoped_actor self{system};
  // The handle list is the benchmark's bookkeeping, not the actors' cost: touched before the
  // resident size is taken.
  std::vector<actor> actors(w1_actors);
  const std::size_t running_before = system.registry().running();  // 1: the scoped_actor
  const double rss_before = resident_bytes();
  const auto spawn_start = Clock::now();
  for (auto& a : actors) a = self->spawn<idle_actor>(actor{self});
  std::size_t acks = 0;
  bool timed_out = false;
  self->receive_while([&] { return acks < w1_actors && !timed_out; })(
      [&](ack_atom) { ++acks; },
      after(std::chrono::seconds(120)) >> [&] { timed_out = true; });
  const double spawn_ms = ms_between(spawn_start, Clock::now());
  const double bytes = (resident_bytes() - rss_before) / static_cast<double>(w1_actors);
  const auto stop_start = Clock::now();
  for (auto& a : actors) self->send(a, stop_atom::value);
  actors.clear();  // drop the handles so the stopped actors can be freed
  actors.shrink_to_fit();
  // "All gone": the registry's count of running actors falls back to what it was before the
  // spawns. That is 1, not 0: a live scoped_actor counts as running (in CAF 0.17.6 even a
  // hidden one), so await_all_actors_done() here would wait for ever.
  system.registry().await_running_count_equal(running_before);
  Report r;
  r.counters = {{"spawn_ms", spawn_ms}, {"stop_ms", ms_between(stop_start, Clock::now())}, {"bytes_per_process", bytes}};
  if (acks != w1_actors)
    r.error = "spawn_idle: " + std::to_string(acks) + " acknowledgements, not " + std::to_string(w1_actors);
  out->set_value(std::move(r));
}

// ---------------------------------------------------------------------------------------------
// Every latency (µs, one per line, in the order measured) to $PEER_LATENCY_SAMPLES_DIR/<workload>.txt
// when that is set, for tools/plot's distributions.
void write_samples(const char* workload, const std::vector<double>& us) {
  const char* dir = std::getenv("PEER_LATENCY_SAMPLES_DIR");
  if (dir == nullptr || *dir == '\0') return;
  const std::string path = std::string(dir) + "/" + workload + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "caf: cannot write latency samples to %s\n", path.c_str());
    return;
  }
  for (double v : us) std::fprintf(f, "%.3f\n", v);
  std::fclose(f);
}

// W3 / W3b restart latency, hand-rolled: CAF has monitors and links but no supervisor. A
// supervising actor spawns its children monitored and, on a child's `down_msg`, re-spawns it
// (one_for_one) or first stops the other children, waits for their downs, then re-spawns all
// (one_for_all, as OTP's supervisor terminates the rest before restarting). A lone child is
// registered under a name in CAF's registry, as W3's child is. Each child's construction
// (make_behavior, CAF's init) reports `ready` with its index to the benchmark actor.

class w3_worker final : public event_based_actor {
 public:
  w3_worker(actor_config& cfg, actor bench, int index) : event_based_actor(cfg), bench_(std::move(bench)), index_(index) {}

  behavior make_behavior() override {
    send(bench_, ready_atom::value, index_, actor_cast<actor>(this));
    return {[](int) {}};  // idle
  }

 private:
  actor bench_;
  int index_;
};

class hand_supervisor final : public event_based_actor {
 public:
  hand_supervisor(actor_config& cfg, actor bench, int children, bool one_for_all)
      : event_based_actor(cfg), bench_(std::move(bench)), n_(children), one_for_all_(one_for_all) {}

  behavior make_behavior() override {
    children_.resize(static_cast<std::size_t>(n_));
    for (int i = 0; i < n_; ++i) start_child(i);
    set_down_handler([=](down_msg& dm) { on_down(dm); });
    return {
        [=](stop_atom) {
          stopping_ = true;
          for (auto& c : children_)
            if (c) send_exit(c, exit_reason::user_shutdown);
          quit();
        },
    };
  }

 private:
  void start_child(int i) {
    actor c = spawn<w3_worker, monitored>(bench_, i);
    if (n_ == 1) system().registry().put(atom("w3worker"), c);
    children_[static_cast<std::size_t>(i)] = std::move(c);
  }

  void on_down(down_msg& dm) {
    if (stopping_) return;
    if (!one_for_all_) {
      for (int i = 0; i < n_; ++i)
        if (children_[static_cast<std::size_t>(i)] && children_[static_cast<std::size_t>(i)].address() == dm.source) {
          start_child(i);
          return;
        }
      return;
    }
    if (awaiting_downs_ == 0) {
      // The first down: stop every other child (OTP's `shutdown` exit) and wait for them.
      for (auto& c : children_) {
        if (c.address() == dm.source) {
          c = nullptr;
          continue;
        }
        send_exit(c, exit_reason::user_shutdown);
        ++awaiting_downs_;
      }
      if (awaiting_downs_ == 0) restart_all();
      return;
    }
    if (--awaiting_downs_ == 0) restart_all();
  }

  void restart_all() {
    for (int i = 0; i < n_; ++i) start_child(i);
  }

  actor bench_;
  int n_;
  bool one_for_all_;
  bool stopping_ = false;
  std::size_t awaiting_downs_ = 0;
  std::vector<actor> children_;
};

class w3_driver final : public event_based_actor {
 public:
  w3_driver(actor_config& cfg, ReportPromise* out, int children, int rounds, bool one_for_all)
      : event_based_actor(cfg), out_(out), n_(children), rounds_(rounds), one_for_all_(one_for_all) {}

  behavior make_behavior() override {
    pids_.resize(static_cast<std::size_t>(n_));
    us_.reserve(static_cast<std::size_t>(rounds_));
    sup_ = spawn<hand_supervisor>(actor_cast<actor>(this), n_, one_for_all_);
    return {
        [=](ready_atom, int index, actor child) {
          pids_[static_cast<std::size_t>(index)] = std::move(child);
          if (++got_ < n_) return;
          got_ = 0;
          if (started_) us_.push_back(us_between(before_, Clock::now()));
          started_ = true;
          next_round();
        },
    };
  }

 private:
  void next_round() {
    if (us_.size() == static_cast<std::size_t>(rounds_)) {
      finish();
      return;
    }
    const auto victim = us_.size() % static_cast<std::size_t>(n_);
    before_ = Clock::now();
    anon_send_exit(pids_[victim], exit_reason::kill);
  }

  void finish() {
    std::vector<double> us = std::move(us_);
    write_samples(n_ == 1 ? "W3_restart_latency" : "W3b_restart_one_for_all_100", us);
    std::sort(us.begin(), us.end());
    auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))]; };
    Report r;
    r.counters = {{"p50_us", at(0.50)}, {"p90_us", at(0.90)}, {"p99_us", at(0.99)}, {"p999_us", at(0.999)}, {"max_us", us.back()}};
    if (us.size() != static_cast<std::size_t>(rounds_))
      r.error = "restart_latency: " + std::to_string(us.size()) + " restarts reported, not " + std::to_string(rounds_);
    send(sup_, stop_atom::value);
    pids_.clear();
    sup_ = nullptr;
    out_->set_value(std::move(r));
    quit();
  }

  ReportPromise* out_;
  int n_, rounds_;
  bool one_for_all_;
  actor sup_;
  std::vector<actor> pids_;
  std::vector<double> us_;
  int got_ = 0;
  bool started_ = false;
  Clock::time_point before_;
};

// ---------------------------------------------------------------------------------------------
// W4 skynet_1m: ten children per node, six levels, a million leaves; leaf i replies i.

constexpr std::uint64_t w4_leaves = 1'000'000;
constexpr std::uint64_t w4_fan_out = 10;
constexpr std::uint64_t w4_expected = w4_leaves * (w4_leaves - 1) / 2;

class skynet_node final : public event_based_actor {
 public:
  skynet_node(actor_config& cfg, actor parent, std::uint64_t first, std::uint64_t size)
      : event_based_actor(cfg), parent_(std::move(parent)), first_(first), size_(size) {}

  behavior make_behavior() override {
    if (size_ == 1) {
      send(parent_, first_);
      quit();
      return {};
    }
    const std::uint64_t child_size = size_ / w4_fan_out;
    const actor me = actor_cast<actor>(this);
    for (std::uint64_t i = 0; i < w4_fan_out; ++i) spawn<skynet_node>(me, first_ + i * child_size, child_size);
    return {
        [=](std::uint64_t x) {
          sum_ += x;
          if (++replies_ < w4_fan_out) return;
          send(parent_, sum_);
          quit();
        },
    };
  }

 private:
  actor parent_;
  std::uint64_t first_, size_;
  std::uint64_t sum_ = 0, replies_ = 0;
};

class w4_root final : public event_based_actor {
 public:
  w4_root(actor_config& cfg, ReportPromise* out) : event_based_actor(cfg), out_(out) {}

  behavior make_behavior() override {
    start_ = Clock::now();
    const std::uint64_t child_size = w4_leaves / w4_fan_out;
    const actor me = actor_cast<actor>(this);
    for (std::uint64_t i = 0; i < w4_fan_out; ++i) spawn<skynet_node>(me, i * child_size, child_size);
    return {
        [=](std::uint64_t x) {
          sum_ += x;
          if (++replies_ < w4_fan_out) return;
          Report r;
          r.counters = {{"wall_ms", ms_between(start_, Clock::now())}};
          if (sum_ != w4_expected)
            r.error = "skynet: the root got " + std::to_string(sum_) + ", not " + std::to_string(w4_expected);
          out_->set_value(std::move(r));
          quit();
        },
    };
  }

 private:
  ReportPromise* out_;
  Clock::time_point start_;
  std::uint64_t sum_ = 0, replies_ = 0;
};

// ---------------------------------------------------------------------------------------------
// W5 ping_pong and W7 pairs: a ponger answers every `ping` with `pong` (the handler's
// return value goes back to the sender, as in CAF's own ping-pong example).

class ponger_actor final : public event_based_actor {
 public:
  explicit ponger_actor(actor_config& cfg) : event_based_actor(cfg) {}
  behavior make_behavior() override {
    return {
        [](ping_atom) { return pong_atom::value; },
        [=](stop_atom) { quit(); },
    };
  }
};

constexpr std::uint32_t w5_round_trips = 1'000'000;

class w5_pinger final : public event_based_actor {
 public:
  w5_pinger(actor_config& cfg, ReportPromise* out) : event_based_actor(cfg), out_(out) {}

  behavior make_behavior() override {
    partner_ = spawn<ponger_actor>();
    start_ = Clock::now();
    send(partner_, ping_atom::value);
    return {
        [=](pong_atom) {
          if (++round_trips_ < w5_round_trips) {
            send(partner_, ping_atom::value);
            return;
          }
          const double ms = ms_between(start_, Clock::now());
          Report r;
          r.counters = {{"ns_per_round_trip", ms * 1e6 / w5_round_trips}};
          send(partner_, stop_atom::value);
          out_->set_value(std::move(r));
          quit();
        },
    };
  }

 private:
  ReportPromise* out_;
  actor partner_;
  std::uint32_t round_trips_ = 0;
  Clock::time_point start_;
};

constexpr std::uint32_t w7_pairs = 1'000;
constexpr std::uint32_t w7_round_trips_per_pair = 10'000;

class w7_pinger final : public event_based_actor {
 public:
  w7_pinger(actor_config& cfg, actor driver) : event_based_actor(cfg), driver_(std::move(driver)) {}

  behavior make_behavior() override {
    partner_ = spawn<ponger_actor>();
    send(partner_, ping_atom::value);
    return {
        [=](pong_atom) {
          if (++round_trips_ < w7_round_trips_per_pair) {
            send(partner_, ping_atom::value);
            return;
          }
          send(partner_, stop_atom::value);
          send(driver_, done_atom::value, round_trips_);
          quit();
        },
    };
  }

 private:
  actor driver_;
  actor partner_;
  std::uint32_t round_trips_ = 0;
};

class w7_driver final : public event_based_actor {
 public:
  w7_driver(actor_config& cfg, ReportPromise* out) : event_based_actor(cfg), out_(out) {}

  behavior make_behavior() override {
    start_ = Clock::now();
    const actor me = actor_cast<actor>(this);
    for (std::uint32_t i = 0; i < w7_pairs; ++i) spawn<w7_pinger>(me);
    return {
        [=](done_atom, std::uint32_t n) {
          total_ += n;
          if (++done_ < w7_pairs) return;
          const double ms = ms_between(start_, Clock::now());
          Report r;
          const double expected = double{w7_pairs} * w7_round_trips_per_pair;
          r.counters = {{"round_trips_per_s", expected / (ms / 1e3)}, {"wall_ms", ms}};
          if (static_cast<double>(total_) != expected)
            r.error = "pairs: " + std::to_string(total_) + " round trips, not " + std::to_string(expected);
          out_->set_value(std::move(r));
          quit();
        },
    };
  }

 private:
  ReportPromise* out_;
  Clock::time_point start_;
  std::uint32_t done_ = 0;
  std::uint64_t total_ = 0;
};

// ---------------------------------------------------------------------------------------------
// W6 fan_in: a thousand senders each send ten thousand messages carrying their number to one
// receiver (ten million in all), then quit; the receiver counts and sums them.

constexpr std::uint64_t w6_senders = 1'000;
constexpr std::uint64_t w6_per_sender = 10'000;
constexpr std::uint64_t w6_messages = w6_senders * w6_per_sender;
constexpr std::uint64_t w6_expected_sum = w6_per_sender * (w6_senders * (w6_senders - 1) / 2);

class fan_in_sender final : public event_based_actor {
 public:
  fan_in_sender(actor_config& cfg, actor receiver, std::uint64_t number)
      : event_based_actor(cfg), receiver_(std::move(receiver)), number_(number) {}

  behavior make_behavior() override {
    for (std::uint64_t i = 0; i < w6_per_sender; ++i) send(receiver_, number_);
    quit();
    return {};
  }

 private:
  actor receiver_;
  std::uint64_t number_;
};

class w6_receiver final : public event_based_actor {
 public:
  w6_receiver(actor_config& cfg, ReportPromise* out) : event_based_actor(cfg), out_(out) {}

  behavior make_behavior() override {
    start_ = Clock::now();
    const actor me = actor_cast<actor>(this);
    for (std::uint64_t i = 0; i < w6_senders; ++i) spawn<fan_in_sender>(me, i);
    return {
        [=](std::uint64_t number) {
          sum_ += number;
          if (++count_ < w6_messages) return;
          const double ms = ms_between(start_, Clock::now());
          Report r;
          r.counters = {{"msgs_per_s", static_cast<double>(w6_messages) / (ms / 1e3)}, {"wall_ms", ms}};
          if (sum_ != w6_expected_sum)
            r.error = "fan_in: the messages' numbers sum to " + std::to_string(sum_) + ", not " +
                      std::to_string(w6_expected_sum);
          out_->set_value(std::move(r));
          quit();
        },
    };
  }

 private:
  ReportPromise* out_;
  Clock::time_point start_;
  std::uint64_t count_ = 0, sum_ = 0;
};

// ---------------------------------------------------------------------------------------------

struct Workload {
  const char* name;
  std::size_t max_threads;  // 0: CAF's default
  std::function<void(actor_system&, ReportPromise*)> start;
  std::string label;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Workload> workloads = {
      {"W1_spawn_idle_1m", 0, w1_spawn_idle,
       "event-based actors spawned by a scoped_actor (blocking) driver; stop: a stop message to each, "
       "until the registry's running count is back to its count before the spawns"},
      {"W3_restart_latency", 0,
       [](actor_system& s, ReportPromise* p) { s.spawn<w3_driver>(p, 1, 10'000, false); },
       "hand-rolled: a supervising actor monitors its child, re-spawns it on down and registers it by name; "
       "kill with anon_send_exit(child, exit_reason::kill)"},
      {"W3b_restart_one_for_all_100", 0,
       [](actor_system& s, ReportPromise* p) { s.spawn<w3_driver>(p, 100, 1'000, true); },
       "hand-rolled one_for_all: on a child's down the supervising actor sends exit(user_shutdown) to the 99 others, "
       "waits for their downs, re-spawns all 100"},
      {"W4_skynet_1m", 0, [](actor_system& s, ReportPromise* p) { s.spawn<w4_root>(p); }, "event-based actors"},
      {"W5_ping_pong/workers:1", 1, [](actor_system& s, ReportPromise* p) { s.spawn<w5_pinger>(p); },
       "scheduler.max-threads=1"},
      {"W5_ping_pong/workers:2", 0, [](actor_system& s, ReportPromise* p) { s.spawn<w5_pinger>(p); },
       "CAF's default scheduler"},
      {"W6_fan_in", 0, [](actor_system& s, ReportPromise* p) { s.spawn<w6_receiver>(p); }, "event-based actors"},
      {"W7_pairs_throughput", 0, [](actor_system& s, ReportPromise* p) { s.spawn<w7_driver>(p); },
       "event-based actors"},
  };

  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("CAF %d.%d.%d\n", CAF_MAJOR_VERSION, CAF_MINOR_VERSION, CAF_PATCH_VERSION);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& w : workloads) std::printf("%s\n", w.name);
    return 0;
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKLOAD | --list | --version\n", argv[0]);
    return 64;
  }
  const Workload* w = nullptr;
  for (const auto& x : workloads)
    if (x.name == std::string(argv[1])) w = &x;
  if (w == nullptr) {
    std::fprintf(stderr, "unknown workload %s\n", argv[1]);
    return 64;
  }

  Report report;
  std::string label = w->label;
  {
    actor_system_config cfg;
    if (w->max_threads != 0) cfg.set("scheduler.max-threads", w->max_threads);
    actor_system system{cfg};
    const std::size_t threads = system.scheduler().num_workers();
    if (w->max_threads != 0 && threads != w->max_threads) {
      report.error = "asked for " + std::to_string(w->max_threads) + " scheduler threads, got " + std::to_string(threads);
    } else {
      label += " (" + std::to_string(threads) + (threads == 1 ? " scheduler thread)" : " scheduler threads)");
      ReportPromise promise;
      auto future = promise.get_future();
      w->start(system, &promise);
      report = future.get();
    }
    // Leaving this scope waits for every actor to be done (each workload stops its own).
  }

  std::string line = "{\"peer\": \"caf\", \"workload\": " + json_string(w->name);
  if (!report.error.empty()) {
    line += ", \"error\": " + json_string(report.error) + "}";
    std::printf("%s\n", line.c_str());
    return 2;
  }
  line += ", \"counters\": {";
  bool first = true;
  for (const auto& [name, value] : report.counters) {
    if (!first) line += ", ";
    first = false;
    line += json_string(name) + ": " + json_number(value);
  }
  line += "}, \"label\": " + json_string(label) + "}";
  std::printf("%s\n", line.c_str());
  return 0;
}
