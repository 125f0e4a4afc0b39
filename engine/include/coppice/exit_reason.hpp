// Why a process exited: OTP's exit reasons as one comparable, printable value type.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace coppice {

class ExitReason {
 public:
  enum class Kind : std::uint8_t {
    normal,    // finished its work; links to non-trapping processes ignore it
    shutdown,  // asked to stop (optionally with a detail: OTP's {shutdown, Term})
    kill,      // the untrappable kill, as sent by exit(pid, kill)
    killed,    // what a killed process dies with and propagates
    noproc,    // the process did not exist
    timeout,   // a call or a shutdown timed out
    error,     // an exception escaped a callback: its type and what()
    other,     // any other reason, given by the program as text
  };

  ExitReason() = default;  // normal
  static ExitReason normal() { return ExitReason{Kind::normal}; }
  static ExitReason shutdown() { return ExitReason{Kind::shutdown}; }
  static ExitReason shutdown(std::string detail);
  static ExitReason kill() { return ExitReason{Kind::kill}; }
  static ExitReason killed() { return ExitReason{Kind::killed}; }
  static ExitReason noproc() { return ExitReason{Kind::noproc}; }
  static ExitReason timeout() { return ExitReason{Kind::timeout}; }
  static ExitReason error(std::string type, std::string what);
  static ExitReason other(std::string reason);

  Kind kind() const { return kind_; }
  bool is_normal() const { return kind_ == Kind::normal; }
  bool is_kill() const { return kind_ == Kind::kill; }
  // normal, shutdown and shutdown with a detail: not logged as errors, and a transient child
  // that exits with one of them is not restarted.
  bool is_clean() const {
    return kind_ == Kind::normal || kind_ == Kind::shutdown;
  }
  bool has_detail() const { return detail_ != nullptr; }
  // shutdown's detail, other's text, or error's what(); empty otherwise.
  std::string_view detail() const;
  // error's exception type (demangled); empty otherwise.
  std::string_view error_type() const;

  std::string to_string() const;
  friend bool operator==(const ExitReason& a, const ExitReason& b);

 private:
  struct Detail {
    std::string type;  // for error
    std::string text;
  };
  explicit ExitReason(Kind k) : kind_(k) {}
  ExitReason(Kind k, std::shared_ptr<const Detail> d) : kind_(k), detail_(std::move(d)) {}

  Kind kind_ = Kind::normal;
  std::shared_ptr<const Detail> detail_;  // shared: one reason is copied to every link
};

std::ostream& operator<<(std::ostream& out, const ExitReason& reason);

}  // namespace coppice
