// The chaos soak: a service-shaped supervision tree under a seeded storm of exit signals, with a
// ledger of every call and cast that proves no call hung, no message to a live process was
// lost or reordered, and the tree, its names and the process count come back to their spec.
//
// The tree (a top Supervisor, rest_for_one, like an Elixir application's):
//   registry     Registry "soak_names" (unique keys, 2 partitions); the workers' via-names
//   workers      DynamicSupervisor "soak_workers": W Recorder workers named via("soak_names", "w<k>")
//   populator    GenServer "soak_populator": fills an empty "soak_workers" in its init
//   partitions   PartitionSupervisor "soak_partitions": P Recorder servers
//   parent       ParentSupervisor "soak_parent": Recorders p0, p1, p2 (p2 binds to p1)
// Clients (processes, and plain threads with an Inbox) open windows on one server pid: a Count
// call, casts and calls each with the next sequence number of the (client, target) pair, and a
// closing Count call. A Count reply from the same pid proves the server handled every cast of
// the window (messages from one sender arrive in order, SEMANTICS.md 1.2), so sent minus
// counted is a loss; a window whose server died is void, never a loss. The servers check that
// sequence numbers only increase per sender. A chaos process sends exit signals (kill,
// shutdown, an error, normal) at every level at a bounded rate; the main thread watches every
// call in flight and calls one that outlives its timeout plus a slack a hang.
//
// COPPICE_SOAK_SECONDS sets the storm's length (default 5 s; 3 s under a sanitizer, at half
// the rate); COPPICE_SOAK_WORKERS the DynamicSupervisor's children (32; 16 under a
// sanitizer); COPPICE_SOAK_SEED replays a seed (printed on every run; it replays the
// choices of the clients and the chaos, not the interleaving of the workers). The ctest test
// soak_long (cmake -DCOPPICE_SOAK_LONG=ON) runs it for 600 s.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coppice/coppice.hpp"
#include "stress/stress.hpp"

namespace coppice_soak {
namespace {

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ChildCounts;
using coppice::ChildSpec;
using coppice::DynamicSupervisor;
using coppice::Error;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::From;
using coppice::Inbox;
using coppice::Init;
using coppice::PartitionSupervisor;
using coppice::Pid;
using coppice::Ref;
using coppice::Registry;
using coppice::Result;
using coppice::Runtime;
using coppice::ServerRef;
using coppice::Supervisor;
using coppice::stress::Random;
using Clock = std::chrono::steady_clock;

// ---- Sizes and pace ---------------------------------------------------------------------

constexpr bool sanitized = coppice::stress::sanitized;
constexpr const char* kNames = "soak_names";
constexpr const char* kTop = "soak_top";
constexpr const char* kWorkers = "soak_workers";
constexpr const char* kPopulator = "soak_populator";
constexpr const char* kPartitions = "soak_partitions";
constexpr const char* kParent = "soak_parent";
constexpr std::array<const char*, 3> kParentChildren{"p0", "p1", "p2"};

struct Settings {
  std::chrono::milliseconds storm;
  std::uint64_t seed;
  std::uint32_t workers = sanitized ? 16 : 32;
  std::uint32_t partitions = 4;
  std::uint32_t process_clients = 4;
  std::uint32_t thread_clients = 2;
  // At most one fault per interval: about 250 faults a second, half of that sanitized.
  std::chrono::milliseconds fault_interval{sanitized ? 8 : 4};
  // A live Recorder answers in microseconds: these timeouts are only hit by a server that is
  // overloaded or gone; Stall is never answered, and times out by design.
  std::chrono::milliseconds call_timeout{sanitized ? 1000 : 250};
  std::chrono::milliseconds stall_timeout{sanitized ? 40 : 10};
  // A call that has not returned by timeout + slack hangs. Generous: the host is shared (ctest
  // runs two tests at once on two cores) and a sanitizer slows the timer thread too; a lost
  // timer or reply exceeds any slack, and longest_over_timeout_ms is the bound actually seen.
  std::chrono::milliseconds slack{sanitized ? 20000 : 5000};

