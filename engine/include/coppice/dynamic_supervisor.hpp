// DynamicSupervisor (Elixir's): children started on demand, keyed by pid, restarted one for
// one within a restart intensity, and all stopped at once when the supervisor stops. It
// serves other requests while children run their init (SEMANTICS.md section 4).
//
//   auto sup = coppice::DynamicSupervisor::start(rt, {.max_children = 1000}).value();
//   auto spec = coppice::DynamicSupervisor::share(coppice::child<Worker>("worker", 42));
//   coppice::Pid w = coppice::DynamicSupervisor::start_child(rt, sup, spec).value();
//
// Starting a child does not hold the supervisor: start_child is a call that the supervisor
// answers later. It spawns the child with the spec's `spawn` (see PendingStart) and goes
// back to its mailbox; when the child's init has returned, its acknowledgement arrives as a
// message, the child is stored and the caller gets its reply. Many starts (and restarts) are
// in flight at once, and which_children, count_children and terminate_child are served
// meanwhile. A spec without `spawn` (a hand-written `start` function) is started by awaiting
// `start` instead: the supervisor then serves nothing else until that start has returned, as
// in OTP.
//
// For many children built from one spec, pass the spec as a SharedSpec (share(spec)): the
// supervisor keeps one copy of it for all of them. A ChildSpec passed by value is copied
// into the supervisor once per child.
#pragma once

#include <any>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/gen_server.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/supervisor.hpp"  // ChildInfo, ChildCounts

namespace coppice {

struct DynamicSupervisorOptions {
  // More than intensity restarts within period: the supervisor stops its children
  // and exits with `shutdown` (SEMANTICS.md 3.7). Elixir's defaults: 3 in 5 seconds.
  int intensity = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);  // any std::chrono unit
  // At most this many children (restarting ones and starts in flight included); none: no limit.
  std::optional<std::size_t> max_children;
  // Passed to every child's start function before the spec's own arguments (StartArgs::extra),
  // on every start and restart.
  std::vector<std::any> extra_arguments;
};

class DynamicSupervisor {
 public:
  static constexpr std::string_view behaviour = "DynamicSupervisor";
  static constexpr ChildType child_type = ChildType::supervisor;

  using SharedSpec = std::shared_ptr<const ChildSpec>;
  static SharedSpec share(ChildSpec spec) { return std::make_shared<const ChildSpec>(std::move(spec)); }

  // which_children and count_children answer with the Supervisor's types. Here a child's id
  // is empty (Elixir's :undefined), and a restarting child keeps the pid it had (the only
  // handle terminate_child takes), with `restarting` set. In the counts, restarting children
  // count in specs, supervisors and workers but not in active.
  using ChildInfo = coppice::ChildInfo;
  using ChildCounts = coppice::ChildCounts;

  // ---- starting the supervisor ----
  // A bad option: invalid_argument naming the field (intensity, period).
  static Status validate(const DynamicSupervisorOptions& options);
  // Inside a process; linked to the caller.
  static Async<Result<Pid>> start_link(DynamicSupervisorOptions options, StartOptions start = {});
  // From a plain thread (not linked).
  static Result<Pid> start(Runtime& rt, DynamicSupervisorOptions options, StartOptions start = {});
  // A spec that starts a DynamicSupervisor under another supervisor (type supervisor,
  // shutdown infinity).
  static ChildSpec child_spec(std::string id, DynamicSupervisorOptions options = {});

  // ---- the client API: a coroutine form (co_await inside a process) and a blocking form ----
  // The child's pid once its init has returned ok. ignore: ErrorKind::ignore (nothing is
  // stored); a failed start: its error (start_error with the reason, or the start function's
  // own error; a start function that returns Pid{} is start_error "returned no pid", and on
  // a restart a failed attempt); max_children; invalid_child_spec naming the field
  // (significant is never valid here). The spec's id is ignored, as in Elixir.
  static CallAwaiter<Pid> start_child(const ServerRef& supervisor, ChildSpec spec);
  static CallAwaiter<Pid> start_child(const ServerRef& supervisor, SharedSpec spec);
  static Result<Pid> start_child(Runtime& rt, const ServerRef& supervisor, ChildSpec spec);
  static Result<Pid> start_child(Runtime& rt, const ServerRef& supervisor, SharedSpec spec);
  // Stops the child with its spec's shutdown and forgets it: ok, or not_found if `child` is
  // not a child. A child that is restarting is forgotten (and its restart stopped).
  static Async<Status> terminate_child(ServerRef supervisor, Pid child);
  static Status terminate_child(Runtime& rt, const ServerRef& supervisor, Pid child);
  // Every child, in no particular order.
  static CallAwaiter<std::vector<ChildInfo>> which_children(const ServerRef& supervisor);
  static Result<std::vector<ChildInfo>> which_children(Runtime& rt, const ServerRef& supervisor);
  static CallAwaiter<ChildCounts> count_children(const ServerRef& supervisor);
  static Result<ChildCounts> count_children(Runtime& rt, const ServerRef& supervisor);
};

}  // namespace coppice
