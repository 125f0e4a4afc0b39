// The DynamicSupervisor's server: its protocol, GenServer callbacks and state (the client
// API is coppice::DynamicSupervisor, dynamic_supervisor.hpp).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coppice/dynamic_supervisor.hpp"
#include "coppice/gen_server.hpp"

namespace coppice::detail {

namespace dynamic_supervisor {
// The supervisor's protocol (use the client functions of DynamicSupervisor).
struct StartChild {
  std::shared_ptr<const ChildSpec> spec;
};
struct TerminateChild {
  Pid pid;
};
struct WhichChildren {};
struct CountChildren {};
// Continuations: a start or restart whose spec has no `spawn`, awaited before any message.
struct StartAwaited {
  void* spec;  // the supervisor's entry for the spec
  From caller;
};
struct RestartAwaited {
  Pid child;  // the child being restarted (its old pid)
};
}  // namespace dynamic_supervisor

class DynamicSupervisorServer : public GenServer<DynamicSupervisorServer> {
 public:
  static constexpr std::string_view behaviour = DynamicSupervisor::behaviour;
  static constexpr ChildType child_type = ChildType::supervisor;

  using calls = Protocol<detail::dynamic_supervisor::StartChild, detail::dynamic_supervisor::TerminateChild,
                         detail::dynamic_supervisor::WhichChildren, detail::dynamic_supervisor::CountChildren>;

  explicit DynamicSupervisorServer(DynamicSupervisorOptions options);
  DynamicSupervisorServer(DynamicSupervisorServer&&) noexcept;
  ~DynamicSupervisorServer();

  Init init();
  NoReply handle_call(detail::dynamic_supervisor::StartChild request, const From& from);
  // From by value, though a const From& would do: the server keeps the From it dispatched
  // until its next message, after this coroutine is done.
  Async<void> handle_call(detail::dynamic_supervisor::TerminateChild request, From from);
  std::vector<ChildInfo> handle_call(detail::dynamic_supervisor::WhichChildren request);
  ChildCounts handle_call(detail::dynamic_supervisor::CountChildren request);
  NoReply handle_info(Message message);
  Async<NoReply> handle_continue(detail::dynamic_supervisor::StartAwaited start);
  Async<NoReply> handle_continue(detail::dynamic_supervisor::RestartAwaited restart);
  Async<void> terminate(const ExitReason& reason);
  std::string format_status() const;

 private:
  struct State;
  NoReply restart(Pid old);
  NoReply restarted(Pid old, Result<Pid> outcome);
  std::unique_ptr<State> state_;
};

}  // namespace coppice::detail
