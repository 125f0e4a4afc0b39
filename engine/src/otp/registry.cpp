// Registry: placeholder hooks until the Registry lands (same session); every lookup misses.
#include "coppice/server_ref.hpp"

namespace coppice::detail {
Pid registry_whereis(RuntimeCore&, const RegistryName&) { return {}; }
Status registry_register_self(const RegistryName& name) {
  return Error(ErrorKind::not_found, "no Registry named '" + name.registry + "'");
}
void registry_unregister_self(const RegistryName&) {}
}  // namespace coppice::detail
