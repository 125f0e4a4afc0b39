// Parent: a GenServer that supervises its own children (SEMANTICS.md section 7), for the
// worker that is the logical parent of other workers. It traps exits, keeps its own child
// table, starts children from any callback, restarts them by their own rules, stops them
// (reverse start order) after its terminate, and answers a Supervisor's which_children (start order),
// count_children and get_childspec, so it sits in a supervision tree like any supervisor.
//
//   class Job : public coppice::Parent<Job> {
//    public:
//     coppice::Async<coppice::Init> init() {
//       auto device = start_child(coppice::child<Device>("device", "/dev/ttyS0"));
//       co_await device;  // the spec is built outside the co_await (README, Known limits: g++ 12)
//       co_return ok();
//     }
//     // Ephemeral children that stopped on their own and are not restarted.
//     coppice::NoReply handle_stopped_children(coppice::StoppedChildren stopped) { ... }
//   };
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/gen_server.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/supervisor.hpp"

namespace coppice {

// A child, as its parent knows it: by id, or by pid (an anonymous child has only a pid).
class ChildRef {
 public:
  ChildRef(std::string id) : ref_(std::move(id)) {}
  ChildRef(std::string_view id) : ref_(std::string(id)) {}
  ChildRef(const char* id) : ref_(std::string(id)) {}
  ChildRef(Pid pid) : ref_(pid) {}
  bool is_pid() const { return std::holds_alternative<Pid>(ref_); }
  Pid pid() const { return is_pid() ? std::get<Pid>(ref_) : Pid{}; }
  const std::string& id() const;
  std::string to_string() const;  // 'id' or <0.1.2>

 private:
  std::variant<std::string, Pid> ref_;
};

// A restart after a delay that grows: initial, initial * multiplier, ... up to max, each
// multiplied by a random factor in [1 - jitter, 1 + jitter]. A child that then runs for
// reset_after (default: max) without stopping starts over at initial.
struct Backoff {
  // Backoff::exponential(50ms, 2s): every field in one expression (a designated initializer
  // that leaves some out trips g++'s -Wmissing-field-initializers).
  static Backoff exponential(std::chrono::nanoseconds initial, std::chrono::nanoseconds max, double multiplier = 2.0,
                             double jitter = 0.2) {
    Backoff b;
    b.initial = initial;
    b.max = max;
    b.multiplier = multiplier;
    b.jitter = jitter;
    return b;
  }

  // Any std::chrono unit; delays are counted in whole milliseconds (rounded up).
  std::chrono::nanoseconds initial = std::chrono::milliseconds(100);
  std::chrono::nanoseconds max = std::chrono::seconds(10);
  double multiplier = 2.0;
  double jitter = 0.2;
  std::optional<std::chrono::nanoseconds> reset_after;
};

// The `parent` library's child spec: a Supervisor's ChildSpec (id optional here) and:
struct ParentChildSpec : ChildSpec {
  ParentChildSpec() = default;
  ParentChildSpec(ChildSpec spec) : ChildSpec(std::move(spec)) {}

  // Not kept when not running: removed (like a DynamicSupervisor's child) and, when it stopped
  // on its own and is not restarted, reported to handle_stopped_children.
  bool ephemeral = false;
  // A lifetime limit (the `parent` library's `timeout`): stopped with reason timeout when it
  // expires (by its shutdown), then restarted unless temporary. 0 (`timeout: 0`): stopped once started.
  std::optional<std::chrono::nanoseconds> lifetime;  // any unit, in whole ms (rounded up)
  std::any meta;
  // Per-child restart intensity, beside the parent's: nullopt is infinity.
  std::optional<int> intensity;
  std::chrono::nanoseconds period = std::chrono::seconds(5);
  // Older siblings this child depends on: when one of them stops, this one is stopped too
  // (and restarted with it). Transitive, like rest_for_one on a chosen subset.
  std::vector<ChildRef> binds_to;
  // Children of one group stop together (one_for_all within the group). Its members share
  // restart and ephemeral.
  std::optional<std::string> shutdown_group;
  // Restart after a delay with exponential backoff instead of at once.
  std::optional<Backoff> backoff;

