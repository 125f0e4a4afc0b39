// What every supervisor shares, written once: Supervisor, DynamicSupervisor (and so
// TaskSupervisor), PartitionSupervisor (a Supervisor) and Parent count restarts, stop children
// and report the same way, here.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"
#include "coppice/server_ref.hpp"
#include "otp/supervisor_stats.hpp"

namespace coppice::detail {

// ---- The protocol (the client functions: Supervisor's statics; Parent answers some) -------

struct SupervisorStartChild {
  ChildSpec spec;
};
struct SupervisorTerminateChild {
  std::string id;
  Pid pid;  // by pid: OTP's terminate_child(Sup, Pid), not_found on a static supervisor
};
struct SupervisorRestartChild {
  std::string id;
};
struct SupervisorDeleteChild {
  std::string id;
};
struct SupervisorWhichChildren {};
struct SupervisorCountChildren {};
struct SupervisorGetChildSpec {
  std::string id;
  Pid pid;  // by pid when set
};
struct SupervisorWhichChild {
  std::string id;
};
// The supervisor's note to itself: try the failed restart of `id` again (OTP's
// try_again_restart), after the messages already queued.
struct SupervisorTryAgain {
  std::string id;
};
// The reply of every supervisor request that answers only ok or an error (the client
// functions turn it into a Status).
struct SupervisorOk {};

// ---- The child table (Supervisor and Parent) ----------------------------------------------

// Children in start order, found by id and by pid. A list, so that positions (iterators) stay
// valid when a child is removed from the middle: the indexes never need rebuilding. `Child`
// has `spec.id` (empty: not found by id, as a Parent's anonymous child), `pid` (Pid{} when
// not running; only running children are found by pid) and `restarting` (a restart is due;
// cleared when the child runs again). The DynamicSupervisor keeps its own table: it has no
// order and no ids, and a list node and two index entries per child are the memory its pid
// table exists to avoid (a million children).
template <class Child>
class ChildList {
 public:
  using Position = typename std::list<Child>::iterator;
  using ConstPosition = typename std::list<Child>::const_iterator;

  Position begin() { return children_.begin(); }
  Position end() { return children_.end(); }
  ConstPosition begin() const { return children_.begin(); }
  ConstPosition end() const { return children_.end(); }
  auto rbegin() const { return children_.rbegin(); }
  auto rend() const { return children_.rend(); }
  const Child& back() const { return children_.back(); }
  std::size_t size() const { return children_.size(); }
  bool empty() const { return children_.empty(); }

  void reserve(std::size_t n) {
    by_id_.reserve(n);
    by_pid_.reserve(n);
  }

  // Adds `child` before `at` (end(): last).
  Position insert(ConstPosition at, Child child) {
    Position c = children_.insert(at, std::move(child));
    if (!c->spec.id.empty()) by_id_.emplace(c->spec.id, c);
    return c;
  }
  // Takes the child out of both indexes (not running any more); its record stays for drop.
  void detach(Position c) {
    clear_pid(c);
    if (!c->spec.id.empty()) by_id_.erase(c->spec.id);
  }
  // Removes the record of a detached child.
  void drop(Position c) { children_.erase(c); }
  void erase(Position c) {
    detach(c);
    drop(c);
  }

  void set_pid(Position c, Pid pid) {
    c->pid = pid;
    c->restarting = false;
    by_pid_.emplace(pid, c);
  }
  void clear_pid(Position c) {
    if (c->pid) by_pid_.erase(c->pid);
    c->pid = Pid{};
  }

  Position find(std::string_view id) {
    auto it = by_id_.find(std::string(id));
    return it == by_id_.end() ? children_.end() : it->second;
  }
  Position find(Pid pid) {
    auto it = by_pid_.find(pid);
    return it == by_pid_.end() ? children_.end() : it->second;
  }
  ConstPosition find(std::string_view id) const { return const_cast<ChildList*>(this)->find(id); }
  ConstPosition find(Pid pid) const { return const_cast<ChildList*>(this)->find(pid); }
  bool contains(std::string_view id) const { return find(id) != end(); }

 private:
  std::list<Child> children_;
  std::unordered_map<std::string, Position> by_id_;
  std::unordered_map<Pid, Position> by_pid_;  // running children only
};

// ---- Restarts (SEMANTICS.md 3.5, 3.7) -----------------------------------------------------

// Whether a child that exited with `reason` is restarted: permanent always; transient unless
// the reason is clean (normal, shutdown, shutdown with a detail); temporary never. The same
// rule for Parent (SEMANTICS.md 0: a transient child is not restarted after shutdown).
bool restarts(Restart restart, const ExitReason& reason);

// A restart is counted with RestartIntensity::add (child_spec.hpp): one per supervisor, and
// a Parent's per-child one beside it.

// ---- Shutting children down (SEMANTICS.md 3.4 and 4) -------------------------------------

// Stops one child with OTP's protocol: monitor; kill (brutal_kill) or shutdown then kill
// after the timeout, or shutdown and wait (infinity); then unlink and take a queued EXIT from
// it. Returns the reason it exited with (the EXIT's reason is preferred over the DOWN's).
// A child that unlinked itself still stops (the monitor sees it go). `signal` is the exit
// signal sent before the kill (a Parent sends other reasons: timeout, or shutdown_all's).
Async<ExitReason> shutdown_child(Pid child, Shutdown how, ExitReason signal = ExitReason::shutdown());

// Stops many children at once (DynamicSupervisor, and PartitionSupervisor's partitions):
// every one gets its signal, then all are awaited; one timer per distinct timeout kills the
// stragglers. Returns each child's reason, in the order given.
Async<std::vector<ExitReason>> shutdown_children(std::vector<std::pair<Pid, Shutdown>> children);

// Whether a shutdown's outcome is what was asked for (otherwise it is reported as
// shutdown_error, never returned): killed for brutal_kill; shutdown; or, for a non-permanent
// child, normal or shutdown with a detail too.
bool expected_shutdown_reason(const ExitReason& reason, Shutdown how, Restart restart);

// ---- Reports ------------------------------------------------------------------------------

// Every supervisor reports through its SupervisorRecord (supervisor_stats.hpp), which also
// counts; the lines are Report::line's (reports.cpp), one format for every supervisor:
//   coppice: <behaviour> <self>[ <name>] <what>: <child>[ <pid>] reason <reason>[ (<outcome>)]

}  // namespace coppice::detail
