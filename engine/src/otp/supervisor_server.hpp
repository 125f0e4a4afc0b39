// The static Supervisor's server: its GenServer callbacks and its child table (the client
// API is coppice::Supervisor, supervisor.hpp).
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "coppice/supervisor.hpp"
#include "otp/supervision.hpp"

namespace coppice::detail {

class SupervisorServer : public GenServer<SupervisorServer> {
 public:
  static constexpr std::string_view behaviour = Supervisor::behaviour;
  static constexpr ChildType child_type = ChildType::supervisor;

  using Source = std::variant<SupervisorSpec, SupervisorInit>;
  SupervisorServer(Source source, ServerRef name);
  SupervisorServer(const SupervisorServer&) = delete;  // the tables point into each other
  SupervisorServer& operator=(const SupervisorServer&) = delete;

  using calls = Protocol<detail::SupervisorStartChild, detail::SupervisorTerminateChild, detail::SupervisorRestartChild,
                         detail::SupervisorDeleteChild, detail::SupervisorWhichChildren, detail::SupervisorCountChildren,
                         detail::SupervisorGetChildSpec, detail::SupervisorWhichChild>;
  using infos = Protocol<Exit, detail::SupervisorTryAgain>;

  Async<Init> init();
  Async<Message> handle_call(detail::SupervisorStartChild request);
  Async<Message> handle_call(detail::SupervisorTerminateChild request);
  Async<Message> handle_call(detail::SupervisorRestartChild request);
  Message handle_call(detail::SupervisorDeleteChild request);
  std::vector<ChildInfo> handle_call(detail::SupervisorWhichChildren request);
  ChildCounts handle_call(detail::SupervisorCountChildren request);
  Message handle_call(detail::SupervisorGetChildSpec request);
  Message handle_call(detail::SupervisorWhichChild request);
  Async<NoReply> handle_info(Exit exit);
  Async<NoReply> handle_info(detail::SupervisorTryAgain again);
  Async<void> terminate(const ExitReason& reason);

 private:
  struct Child {
    ChildSpec spec;
    StartArgs args;  // built once: a restart passes them as they are
    Shutdown shutdown = Shutdown::infinity();  // the spec's, with its default filled in
    Pid pid;         // Pid{} when not running
    bool restarting = false;
  };
  // Children in start order, by id and by pid (running ones).
  using Children = ChildList<Child>;
  using Position = Children::Position;

  Position add(ChildSpec spec);
  ChildInfo info_of(const Child& c) const;

  Async<Result<Pid>> start_one(Position c);
  Async<void> stop_one(Position c);
  // Stops the running children in [from, end) in reverse order; temporary ones are removed.
  Async<void> stop_range(Position from);
  // Starts the children in [from, end) in order; false if one failed (it is then restarting).
  Async<bool> start_range(Position from);
  // Over the restart intensity (SEMANTICS.md 3.7): reported, and `c` removed; the caller
  // then stops with shutdown, which stops the others.
  void give_up(Position c, const ExitReason& reason);
  // One restart event for the child at `c` (no longer running), by the strategy.
  Async<void> restart(Position c);
  bool auto_shutdown_now() const;

  static ReportChild report_child(const Child& c, Pid pid);
  void report(ReportKind kind, const Child& c, Pid pid, const ExitReason& reason, std::string_view outcome = {}) const;
  void report_start_error(const Child& c, const Error& error) const;

  Source source_;
  ServerRef name_;
  SupervisorFlags flags_;
  RestartIntensity intensity_{3, std::chrono::milliseconds(5000)};
  Children children_;
  SupervisorRecord record_;  // counters, the directory entry, the reports
};

}  // namespace coppice::detail