  ParentChildSpec& with_id(std::string i) { id = std::move(i); return *this; }
  ParentChildSpec& with_restart(Restart r) { restart = r; return *this; }
  ParentChildSpec& with_shutdown(Shutdown s) { shutdown = s; return *this; }
  ParentChildSpec& as_ephemeral(bool on = true) { ephemeral = on; return *this; }
  ParentChildSpec& with_lifetime(std::chrono::nanoseconds t) { lifetime = t; return *this; }
  ParentChildSpec& with_meta(std::any m) { meta = std::move(m); return *this; }
  ParentChildSpec& with_intensity(std::optional<int> n, std::chrono::nanoseconds within = std::chrono::seconds(5)) {
    intensity = n;
    period = within;
    return *this;
  }
  ParentChildSpec& bound_to(std::vector<ChildRef> refs) { binds_to = std::move(refs); return *this; }
  ParentChildSpec& in_group(std::string group) { shutdown_group = std::move(group); return *this; }
  ParentChildSpec& with_backoff(Backoff b = {}) { backoff = b; return *this; }
};

// invalid_child_spec naming the field (ChildSpec's rules, with an optional id; lifetime,
// intensity, period, backoff).
Status validate(const ParentChildSpec& spec);

// The parent-wide restart intensity (SEMANTICS.md 0: 3 restarts in 5 s by default); nullopt
// is infinity. Exceeded: every child is stopped and the parent exits with too_many_restarts.
struct ParentOptions {
  std::optional<int> intensity = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);  // any std::chrono unit
};

// One entry of children(), in start order.
struct ParentChild {
  std::string id;  // empty for an anonymous child
  Pid pid;         // Pid{} when not running
  std::any meta;
};

// A child that was stopped: what shutdown_child, shutdown_all and handle_stopped_children
// give, and what return_children takes back (it starts them again, in their old places).
struct StoppedChild {
  ParentChildSpec spec;
  Pid pid;                  // the pid it last ran as (Pid{} if it never ran)
  ExitReason exit_reason;   // why it stopped (bound siblings taken down with it: shutdown)
  std::uint64_t order = 0;  // its place in the parent's start order
  bool crashed = false;     // returned, it counts as a restart
  std::vector<std::uint64_t> deps;  // the places of the siblings it binds to
  const std::string& id() const { return spec.id; }
  const std::any& meta() const { return spec.meta; }
};
// In start order.
using StoppedChildren = std::vector<StoppedChild>;

// The exit reasons a Parent uses: too many restarts, and a failed start_all_children.
ExitReason too_many_restarts();
ExitReason start_error_reason();

namespace detail {

class ParentCore;

// The machinery every Parent<D> shares; the server class reaches it through these members.
class ParentBase {
 public:
  // Calls the server's handle_stopped_children with the StoppedChildren in `stopped`.
  using StoppedThunk = Dispatched (*)(ParentBase& self, Message& stopped);
  // `user_handles_exits`: an EXIT from a process that is not a child goes to the server's
  // handle_info; otherwise it is dropped (a child that crashed inside its own start leaves one).
  ParentBase(ParentOptions options, StoppedThunk on_stopped, bool user_handles_exits);
  ParentBase(const ParentBase&) = delete;
  ParentBase& operator=(const ParentBase&) = delete;
  ~ParentBase();

  // ---- inside the parent (its callbacks) ----
  // The new child's pid; Pid{} when its start returned ignore (kept unless ephemeral).
  // already_started (with the pid, Pid{} for a kept child that is not running), a validation
  // error, missing_deps / non_uniform_shutdown_group (invalid_child_spec naming binds_to /
  // shutdown_group), or the start's error.
  Async<Result<Pid>> start_child(ParentChildSpec spec);
  // Starts each in order; at the first error it logs it, stops those started (reverse order)
  // and exits with start_error_reason(): this function then does not return.
  Async<std::vector<Pid>> start_all_children(std::vector<ParentChildSpec> specs);
  // Stops the child and every sibling bound to it (reverse start order) and removes them;
  // no restart, no handle_stopped_children. not_found if there is no such child.
  Async<Result<StoppedChildren>> shutdown_child(ChildRef ref);
  // Stops the child and its bound siblings, and starts them again in start order, in their
  // places. not_found; a failed start is retried later, as after a crash.
  Async<Status> restart_child(ChildRef ref);
  // Stops every child (reverse start order, bindings ignored); normal becomes shutdown.
  Async<StoppedChildren> shutdown_all(ExitReason reason = ExitReason::shutdown());
  // Adds the children back and starts them, in their old places (a crashed one counts as a
  // restart). Children already present are left alone.
  Async<Status> return_children(StoppedChildren stopped);

  std::vector<ParentChild> children() const;
  std::size_t num_children() const;
  bool is_child(const ChildRef& ref) const;
  // Pid{} for a child kept but not running; not_found.
  Result<Pid> child_pid(const ChildRef& ref) const;
  Result<std::string> child_id(Pid pid) const;  // not_found (also for an anonymous child)
  Result<std::any> child_meta(const ChildRef& ref) const;
  Status update_child_meta(const ChildRef& ref, std::function<std::any(std::any)> update);

  ParentCore& parent_core() { return *core_; }

 private:
  std::unique_ptr<ParentCore> core_;
};

}  // namespace detail

