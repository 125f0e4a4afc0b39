// Child specs: names and validation (the shutdown protocol and restart intensity: supervision.cpp).
#include "coppice/child_spec.hpp"

namespace coppice {

std::string_view to_string(Restart r) {
  switch (r) {
    case Restart::permanent: return "permanent";
    case Restart::transient: return "transient";
    case Restart::temporary: return "temporary";
  }
  return "?";
}

std::string_view to_string(ChildType t) { return t == ChildType::worker ? "worker" : "supervisor"; }

std::string Shutdown::to_string() const {
  switch (kind_) {
    case Kind::brutal_kill: return "brutal_kill";
    case Kind::infinity: return "infinity";
    case Kind::timeout: return std::to_string(time_.count()) + " ms";
  }
  return "?";
}

std::string detail::duration_text(std::chrono::nanoseconds t) {
  using namespace std::chrono;
  if (t % milliseconds(1) == t.zero()) return std::to_string(duration_cast<milliseconds>(t).count()) + " ms";
  if (t % microseconds(1) == t.zero()) return std::to_string(duration_cast<microseconds>(t).count()) + " us";
  return std::to_string(t.count()) + " ns";
}

Error detail::invalid_field(ErrorKind kind, std::string_view what, std::string_view field, std::string_view problem) {
  std::string m = "invalid ";
  m.append(what);
  m.append(": ");
  m.append(field);
  m.append(": ");
  m.append(problem);
  return Error(kind, std::move(m));
}

namespace {
Error invalid(std::string_view field, std::string_view problem) {
  return detail::invalid_field(ErrorKind::invalid_child_spec, "child spec", field, problem);
}
}  // namespace

Status validate(const ChildSpec& spec, bool id_required) {
  if (id_required && spec.id.empty()) return invalid("id", "missing (every child of a Supervisor needs an id)");
  if (!spec.start) return invalid("start", "missing (no start function)");
  if (spec.shutdown && spec.shutdown->kind() == Shutdown::Kind::timeout && spec.shutdown->time().count() < 0)
    return invalid("shutdown", "a timeout must be 0 ms or more, not " + spec.shutdown->to_string());
  if (spec.significant && spec.restart == Restart::permanent)
    return invalid("significant", "a permanent child cannot be significant (bad_combination)");
  return {};
}

}  // namespace coppice
