// The messages the runtime delivers on a process's behalf: trapped exits and monitor DOWNs.
#pragma once

#include <string>
#include <vector>

#include "coppice/exit_reason.hpp"
#include "coppice/pid.hpp"

namespace coppice {

// A trapped exit signal, OTP's {'EXIT', From, Reason}: a linked process died, or some
// process called exit(self, reason), while this process traps exits.
struct Exit {
  Pid from;
  ExitReason reason;
};

// OTP's {'DOWN', Ref, process, Pid, Reason}: the monitored process is gone. A monitor of a
// process that was already gone gives reason noproc at once.
struct Down {
  Ref ref;
  Pid pid;            // the process that went down (Pid{} for a name nobody held)
  ExitReason reason;
  std::string name{};  // for a monitor of a registered name: the name (OTP's {Name, Node})
};

// A snapshot of one process, as OTP's process_info/2 gives it.
struct ProcessInfo {
  Pid pid;
  std::size_t message_queue_len = 0;  // messages received but not yet handled
  std::vector<Pid> links;
  std::vector<Pid> monitors;      // processes this one monitors
  std::vector<Pid> monitored_by;  // processes that monitor this one
  std::string registered_name;    // empty if none
  bool trap_exit = false;
  // Bytes, about: the header and object, the link and monitor tables, and the envelopes
  // queued (each counted at its header's size: a payload's own heap is not seen).
  std::size_t memory = 0;
};

}  // namespace coppice
