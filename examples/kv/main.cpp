// coppice_kv: the Redis-protocol server. Prints "port N" once it listens; stops cleanly on
// SIGTERM or SIGINT (the tree shut down in order, then the runtime).
//
//   coppice_kv [--port N] [--host A] [--shards N] [--workers N] [--spin-us N] [--acceptors N]
//              [--observe N]
//
// --observe N serves the observer page and /metrics (coppice/observer.hpp) on 127.0.0.1:N
// (0: the kernel picks), said on standard error.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <coppice/gen_server.hpp>
#include <coppice/observer.hpp>
#include <coppice/runtime.hpp>

#include "server.hpp"

namespace {

int usage() {
  std::fprintf(stderr, "usage: coppice_kv [--port N (0: the kernel picks)] [--host A] [--shards N] [--workers N] [--spin-us N] [--acceptors N] [--observe N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  kv::ServerOptions options;
  coppice::RuntimeOptions runtime_options;
  long observe_port = -1;  // no observer
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage();
    const long value = std::strtol(argv[++i], nullptr, 10);
    if (flag == "--port" && value >= 0 && value < 65536) {
      options.port = static_cast<std::uint16_t>(value);
    } else if (flag == "--host") {
      options.host = argv[i];
    } else if (flag == "--shards" && value > 0) {
      options.partitions = static_cast<std::size_t>(value);
    } else if (flag == "--workers" && value >= 0) {
      runtime_options.workers = static_cast<unsigned>(value);
    } else if (flag == "--spin-us" && value >= 0) {
      runtime_options.spin_before_park = std::chrono::microseconds(value);
    } else if (flag == "--acceptors" && value > 0) {
      options.acceptors = static_cast<unsigned>(value);
    } else if (flag == "--observe" && value >= 0 && value < 65536) {
      observe_port = value;
    } else {
      return usage();
    }
  }

  // Blocked before the runtime starts its threads, which inherit the mask: the signals
  // reach only the sigwait below. A peer that vanishes must not kill us with SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  coppice::Runtime runtime(runtime_options);
  auto server = kv::start(runtime, options);
  if (!server) {
    std::fprintf(stderr, "coppice_kv: %s\n", server.error().to_string().c_str());
    return 1;
  }
  std::optional<coppice::observer::Observer> observer;
  if (observe_port >= 0) {
    coppice::observer::ObserverOptions observe;
    observe.port = static_cast<std::uint16_t>(observe_port);
    auto started = coppice::observer::start(runtime, observe);
    if (!started) {
      std::fprintf(stderr, "coppice_kv: the observer: %s\n", started.error().to_string().c_str());
      return 1;
    }
    observer.emplace(std::move(*started));
    std::fprintf(stderr, "coppice_kv: observer on http://127.0.0.1:%u/\n", static_cast<unsigned>(observer->port()));
  }
  std::printf("port %u\n", static_cast<unsigned>(server->port));
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "coppice_kv: %s, shutting down\n", strsignal(signal));
  // Connections first (rest_for_one stops in reverse start order), then the shards.
  if (observer) observer->stop();
  auto stopped = coppice::stop(runtime, server->supervisor, coppice::ExitReason::shutdown());
  runtime.stop();
  if (!stopped) {
    std::fprintf(stderr, "coppice_kv: stopping the tree: %s\n", stopped.error().to_string().c_str());
    return 1;
  }
  return 0;
}
