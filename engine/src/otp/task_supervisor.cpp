// TaskSupervisor's non-template parts.
#include "coppice/task_supervisor.hpp"

namespace coppice {

namespace {
std::vector<Pid> running(const std::vector<DynamicSupervisor::ChildInfo>& children) {
  std::vector<Pid> pids;
  for (const auto& c : children)
    if (!c.restarting) pids.push_back(c.pid);
  return pids;
}
}  // namespace

Async<Result<std::vector<Pid>>> TaskSupervisor::children(ServerRef supervisor) {
  auto which = DynamicSupervisor::which_children(supervisor);
  Result<std::vector<DynamicSupervisor::ChildInfo>> r = co_await which;
  if (!r) co_return r.error();
  co_return running(*r);
}

Result<std::vector<Pid>> TaskSupervisor::children(Runtime& rt, const ServerRef& supervisor) {
  Result<std::vector<DynamicSupervisor::ChildInfo>> r = DynamicSupervisor::which_children(rt, supervisor);
  if (!r) return r.error();
  return running(*r);
}

}  // namespace coppice
