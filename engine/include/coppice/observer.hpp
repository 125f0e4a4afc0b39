// The live observer: a small HTTP server on loopback, run by the runtime's own sockets, that
// serves a page (the supervision trees, the process list, charts), JSON and Prometheus /metrics.
// A separate library (coppice::observer, which links prometheus-cpp): the engine does not need it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coppice/result.hpp"
#include "coppice/server_ref.hpp"

namespace coppice {
class Runtime;
}

namespace coppice::observer {

struct ObserverOptions {
  std::uint16_t port = 0;              // 0: the kernel picks one (Observer::port() says which)
  std::string address = "127.0.0.1";  // an IPv4 address; keep it on loopback
  // The supervision trees to draw. Empty: every top-level supervisor of the listing (a
  // Supervisor, DynamicSupervisor, PartitionSupervisor or Parent whose parent is none of these).
  std::vector<ServerRef> roots;
};

namespace detail {
struct ObserverState;
}

// A running observer. Move-only; stop() (or the destructor) closes it: its listener, its
// connections and its thread. Stop it before the Runtime it observes is destroyed.
class Observer {
 public:
  Observer() = default;
  Observer(Observer&&) noexcept;
  Observer& operator=(Observer&&) noexcept;
  ~Observer();

  std::uint16_t port() const;
  // Idempotent; from a plain thread (it waits for the observer's processes to end).
  void stop();
  explicit operator bool() const { return state_ != nullptr; }

 private:
  friend Result<Observer> start(Runtime& runtime, ObserverOptions options);
  explicit Observer(std::shared_ptr<detail::ObserverState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ObserverState> state_;
};

// Listens on options.address:options.port and serves, under a supervisor of its own (left out
// of the page's trees):
//   GET /, /app.js, /app.css   the page (built into the library: no network needed)
//   GET /api/processes         every process with details (list_processes)
//   GET /api/process?id=N      one process (N: Pid::bits) with its server state (sys::get_status)
//   GET /api/tree              the supervision trees
//   GET /api/metrics           metrics() and the mailbox-depth distribution
//   GET /metrics               the same in Prometheus' text format (0.0.4)
// The listing, the trees and the states are gathered on a thread the observer owns, never
// inside a process. From a plain thread. Errors: what Listener::listen answers.
Result<Observer> start(Runtime& runtime, ObserverOptions options = {});

}  // namespace coppice::observer
