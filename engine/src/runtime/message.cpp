// Printing pids, refs and message types.
#include <cxxabi.h>

#include <cstdlib>
#include <ostream>

#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "runtime/demangle.hpp"

namespace coppice {

std::string Pid::to_string() const {
  return "<0." + std::to_string(slot()) + "." + std::to_string(generation()) + ">";
}
std::string Ref::to_string() const { return "#Ref<0." + std::to_string(bits_) + ">"; }
std::ostream& operator<<(std::ostream& out, Pid pid) { return out << pid.to_string(); }
std::ostream& operator<<(std::ostream& out, Ref ref) { return out << ref.to_string(); }

std::string detail::demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d != nullptr) ? d : name;
  std::free(d);
  return out;
}

std::string Message::type_name() const { return e_ ? detail::demangle(e_->type()->name()) : std::string("(empty)"); }

std::string Message::mismatch(const char* wanted) const {
  return "message holds " + type_name() + ", not " + detail::demangle(wanted);
}

}  // namespace coppice
