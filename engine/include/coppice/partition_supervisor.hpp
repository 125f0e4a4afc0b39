// PartitionSupervisor (Elixir's): N copies of one child spec under a static Supervisor
// (one_for_one), with ids "0".."N-1", and routing of a key to "its" partition. It removes the
// single-process bottleneck of one DynamicSupervisor or server doing all the work.
//
//   coppice::PartitionSupervisorOptions o;
//   o.child = coppice::DynamicSupervisor::child_spec("dynamic");
//   o.name = "workers";
//   coppice::PartitionSupervisor::start(rt, o).value();
//   coppice::Pid p = coppice::PartitionSupervisor::whereis(rt, "workers", user_id).value();
//   coppice::DynamicSupervisor::start_child(rt, p, spec);
//
// It is a coppice::Supervisor (SEMANTICS.md section 4): partitions start in order, a crashed
// one is restarted alone within intensity/period, and they stop one at a time in
// reverse order. Each partition's pid is kept in a table that whereis reads without a call
// to the supervisor and without a lock (Elixir keeps it in ETS); the start function records
// it, and clears it when a restart begins.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/supervisor.hpp"

namespace coppice {

struct PartitionSupervisorOptions {
  ChildSpec child;  // started once per partition, with id "0".."N-1"
  // 0: one per worker thread of the runtime it starts in (Elixir: System.schedulers_online()).
  std::size_t partitions = 0;
  // Rewrites the spec for one partition (Elixir's :with_arguments), e.g. to pass it the index.
  std::function<ChildSpec(ChildSpec, std::size_t partition)> with_arguments;
  ServerRef name;  // the supervisor's name; whereis accepts it
  int intensity = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);  // any std::chrono unit
};

namespace detail {
// Where each partition of one supervisor runs now, and how many partitions are in use: read
// by whereis from any thread without a lock, written by the supervisor (its partitions'
// start function, resize). Tables are never freed: one that its supervisor no longer needs
// is handed to the next supervisor that starts (there are as many tables as partition
// supervisors ever ran at once), so a reader may hold one while it changes hands: it reads
// `owner` again after the pid, and a different owner means the supervisor it asked for is gone.
struct PartitionTable;
// The table of `supervisor` in `core`, or nullptr; lock-free.
PartitionTable* partition_table(RuntimeCore& core, Pid supervisor);
}  // namespace detail

class PartitionSupervisor {
 public:
  // Inside a process (linked to it), or from a plain thread. Errors: invalid_argument naming
  // the field (child, intensity, period), or the Supervisor's start errors.
  static Async<Result<Pid>> start_link(PartitionSupervisorOptions options);
  static Result<Pid> start(Runtime& rt, PartitionSupervisorOptions options);
  static ChildSpec child_spec(std::string id, PartitionSupervisorOptions options);

  // The Supervisor's: ids "0".."N-1", newest first; counts over all partitions.
  static CallAwaiter<std::vector<ChildInfo>> which_children(const ServerRef& supervisor) {
    return Supervisor::which_children(supervisor);
  }
  static Result<std::vector<ChildInfo>> which_children(Runtime& rt, const ServerRef& supervisor) {
    return Supervisor::which_children(rt, supervisor);
  }
  static CallAwaiter<ChildCounts> count_children(const ServerRef& supervisor) { return Supervisor::count_children(supervisor); }
  static Result<ChildCounts> count_children(Runtime& rt, const ServerRef& supervisor) {
    return Supervisor::count_children(rt, supervisor);
  }

  // How many partitions keys are routed to now.
  static Result<std::size_t> partitions(const ServerRef& supervisor);
  static Result<std::size_t> partitions(Runtime& rt, const ServerRef& supervisor);
  // Elixir's resize!: stops partitions down to `n`, or restarts stopped ones up to the number
  // it started with; more than that: invalid_argument. Returns the previous number.
  static Async<Result<std::size_t>> resize(ServerRef supervisor, std::size_t n);
  static Result<std::size_t> resize(Runtime& rt, const ServerRef& supervisor, std::size_t n);

  // The partition of `key` among `n`: an integer key gives |key| mod n; any other key its
  // std::hash mod n, which is NOT stable across builds or standard libraries (as Elixir's
  // phash2 routing is documented to be unstable): do not persist it.
  template <class K>
  static std::size_t partition_for(const K& key, std::size_t n) {
    if constexpr (std::is_integral_v<K>) {
      using U = std::make_unsigned_t<K>;
      const U magnitude = key < 0 ? static_cast<U>(U{0} - static_cast<U>(key)) : static_cast<U>(key);
      return static_cast<std::size_t>(magnitude % n);
    } else {
      return std::hash<K>{}(key) % n;
    }
  }
  static std::size_t partition_for(std::string_view key, std::size_t n) { return std::hash<std::string_view>{}(key) % n; }
  static std::size_t partition_for(const char* key, std::size_t n) { return partition_for(std::string_view(key), n); }

  // The pid of the partition for `key` (Elixir's {:via, PartitionSupervisor, {name, key}}):
  // a Pid converts to a ServerRef, so the result goes wherever a server is expected. Read
  // from a table, without a call to the supervisor and without a lock (a supervisor given by
  // name costs the runtime's name lookup first). Never a dead pid: noproc if the supervisor
  // is not running, or the partition is not (from its death until its restart has returned,
  // or after a resize stopped it). A pid may of course die right after it was handed out.
  template <class K>
  static Result<Pid> whereis(const ServerRef& supervisor, const K& key) {
    return lookup(detail::current_core(), supervisor, &route<K>, &key);
  }
  template <class K>
  static Result<Pid> whereis(Runtime& rt, const ServerRef& supervisor, const K& key) {
    return lookup(detail::core_of(rt), supervisor, &route<K>, &key);
  }

 private:
  template <class K>
  static std::size_t route(const void* key, std::size_t n) {
    return partition_for(*static_cast<const K*>(key), n);
  }
  static Result<Pid> lookup(detail::RuntimeCore& core, const ServerRef& supervisor,
                            std::size_t (*route)(const void* key, std::size_t n), const void* key);
};

}  // namespace coppice
