// ExitReason: construction, comparison, printing.
#include "coppice/exit_reason.hpp"

#include <ostream>

namespace coppice {

ExitReason ExitReason::shutdown(std::string detail) {
  return ExitReason{Kind::shutdown, std::make_shared<const Detail>(Detail{{}, std::move(detail)})};
}
ExitReason ExitReason::error(std::string type, std::string what) {
  return ExitReason{Kind::error, std::make_shared<const Detail>(Detail{std::move(type), std::move(what)})};
}
ExitReason ExitReason::other(std::string reason) {
  return ExitReason{Kind::other, std::make_shared<const Detail>(Detail{{}, std::move(reason)})};
}

std::string_view ExitReason::detail() const { return detail_ ? std::string_view(detail_->text) : std::string_view{}; }
std::string_view ExitReason::error_type() const {
  return detail_ ? std::string_view(detail_->type) : std::string_view{};
}

bool operator==(const ExitReason& a, const ExitReason& b) {
  if (a.kind_ != b.kind_) return false;
  if (a.detail_ == b.detail_) return true;
  if (!a.detail_ || !b.detail_) return false;
  return a.detail_->type == b.detail_->type && a.detail_->text == b.detail_->text;
}

std::string ExitReason::to_string() const {
  switch (kind_) {
    case Kind::normal: return "normal";
    case Kind::shutdown: return detail_ ? "{shutdown, " + detail_->text + "}" : "shutdown";
    case Kind::kill: return "kill";
    case Kind::killed: return "killed";
    case Kind::noproc: return "noproc";
    case Kind::timeout: return "timeout";
    case Kind::error: return "{error, " + detail_->type + ": " + detail_->text + "}";
    case Kind::other: return detail_->text;
  }
  return "?";
}

std::ostream& operator<<(std::ostream& out, const ExitReason& reason) { return out << reason.to_string(); }

}  // namespace coppice
