// A host's Asio loop calling a GenServer through a HostBridge: the io_context thread watches
// the bridge's eventfd and drains it; no thread ever blocks on a reply.
#include <unistd.h>

#include <asio.hpp>
#include <coppice/coppice.hpp>
#include <coppice/host.hpp>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <thread>

struct Incr {
  long by;
};

class Counter : public coppice::GenServer<Counter> {
 public:
  using calls = coppice::Protocol<Incr>;
  long handle_call(Incr i) { return n_ += i.by; }

 private:
  long n_ = 0;
};

int main() {
  coppice::RuntimeOptions options;
  options.workers = 2;
  coppice::Runtime rt(options);
  if (!Counter::start(rt, {.name = "counter"})) return 1;

  asio::io_context io;
  coppice::HostBridge bridge(rt);
  // Asio owns (and closes) what it watches: give it a duplicate of the bridge's fd. It is
  // watched with a read of the eventfd's counter, not async_wait: Asio's epoll reactor is
  // edge-triggered, and a wait armed after the edge would miss it, while a read is tried at
  // once and finds the counter set.
  asio::posix::stream_descriptor watch(io, ::dup(bridge.fd()));
  std::uint64_t counter = 0;
  bool finished = false;
  std::function<void()> arm = [&] {
    watch.async_read_some(asio::buffer(&counter, sizeof counter), [&](const asio::error_code& error, std::size_t) {
      if (error) return;
      bridge.drain();  // runs the callbacks below, on this (the io_context's) thread
      if (!finished) arm();  // once nothing is armed and nothing is posted, io.run() returns
    });
  };
  arm();

  constexpr long calls = 1000;
  long answered = 0;
  long last = 0;
  bool failed = false;
  auto finish_if_done = [&] {
    if (answered == calls + 1) finished = true;
  };
  // Issued from the io_context's thread, as a connection's handler would: all in flight at once.
  asio::post(io, [&] {
    for (long i = 0; i < calls; ++i) {
      bridge.call<long>("counter", Incr{1}, std::chrono::seconds(5), [&](coppice::Result<long> r) {
        if (!r) {
          std::fprintf(stderr, "call failed: %s\n", r.error().to_string().c_str());
          failed = true;
        } else {
          last = std::max(last, *r);
        }
        ++answered;
        finish_if_done();
      });
    }
    // A server's errors reach the host the same way: here, a name nobody holds.
    bridge.call<long>("nobody", Incr{1}, std::chrono::seconds(5), [&](coppice::Result<long> r) {
      if (r || r.error().kind() != coppice::ErrorKind::noproc) failed = true;
      ++answered;
      finish_if_done();
    });
  });

  std::thread io_thread([&] { io.run(); });
  io_thread.join();
  std::printf("%ld calls answered through Asio, counter = %ld\n", answered, last);
  return !failed && answered == calls + 1 && last == calls ? 0 : 1;
}
