// Proxies: a local process that stands for a process of another node (coppice/node.hpp). The
// distribution library spawns one per remote pid in use (SpawnOptions::proxy); local processes
// send to it, link to it, monitor it and exit it as any process, and the proxy puts each of those
// on the wire. What comes from the wire the node applies on the proxy's behalf with the calls
// below, from its reader thread, so that a remote process's messages and signals to one local
// process keep their order (they all go straight into that process's mailbox).
//
// The engine's side is small: the signals that reach a proxy are kept as for any process (its
// links and the monitors on it, so that its own exit tells them, as a remote death or a lost
// connection must), and each is also handed to the proxy's code as a ProxySignal message. No exit
// signal kills a proxy: it exits when its node says the remote process is gone.
#pragma once

#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"

namespace coppice {
class Runtime;
}

namespace coppice::detail {

// What a local process did to a proxy, as the proxy's code gets it.
struct ProxySignal {
  enum class Kind : std::uint8_t {
    link,         // `from` linked to the proxy
    unlink,       // `from` unlinked from it
    monitor,      // `from` monitors it; `ref` names the monitor
    demonitor,    // `from` took the monitor `ref` off
    exit_linked,  // `from`, linked to it, exited with `reason`
    exit,         // `from` sent it an exit signal (exit/2) with `reason`
    down,         // `from`, which the proxy's remote process monitors (proxy_monitor), exited
  };
  Kind kind;
  Pid from;
  Ref ref;
  ExitReason reason;
};

// The signals of the remote process a proxy stands for, applied from any thread:
// link: the remote process linked `local` (both sides get the link: the proxy's is not reported
// back to it as a ProxySignal). A dead `local` answers the proxy with exit_linked noproc.
void proxy_link(Runtime& runtime, Pid proxy, Pid local);
// unlink: the link is gone on both sides.
void proxy_unlink(Runtime& runtime, Pid proxy, Pid local);
// exit/2 from the remote process to `local`, as from the proxy; or, `linked`, the exit signal of a
// link between them.
void proxy_exit(Runtime& runtime, Pid proxy, Pid local, ExitReason reason, bool linked = false);
// The remote process monitors `local`: `local`'s DOWN reaches the proxy as a ProxySignal::down
// with `ref` (noproc at once if `local` is gone).
void proxy_monitor(Runtime& runtime, Pid proxy, Pid local, Ref ref);
void proxy_demonitor(Runtime& runtime, Pid proxy, Pid local, Ref ref);
// A request (a GenServer call) to `local` in the proxy's name: the reply reaches the proxy as a
// message addressed to the alias `ref` (Addressing::alias), which a proxy keeps, where any other
// process drops a reply it no longer waits for.
void proxy_request(Runtime& runtime, Pid proxy, Pid local, Ref ref, Message request);
// A GenServer cast to `local` (its handle_cast gets `message`).
void proxy_cast(Runtime& runtime, Pid local, Message message);
Ref proxy_make_ref(Runtime& runtime);
// In the running proxy's turn: whether anything more is waiting for it (in its queue or its
// mailbox), so that it may hold a write to join it with the next (it must make sure of a later
// turn: a signal it is not handed may be all there is).
bool proxy_more_queued();
// Links `a` and `b` from a third party: each gets the other's link signal, as if each had linked
// (a proxy among them reports its link to its remote process). A dead one answers noproc.
void link_both(Runtime& runtime, Pid a, Pid b);

}  // namespace coppice::detail
