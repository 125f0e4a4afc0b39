// Registered names: name -> pid and back. A name is released when its process exits, before
// the process's exit signals and DOWNs go out.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coppice/pid.hpp"
#include "coppice/result.hpp"

namespace coppice::detail {

class RuntimeCore;

class Names {
 public:
  explicit Names(RuntimeCore& core) : core_(core) {}

  Status register_name(std::string name, Pid pid);  // caller online in the epoch domain
  Status unregister_name(std::string_view name);
  Pid whereis(std::string_view name) const;
  std::string name_of(Pid pid) const;
  void remove_process(Pid pid);  // at exit

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  RuntimeCore& core_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Pid, Hash, std::equal_to<>> by_name_;
  std::unordered_map<Pid, std::string> by_pid_;
};

}  // namespace coppice::detail
