// Supervisor: OTP's static supervisor (one_for_one, one_for_all, rest_for_one), a GenServer
// that starts its children in order, restarts them by its strategy within a restart
// intensity, and stops them in reverse order (SEMANTICS.md section 3).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/gen_server.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/signals.hpp"

namespace coppice {

// Which children a restart touches (SEMANTICS.md 3.6): the one that died; all of them; or
// the one that died and those started after it.
enum class Strategy : std::uint8_t { one_for_one, one_for_all, rest_for_one };
// When the supervisor stops itself because significant children ended (SEMANTICS.md 3.10).
enum class AutoShutdown : std::uint8_t { never, any_significant, all_significant };

std::string_view to_string(Strategy s);
std::string_view to_string(AutoShutdown a);

// Elixir's defaults: one_for_one, at most 3 restarts in 5 seconds, no auto shutdown.
struct SupervisorFlags {
  Strategy strategy = Strategy::one_for_one;
  int intensity = 3;                        // restarts allowed within `period`; 0: none
  std::chrono::nanoseconds period = std::chrono::seconds(5);  // the sliding window, inclusive; > 0; any unit
  AutoShutdown auto_shutdown = AutoShutdown::never;
};

// invalid_argument naming the field: strategy, intensity (< 0), period (<= 0), auto_shutdown.
Status validate(const SupervisorFlags& flags);
// The flags, every child spec (validate(ChildSpec)), duplicate ids (invalid_child_spec naming
// the id), and significant children under auto_shutdown never (invalid_child_spec naming
// `significant`).
Status validate(const SupervisorFlags& flags, const std::vector<ChildSpec>& children);

// What a supervisor starts with: its children, in start order, and its flags.
struct SupervisorSpec {
  std::vector<ChildSpec> children;
  SupervisorFlags flags;
};

// A module-style init (OTP's Module:init/1): runs inside the new supervisor. It returns the
// spec; or Error ignore (start returns ignore); or another error (the supervisor stops and
// start returns start_error with it); it may also throw (start_error with the exception).
using SupervisorInit = std::function<Result<SupervisorSpec>()>;

// One entry of which_children: OTP's {Id, Child, Type, Modules}.
struct ChildInfo {
  std::string id;
  Pid pid;                  // Pid{} when not running (OTP's undefined) or restarting
  bool restarting = false;  // a restart failed and is being retried (OTP's restarting)
  ChildType type = ChildType::worker;
  std::vector<std::string> modules;
};

// count_children: specs, running children, and specs by type (running or not).
struct ChildCounts {
  std::size_t specs = 0;
  std::size_t active = 0;
  std::size_t supervisors = 0;
  std::size_t workers = 0;
  // Counts one spec (running or not) of `type`.
  void add(bool running, ChildType type) {
    ++specs;
    if (running) ++active;
    if (type == ChildType::supervisor) {
      ++supervisors;
    } else {
      ++workers;
    }
  }
  friend bool operator==(const ChildCounts&, const ChildCounts&) = default;
};

// A static supervisor. Start it with its children and flags:
//
//   auto sup = Supervisor::start(rt, {child<Counter>("counter", 0L).name("counter")},
//                                {.strategy = Strategy::one_for_all});
//
// Inside a process, co_await Supervisor::start_link(children, flags). Its API mirrors OTP's
// (start_child, terminate_child, restart_child, delete_child, which_children,
// count_children, get_childspec, which_child): each awaited inside a process, or blocking
// from a plain thread with the Runtime first. Calls wait for as long as the supervisor takes
// (OTP's infinity); a supervisor that is not running: noproc. What happens to its children is
// reported (child_started, child_terminated, start_error, shutdown_error,
// reached_max_restart_intensity; tree_died for a top-level one) and counted
// (coppice/report.hpp), as for every supervisor.
class Supervisor {
 public:
  static constexpr std::string_view behaviour = "Supervisor";
  static constexpr ChildType child_type = ChildType::supervisor;

