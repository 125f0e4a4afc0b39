// Parent's core (SEMANTICS.md section 7): the child table of a server that supervises its own
// children, shared by the rooms that work on it. Runs inside the parent process only.
//   parent_children.cpp   the child table: specs, indexes, running state, the directory, queries
//   parent_bind.cpp       binding and groups: who may join, who goes down with a child
//   parent_start.cpp      starting children (start_child, restart_child, return_children)
//   parent_terminate.cpp  stopping children (shutdown_child, shutdown_all, the parent's own exit)
//   parent_restart.cpp    a child that stopped on its own: restarted or not, counted, reported
//   parent_api.cpp        the server's messages, ParentBase, ParentClient, ParentSupervisor
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "coppice/parent.hpp"
#include "otp/supervision.hpp"

namespace coppice {

inline std::string ms(std::chrono::nanoseconds t) { return detail::duration_text(t); }

inline std::string describe(const ParentChildSpec& spec, Pid pid) {
  return spec.id.empty() ? "anonymous child " + pid.to_string() : "child '" + spec.id + "'";
}

namespace detail {

// The parent's notes to itself.
struct ParentLifetime {  // a child's lifetime is over
  Pid pid;
};
struct ParentResume {  // start these again (a failed restart's retry, or a backoff's delay)
  std::vector<std::uint64_t> orders;
};
struct ParentGiveUp {};  // the restart intensity was exceeded inside an API function

// Requests a Parent answers by its machinery, never by the user's handle_call.
struct ParentRequest {
  enum class Op : std::uint8_t {
    children, child_pid, child_meta, update_child_meta, start_child, shutdown_child, restart_child,
    shutdown_all, return_children, num_children
  } op;
  ChildRef ref{std::string()};
  ParentChildSpec spec;
  std::any meta;
  ExitReason reason;
  StoppedChildren stopped;
};

class ParentCore {
 public:
  ParentCore(ParentOptions options, ParentBase& base, ParentBase::StoppedThunk on_stopped, bool user_handles_exits);
  ~ParentCore();
  void attach(const ServerRef& name, std::string_view behaviour);

  // ---- the API (inside the parent) ----
  Async<Result<Pid>> start_child(ParentChildSpec spec);
  Async<std::vector<Pid>> start_all_children(std::vector<ParentChildSpec> specs);
  Async<Result<StoppedChildren>> shutdown_child(ChildRef ref);
  Async<Status> restart_child(ChildRef ref);
  Async<StoppedChildren> shutdown_all(ExitReason reason);
  Async<Status> return_children(StoppedChildren stopped);
  std::vector<ParentChild> children() const;
  std::size_t num_children() const;
  bool is_child(const ChildRef& ref) const;
  Result<Pid> child_pid(const ChildRef& ref) const;
  Result<std::string> child_id(Pid pid) const;
  Result<std::any> child_meta(const ChildRef& ref) const;
  Status update_child_meta(const ChildRef& ref, const std::function<std::any(std::any)>& update);

  // ---- hooked into the ServerProcess ----
  std::optional<Dispatched> intercept(Message& m);
  Async<void> stop_children(ExitReason reason);

 private:
  struct Child {
    ParentChildSpec spec;
    Shutdown shutdown = Shutdown::infinity();
    Pid pid;
    Pid last;  // the pid it had when it last ran
    std::uint64_t order = 0;
    std::vector<std::uint64_t> deps;  // the orders of the siblings it binds to
    std::unique_ptr<RestartIntensity> intensity;  // per-child intensity, if set
    TimerRef lifetime_timer;
    bool timed = false;    // lifetime_timer is armed
    bool restarting = false;  // a restart is due: a retry, or a backoff's delay
    std::chrono::steady_clock::time_point started;
    std::chrono::milliseconds delay{0};  // the backoff's last delay (0: none yet)
  };
  using Children = ChildList<Child>;  // start order; positions stay valid across removals
  using Pos = Children::Position;
  using CPos = Children::ConstPosition;

  // What a restart left to do: report stopped ephemeral children, or give up.
  struct Outcome {
    StoppedChildren stopped;
    bool give_up = false;
  };

  template <class T>
  static Dispatched answer(const From& to, T&& value) {
    coppice::reply(to, std::forward<T>(value));
    return Dispatched(std::in_place_index<0>, Step{});
  }
  template <class T>
  static void reply_result(const From& from, Result<T> r) {
    if (!r) {
      coppice::reply(from, r.error());
    } else {
      coppice::reply(from, std::move(*r));
    }
  }

  // The child table (parent_children.cpp).
  static Error not_found(const ChildRef& ref);
  Pos find(const ChildRef& ref);
  CPos find(const ChildRef& ref) const;
  Pos add(ParentChildSpec spec, std::uint64_t order, std::optional<std::vector<std::uint64_t>> deps);
  static void erase_from(std::vector<std::uint64_t>& v, std::uint64_t x);
  void detach(Pos c);
  void remove(Pos c);
  StoppedChild take(Pos c, ExitReason reason, bool crashed = false);
  void set_running(Pos c, Pid pid);
  void clear_running(Pos c);
  std::vector<ChildInfo> which_children() const;
  ChildCounts count_children() const;

  // Binding and groups (parent_bind.cpp).
  Status check_new(const ParentChildSpec& spec);
  std::vector<Pos> closure(Pos c);

  // Starting (parent_start.cpp).
  Async<Result<Pid>> start_one(Pos c);
  Async<Outcome> start_set(const std::vector<Pos>& set);
  void settle_outside(Outcome out);

  // Stopping (parent_terminate.cpp).
  Async<std::vector<ExitReason>> stop_set(const std::vector<Pos>& set, ExitReason signal);
  Async<StoppedChildren> stop_all(ExitReason reason);

  // A child that stopped on its own, and the reports (parent_restart.cpp).
  Async<Step> on_stopped(Pos c, ExitReason reason);
  bool record_restart(Pos c);
  std::chrono::milliseconds next_delay(Child& c);
  Async<Step> give_up();
  Async<Step> on_lifetime(Pid pid);
  Async<Step> on_resume(std::vector<std::uint64_t> orders);
  Async<Step> finish(Outcome out);
  Async<Step> notify(StoppedChildren stopped);
  static ReportChild report_child(const Child& c, Pid pid);
  void report(ReportKind kind, const Child& c, Pid pid, const ExitReason& reason, std::string_view outcome = {}) const;

  // The server's messages (parent_api.cpp).
  static Dispatched async(Async<Step> work);
  Async<Step> serve(ParentRequest req, From from);

  ParentOptions options_;
  RestartIntensity intensity_;
  ParentBase& base_;
  ParentBase::StoppedThunk on_stopped_;
  bool user_handles_exits_;
  ServerRef name_;
  std::string behaviour_ = "Parent";
  Pid self_;
  RuntimeCore* runtime_ = nullptr;
  bool published_ = false;  // some child is in the directory

  Children children_;
  std::unordered_map<std::uint64_t, Pos> by_order_;
  std::uint64_t next_order_ = 1;
  std::size_t bound_ = 0;  // children with binds_to or a shutdown group
  // Who binds to a child (by order, whether or not that child is here now), and who is in a
  // group: closure() and check_new() look here instead of walking the table.
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> dependents_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> groups_;
  std::minstd_rand random_{std::random_device{}()};
  SupervisorRecord record_;  // counters, the directory entry, the reports
};

}  // namespace detail
}  // namespace coppice
