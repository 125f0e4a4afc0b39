// The engine's entry points the public headers call: a runtime's core (RuntimeCore, src/runtime/),
// the running process's, and what the inline API does with it (send, timers, names).
#pragma once

#include <chrono>
#include <coroutine>
#include <string_view>

#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/timer.hpp"

namespace coppice {
class Runtime;
class ServerRef;
struct RegistryName;
struct RequestId;
}  // namespace coppice

namespace coppice::detail {

class RuntimeCore;

// The core of `runtime`: for the engine only (Runtime's friend; runtime.cpp).
RuntimeCore& core_of(Runtime& runtime);
// The live process behind `server` in `core` now, or Pid{} (ServerRef::whereis; server_ref.cpp).
Pid whereis_server(RuntimeCore& core, const ServerRef& server);

RuntimeCore& current_core();  // the runtime of the running process; throws outside one
bool is_alive(RuntimeCore& core, Pid pid);
// The running process's behaviour has logged its crash report: the runtime logs no other.
void mark_crash_reported();
// A supervisor's shutdown of one child in one signal: unlinks `pid` (this side at once, so
// the child's EXIT is not delivered; the child's side, if this side had a link, when the
// signal arrives, before the exit acts), monitors it and sends it an exit signal with `reason`. The DOWN (with the
// child's exit reason, or noproc if it was gone) is guaranteed, as after unlink + monitor +
// exit, which this replaces at a third of the signals.
Ref exit_monitored(Pid pid, ExitReason reason);
Pid whereis(RuntimeCore& core, std::string_view name);
void log(RuntimeCore& core, std::string_view line);
RuntimeCore* current_core_or_null() noexcept;
void send_envelope(RuntimeCore& core, Pid to, Envelope* e);
// Sends `e` as the reply to the request `to` (Addressing::alias with its ref). Sent by the
// process that holds the call's monitor (the server, replying itself), it drops that monitor
// and says so in the reply (Envelope::carries_monitor), so the caller sends no demonitor.
void send_reply_envelope(RuntimeCore& core, const From& to, Envelope* e);
// The running process's monitor `ref` ends with `answer`: if the answer carries it (its
// sender dropped its side, send_reply_envelope), only this side goes; else a demonitor with
// flush.
void end_monitor(const Message& answer, Ref ref);
Status send_envelope_to_name(RuntimeCore& core, std::string_view name, Envelope* e);
void start_activity(std::coroutine_handle<> root, bool body);

RequestId send_request_envelope(Pid to, Envelope* request);
TimerRef start_timer(RuntimeCore& core, std::chrono::milliseconds delay, Pid to, Envelope* e);
bool cancel_timer(RuntimeCore& core, TimerRef timer);

// Implemented by the Registry (registry.cpp).
Pid registry_whereis(RuntimeCore& core, const RegistryName& name);
Status registry_register_self(const RegistryName& name);
void registry_unregister_self(const RegistryName& name);
// Implemented by Parent (parent_children.cpp): the live child `id` of the live parent `parent`.
Pid parent_child_whereis(RuntimeCore& core, Pid parent, std::string_view id);

}  // namespace coppice::detail
