// Recipe: a million children under a PartitionSupervisor of DynamicSupervisors.
//
// The question: "One DynamicSupervisor starting all my connections is a bottleneck: every
// start_child goes through one process. How do I spread them, and find the right
// supervisor for a key?"
//
// The answer (Elixir's PartitionSupervisor): N DynamicSupervisors, one per worker thread by
// default, under one PartitionSupervisor. A key picks a partition (an integer key: |key| mod
// N), read from a table without a call, and start_child goes to that partition's
// DynamicSupervisor. Several clients starting children at once then keep all the partitions
// busy, and a DynamicSupervisor serves other requests while its children run their init.
// Stopping the PartitionSupervisor stops each partition, and each partition stops all its
// children at once.
//
// Each partition is told its index through with_arguments (as DynamicSupervisor
// extra_arguments, which every child receives): a child can say which partition it is in.
//
// The program runs the recipe in a process: it starts the children (argv[1], default
// 1,000,000) from several client processes, keyed 0..count-1; checks that count_children
// totals the count, each partition holding its share of the keys; routes one key to its
// partition and asks the child started for that key where it lives; stops the
// PartitionSupervisor. Once the recipe process's DOWN has come, the program checks that
// Runtime::process_count() is back where it was, and prints the timings.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <any>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ChildSpec;
using coppice::DynamicSupervisor;
using coppice::DynamicSupervisorOptions;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::PartitionSupervisor;
using coppice::PartitionSupervisorOptions;
using coppice::Pid;
using coppice::Result;

using recipe_check::expect;
using recipe_check::Failed;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 100s;

struct WhichPartition {};

// One of the million: idle, except that it knows its partition.
class Leaf : public GenServer<Leaf> {
 public:
  using calls = coppice::Protocol<WhichPartition>;
  // The DynamicSupervisor's extra_arguments come first (see coppice::child).
  explicit Leaf(const std::vector<std::any>& extra) : partition_(std::any_cast<std::size_t>(extra.at(0))) {}
  std::size_t handle_call(WhichPartition) { return partition_; }

 private:
  std::size_t partition_;
};

// What a client reports once it has started its keys.
struct ClientDone {
  std::size_t started = 0;
  std::string first_error;
  Pid probe;  // the child started for the probe key, if the client had it
};

