// ServerRef: where a server is. A pid, a locally registered name, a key in a Registry
// (Elixir's {:via, Registry, {registry, key}}), or the child with a given id of a Parent (the
// `parent` library's {:via, Parent.Client, {parent, id}}); every behaviour accepts one
// wherever OTP accepts a server name: to call, cast or send to it, and (but the last) to
// start under it and in a child spec.
#pragma once

#include <any>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"

namespace coppice {

// A key in a unique Registry, used as a name. `value` is what the registration stores
// (Elixir's {registry, key, value} form); empty by default.
struct RegistryName {
  std::string registry;
  std::string key;
  std::any value{};
};

class ServerRef;

// The child `id` of the Parent at `parent`: resolved through the parent's own table, so it
// follows the child across restarts. Kept by the parent, not registered by the child.
struct ParentChildName {
  std::shared_ptr<const ServerRef> parent;
  std::string id;
};

class ServerRef {
 public:
  ServerRef() = default;
  ServerRef(Pid pid) : where_(pid) {}
  ServerRef(std::string name) : where_(std::move(name)) {}
  ServerRef(std::string_view name) : where_(std::string(name)) {}
  ServerRef(const char* name) : where_(std::string(name)) {}
  ServerRef(RegistryName name) : where_(std::move(name)) {}
  ServerRef(ParentChildName name) : where_(std::move(name)) {}
  // {:via, Registry, {registry, key}}
  static ServerRef via(std::string registry, std::string key, std::any value = {}) {
    return ServerRef(RegistryName{std::move(registry), std::move(key), std::move(value)});
  }
  // The child `id` of the Parent at `parent` (a pid or a name).
  static ServerRef child_of(ServerRef parent, std::string id);

  bool empty() const { return std::holds_alternative<std::monostate>(where_); }
  bool is_pid() const { return std::holds_alternative<Pid>(where_); }
  bool is_local_name() const { return std::holds_alternative<std::string>(where_); }
  bool is_registry_name() const { return std::holds_alternative<RegistryName>(where_); }
  bool is_parent_child() const { return std::holds_alternative<ParentChildName>(where_); }
  Pid pid() const { return is_pid() ? std::get<Pid>(where_) : Pid{}; }
  const std::string& local_name() const { return std::get<std::string>(where_); }
  const RegistryName& registry_name() const { return std::get<RegistryName>(where_); }
  const ParentChildName& parent_child() const { return std::get<ParentChildName>(where_); }

  // The live process behind it now, or Pid{} (a dead pid resolves to Pid{} too: a name
  // lookup never returns a dead pid).
  // whereis() asks the running process's runtime; whereis(runtime) asks `runtime`, from any thread.
  Pid whereis() const;
  Pid whereis(Runtime& runtime) const;

  // Registers the running process under this name (local or Registry). A name held by a
  // live process: already_started with the holder's pid. A pid or an empty ref: ok, nothing.
  // A child_of name: invalid_argument (its parent keeps it: start the child there with that id).
  Status register_self() const;
  // Releases the name the running process registered with register_self (best effort).
  void unregister_self() const;

  // <0.12.3>, 'name', {via Registry 'reg' 'key'} or {child 'id' of 'parent'}: for error
  // messages and reports.
  std::string to_string() const;

 private:
  friend Pid detail::whereis_server(detail::RuntimeCore& core, const ServerRef& server);
  std::variant<std::monostate, Pid, std::string, RegistryName, ParentChildName> where_;
};

}  // namespace coppice
