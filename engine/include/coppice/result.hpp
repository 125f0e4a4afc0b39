// Errors as values: a kind a program can switch on, a message a person can read.
#pragma once

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"

namespace coppice {

enum class ErrorKind {
  noproc,              // the process (or the process behind a name) is not alive
  unknown_name,        // no process is registered under that name
  name_taken,          // register: another process holds the name (pid() names it)
  already_named,       // register: the process already has another name
  not_registered,      // unregister: the name is not registered
  invalid_argument,    // a value the call cannot accept (an empty name, a null pid, ...)
  timeout,             // no answer in time
  exited,              // the other process exited first; reason() says why
  calling_self,        // a call to the caller itself
  not_in_process,      // a function for processes was called from a plain thread
  blocking_in_process, // a blocking helper was called on a worker thread
  runtime_stopped,     // the runtime is stopping or stopped
  timer_not_found,     // not produced: cancel_timer returns false for a timer that already
                       // fired or was cancelled
  foreign_pid,         // the pid was handed out by another runtime of the program: a call,
                       // link or register_name with it is refused (it may well be alive)
  // Kinds the OTP behaviours return; the runtime itself does not produce them.
  already_started,
  already_present,
  not_found,
  running,
  restarting,
  max_children,
  invalid_child_spec,
  ignore,
  start_error,
  // Parent (SEMANTICS.md 7.3): binds_to names a sibling that is not there; a shutdown group
  // whose members would differ in restart or ephemeral.
  missing_deps,
  non_uniform_shutdown_group,
  // Sockets (coppice/net.hpp): the socket is closed (here, or by the peer); a write would
  // pass the high watermark; the system refused (the message carries errno's text).
  closed,
  would_block,
  io_error,
  // Distribution (coppice/term.hpp, coppice/node.hpp): bytes that are not a term coppice
  // decodes (the message says what and where); a node that cannot be reached, or whose
  // connection was lost (OTP's noconnection); a handshake the other node refused.
  bad_term,
  noconnection,
  not_allowed,
};

std::string_view to_string(ErrorKind kind);

class Error {
 public:
  Error(ErrorKind kind, std::string message, Pid pid = {}, ExitReason reason = {})
      : kind_(kind), message_(std::move(message)), pid_(pid), reason_(std::move(reason)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  Pid pid() const { return pid_; }                      // the pid the error is about, if any
  const ExitReason& reason() const { return reason_; }  // for exited: why
  std::string to_string() const;                        // "kind: message"

  friend bool operator==(const Error& a, ErrorKind k) { return a.kind_ == k; }

 private:
  ErrorKind kind_;
  std::string message_;
  Pid pid_;
  ExitReason reason_;
};

std::ostream& operator<<(std::ostream& out, const Error& error);

// Thrown by Result::value() on an error: inside a process it crashes that process with the
// error in its exit reason, as a failed match would in Erlang.
class BadResultAccess : public std::runtime_error {
 public:
  explicit BadResultAccess(const Error& e) : std::runtime_error(e.to_string()), error_(e) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  explicit operator bool() const { return v_.index() == 0; }
  bool has_value() const { return v_.index() == 0; }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  template <class U>
  T value_or(U&& fallback) const& { return has_value() ? std::get<0>(v_) : T(std::forward<U>(fallback)); }

  // Only on an error (checked): the error.
  const Error& error() const {
    if (has_value()) throw std::logic_error("coppice::Result::error() on a value");
    return std::get<1>(v_);
  }

 private:
  void check() const {
    if (!has_value()) throw BadResultAccess(std::get<1>(v_));
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  explicit operator bool() const { return ok_; }
  bool has_value() const { return ok_; }
  void value() const {
    if (!ok_) throw BadResultAccess(error_);
  }
  const Error& error() const {
    if (ok_) throw std::logic_error("coppice::Result::error() on a value");
    return error_;
  }

 private:
  Error error_{ErrorKind::invalid_argument, {}};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace coppice