  // ---- starting ----
  // Returns once every child has started, in order. A child that fails: those already
  // started are stopped in reverse order, the supervisor exits with shutdown (a linked caller
  // that does not trap exits dies of it, as in OTP) and this returns start_error whose reason
  // is shutdown with "failed_to_start_child 'id': ...". Invalid flags or specs: the
  // validation error, and nothing is started.
  static Async<Result<Pid>> start_link(std::vector<ChildSpec> children, SupervisorFlags flags = {},
                                       StartOptions options = {});
  static Async<Result<Pid>> start_link(SupervisorInit init, StartOptions options = {});
  // From a plain thread (not linked): blocks until every child has started.
  static Result<Pid> start(Runtime& rt, std::vector<ChildSpec> children, SupervisorFlags flags = {},
                           StartOptions options = {});
  static Result<Pid> start(Runtime& rt, SupervisorInit init, StartOptions options = {});
  // A spec that starts a supervisor as the child of another: type supervisor, shutdown
  // infinity (`options.name` is the name the child supervisor registers).
  static ChildSpec child_spec(std::string id, std::vector<ChildSpec> children, SupervisorFlags flags = {});
  static ChildSpec child_spec(std::string id, SupervisorInit init);

  // ---- the API, inside a process (co_await) ----
  // The new child's pid; Pid{} when its start returned ignore (OTP's {ok, undefined}).
  // already_started (the id runs, or the child's start found its name taken) with the pid;
  // already_present (the id exists, not running); the validation or start error otherwise.
  static CallAwaiter<Pid> start_child(const ServerRef& sup, ChildSpec spec);
  // ok, also when the child was not running (and it stops a restart loop); a temporary
  // child's spec is removed; not_found. By pid: not_found (OTP, for a static supervisor).
  static Async<Status> terminate_child(ServerRef sup, std::string id);
  static Async<Status> terminate_child(ServerRef sup, Pid child);
  // Starts a child that is not running: its pid (Pid{} on ignore); running; restarting;
  // not_found; or the start's error (the spec is kept).
  static CallAwaiter<Pid> restart_child(const ServerRef& sup, std::string id);
  // Removes a spec that is not running: ok; running; restarting; not_found.
  static Async<Status> delete_child(ServerRef sup, std::string id);
  // Newest first.
  static CallAwaiter<std::vector<ChildInfo>> which_children(const ServerRef& sup);
  static CallAwaiter<ChildCounts> count_children(const ServerRef& sup);
  // The full spec (shutdown filled in), by id or by a running child's pid; not_found.
  static CallAwaiter<ChildSpec> get_childspec(const ServerRef& sup, std::string id);
  static CallAwaiter<ChildSpec> get_childspec(const ServerRef& sup, Pid child);
  static CallAwaiter<ChildInfo> which_child(const ServerRef& sup, std::string id);

  // ---- the same from a plain thread ----
  static Result<Pid> start_child(Runtime& rt, const ServerRef& sup, ChildSpec spec);
  static Status terminate_child(Runtime& rt, const ServerRef& sup, std::string id);
  static Status terminate_child(Runtime& rt, const ServerRef& sup, Pid child);
  static Result<Pid> restart_child(Runtime& rt, const ServerRef& sup, std::string id);
  static Status delete_child(Runtime& rt, const ServerRef& sup, std::string id);
  static Result<std::vector<ChildInfo>> which_children(Runtime& rt, const ServerRef& sup);
  static Result<ChildCounts> count_children(Runtime& rt, const ServerRef& sup);
  static Result<ChildSpec> get_childspec(Runtime& rt, const ServerRef& sup, std::string id);
  static Result<ChildSpec> get_childspec(Runtime& rt, const ServerRef& sup, Pid child);
  static Result<ChildInfo> which_child(Runtime& rt, const ServerRef& sup, std::string id);
};

}  // namespace coppice
