// Error kinds and their printing.
#include "coppice/result.hpp"

#include <ostream>

namespace coppice {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::noproc: return "noproc";
    case ErrorKind::unknown_name: return "unknown_name";
    case ErrorKind::name_taken: return "name_taken";
    case ErrorKind::already_named: return "already_named";
    case ErrorKind::not_registered: return "not_registered";
    case ErrorKind::invalid_argument: return "invalid_argument";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::exited: return "exited";
    case ErrorKind::calling_self: return "calling_self";
    case ErrorKind::not_in_process: return "not_in_process";
    case ErrorKind::blocking_in_process: return "blocking_in_process";
    case ErrorKind::runtime_stopped: return "runtime_stopped";
    case ErrorKind::timer_not_found: return "timer_not_found";
    case ErrorKind::foreign_pid: return "foreign_pid";
    case ErrorKind::already_started: return "already_started";
    case ErrorKind::already_present: return "already_present";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::running: return "running";
    case ErrorKind::restarting: return "restarting";
    case ErrorKind::max_children: return "max_children";
    case ErrorKind::invalid_child_spec: return "invalid_child_spec";
    case ErrorKind::ignore: return "ignore";
    case ErrorKind::start_error: return "start_error";
    case ErrorKind::missing_deps: return "missing_deps";
    case ErrorKind::non_uniform_shutdown_group: return "non_uniform_shutdown_group";
    case ErrorKind::closed: return "closed";
    case ErrorKind::would_block: return "would_block";
    case ErrorKind::io_error: return "io_error";
    case ErrorKind::bad_term: return "bad_term";
    case ErrorKind::noconnection: return "noconnection";
    case ErrorKind::not_allowed: return "not_allowed";
  }
  return "unknown";
}

std::string Error::to_string() const { return std::string(coppice::to_string(kind_)) + ": " + message_; }

std::ostream& operator<<(std::ostream& out, const Error& error) { return out << error.to_string(); }

}  // namespace coppice