  std::uint32_t targets() const { return workers + partitions + static_cast<std::uint32_t>(kParentChildren.size()); }
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 10);
}

Settings settings() {
  Settings s{};
  s.storm = std::chrono::milliseconds(1000 * env_number("COPPICE_SOAK_SECONDS", sanitized ? 3 : 5));
  s.seed = env_number("COPPICE_SOAK_SEED", std::random_device{}());
  s.workers = static_cast<std::uint32_t>(env_number("COPPICE_SOAK_WORKERS", s.workers));
  return s;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// ---- The protocol between clients and servers ---------------------------------------------

// A payload that counts its live instances: a Note the runtime leaks shows after stop().
struct Note {
  std::uint32_t client;
  std::uint64_t seq;
  coppice::stress::Counted weight{};
};
struct Echo {
  std::uint32_t client;
  std::uint64_t seq;
};
struct Echoed {
  Pid server;
  std::uint32_t target;
  std::uint64_t seq;
};
struct Count {
  std::uint32_t client;
  std::uint64_t seq;
};
struct CastCount {
  Pid server;
  std::uint32_t target;
  std::uint64_t notes;  // Notes this incarnation received from the client
};
struct Stall {  // never answered: its caller must time out, on time
  std::uint32_t client;
  std::uint64_t seq;
};

// What the servers report to the ledger: every Note, and every sequence number out of order.
struct Ledger {
  std::atomic<std::uint64_t> notes_received{0};    // relaxed: a tally, read after the storm
  std::atomic<std::uint64_t> order_violations{0};  // relaxed: likewise
  std::mutex mutex;
  std::vector<std::string> details;  // the first few violations, for the report

  void violation(std::string what) {
    order_violations.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    if (details.size() < 10) details.push_back(std::move(what));
  }
};

// The server under every name: workers, partitions and the parent's children. Its state is
// per client: the last sequence number seen and the Notes received.
class Recorder : public coppice::GenServer<Recorder> {
 public:
  using calls = coppice::Protocol<Echo, Count, Stall>;
  using casts = coppice::Protocol<Note>;
  using infos = coppice::Protocol<Note>;  // plain threads send Notes with Inbox::send

  Recorder(Ledger* ledger, std::uint32_t target) : ledger_(ledger), target_(target) {}

  Echoed handle_call(Echo e) {
    see(e.client, e.seq);
    return Echoed{coppice::self(), target_, e.seq};
  }
  CastCount handle_call(Count c) {
    see(c.client, c.seq);
    return CastCount{coppice::self(), target_, clients_[c.client].notes};
  }
  void handle_call(Stall s) { see(s.client, s.seq); }  // no reply, ever
  void handle_cast(Note n) { note(n); }
  void handle_info(Note n) { note(n); }

 private:
  struct Client {
    std::uint64_t last_seq = 0;
    std::uint64_t notes = 0;
  };
  void note(const Note& n) {
    ledger_->notes_received.fetch_add(1, std::memory_order_relaxed);
    see(n.client, n.seq);
    ++clients_[n.client].notes;
  }
  void see(std::uint32_t client, std::uint64_t seq) {
    Client& c = clients_[client];
    if (seq <= c.last_seq)
      ledger_->violation("target " + std::to_string(target_) + " at " + coppice::self().to_string() + ": client " +
                         std::to_string(client) + " sent " + std::to_string(seq) + " after " + std::to_string(c.last_seq));
    c.last_seq = seq;
  }

  Ledger* ledger_;
  std::uint32_t target_;
  std::unordered_map<std::uint32_t, Client> clients_;
};

// ---- The tree -------------------------------------------------------------------------------

struct Soak {
  Settings settings;
  Ledger ledger;
  std::vector<DynamicSupervisor::SharedSpec> worker_specs;  // one per key, named via "w<k>"
  // The registry's pid, for the chaos (the top knows it, but a call to the top waits while it
  // restarts children). Relaxed: a hint; a stale pid is only a signal to a dead process.
  std::atomic<std::uint64_t> registry_pid{0};
  std::atomic<bool> stop_clients{false};  // release/acquire: set once, after the storm
  std::atomic<std::uint64_t> populations{0};  // relaxed: a tally, read after the storm
  std::mutex populate_mutex;
  std::map<std::string, std::uint64_t> populate_errors;  // the populator's failed starts, by kind

  void populate_error(const Error& e) {
    std::lock_guard lock(populate_mutex);
    ++populate_errors[std::string(coppice::to_string(e.kind()))];
  }
};

std::string worker_key(std::uint32_t k) { return "w" + std::to_string(k); }

Async<Result<Pid>> start_registry(Soak* soak) {
  coppice::RegistryOptions o;
  o.name = kNames;
  o.partitions = 2;
  Result<Pid> started = co_await Registry::start_link(o);
  if (started) soak->registry_pid.store(started->bits(), std::memory_order_relaxed);
  co_return started;
}

// Fills an empty DynamicSupervisor with its W workers. A worker of a killed DynamicSupervisor
// may still hold its name for a moment (its kill is on its way): wait for its DOWN and retry.
class Populator : public coppice::GenServer<Populator> {
 public:
  explicit Populator(Soak* soak) : soak_(soak) {}

  Async<Init> init() {
    Result<ChildCounts> counts = co_await DynamicSupervisor::count_children(kWorkers);
    if (!counts || counts->specs != 0) co_return ok();
    soak_->populations.fetch_add(1, std::memory_order_relaxed);
    for (const DynamicSupervisor::SharedSpec& spec : soak_->worker_specs) {
      for (int attempt = 0; attempt < 10; ++attempt) {
        Result<Pid> started = co_await DynamicSupervisor::start_child(kWorkers, spec);
        if (started) break;
        soak_->populate_error(started.error());
        // The DynamicSupervisor (noproc, exited) or the Registry (not_found: the via-name has no
        // registry) is gone: the top restarts it, and this populator after it (rest_for_one).
        const ErrorKind kind = started.error().kind();
        if (kind == ErrorKind::noproc || kind == ErrorKind::exited || kind == ErrorKind::not_found) co_return ok();
        const Pid holder = started.error().kind() == ErrorKind::already_started ? started.error().pid() : Pid{};
        if (!holder) break;
        const Ref watch = coppice::monitor(holder);
        auto its_down = [watch](const coppice::Message& m) {
          return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch;
        };
        (void)co_await coppice::receive_if(its_down, 5s);
      }
    }
    co_return ok();
  }

 private:
  Soak* soak_;
};

std::vector<ChildSpec> top_children(Soak& soak) {
  const Settings& s = soak.settings;
  ChildSpec registry;
  registry.id = "registry";
  registry.start = [p = &soak](const coppice::StartArgs&) { return start_registry(p); };
  registry.as_supervisor();  // shutdown infinity: it stops its partitions, then itself

  coppice::DynamicSupervisorOptions dynamic;
  dynamic.intensity = 1000000;  // the storm must not trip it; the intensity check does that
  dynamic.period = 1000ms;

  coppice::PartitionSupervisorOptions partitions;
  partitions.child = coppice::child<Recorder>("partition", &soak.ledger, s.workers);
  partitions.partitions = s.partitions;
  partitions.with_arguments = [ledger = &soak.ledger, first = s.workers](ChildSpec, std::size_t i) {
    return coppice::child<Recorder>("partition", ledger, first + static_cast<std::uint32_t>(i));
  };
  partitions.name = kPartitions;
  partitions.intensity = 1000000;
  partitions.period = 1000ms;

  std::vector<coppice::ParentChildSpec> parent_children;
  for (std::uint32_t i = 0; i < kParentChildren.size(); ++i) {
    coppice::ParentChildSpec c(coppice::child<Recorder>(kParentChildren[i], &soak.ledger, s.workers + s.partitions + i));
    c.with_id(kParentChildren[i]);
    if (i == 2) c.bound_to({kParentChildren[1]});
    parent_children.push_back(std::move(c));
  }
  coppice::ParentOptions parent_options;
  parent_options.intensity = std::nullopt;

  return {registry,
          DynamicSupervisor::child_spec("workers", dynamic).name(kWorkers),
          coppice::child<Populator>("populator", &soak).name(kPopulator),
          PartitionSupervisor::child_spec("partitions", partitions),
          coppice::ParentSupervisor::child_spec("parent", parent_children, parent_options).name(kParent)};
}

// ---- Targets: which server a client talks to ----------------------------------------------

// Target t: a worker key (t < W), a partition (t < W + P), or a child of the parent.
Pid resolve(Runtime* rt, const Settings& s, std::uint32_t t) {
  auto whereis = [rt](const ServerRef& name) { return rt != nullptr ? name.whereis(*rt) : name.whereis(); };
  if (t < s.workers) return whereis(ServerRef::via(kNames, worker_key(t)));
  if (t < s.workers + s.partitions) {
    Result<Pid> p = rt != nullptr ? PartitionSupervisor::whereis(*rt, kPartitions, t - s.workers)
                                  : PartitionSupervisor::whereis(kPartitions, t - s.workers);
    return p.value_or(Pid{});
  }
  return whereis(ServerRef::child_of(kParent, kParentChildren[t - s.workers - s.partitions]));
}

// ---- The client's ledger --------------------------------------------------------------------

struct Tally {
  std::uint64_t calls = 0, ok = 0, stall_timeouts = 0, other_timeouts = 0, late = 0;
  std::map<std::string, std::uint64_t> errors;  // by kind (exited: by the server's reason)
  std::int64_t longest_ns = 0;                  // the longest call, over its timeout
  std::uint64_t notes_sent = 0, windows = 0, clean_windows = 0, void_windows = 0;
  std::uint64_t notes_in_clean_windows = 0, lost = 0, duplicated = 0, wrong_replies = 0;
  std::uint64_t name_calls = 0, unresolved = 0;
  std::vector<std::string> details;

  void merge(const Tally& o) {
    calls += o.calls, ok += o.ok, stall_timeouts += o.stall_timeouts, other_timeouts += o.other_timeouts, late += o.late;
    for (const auto& [k, v] : o.errors) errors[k] += v;
    longest_ns = std::max(longest_ns, o.longest_ns);
    notes_sent += o.notes_sent, windows += o.windows, clean_windows += o.clean_windows, void_windows += o.void_windows;
    notes_in_clean_windows += o.notes_in_clean_windows, lost += o.lost, duplicated += o.duplicated;
    wrong_replies += o.wrong_replies, name_calls += o.name_calls, unresolved += o.unresolved;
    for (const auto& d : o.details)
      if (details.size() < 10) details.push_back(d);
  }
  void detail(std::string d) {
    if (details.size() < 10) details.push_back(std::move(d));
  }
};

struct ClientReport {
  std::uint32_t client;
  Tally tally;
};

const char* reason_kind(const ExitReason& r) {
  switch (r.kind()) {
    case ExitReason::Kind::normal: return "normal";
    case ExitReason::Kind::shutdown: return "shutdown";
    case ExitReason::Kind::kill: return "kill";
    case ExitReason::Kind::killed: return "killed";
    case ExitReason::Kind::noproc: return "noproc";
    case ExitReason::Kind::timeout: return "timeout";
    case ExitReason::Kind::error: return "error";
    case ExitReason::Kind::other: return "other";
  }
  return "?";
}

// One client's call in flight, for the main thread's hang watch. The client stores the bound
// first, then the start (release); the watch loads the start (acquire), then the bound.
struct CallSlot {
  std::atomic<std::int64_t> started_ns{0};  // 0: no call in flight
  std::atomic<std::int64_t> bound_ns{0};
  std::atomic<std::int64_t> reported_ns{0};  // the start of the call already reported as hung (watch only)
};

// What every client does with a call's outcome.
struct Client {
  std::uint32_t id;
  const Settings& s;
  CallSlot& slot;
  Random rng;
  std::vector<std::uint64_t> seq;  // the last sequence number sent, per target
  Tally t;

  Client(std::uint32_t id_, const Settings& s_, CallSlot& slot_, std::uint64_t seed)
      : id(id_), s(s_), slot(slot_), rng(seed), seq(s_.targets(), 0) {}

  std::int64_t begin(std::chrono::milliseconds timeout) {
    slot.bound_ns.store(std::chrono::nanoseconds(timeout + s.slack).count(), std::memory_order_relaxed);
    const std::int64_t start = now_ns();
    slot.started_ns.store(start, std::memory_order_release);
    return start;
  }
  template <class R>
  void end(std::int64_t start, std::chrono::milliseconds timeout, const Result<R>& r, bool stall) {
    slot.started_ns.store(0, std::memory_order_release);
    const std::int64_t took = now_ns() - start;
    const std::int64_t over = took - std::chrono::nanoseconds(timeout).count();
    t.longest_ns = std::max(t.longest_ns, over);
    if (took > std::chrono::nanoseconds(timeout + s.slack).count()) {
      ++t.late;
      t.detail("client " + std::to_string(id) + ": a call with timeout " + std::to_string(timeout.count()) +
               " ms returned after " + std::to_string(took / 1000000) + " ms");
    }
    ++t.calls;
    if (r) {
      ++t.ok;
      if (stall) {
        ++t.wrong_replies;
        t.detail("client " + std::to_string(id) + ": a Stall was answered");
      }
      return;
    }
    const Error& e = r.error();
    if (e.kind() == ErrorKind::timeout) {
      ++(stall ? t.stall_timeouts : t.other_timeouts);
    } else if (e.kind() == ErrorKind::exited) {
      ++t.errors[std::string("exited(") + reason_kind(e.reason()) + ")"];
    } else {
      ++t.errors[std::string(coppice::to_string(e.kind()))];
    }
  }

  // A window's closing count against its opening one: a loss only if the same pid answered both.
  void close_window(Pid pid, std::uint32_t target, const Result<CastCount>& first, const Result<CastCount>& last,
                    std::uint64_t sent) {
    ++t.windows;
    auto stranger = [&](const Result<CastCount>& c) {
      return c && (c.value().server != pid || c.value().target != target);
    };
    if (!first || !last || stranger(first) || stranger(last)) {
      ++t.void_windows;
      if (stranger(first) || stranger(last)) {
        ++t.wrong_replies;
        t.detail("client " + std::to_string(id) + ": a count for target " + std::to_string(target) + " at " + pid.to_string() +
                 " came from another server");
      }
      return;
    }
    ++t.clean_windows;
    t.notes_in_clean_windows += sent;
    const std::uint64_t counted = last.value().notes - first.value().notes;
    if (counted < sent) {
      t.lost += sent - counted;
      t.detail("client " + std::to_string(id) + ": target " + std::to_string(target) + " at " + pid.to_string() +
               " stayed alive and counted " + std::to_string(counted) + " of " + std::to_string(sent) + " Notes");
    } else if (counted > sent) {
      t.duplicated += counted - sent;
      t.detail("client " + std::to_string(id) + ": target " + std::to_string(target) + " counted " +
               std::to_string(counted) + " Notes of " + std::to_string(sent));
    }
  }
  void check_echo(const Result<Echoed>& r, Pid pid, std::uint32_t target, std::uint64_t sent_seq) {
    if (r && (r.value().seq != sent_seq || r.value().target != target || (pid && r.value().server != pid))) {
      ++t.wrong_replies;
      t.detail("client " + std::to_string(id) + ": Echo " + std::to_string(sent_seq) + " to target " +
               std::to_string(target) + " answered with " + std::to_string(r.value().seq) + " from target " +
               std::to_string(r.value().target));
    }
  }
  // What the next operation in a window is: a Note (65%), an Echo call (31%) or a Stall (4%).
  enum class Op { note, echo, stall };
  Op next_op() {
    const std::uint64_t roll = rng.below(100);
    return roll < 65 ? Op::note : roll < 96 ? Op::echo : Op::stall;
  }
};

struct Nothing {};  // never sent: receive<Nothing>(d) is a pause that gives the worker back

// A client process: windows on resolved pids, and calls by name between them.
Async<void> process_client(Soak* soak, CallSlot* slot, std::uint32_t id, std::uint64_t seed, Pid report_to) {
  const Settings& s = soak->settings;
  Client c(id, s, *slot, seed);
  while (!soak->stop_clients.load(std::memory_order_acquire)) {
    const auto target = static_cast<std::uint32_t>(c.rng.below(s.targets()));
    if (c.rng.below(5) == 0 && target < s.workers) {
      // By via-name: the Registry resolves it at the send, whichever incarnation holds it.
      ++c.t.name_calls;
      const std::uint64_t n = ++c.seq[target];
      const std::int64_t start = c.begin(s.call_timeout);
      Result<Echoed> r = co_await Recorder::call(ServerRef::via(kNames, worker_key(target)), Echo{id, n}, s.call_timeout);
      c.end(start, s.call_timeout, r, false);
      c.check_echo(r, Pid{}, target, n);
      continue;
    }
    const Pid pid = resolve(nullptr, s, target);
    if (!pid) {
      ++c.t.unresolved;
      (void)co_await coppice::receive<Nothing>(1ms);  // the name is between incarnations
      continue;
    }
    std::int64_t start = c.begin(s.call_timeout);
    Result<CastCount> first = co_await Recorder::call(pid, Count{id, ++c.seq[target]}, s.call_timeout);
    c.end(start, s.call_timeout, first, false);
    std::uint64_t sent = 0;
    const std::uint64_t ops = 4 + c.rng.below(16);
    for (std::uint64_t i = 0; first && i < ops; ++i) {
      switch (c.next_op()) {
        case Client::Op::note:
          Recorder::cast(pid, Note{id, ++c.seq[target]});
          ++sent;
          ++c.t.notes_sent;
          break;
        case Client::Op::echo: {
          const std::uint64_t n = ++c.seq[target];
          start = c.begin(s.call_timeout);
          Result<Echoed> r = co_await Recorder::call(pid, Echo{id, n}, s.call_timeout);
          c.end(start, s.call_timeout, r, false);
          c.check_echo(r, pid, target, n);
          break;
        }
        case Client::Op::stall: {
          start = c.begin(s.stall_timeout);
          Result<Echoed> r = co_await coppice::call<Echoed>(ServerRef(pid), Stall{id, ++c.seq[target]}, s.stall_timeout);
          c.end(start, s.stall_timeout, r, true);
          break;
        }
      }
    }
    if (!first) {
      c.close_window(pid, target, first, first, sent);
      continue;
    }
    start = c.begin(s.call_timeout);
    Result<CastCount> last = co_await Recorder::call(pid, Count{id, ++c.seq[target]}, s.call_timeout);
    c.end(start, s.call_timeout, last, false);
    c.close_window(pid, target, first, last, sent);
  }
  coppice::send(report_to, ClientReport{id, std::move(c.t)});
}


// A client on a plain thread: the same windows through an Inbox (its Notes are plain sends,
// which the Recorder takes in handle_info), resolving names itself (a blocking call by name
// would send from a helper, another sender).
Tally thread_client(Runtime& rt, Soak& soak, CallSlot& slot, std::uint32_t id, std::uint64_t seed) {
  const Settings& s = soak.settings;
  Inbox inbox(rt);
  Client c(id, s, slot, seed);
  while (!soak.stop_clients.load(std::memory_order_acquire)) {
    const auto target = static_cast<std::uint32_t>(c.rng.below(s.targets()));
    const Pid pid = resolve(&rt, s, target);
    if (!pid) {
      ++c.t.unresolved;
      (void)inbox.receive<Nothing>(1ms);  // the name is between incarnations
      continue;
    }
    std::int64_t start = c.begin(s.call_timeout);
    Result<CastCount> first = inbox.call<CastCount>(pid, Count{id, ++c.seq[target]}, s.call_timeout);
    c.end(start, s.call_timeout, first, false);
    std::uint64_t sent = 0;
    const std::uint64_t ops = 4 + c.rng.below(16);
    for (std::uint64_t i = 0; first && i < ops; ++i) {
      switch (c.next_op()) {
        case Client::Op::note:
          inbox.send(pid, Note{id, ++c.seq[target]});
          ++sent;
          ++c.t.notes_sent;
          break;
        case Client::Op::echo: {
          const std::uint64_t n = ++c.seq[target];
          start = c.begin(s.call_timeout);
          Result<Echoed> r = inbox.call<Echoed>(pid, Echo{id, n}, s.call_timeout);
          c.end(start, s.call_timeout, r, false);
          c.check_echo(r, pid, target, n);
          break;
        }
        case Client::Op::stall: {
          start = c.begin(s.stall_timeout);
          Result<Echoed> r = inbox.call<Echoed>(pid, Stall{id, ++c.seq[target]}, s.stall_timeout);
          c.end(start, s.stall_timeout, r, true);
          break;
        }
      }
    }
    if (!first) {
      c.close_window(pid, target, first, first, sent);
      continue;
    }
    start = c.begin(s.call_timeout);
    Result<CastCount> last = inbox.call<CastCount>(pid, Count{id, ++c.seq[target]}, s.call_timeout);
    c.end(start, s.call_timeout, last, false);
    c.close_window(pid, target, first, last, sent);
  }
  return std::move(c.t);
}

// ---- The chaos ----------------------------------------------------------------------------

enum Level { at_worker, at_partition, at_parent_child, at_dynamic_supervisor, at_registry, at_top_child, levels };
constexpr std::array<const char*, levels> kLevelNames{"worker", "partition", "parent_child", "dynamic_supervisor",
                                                      "registry", "top_child"};
// Out of 100 faults: mostly leaves, and now and then a subtree or the registry under everything.
constexpr std::array<std::uint64_t, levels> kLevelWeights{50, 15, 15, 6, 4, 10};
constexpr int kReasons = 4;
constexpr std::array<const char*, kReasons> kReasonNames{"kill", "shutdown", "error", "normal"};

constexpr const char* kInjected = "injected by the chaos";

ExitReason injected(int reason) {
  switch (reason) {
    case 0: return ExitReason::kill();
    case 1: return ExitReason::shutdown(kInjected);  // {shutdown, detail}: told apart from a supervisor's
    case 2: return ExitReason::error("soak::Injected", kInjected);
    default: return ExitReason::normal();
  }
}
// The reason a victim dies with when the injected signal is what killed it. Exact for shutdown
// and error (their detail names the chaos); for kill, a worker that a killed registry
// partition takes down with it also dies `killed`. normal never kills a process that does
// not trap exits, and every process here that traps (supervisors, the registry) ignores
// signals from anyone but its parent: kill is the only fault that takes those down.
bool died_of(const ExitReason& down, int reason) {
  switch (reason) {
    case 0: return down.kind() == ExitReason::Kind::killed;
    case 1: return down.kind() == ExitReason::Kind::shutdown && down.detail() == kInjected;
    case 2: return down.kind() == ExitReason::Kind::error && down.error_type() == "soak::Injected";
    default: return false;  // normal never kills a process that does not trap exits
  }
}

struct StopChaos {};
struct ChaosReport {
  std::array<std::array<std::uint64_t, kReasons>, levels> sent{};
  std::array<std::array<std::uint64_t, kReasons>, levels> took{};  // a DOWN with the injected reason
  std::array<std::uint64_t, levels> no_victim{};  // nobody alive at that level at that moment
};

Pid pick_victim(Soak& soak, Random& rng, Level level) {
  const Settings& s = soak.settings;
  switch (level) {
    case at_worker:
    case at_partition:
    case at_parent_child: {
      const std::uint32_t first = level == at_worker ? 0 : level == at_partition ? s.workers : s.workers + s.partitions;
      const std::uint32_t n = level == at_worker      ? s.workers
                              : level == at_partition ? s.partitions
                                                   : static_cast<std::uint32_t>(kParentChildren.size());
      return resolve(nullptr, s, first + static_cast<std::uint32_t>(rng.below(n)));
    }
    case at_dynamic_supervisor:
      return coppice::whereis(kWorkers);
    case at_registry: {
      if (rng.below(4) != 0) return Pid::from_bits(soak.registry_pid.load(std::memory_order_relaxed));
      Result<std::vector<Pid>> parts = Registry::partitions(kNames);
      if (!parts || parts->empty()) return Pid{};
      return (*parts)[rng.below(parts->size())];
    }
    case at_top_child:
    default: {
      switch (rng.below(5)) {
        case 0: return Pid::from_bits(soak.registry_pid.load(std::memory_order_relaxed));
        case 1: return coppice::whereis(kWorkers);
        case 2: return coppice::whereis(kPopulator);
        case 3: return coppice::whereis(kPartitions);
        default: return coppice::whereis(kParent);
      }
    }
  }
}

Async<void> chaos(Soak* soak, std::uint64_t seed, Pid report_to) {
  Random rng(seed);
  ChaosReport report;
  std::unordered_map<Ref, std::pair<int, int>> watching;  // monitor -> (level, reason)
  std::uint64_t weight_total = 0;
  for (std::uint64_t w : kLevelWeights) weight_total += w;
  for (;;) {
    if (co_await coppice::receive<StopChaos>(soak->settings.fault_interval)) break;
    while (std::optional<coppice::Down> d = co_await coppice::receive<coppice::Down>(0ns)) {
      auto it = watching.find(d->ref);
      if (it == watching.end()) continue;
      if (died_of(d->reason, it->second.second)) ++report.took[it->second.first][it->second.second];
      watching.erase(it);
    }
    std::uint64_t roll = rng.below(weight_total);
    int level = 0;
    while (roll >= kLevelWeights[level]) roll -= kLevelWeights[level++];
    const int reason = static_cast<int>(rng.below(kReasons));
    const Pid victim = pick_victim(*soak, rng, static_cast<Level>(level));
    if (!victim || !coppice::is_alive(victim)) {
      ++report.no_victim[level];
      continue;
    }
    watching.emplace(coppice::monitor(victim), std::make_pair(level, reason));
    coppice::exit(victim, injected(reason));
    ++report.sent[level][reason];
  }
  for (const auto& [ref, what] : watching) coppice::demonitor(ref, {.flush = true});
  coppice::send(report_to, report);
}

// ---- After the storm: is every tree back to its spec? ---------------------------------------

struct TreeCheck {
  bool ok = false;
  std::string problem;
};

// Every child of a Supervisor (or Parent) listed, running and alive; the counts agree.
bool children_alive(Runtime& rt, const std::vector<coppice::ChildInfo>& children, std::string& problem) {
  for (const coppice::ChildInfo& c : children) {
    if (!c.pid || c.restarting || !rt.alive(c.pid)) {
      problem = "child '" + c.id + "' " + c.pid.to_string() + (c.restarting ? " restarting" : " not alive");
      return false;
    }
  }
  return true;
}
bool counts_match(const ChildCounts& counts, const std::vector<coppice::ChildInfo>& children, std::string& problem) {
  std::size_t active = 0;
  for (const coppice::ChildInfo& c : children) active += (c.pid && !c.restarting) ? 1 : 0;
  if (counts.specs != children.size() || counts.active != active) {
    problem = "count_children says " + std::to_string(counts.specs) + " specs, " + std::to_string(counts.active) +
              " active; which_children lists " + std::to_string(children.size()) + ", " + std::to_string(active) + " running";
    return false;
  }
  return true;
}

std::string describe(const ChildCounts& c) {
  return "{specs " + std::to_string(c.specs) + ", active " + std::to_string(c.active) + ", supervisors " +
         std::to_string(c.supervisors) + ", workers " + std::to_string(c.workers) + "}";
}

TreeCheck check_supervisor(Runtime& rt, const ServerRef& sup, const ChildCounts& spec, const std::set<std::string>& ids) {
  TreeCheck r;
  Result<std::vector<coppice::ChildInfo>> children = Supervisor::which_children(rt, sup);
  Result<ChildCounts> counts = Supervisor::count_children(rt, sup);
  if (!children || !counts) {
    r.problem = "which_children/count_children: " + (children ? counts.error().to_string() : children.error().to_string());
    return r;
  }
  std::set<std::string> listed;
  for (const coppice::ChildInfo& c : *children) listed.insert(c.id);
  if (*counts != spec) {
    r.problem = "count_children " + describe(*counts) + ", spec " + describe(spec);
  } else if (listed != ids || children->size() != ids.size()) {
    r.problem = "which_children lists " + std::to_string(children->size()) + " children, not the spec's ids";
  } else if (children_alive(rt, *children, r.problem) && counts_match(*counts, *children, r.problem)) {
    r.ok = true;
  }
  return r;
}

struct TreeChecks {
  TreeCheck top, workers, registry, partitions, parent;
  bool all() const { return top.ok && workers.ok && registry.ok && partitions.ok && parent.ok; }
};

TreeChecks check_trees(Runtime& rt, const Settings& s) {
  TreeChecks r;
  r.top = check_supervisor(rt, kTop, ChildCounts{5, 5, 4, 1}, {"registry", "workers", "populator", "partitions", "parent"});

  // The DynamicSupervisor: W running workers, and they are exactly the Registry's entries.
  std::set<Pid> worker_pids;
  {
    Result<std::vector<coppice::ChildInfo>> children = DynamicSupervisor::which_children(rt, kWorkers);
    Result<ChildCounts> counts = DynamicSupervisor::count_children(rt, kWorkers);
    const ChildCounts spec{s.workers, s.workers, 0, s.workers};
    if (!children || !counts) {
      r.workers.problem = "which_children/count_children failed";
    } else if (*counts != spec) {
      r.workers.problem = "count_children " + describe(*counts) + ", spec " + describe(spec) + "; which_children lists " +
                          std::to_string(children->size());
    } else if (children_alive(rt, *children, r.workers.problem) && counts_match(*counts, *children, r.workers.problem)) {
      for (const coppice::ChildInfo& c : *children) worker_pids.insert(c.pid);
      r.workers.ok = worker_pids.size() == s.workers;
      if (!r.workers.ok) r.workers.problem = "which_children lists a pid twice";
    }
  }
  {
    Result<std::vector<coppice::RegistryEntry>> entries =
        Registry::sync(rt, kNames) ? Registry::entries(rt, kNames) : Result<std::vector<coppice::RegistryEntry>>(
                                                                          Error(ErrorKind::not_found, "sync failed"));
    std::set<std::string> keys;
    std::set<Pid> pids;
    if (!entries) {
      r.registry.problem = "entries: " + entries.error().to_string();
    } else {
      bool dead = false;
      for (const coppice::RegistryEntry& e : *entries) {
        keys.insert(e.key);
        pids.insert(e.pid);
        if (!rt.alive(e.pid)) {
          dead = true;
          r.registry.problem = "entry '" + e.key + "' names " + e.pid.to_string() + ", not alive";
        }
      }
      std::set<std::string> expected;
      for (std::uint32_t k = 0; k < s.workers; ++k) expected.insert(worker_key(k));
      if (dead) {
      } else if (entries->size() != s.workers || keys != expected) {
        r.registry.problem = std::to_string(entries->size()) + " entries, not one per worker key";
      } else if (r.workers.ok && pids != worker_pids) {
        r.registry.problem = "the registered pids are not the DynamicSupervisor's children";
      } else {
        r.registry.ok = true;
      }
    }
  }
  {
    std::set<std::string> ids;
    for (std::uint32_t i = 0; i < s.partitions; ++i) ids.insert(std::to_string(i));
    r.partitions = check_supervisor(rt, kPartitions, ChildCounts{s.partitions, s.partitions, 0, s.partitions}, ids);
    if (r.partitions.ok) {
      // whereis routes each partition's key to the pid its supervisor lists.
      const std::vector<coppice::ChildInfo> listed = Supervisor::which_children(rt, kPartitions).value_or(std::vector<coppice::ChildInfo>{});
      for (const coppice::ChildInfo& c : listed) {
        Result<Pid> routed = PartitionSupervisor::whereis(rt, kPartitions, std::stoul(c.id));
        if (!routed || *routed != c.pid) {
          r.partitions.ok = false;
          r.partitions.problem = "whereis(" + c.id + ") is not the partition's pid";
        }
      }
    }
  }
  {
    std::set<std::string> ids(kParentChildren.begin(), kParentChildren.end());
    const auto n = static_cast<std::size_t>(kParentChildren.size());
    r.parent = check_supervisor(rt, kParent, ChildCounts{n, n, 0, n}, ids);
    if (r.parent.ok) {
      Result<std::vector<coppice::ParentChild>> children = coppice::ParentClient::children(rt, kParent);
      if (!children || children->size() != n) {
        r.parent.ok = false;
        r.parent.problem = "ParentClient::children does not list the spec's children";
      } else {
        for (const coppice::ParentChild& c : *children) {
          if (!c.pid || !rt.alive(c.pid) || !ids.count(c.id)) {
            r.parent.ok = false;
            r.parent.problem = "ParentClient::children: '" + c.id + "' " + c.pid.to_string() + " not alive";
          }
        }
      }
    }
  }
  return r;
}

// ---- Intensity: a burst above it trips a subtree, one at it does not ---------------------

struct IntensityOutcome {
  std::string name;
  int crashes = 0;
  bool expected_trip = false;
  bool tripped = false;
  std::string exit_reason;  // when it tripped
  bool ok = false;
  std::string problem;
};

// Crashes the subtree's one child `crashes` times, each time waiting for the restart before
// the next, then says whether the subtree exited (and why) or still runs with its child.
template <class ChildOf>
IntensityOutcome burst(Runtime& rt, Inbox& inbox, std::string name, Pid sup, int crashes, bool expected_trip,
                       const ExitReason& trip_reason, ChildOf child_of) {
  IntensityOutcome out;
  out.name = std::move(name);
  out.crashes = crashes;
  out.expected_trip = expected_trip;
  const Ref sup_watch = inbox.monitor(sup);
  auto down_of = [&inbox](Ref ref) {
    return inbox.receive_if(
        [ref](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref; },
        coppice::stress::patience);
  };
  Pid child = child_of();
  for (int i = 0; i < crashes; ++i) {
    if (!child) {
      out.problem = "no running child before crash " + std::to_string(i + 1);
      return out;
    }
    const Ref watch = inbox.monitor(child);
    rt.exit(child, ExitReason::error("soak::Burst", "crash " + std::to_string(i + 1)));
    if (!down_of(watch)) {
      out.problem = "the child did not die";
      return out;
    }
    if (i + 1 == crashes) break;
    // The restart: bounded, each attempt a call the supervisor answers after the EXIT.
    const auto deadline = Clock::now() + coppice::stress::patience;
    Pid next;
    while (Clock::now() < deadline && (!(next = child_of()) || next == child)) std::this_thread::yield();
    child = next;
  }
  if (expected_trip) {
    std::optional<coppice::Message> down = down_of(sup_watch);
    out.tripped = down.has_value();
    if (down) out.exit_reason = down->get<coppice::Down>().reason.to_string();
    out.ok = out.tripped && down->get<coppice::Down>().reason == trip_reason;
    if (!out.ok) out.problem = out.tripped ? "exited with " + out.exit_reason : "did not exit";
  } else {
    // Still running, with its child back: answered after the last EXIT was handled.
    const auto deadline = Clock::now() + coppice::stress::patience;
    Pid next;
    while (Clock::now() < deadline && rt.alive(sup) && (!(next = child_of()) || next == child)) std::this_thread::yield();
    out.tripped = !rt.alive(sup);
    out.ok = !out.tripped && next && next != child;
    if (!out.ok) out.problem = out.tripped ? "exited" : "its child was not restarted";
    inbox.demonitor(sup_watch, {.flush = true});
    (void)coppice::stop(rt, sup, ExitReason::shutdown());
  }
  return out;
}

std::vector<IntensityOutcome> intensity_checks(Runtime& rt, Ledger& ledger) {
  Inbox inbox(rt);
  std::vector<IntensityOutcome> out;
  constexpr int limit = 3;  // max restarts, in a period far longer than any burst
  for (const bool above : {true, false}) {
    const int crashes = above ? limit + 1 : limit;
    {
      coppice::SupervisorFlags flags;
      flags.intensity = limit;
      flags.period = 600s;
      Pid sup = Supervisor::start(rt, {coppice::child<Recorder>("only", &ledger, 0u)}, flags).value();
      out.push_back(burst(rt, inbox, "Supervisor", sup, crashes, above, ExitReason::shutdown(), [&] {
        Result<coppice::ChildInfo> c = Supervisor::which_child(rt, sup, "only");
        return c ? c->pid : Pid{};
      }));
    }
    {
      coppice::DynamicSupervisorOptions o;
      o.intensity = limit;
      o.period = 600s;
      Pid sup = DynamicSupervisor::start(rt, o).value();
      (void)DynamicSupervisor::start_child(rt, sup, coppice::child<Recorder>("only", &ledger, 0u)).value();
      out.push_back(burst(rt, inbox, "DynamicSupervisor", sup, crashes, above, ExitReason::shutdown(), [&] {
        Result<std::vector<coppice::ChildInfo>> c = DynamicSupervisor::which_children(rt, sup);
        return c && c->size() == 1 && !c->front().restarting ? c->front().pid : Pid{};
      }));
    }
    {
      coppice::ParentOptions o;
      o.intensity = limit;
      o.period = 600s;
      coppice::ParentChildSpec only(coppice::child<Recorder>("only", &ledger, 0u));
      only.with_id("only");
      Pid sup = coppice::ParentSupervisor::start(rt, {only}, o).value();
      out.push_back(burst(rt, inbox, "Parent", sup, crashes, above, coppice::too_many_restarts(), [&] {
        return coppice::ParentClient::child_pid(rt, sup, "only").value_or(Pid{});
      }));
    }
  }
  return out;
}

// ---- The soak -----------------------------------------------------------------------------

struct Figures {
  ChaosReport chaos;
  Tally calls;
  std::uint64_t hangs = 0;
  std::vector<std::string> hang_details;
};

void print_figures(const Settings& s, const Soak& soak, const Figures& f, const TreeChecks& trees, int tree_attempts,
                   const std::vector<IntensityOutcome>& intensity, std::size_t baseline, std::size_t after_stop,
                   long notes_alive) {
  std::printf("soak seed=%" PRIu64 " storm_ms=%lld workers=%u partitions=%u parent_children=%zu process_clients=%u "
              "thread_clients=%u fault_interval_ms=%lld sanitized=%d\n",
              s.seed, static_cast<long long>(s.storm.count()), s.workers, s.partitions, kParentChildren.size(),
              s.process_clients, s.thread_clients, static_cast<long long>(s.fault_interval.count()), sanitized ? 1 : 0);
  std::uint64_t total_sent = 0, total_took = 0;
  for (int l = 0; l < levels; ++l) {
    std::string line = "soak faults level=" + std::string(kLevelNames[l]);
    for (int r = 0; r < kReasons; ++r) {
      line += std::string(" ") + kReasonNames[r] + "=" + std::to_string(f.chaos.sent[l][r]) + "/" +
              std::to_string(f.chaos.took[l][r]);
      total_sent += f.chaos.sent[l][r];
      total_took += f.chaos.took[l][r];
    }
    line += " no_victim=" + std::to_string(f.chaos.no_victim[l]);
    std::printf("%s\n", line.c_str());
  }
  std::printf("soak faults total sent=%" PRIu64 " died_of_it=%" PRIu64 " (per level and reason: sent/died of it)\n",
              total_sent, total_took);
  const Tally& t = f.calls;
  std::string errors;
  std::uint64_t error_total = 0;
  for (const auto& [k, v] : t.errors) {
    errors += " " + k + "=" + std::to_string(v);
    error_total += v;
  }
  std::printf("soak calls made=%" PRIu64 " ok=%" PRIu64 " timeouts_stall=%" PRIu64 " timeouts_other=%" PRIu64
              " errors=%" PRIu64 "%s by_name=%" PRIu64 " longest_over_timeout_ms=%.1f\n",
              t.calls, t.ok, t.stall_timeouts, t.other_timeouts, error_total, errors.c_str(), t.name_calls,
              static_cast<double>(t.longest_ns) / 1e6);
  std::printf("soak casts sent=%" PRIu64 " received=%" PRIu64 " windows=%" PRIu64 " clean=%" PRIu64 " void=%" PRIu64
              " sent_in_clean_windows=%" PRIu64 " unresolved=%" PRIu64 "\n",
              t.notes_sent, soak.ledger.notes_received.load(), t.windows, t.clean_windows, t.void_windows,
              t.notes_in_clean_windows, t.unresolved);
  std::printf("soak ledger hangs=%" PRIu64 " late=%" PRIu64 " lost=%" PRIu64 " duplicated=%" PRIu64
              " order_violations=%" PRIu64 " wrong_replies=%" PRIu64 "\n",
              f.hangs, t.late, t.lost, t.duplicated, soak.ledger.order_violations.load(), t.wrong_replies);
  auto tree = [](const TreeCheck& c) { return c.ok ? std::string("ok") : "FAILED(" + c.problem + ")"; };
  std::string populate_errors;
  for (const auto& [k, v] : soak.populate_errors) populate_errors += " " + k + "=" + std::to_string(v);
  std::printf("soak trees attempts=%d top=%s workers=%s registry=%s partitions=%s parent=%s populations=%" PRIu64
              " populate_errors:%s\n",
              tree_attempts, tree(trees.top).c_str(), tree(trees.workers).c_str(), tree(trees.registry).c_str(),
              tree(trees.partitions).c_str(), tree(trees.parent).c_str(), soak.populations.load(),
              populate_errors.empty() ? " none" : populate_errors.c_str());
  std::string line = "soak intensity";
  for (const IntensityOutcome& o : intensity) {
    line += " " + o.name + "(" + std::to_string(o.crashes) + " crashes, limit 3)=" +
            (o.tripped ? "exited:" + o.exit_reason : std::string("held")) + (o.ok ? "" : "[FAILED: " + o.problem + "]");
  }
  std::printf("%s\n", line.c_str());
  std::printf("soak processes baseline=%zu after_tree_stop=%zu notes_alive_after_runtime_stop=%ld\n", baseline,
              after_stop, notes_alive);
  std::fflush(stdout);
}

TEST(Soak, ChaosStormKeepsTheLedgerAndTheTreeComesBack) {
  Soak soak;
  soak.settings = settings();
  const Settings& s = soak.settings;
  std::printf("soak seed=%" PRIu64 " (COPPICE_SOAK_SEED=%" PRIu64 " replays it)\n", s.seed, s.seed);
  std::fflush(stdout);
  coppice::stress::Watchdog watchdog("soak", std::chrono::duration_cast<std::chrono::seconds>(s.storm) +
                                                 4 * std::chrono::seconds(coppice::stress::patience));
  const long notes_before = coppice::stress::Counted::live.load();
  Figures figures;
  TreeChecks trees;
  int tree_attempts = 0;
  std::vector<IntensityOutcome> intensity;
  std::size_t baseline = 0, after_stop = 0;
  {
    Runtime rt(coppice::stress::options(2, {}, 100, /*quiet=*/true));
    Random seeds(s.seed);
    {
      Inbox main(rt);
      baseline = rt.process_count();
      for (std::uint32_t k = 0; k < s.workers; ++k)
        soak.worker_specs.push_back(
            DynamicSupervisor::share(coppice::child<Recorder>("worker", &soak.ledger, k).name(ServerRef::via(kNames, worker_key(k)))));
      coppice::SupervisorFlags flags;
      flags.strategy = coppice::Strategy::rest_for_one;
      flags.intensity = 1000000;  // the storm must not trip the top: the intensity checks do that
      flags.period = 1000ms;
      coppice::StartOptions top_options;
      top_options.name = kTop;
      const Pid top = Supervisor::start(rt, top_children(soak), flags, top_options).value();

      // Before the storm: the tree is its spec.
      TreeChecks before = check_trees(rt, s);
      ASSERT_TRUE(before.all()) << before.top.problem << before.workers.problem << before.registry.problem
                                << before.partitions.problem << before.parent.problem;

      const std::uint32_t clients = s.process_clients + s.thread_clients;
      std::vector<CallSlot> slots(clients);
      for (std::uint32_t i = 0; i < s.process_clients; ++i)
        rt.spawn(process_client, &soak, &slots[i], i, seeds.next(), main.pid());
      std::vector<Tally> thread_tallies(s.thread_clients);
      std::vector<std::thread> threads;
      for (std::uint32_t i = 0; i < s.thread_clients; ++i) {
        const std::uint32_t id = s.process_clients + i;
        threads.emplace_back([&, id, i, seed = seeds.next()] { thread_tallies[i] = thread_client(rt, soak, slots[id], id, seed); });
      }
      const Pid chaos_pid = rt.spawn(chaos, &soak, seeds.next(), main.pid());
      std::thread intensity_thread([&] { intensity = intensity_checks(rt, soak.ledger); });

      // The storm: the main thread watches every call in flight.
      auto watch = [&] {
        const std::int64_t now = now_ns();
        for (std::uint32_t i = 0; i < clients; ++i) {
          const std::int64_t started = slots[i].started_ns.load(std::memory_order_acquire);
          if (started == 0 || now - started <= slots[i].bound_ns.load(std::memory_order_relaxed)) continue;
          if (slots[i].reported_ns.exchange(started, std::memory_order_relaxed) == started) continue;
          ++figures.hangs;
          if (figures.hang_details.size() < 10)
            figures.hang_details.push_back("client " + std::to_string(i) + ": a call in flight for " +
                                           std::to_string((now - started) / 1000000) + " ms");
        }
      };
      const auto storm_end = Clock::now() + s.storm;
      while (Clock::now() < storm_end) {
        watch();
        std::this_thread::sleep_for(10ms);  // the storm's pace, not a wait for an effect
      }

      // The storm ends: the chaos first, then the clients finish their windows and report.
      main.send(chaos_pid, StopChaos{});
      soak.stop_clients.store(true, std::memory_order_release);
      bool chaos_reported = false;
      std::uint32_t reported = 0;
      const auto deadline = Clock::now() + coppice::stress::patience;
      while ((!chaos_reported || reported < s.process_clients) && Clock::now() < deadline) {
        watch();
        std::optional<coppice::Message> m = main.receive_any(10ms);
        if (!m) continue;
        if (auto* c = m->get_if<ChaosReport>()) {
          figures.chaos = *c;
          chaos_reported = true;
        } else if (auto* r = m->get_if<ClientReport>()) {
          figures.calls.merge(r->tally);
          ++reported;
        }
      }
      for (std::thread& t : threads) t.join();
      for (const Tally& t : thread_tallies) figures.calls.merge(t);
      intensity_thread.join();
      EXPECT_TRUE(chaos_reported) << "the chaos process did not stop";
      EXPECT_EQ(reported, s.process_clients) << "a client process hung";

      // After the storm: restarts still in flight settle; each attempt is a round of calls.
      const auto settle = Clock::now() + coppice::stress::patience;
      do {
        ++tree_attempts;
        trees = check_trees(rt, s);
      } while (!trees.all() && Clock::now() < settle);

      EXPECT_TRUE(coppice::stop(rt, top, ExitReason::shutdown()).has_value());
      coppice::stress::eventually([&] { return rt.process_count() == baseline; });
      after_stop = rt.process_count();
    }
    rt.stop();
  }
  const long notes_alive = coppice::stress::Counted::live.load() - notes_before;
  print_figures(s, soak, figures, trees, tree_attempts, intensity, baseline, after_stop, notes_alive);
  for (const std::string& d : figures.hang_details) ADD_FAILURE() << "hang: " << d;
  for (const std::string& d : figures.calls.details) ADD_FAILURE() << "ledger: " << d;
  for (const std::string& d : soak.ledger.details) ADD_FAILURE() << "order: " << d;

  // No call hangs past its timeout.
  EXPECT_EQ(figures.hangs, 0u);
  EXPECT_EQ(figures.calls.late, 0u);
  // No message to a process that stayed alive is lost (or doubled); per-pair order holds.
  EXPECT_EQ(figures.calls.lost, 0u);
  EXPECT_EQ(figures.calls.duplicated, 0u);
  EXPECT_EQ(soak.ledger.order_violations.load(), 0u);
  EXPECT_EQ(figures.calls.wrong_replies, 0u);
  // Every tree is back to its spec.
  EXPECT_TRUE(trees.top.ok) << trees.top.problem;
  EXPECT_TRUE(trees.workers.ok) << trees.workers.problem;
  EXPECT_TRUE(trees.registry.ok) << trees.registry.problem;
  EXPECT_TRUE(trees.partitions.ok) << trees.partitions.problem;
  EXPECT_TRUE(trees.parent.ok) << trees.parent.problem;
  // Intensity trips above the limit and not at it.
  EXPECT_EQ(intensity.size(), 6u);
  for (const IntensityOutcome& o : intensity) EXPECT_TRUE(o.ok) << o.name << " with " << o.crashes << ": " << o.problem;
  // Every process of the tree is gone once it stopped, and no message outlived the runtime.
  EXPECT_EQ(after_stop, baseline);
  EXPECT_EQ(notes_alive, 0);
  // The storm was a storm: faults took effect, and the ledger had windows to judge.
  std::uint64_t took = 0;
  for (const auto& level : figures.chaos.took)
    for (std::uint64_t n : level) took += n;
  EXPECT_GT(took, 0u);
  EXPECT_GT(figures.calls.clean_windows, 0u);
  EXPECT_GT(figures.calls.ok, 0u);
}

}  // namespace
}  // namespace coppice_soak