// A client: starts one child per key in [begin, end), each under the partition of its key.
Async<void> client(Pid sup, DynamicSupervisor::SharedSpec spec, std::size_t begin, std::size_t end,
                   std::size_t probe_key, Pid report) {
  ClientDone done;
  for (std::size_t key = begin; key < end; ++key) {
    Result<Pid> partition = PartitionSupervisor::whereis(sup, key);
    if (!partition) {
      done.first_error = partition.error().to_string();
      break;
    }
    auto start = DynamicSupervisor::start_child(*partition, spec);
    Result<Pid> child = co_await start;
    if (!child) {
      done.first_error = child.error().to_string();
      break;
    }
    ++done.started;
    if (key == probe_key) done.probe = *child;
  }
  coppice::send(report, std::move(done));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What the recipe process reports to the program.
struct Report {
  std::size_t partitions = 0;
  std::size_t clients = 0;
  std::size_t processes = 0;  // in the tree at its fullest, clients excluded
  double start_time = 0, count_time = 0, stop_time = 0;
};
struct Go {};

// The recipe, as a process: inside one, every step is a co_await, and the program can wait
// for its DOWN, after which nothing it started may remain. (A blocking call from a plain
// thread runs on a helper process that may still be exiting when the call returns: a
// process_count read just after it can count that helper.)
Async<void> recipe(std::size_t count, Pid report) {
  Go go = co_await coppice::receive<Go>();  // the program monitors us first
  (void)go;
  // The PartitionSupervisor is linked to us: its exit when we stop it must come as a
  // message, not kill us.
  coppice::trap_exit(true);
  Report r;

  PartitionSupervisorOptions o;
  o.child = DynamicSupervisor::child_spec("dynamic");
  o.with_arguments = [](ChildSpec, std::size_t partition) {
    DynamicSupervisorOptions d;
    d.extra_arguments = {std::any(partition)};
    return DynamicSupervisor::child_spec("dynamic", d);
  };
  o.name = "leaves";
  auto start_supervisor = PartitionSupervisor::start_link(o);
  Result<Pid> started_supervisor = co_await start_supervisor;
  const Pid sup = started_supervisor.value();
  r.partitions = PartitionSupervisor::partitions(sup).value();
  // One spec shared by every child, rather than a copy per child.
  DynamicSupervisor::SharedSpec spec = DynamicSupervisor::share(coppice::child<Leaf>("leaf"));

  // 1. Start: several clients at once, each with a block of keys. Their DOWNs, not only
  // their reports, are awaited, so that no client is left when we end.
  // A few clients per partition: while one waits for its reply, another's request is queued.
  r.clients = 4 * r.partitions;
  const std::size_t probe_key = count / 2;
  auto t = std::chrono::steady_clock::now();
  std::vector<coppice::Ref> client_monitors;
  for (std::size_t c = 0; c < r.clients; ++c)
    client_monitors.push_back(coppice::spawn_monitor(client, sup, spec, count * c / r.clients,
                                                     count * (c + 1) / r.clients, probe_key, coppice::self())
                                  .second);
  std::size_t started = 0;
  Pid probe;
  for (std::size_t c = 0; c < r.clients; ++c) {
    std::optional<ClientDone> done = co_await coppice::receive<ClientDone>(failure_bound);
    expect(done.has_value(), "a client did not report");
    expect(done->first_error.empty(), "a client's start_child failed: " + done->first_error);
    started += done->started;
    if (done->probe) probe = done->probe;
  }
  for (coppice::Ref m : client_monitors) {
    auto is_it = [m](const coppice::Message& msg) {
      return msg.is<coppice::Down>() && msg.get<coppice::Down>().ref == m;
    };
    std::optional<coppice::Message> down = co_await coppice::receive_if(is_it, failure_bound);
    expect(down.has_value(), "a client did not end");
  }
  r.start_time = seconds_since(t);
  expect(started == count, "started " + std::to_string(started) + " children, expected " + std::to_string(count));

  // 2. Count: every partition holds the keys that route to it (|key| mod partitions).
  t = std::chrono::steady_clock::now();
  auto which = PartitionSupervisor::which_children(sup);
  Result<std::vector<coppice::ChildInfo>> which_result = co_await which;
  const std::vector<coppice::ChildInfo> parts = which_result.value();
  expect(parts.size() == r.partitions, "one child per partition");
  std::size_t total = 0;
  for (const coppice::ChildInfo& part : parts) {
    const std::size_t index = std::stoul(part.id);
    auto count_children = DynamicSupervisor::count_children(part.pid);
    Result<coppice::ChildCounts> counted = co_await count_children;
    const coppice::ChildCounts counts = counted.value();
    const std::size_t share = count / r.partitions + (index < count % r.partitions ? 1 : 0);
    expect(counts.active == share, "partition " + part.id + " runs " + std::to_string(counts.active) +
                                       " children, expected " + std::to_string(share));
    total += counts.active;
  }
  r.count_time = seconds_since(t);
  expect(total == count, "count_children totals " + std::to_string(total) + ", expected " + std::to_string(count));
  r.processes = total + parts.size() + 1;

  // 3. Route: the probe key's partition, and the child started for it says it lives there.
  if (count > 0) {
    const std::size_t index = PartitionSupervisor::partition_for(probe_key, r.partitions);
    const Pid routed = PartitionSupervisor::whereis("leaves", probe_key).value();
    Pid expected;
    for (const coppice::ChildInfo& part : parts)
      if (part.id == std::to_string(index)) expected = part.pid;
    expect(routed == expected, "key " + std::to_string(probe_key) + " routes to partition " + std::to_string(index));
    auto ask = Leaf::call(probe, WhichPartition{});
    Result<std::size_t> answer = co_await ask;
    expect(answer.value() == index, "the probe child lives in partition " + std::to_string(index));
    std::printf("key %zu routes to partition %zu (%s), where its child %s lives\n", probe_key, index,
                routed.to_string().c_str(), probe.to_string().c_str());
  }

  // 4. Stop: the partitions stop one at a time, each stopping all its children at once.
  t = std::chrono::steady_clock::now();
  auto stopping = coppice::stop(sup, ExitReason::shutdown());
  coppice::Status stopped = co_await stopping;
  expect(stopped.has_value(), "stop the PartitionSupervisor");
  r.stop_time = seconds_since(t);
  Result<Pid> gone = PartitionSupervisor::whereis("leaves", probe_key);
  expect(!gone && gone.error().kind() == coppice::ErrorKind::noproc,
         "a key routes nowhere once the supervisor is gone");
  coppice::send(report, r);
}

int run(std::size_t count) {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  const std::size_t before = rt.process_count();

  const Pid p = rt.spawn(recipe, count, inbox.pid());
  const coppice::Ref watch = inbox.monitor(p);
  inbox.send(p, Go{});
  auto report_or_down = [watch](const coppice::Message& m) {
    return m.is<Report>() || (m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch);
  };
  std::optional<coppice::Message> got = inbox.receive_if(report_or_down, 2 * failure_bound);
  expect(got.has_value(), "the recipe neither reported nor ended");
  if (const coppice::Down* d = got->get_if<coppice::Down>()) throw Failed(std::string(d->reason.detail()));
  const Report r = got->take<Report>();
  auto is_down = [watch](const coppice::Message& m) {
    return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch;
  };
  std::optional<coppice::Message> down = inbox.receive_if(is_down, failure_bound);
  expect(down.has_value(), "the recipe process did not end");

  // Counted out before its DOWN was sent: everything the recipe started is gone.
  expect(rt.process_count() == before,
         "every process is gone: " + std::to_string(rt.process_count() - before) + " remain");

  std::printf("%zu children in %zu partitions (%zu processes in the tree); all gone after the stop\n", count,
              r.partitions, r.processes);
  std::printf("start %zu children from %zu clients: %.3f s (%.2f us each)\n", count, r.clients, r.start_time,
              count ? r.start_time * 1e6 / static_cast<double>(count) : 0.0);
  std::printf("count_children over %zu partitions: %.2f ms\n", r.partitions, r.count_time * 1e3);
  std::printf("stop the PartitionSupervisor, until all are gone: %.3f s\n", r.stop_time);
  return 0;
}

int main(int argc, char** argv) {
  return recipe_check::run_recipe("million", [&] {
    const std::size_t count = argc > 1 ? std::stoul(argv[1]) : 1000000;
    return run(count);
  });
}