// The base a parent server derives from: everything GenServer<D> offers, plus the child
// table above. Optional callback, beside GenServer's:
//   handle_stopped_children(StoppedChildren) -> void | NoReply | Async<...>
// called when ephemeral children stopped on their own and are not restarted (all those that
// stopped together in one call), never otherwise.
template <class D>
class Parent : public GenServer<D>, public detail::ParentBase {
 public:
  static constexpr std::string_view behaviour = "Parent";
  static constexpr ChildType child_type = ChildType::supervisor;

  explicit Parent(ParentOptions options = {}) : detail::ParentBase(options, &stopped_thunk, handles_exits()) {}

 private:
  static constexpr bool handles_exits() {
    if constexpr (detail::HasInfos<D>) {
      if (detail::NoReplyTable<D, typename D::infos, false>::template contains<Exit>) return true;
    }
    return detail::HasInfo<D, Message>;
  }
  static detail::Dispatched stopped_thunk(detail::ParentBase& self, Message& stopped) {
    D& d = static_cast<D&>(static_cast<Parent&>(self));
    if constexpr (requires { d.handle_stopped_children(std::declval<StoppedChildren>()); }) {
      StoppedChildren& value = stopped.get<StoppedChildren>();
      return detail::invoke_step([&] { return d.handle_stopped_children(std::move(value)); },
                                 [](auto&& r) { return detail::noreply_step(std::forward<decltype(r)>(r)); },
                                 [](auto&& a) { return detail::noreply_step_async(std::move(a)); });
    } else {
      return detail::Dispatched(std::in_place_index<0>, detail::Step{});
    }
  }
};

// The same operations from outside the parent (a client process, or a plain thread with the
// Runtime first), answered by the parent's machinery. Queries wait 5 s, changes as long as
// they take; noproc and calling_self as for any call.
class ParentClient {
 public:
  static CallAwaiter<std::vector<ParentChild>> children(const ServerRef& parent);
  static CallAwaiter<Pid> child_pid(const ServerRef& parent, ChildRef child);
  static CallAwaiter<std::any> child_meta(const ServerRef& parent, ChildRef child);
  static Async<Status> update_child_meta(ServerRef parent, ChildRef child, std::any meta);
  static CallAwaiter<Pid> start_child(const ServerRef& parent, ParentChildSpec spec);
  static CallAwaiter<StoppedChildren> shutdown_child(const ServerRef& parent, ChildRef child);
  static Async<Status> restart_child(ServerRef parent, ChildRef child);
  static CallAwaiter<StoppedChildren> shutdown_all(const ServerRef& parent, ExitReason reason = ExitReason::shutdown());
  static Async<Status> return_children(ServerRef parent, StoppedChildren stopped);

  static Result<std::vector<ParentChild>> children(Runtime& rt, const ServerRef& parent);
  static Result<Pid> child_pid(Runtime& rt, const ServerRef& parent, ChildRef child);
  static Result<std::any> child_meta(Runtime& rt, const ServerRef& parent, ChildRef child);
  static Status update_child_meta(Runtime& rt, const ServerRef& parent, ChildRef child, std::any meta);
  static Result<Pid> start_child(Runtime& rt, const ServerRef& parent, ParentChildSpec spec);
  static Result<StoppedChildren> shutdown_child(Runtime& rt, const ServerRef& parent, ChildRef child);
  static Status restart_child(Runtime& rt, const ServerRef& parent, ChildRef child);
  static Result<StoppedChildren> shutdown_all(Runtime& rt, const ServerRef& parent, ExitReason reason = ExitReason::shutdown());
  static Status return_children(Runtime& rt, const ServerRef& parent, StoppedChildren stopped);
};

// A Parent with no callbacks of its own (the `parent` library's Parent.Supervisor): it starts
// `children` in order and supervises them by their own rules, binds_to and shutdown_group,
// for trees that want those instead of a strategy. If a child fails to start, those started
// are stopped and the start returns start_error (its reason: start_error_reason()).
class ParentSupervisor : public Parent<ParentSupervisor> {
 public:
  static constexpr std::string_view behaviour = "Parent.Supervisor";

  static Async<Result<Pid>> start_link(std::vector<ParentChildSpec> children, ParentOptions options = {},
                                       StartOptions start = {});
  static Result<Pid> start(Runtime& rt, std::vector<ParentChildSpec> children, ParentOptions options = {},
                           StartOptions start = {});
  // A spec that starts one under another supervisor: type supervisor, shutdown infinity.
  static ChildSpec child_spec(std::string id, std::vector<ParentChildSpec> children, ParentOptions options = {});

  ParentSupervisor(std::vector<ParentChildSpec> children, ParentOptions options);
  Async<Init> init();

 private:
  std::vector<ParentChildSpec> children_;
};

}  // namespace coppice
