// The supervision tree as data (coppice/observe.hpp): which_children, all the way down, with
// each running child's listing entry (behaviour, label, name).
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coppice/observe.hpp"
#include "coppice/runtime.hpp"
#include "coppice/supervisor.hpp"
#include "otp/dynamic_supervisor_server.hpp"
#include "otp/supervision.hpp"
#include "runtime/running.hpp"

namespace coppice {

namespace detail {
std::optional<ProcessEntry> listing_entry(RuntimeCore& core, Pid pid);  // observe.cpp
}

namespace {
using Clock = std::chrono::steady_clock;

// Fills what the listing knows of a running node.
void describe(detail::RuntimeCore& core, TreeNode& node) {
  if (!node.pid) return;
  std::optional<ProcessEntry> e = detail::listing_entry(core, node.pid);
  if (!e) return;  // gone since its supervisor answered: listed as the supervisor gave it
  node.behaviour = std::string(e->behaviour);
  node.label = std::move(e->label);
  node.registered_name = std::move(e->registered_name);
}

// A DynamicSupervisor (and so a TaskSupervisor) answers its own which_children request;
// Supervisor, PartitionSupervisor and Parent answer the Supervisor's.
Message which_children_request(std::string_view behaviour) {
  if (behaviour == DynamicSupervisor::behaviour) return Message::of(detail::dynamic_supervisor::WhichChildren{});
  return Message::of(detail::SupervisorWhichChildren{});
}

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left > std::chrono::milliseconds::zero() ? left : std::chrono::milliseconds::zero();
}

// A child as its supervisor listed it, with what the listing knows of it when it runs.
TreeNode node_of(detail::RuntimeCore& core, ChildInfo&& c) {
  TreeNode child;
  child.id = std::move(c.id);
  child.pid = c.pid;
  child.restarting = c.restarting;
  child.type = c.type;
  describe(core, child);
  return child;
}

const Error& walk_timed_out() {
  static const Error e(ErrorKind::timeout, "supervision_tree: not asked, the walk's timeout ran out");
  return e;
}

// Fills node's children; the error of its own which_children if that failed (also in
// node.error, for a node below the root).
std::optional<Error> expand(Runtime& rt, TreeNode& node, const ServerRef& at, Clock::time_point deadline) {
  const auto left = left_until(deadline);
  if (left == std::chrono::milliseconds::zero()) {
    node.error = walk_timed_out().to_string();
    return walk_timed_out();
  }
  Result<std::vector<ChildInfo>> children = detail::reply_as<std::vector<ChildInfo>>(
      detail::call_blocking(rt, at, which_children_request(node.behaviour), left), Pid{});
  if (!children) {
    node.error = children.error().to_string();
    return children.error();
  }
  for (ChildInfo& c : *children) {
    TreeNode child = node_of(detail::core_of(rt), std::move(c));
    if (child.type == ChildType::supervisor && child.pid) expand(rt, child, ServerRef(child.pid), deadline);
    node.children.push_back(std::move(child));
  }
  return std::nullopt;
}

Async<std::optional<Error>> expand_async(TreeNode& node, ServerRef at, Clock::time_point deadline) {
  const auto left = left_until(deadline);
  if (left == std::chrono::milliseconds::zero()) {
    node.error = walk_timed_out().to_string();
    co_return walk_timed_out();
  }
  Result<std::vector<ChildInfo>> children =
      co_await detail::call_ref<std::vector<ChildInfo>>(at, which_children_request(node.behaviour), left);
  if (!children) {
    node.error = children.error().to_string();
    co_return children.error();
  }
  for (ChildInfo& c : *children) {
    TreeNode child = node_of(*detail::running_core(), std::move(c));
    if (child.type == ChildType::supervisor && child.pid) co_await expand_async(child, ServerRef(child.pid), deadline);
    node.children.push_back(std::move(child));
  }
  co_return std::nullopt;
}
}  // namespace

Result<TreeNode> supervision_tree(Runtime& rt, const ServerRef& root, std::chrono::milliseconds timeout) {
  TreeNode node;
  node.type = ChildType::supervisor;
  node.pid = root.whereis(rt);
  if (!node.pid) return Error(ErrorKind::noproc, "supervision_tree: no process is " + root.to_string());
  describe(detail::core_of(rt), node);
  if (std::optional<Error> e = expand(rt, node, root, Clock::now() + timeout)) return *e;
  return node;
}

Async<Result<TreeNode>> supervision_tree(ServerRef root, std::chrono::milliseconds timeout) {
  TreeNode node;
  node.type = ChildType::supervisor;
  node.pid = root.whereis();
  if (!node.pid) co_return Error(ErrorKind::noproc, "supervision_tree: no process is " + root.to_string());
  describe(*detail::running_core(), node);
  if (std::optional<Error> e = co_await expand_async(node, root, Clock::now() + timeout)) co_return *e;
  co_return node;
}

}  // namespace coppice
