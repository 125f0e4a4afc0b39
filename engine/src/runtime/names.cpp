// Registered names.
#include "runtime/names.hpp"

#include "runtime/mailbox.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::detail {

Status Names::register_name(std::string name, Pid pid) {
  if (name.empty()) return Error(ErrorKind::invalid_argument, "register_name: the name is empty");
  if (!pid) return Error(ErrorKind::invalid_argument, "register_name: no pid given for '" + name + "'");
  if (core_.table.foreign(pid))
    return Error(ErrorKind::foreign_pid, "register_name: " + core_.table.foreign_text(pid), pid);
  ProcessHeader* p = core_.table.lookup(pid);
  std::unique_lock lock(mutex_);
  if (auto it = by_name_.find(name); it != by_name_.end())
    return Error(ErrorKind::name_taken, "register_name: '" + name + "' is held by " + it->second.to_string(),
                 it->second);
  if (auto it = by_pid_.find(pid); it != by_pid_.end())
    return Error(ErrorKind::already_named, "register_name: " + pid.to_string() + " is already registered as '" +
                                               it->second + "'",
                 pid);
  if (p == nullptr) return Error(ErrorKind::noproc, "register_name: " + pid.to_string() + " is not alive", pid);
  by_name_.emplace(name, pid);
  by_pid_.emplace(pid, name);
  // Dekker with the exiting process, which sets `exiting` and then reads `named`: either it
  // sees the flag and removes the name, or we see it exiting and remove the name here.
  p->named.store(1, std::memory_order_seq_cst);
  if (p->exiting.load(std::memory_order_seq_cst) != 0) {
    by_name_.erase(name);
    by_pid_.erase(pid);
    return Error(ErrorKind::noproc, "register_name: " + pid.to_string() + " is not alive", pid);
  }
  return {};
}

Status Names::unregister_name(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    return Error(ErrorKind::not_registered, "unregister_name: '" + std::string(name) + "' is not registered");
  by_pid_.erase(it->second);
  by_name_.erase(it);
  return {};
}

Pid Names::whereis(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? Pid{} : it->second;
}

std::string Names::name_of(Pid pid) const {
  std::lock_guard lock(mutex_);
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? std::string{} : it->second;
}

void Names::remove_process(Pid pid) {
  std::lock_guard lock(mutex_);
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return;
  by_name_.erase(it->second);
  by_pid_.erase(it);
}

}  // namespace coppice::detail
