// The runtime's poller: one epoll set per runtime, polled by the workers themselves (the
// scheduler's I/O driver), that reads for armed sockets, accepts for waiting acceptors,
// flushes queued writes, and turns each into a message to the owner.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coppice/net.hpp"
#include "runtime/io_driver.hpp"

namespace coppice::detail {
class RuntimeCore;
}

namespace coppice::net::detail {

class Poller;

// What the poller watches: a connection or a listener. The fd is closed by the destructor,
// which runs once both the handle and the poller have let go (see Poller::retire), so the
// poller never reads an fd number that a new socket has taken meanwhile.
struct Pollable {
  enum class Kind : std::uint8_t { socket, listener };
  Pollable(Kind k, int f, std::shared_ptr<Poller> p) : kind(k), fd(f), poller(std::move(p)) {}
  virtual ~Pollable();
  Pollable(const Pollable&) = delete;
  Pollable& operator=(const Pollable&) = delete;

  const Kind kind;
  const int fd;
  const std::shared_ptr<Poller> poller;
  std::mutex mutex;     // guards what the owner's thread and the poller share (below, per kind)
  bool closed = false;  // close() began: nothing more is armed, read or written
};

struct SocketState final : Pollable {
  SocketState(int f, std::shared_ptr<Poller> p, SocketId i, std::size_t read, std::size_t high)
      : Pollable(Kind::socket, f, std::move(p)), id(i), read_size(read), high_watermark(high) {}

  const SocketId id;
  const std::size_t read_size;
  const std::size_t high_watermark;
  // Relaxed: an owner change needs no ordering with the bytes; whoever sends reads it once.
  std::atomic<std::uint64_t> owner{0};
  // Under `mutex`. The fd is in epoll edge-triggered for reads and writes from the start, so
  // nothing is ever re-armed with a system call: at most one of read_armed and readable holds.
  bool read_armed = false;  // set_active_once was called and no Data/Closed went out since
  bool readable = false;    // an edge came (or a read filled the buffer) while not armed:
                            // the next set_active_once reads at once, on the owner's thread
  bool peer_done = false;   // an edge said the peer closed or failed (RDHUP, HUP, ERR): no
                            // later edge will come, so every read is followed by another
  bool ended = false;       // Closed was delivered (EOF or error): never armed again
  std::string out;          // queued bytes, from out_offset
  std::size_t out_offset = 0;
  std::size_t out_total = 0;  // bytes queued since the last Sent, for the next Sent
};

struct ListenerState final : Pollable {
  ListenerState(int f, std::shared_ptr<Poller> p, const ListenOptions& o, std::uint16_t port_)
      : Pollable(Kind::listener, f, std::move(p)), options(o), port(port_) {}
  ~ListenerState() override;

  const ListenOptions options;
  const std::uint16_t port;
  // Under `mutex`: the acceptors waiting, in the order they asked, and whether epoll is armed.
  std::deque<Pid> waiters;
  bool armed = false;
};

class Poller final : public std::enable_shared_from_this<Poller>, public coppice::detail::IoDriver {
 public:
  explicit Poller(coppice::detail::RuntimeCore& core);
  ~Poller();

  // The poller of `core`, started at the first use; null when the runtime is stopping.
  static std::shared_ptr<Poller> of(coppice::detail::RuntimeCore& core);

  coppice::detail::RuntimeCore& core() { return core_; }
  // Watches a new socket (disarmed) or listener; false when the poller has stopped.
  bool add(const std::shared_ptr<Pollable>& p);
  void arm_listener(ListenerState& l);
  // set_active_once found `s` readable (an edge came while it was not armed): reads on the
  // calling thread and delivers the Data (or Closed) to the owner, or arms `s` when there was
  // nothing to read after all. Under s.mutex, which orders it with the poller's reads.
  void read_now(SocketState& s);
  // The handle has closed `p`: no more events for it; the poller lets go of it after the batch
  // it is handling (events for `p` may be in it), and the fd closes when the last owner goes.
  void retire(Pollable& p);
  SocketId next_id() { return SocketId{next_id_.fetch_add(1, std::memory_order_relaxed)}; }
  // Takes the epoll set from the workers and shuts every socket down: Runtime::stop, once
  // every process has exited.
  void stop();

  // IoDriver: the workers poll the set and hand each batch here.
  int epoll_fd() const override { return epoll_fd_; }
  void handle(const epoll_event* events, int n) override;
  PollerStats stats();

  Socket make_socket(std::shared_ptr<SocketState> s) { return Socket(std::move(s)); }

 private:
  void on_socket(SocketState& s, std::uint32_t events);
  void on_listener(ListenerState& l);
  void deliver(Pid to, Message message);
  // One recv of at most s.read_size into `buffer`, and the Data or Closed for it. False when
  // there was nothing to read (EAGAIN). `more` tells whether more may wait that no new edge
  // will announce: the read filled read_size, or the peer is done (its EOF or error is
  // still to be read).
  bool read_and_deliver(SocketState& s, std::vector<char>& buffer, bool& more);
  void wake();

  coppice::detail::RuntimeCore& core_;
  const int epoll_fd_;
  const int wake_fd_;  // an eventfd: retired sockets to let go of
  std::atomic<std::uint64_t> next_id_{1};
  // The batch's own: one batch at a time (the scheduler's I/O lock).
  std::vector<char> buffer_;  // the read buffer (read_size at most per read)
  std::vector<Pollable*> retiring_;
  std::vector<std::shared_ptr<Pollable>> releasing_;
  std::atomic<std::size_t> bytes_read_{0};
  std::atomic<std::size_t> data_messages_{0};

  std::mutex mutex_;  // guards the rest
  bool stopped_ = false;
  std::unordered_map<Pollable*, std::shared_ptr<Pollable>> watched_;
  std::vector<Pollable*> retired_;  // let go of after the batch that takes them
};

}  // namespace coppice::net::detail
