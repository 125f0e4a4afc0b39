// A C++ type's name as a reader writes it, for exit reasons and diagnostics (message.cpp).
#pragma once

#include <string>

namespace coppice::detail {

// The demangled form of a std::type_info::name(); the name itself when it cannot be demangled.
std::string demangle(const char* name);

}  // namespace coppice::detail
