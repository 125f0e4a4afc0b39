// Per-runtime objects for the layers above the runtime (a Registry's tables, say): one T per
// runtime, made on first use, destroyed with the runtime after every process has exited.
#pragma once

#include <memory>
#include <typeinfo>

#include "coppice/process.hpp"

namespace coppice::detail {

std::shared_ptr<void> runtime_service(RuntimeCore& core, const std::type_info& type, std::shared_ptr<void> (*make)());

// The runtime's T (T is default-constructible and thread-safe: any thread may use it).
template <class T>
T& service(RuntimeCore& core) {
  auto make = []() -> std::shared_ptr<void> { return std::make_shared<T>(); };
  // The runtime keeps the object alive; the pointer is stable until the runtime is gone.
  return *static_cast<T*>(runtime_service(core, typeid(T), make).get());
}

}  // namespace coppice::detail
