// ServerRef: resolving and registering the three kinds of server name.
#include "coppice/server_ref.hpp"

#include "coppice/runtime.hpp"

namespace coppice {

namespace {
struct Resolve {
  detail::RuntimeCore& core;
  Pid operator()(std::monostate) const { return {}; }
  Pid operator()(Pid p) const { return detail::is_alive(core, p) ? p : Pid{}; }
  Pid operator()(const std::string& name) const { return detail::whereis(core, name); }
  Pid operator()(const RegistryName& name) const { return detail::registry_whereis(core, name); }
  Pid operator()(const ParentChildName& name) const {
    const Pid parent = name.parent ? detail::whereis_server(core, *name.parent) : Pid{};
    return parent ? detail::parent_child_whereis(core, parent, name.id) : Pid{};
  }
};
}  // namespace

ServerRef ServerRef::child_of(ServerRef parent, std::string id) {
  return ServerRef(ParentChildName{std::make_shared<const ServerRef>(std::move(parent)), std::move(id)});
}

Pid ServerRef::whereis() const { return std::visit(Resolve{detail::current_core()}, where_); }
Pid ServerRef::whereis(Runtime& runtime) const { return std::visit(Resolve{detail::core_of(runtime)}, where_); }

Pid detail::whereis_server(RuntimeCore& core, const ServerRef& server) { return std::visit(Resolve{core}, server.where_); }

Status ServerRef::register_self() const {
  if (is_local_name()) {
    Status s = register_name(local_name());
    if (!s && s.error().kind() == ErrorKind::name_taken)
      return Error(ErrorKind::already_started, "the name " + to_string() + " is taken by " + s.error().pid().to_string(),
                   s.error().pid());
    return s;
  }
  if (is_registry_name()) return detail::registry_register_self(registry_name());
  if (is_parent_child())
    return Error(ErrorKind::invalid_argument,
                 "a process cannot register itself as " + to_string() + ": the parent keeps that name for its child");
  return {};
}

void ServerRef::unregister_self() const {
  if (is_local_name()) {
    (void)unregister_name(local_name());
  } else if (is_registry_name()) {
    detail::registry_unregister_self(registry_name());
  }
}

std::string ServerRef::to_string() const {
  if (is_pid()) return pid().to_string();
  if (is_local_name()) {
    std::string s = "'";
    s.append(local_name());
    s.push_back('\'');
    return s;
  }
  if (is_registry_name()) {
    std::string s = "{via Registry '";
    s.append(registry_name().registry);
    s.append("' '");
    s.append(registry_name().key);
    s.append("'}");
    return s;
  }
  if (is_parent_child()) {
    std::string s = "{child '";
    s.append(parent_child().id);
    s.append("' of ");
    s.append(parent_child().parent ? parent_child().parent->to_string() : "(no parent)");
    s.push_back('}');
    return s;
  }
  return "(no server)";
}

}  // namespace coppice
