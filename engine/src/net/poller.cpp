// The runtime's poller: its epoll set, the batches the workers hand it, and how a socket's
// life ends safely.
//
// Who polls: the workers (Scheduler::attach_io). A worker with nothing to run sleeps in
// epoll_wait on this set when no other does; busy ones poll it without waiting now and then.
// The events of a wait are handled on the worker that waited, so the owner it delivers to
// runs there next, with no thread hop and no wake-up: a dedicated poller thread cost the
// example server a wake-up of a parked worker per read (a fifth of its CPU in futex calls).
//
// Why no slot table: a handle that closes its socket removes the fd from epoll (EPOLL_CTL_DEL)
// and hands the object to the poller (retire). The poller lets go of it only after the batch
// that was being handled when it was retired: events for it can be in that batch, never in a
// later one (after the DEL, epoll_wait reports nothing for the fd). So the pointer in
// epoll_data is valid whenever it is read: the batch boundary is an epoch, since one worker
// at a time polls and handles (the scheduler's I/O lock is held from the wait to the end of
// the batch). The fd
// itself is closed by the object's destructor, so its number is not reused while the poller
// may still read it; the handle's shutdown() makes the close visible to the peer at once.
//
// Why edge-triggered, with reads on the owner's side too: a socket is added once with every interest
// (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) and never modified, so active-once costs no
// epoll_ctl per read (it was a tenth of the example server's CPU). An edge that finds the
// read armed is read by the poller; one that finds it disarmed sets `readable`, and the
// owner's next set_active_once reads at once on its own thread (no hop through the poller).
// Order of the Data of one socket: the poller reads only when armed, the owner only when
// readable, and the two never hold at once; the poller marks a socket readable (after a read
// that filled the buffer) only after it has delivered that read's Data, and the owner reads
// and delivers under the socket's mutex. Writes: a send that meets a full kernel buffer
// queues the rest under the mutex; the kernel reports the space it frees later as a new
// EPOLLOUT edge, which the poller handles after the mutex is released.
#include "net/poller.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "coppice/service.hpp"
#include "runtime/runtime_core.hpp"

namespace coppice::net::detail {

namespace {

// True while read_now runs on this thread (the socket's mutex is held already).
thread_local bool reading_on_owner_thread = false;

// The runtime's poller, made at the first socket (a runtime without sockets polls nothing).
struct PollerHolder {
  std::mutex mutex;
  std::shared_ptr<Poller> poller;
  bool refused = false;  // the runtime was stopping: no poller any more
};

Error io_error(const char* what, int err) {
  return Error(ErrorKind::io_error, std::string(what) + ": " + std::strerror(err));
}

}  // namespace

Pollable::~Pollable() {
  if (fd >= 0) ::close(fd);
}

ListenerState::~ListenerState() = default;

Poller::Poller(coppice::detail::RuntimeCore& core)
    : core_(core), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "coppice::net poller");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // null: the wake-up eventfd
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

Poller::~Poller() {
  stop();
  ::close(epoll_fd_);
  ::close(wake_fd_);
}

std::shared_ptr<Poller> Poller::of(coppice::detail::RuntimeCore& core) {
  PollerHolder& holder = coppice::detail::service<PollerHolder>(core);
  std::lock_guard lock(holder.mutex);
  if (holder.poller || holder.refused) return holder.poller;
  if (core.stopping.load(std::memory_order_acquire)) {
    holder.refused = true;
    return nullptr;
  }
  auto poller = std::make_shared<Poller>(core);
  // The workers poll it from now on; no worker, no sockets (an eventfd or epoll_ctl refused).
  if (!core.scheduler.attach_io(poller.get())) return nullptr;
  // Attached before the hook is registered: a stop that runs the hooks meanwhile finds the
  // registration refused, and the stop below detaches it.
  // The hook holds the poller weakly: the holder (a service of the runtime) owns it.
  std::weak_ptr<Poller> weak = poller;
  if (!core.at_stop([weak] {
        if (auto p = weak.lock()) p->stop();
      })) {
    poller->stop();
    holder.refused = true;
    return nullptr;
  }
  holder.poller = poller;
  return poller;
}

bool Poller::add(const std::shared_ptr<Pollable>& p) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    watched_.emplace(p.get(), p);
  }
  epoll_event ev{};
  // A socket: every interest, edge-triggered, for good (see the top of this file). A
  // listener: disarmed until an acceptor waits.
  ev.events = p->kind == Pollable::Kind::socket ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : EPOLLONESHOT;
  ev.data.ptr = p.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
    std::lock_guard lock(mutex_);
    watched_.erase(p.get());
    return false;
  }
  return true;
}

void Poller::arm_listener(ListenerState& l) {
  epoll_event ev{};
  ev.events = EPOLLONESHOT | EPOLLIN;
  ev.data.ptr = static_cast<Pollable*>(&l);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, l.fd, &ev);
}

void Poller::retire(Pollable& p) {
  // The peer sees the close now (FIN, or RST if it sent what we never read); the fd number
  // stays ours until the destructor closes it.
  ::shutdown(p.fd, SHUT_RDWR);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p.fd, nullptr);
  std::shared_ptr<Pollable> last;  // released outside the lock: its destructor may retire
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      auto it = watched_.find(&p);
      if (it != watched_.end()) {
        last = std::move(it->second);
        watched_.erase(it);
      }
    } else {
      first = retired_.empty();
      retired_.push_back(&p);
    }
  }
  // One wake per burst of closes: the poller lets go of them after its current batch.
  if (first) wake();
}

void Poller::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void Poller::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
  }
  // No worker polls the set after this (the one asleep in it is woken and lets go), and no
  // batch is in hand: only then is a retire free to let go of its object at once (below).
  core_.scheduler.detach_io();
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  // Every socket still watched is held by a handle outside any process (a plain thread's, or
  // in a message never received): shut it down so that its peer sees the close; the handle
  // closes the fd when it goes.
  std::unordered_map<Pollable*, std::shared_ptr<Pollable>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(watched_);
    retired_.clear();
  }
  for (auto& [p, owner] : left) {
    std::lock_guard lock(p->mutex);

    ::shutdown(p->fd, SHUT_RDWR);
  }
  left.clear();
}

PollerStats Poller::stats() {
  PollerStats s;
  {
    std::lock_guard lock(mutex_);
    s.sockets = watched_.size() - retired_.size();
  }
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.data_messages = data_messages_.load(std::memory_order_relaxed);
  return s;
}

void Poller::deliver(Pid to, Message message) { core_.send(to, message.release()); }

void Poller::handle(const epoll_event* events, int n) {
  {
    // Taken before the batch is handled: whatever was retired until now may have events in
    // this batch, none in the next. The lock also orders the batch after every add().
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    retiring_.swap(retired_);
  }
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* p = static_cast<Pollable*>(events[i].data.ptr);
    if (p == nullptr) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
      woken = true;
      continue;
    }
    if (p->kind == Pollable::Kind::socket) {
      on_socket(static_cast<SocketState&>(*p), events[i].events);
    } else {
      on_listener(static_cast<ListenerState&>(*p));
    }
  }
  if (!woken && retiring_.empty()) return;
  bool again = false;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {  // unreachable while a batch is in hand (stop detaches first); kept tidy
      retiring_.clear();
      return;
    }
    for (Pollable* p : retiring_) {
      auto it = watched_.find(p);
      if (it == watched_.end()) continue;
      releasing_.push_back(std::move(it->second));
      watched_.erase(it);
    }
    // Retired during this batch, their wake-up perhaps read above: the next batch takes
    // them, and must not wait for some other event to come.
    again = !retired_.empty();
  }
  retiring_.clear();
  releasing_.clear();  // destructors (and fd closes) outside the lock
  if (again) wake();
}

void Poller::on_socket(SocketState& s, std::uint32_t events) {
  bool do_read = false;
  std::size_t sent = 0;
  Pid owner;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) return;
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) s.peer_done = true;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && !s.ended) {
      // Armed: ours to read. Not armed: the owner reads when it arms (set_active_once).
      do_read = s.read_armed;
      s.read_armed = false;
      if (!do_read) s.readable = true;
    }
    if (s.out.size() > s.out_offset && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
      while (s.out.size() > s.out_offset) {
        ssize_t w = ::send(s.fd, s.out.data() + s.out_offset, s.out.size() - s.out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          s.out_offset += static_cast<std::size_t>(w);
        } else if (w < 0 && errno == EINTR) {
          continue;
        } else {
          if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            // The peer is gone: the queue can never drain. Drop it; a read tells the owner.
            s.out.clear();
            s.out_offset = 0;
            s.out_total = 0;
          }
          break;  // EAGAIN: the space the kernel frees comes as the next EPOLLOUT edge
        }
      }
      if (s.out.size() == s.out_offset && s.out_offset != 0) {
        sent = s.out_total;
        s.out.clear();
        s.out_offset = 0;
        s.out_total = 0;
      }
    }
    owner = Pid::from_bits(s.owner.load(std::memory_order_relaxed));
  }
  if (sent != 0) deliver(owner, Message::of(Sent{s.id, sent}));
  if (!do_read) return;

  if (buffer_.size() < s.read_size) buffer_.resize(s.read_size);
  for (;;) {
    bool more = false;
    if (!read_and_deliver(s, buffer_, more)) {
      // A spurious edge (the owner's own read took the bytes): stay armed.
      std::lock_guard lock(s.mutex);
      if (!s.closed && !s.ended) s.read_armed = true;
      return;
    }
    if (!more) return;  // bytes that come later make a new edge
    // The buffer was filled, or the peer's end is still to be read, and no edge will say so:
    // marked readable only now that
    // this read's Data is delivered (an owner that reads it must come after); if the owner
    // has armed meanwhile, read on here.
    std::lock_guard lock(s.mutex);
    if (s.closed || s.ended) return;
    if (!s.read_armed) {
      s.readable = true;
      return;
    }
    s.read_armed = false;
  }
}

bool Poller::read_and_deliver(SocketState& s, std::vector<char>& buffer, bool& more) {
  ssize_t r;
  do {
    r = ::recv(s.fd, buffer.data(), s.read_size, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  const Pid owner = Pid::from_bits(s.owner.load(std::memory_order_relaxed));
  if (r > 0) {
    {
      std::unique_lock lock(s.mutex, std::defer_lock);  // read_now holds it already
      if (!reading_on_owner_thread) lock.lock();
      more = static_cast<std::size_t>(r) == s.read_size || s.peer_done;
    }
    bytes_read_.fetch_add(static_cast<std::size_t>(r), std::memory_order_relaxed);
    data_messages_.fetch_add(1, std::memory_order_relaxed);
    deliver(owner, Message::of(Data{s.id, std::string(buffer.data(), static_cast<std::size_t>(r))}));
    return true;
  }
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  Error reason = r == 0 ? Error(ErrorKind::closed, "the peer closed the connection") : io_error("recv", errno);
  {
    // The owner's read_now holds the mutex already; the poller's read does not.
    std::unique_lock lock(s.mutex, std::defer_lock);
    if (!reading_on_owner_thread) lock.lock();
    s.ended = true;
    s.read_armed = false;
    s.readable = false;
  }
  more = false;
  deliver(owner, Message::of(Closed{s.id, std::move(reason)}));
  return true;
}

void Poller::read_now(SocketState& s) {
  // Under s.mutex (set_active_once). The thread's own buffer: a worker serves many sockets.
  thread_local std::vector<char> buffer;
  if (buffer.size() < s.read_size) buffer.resize(s.read_size);
  s.readable = false;
  reading_on_owner_thread = true;
  bool more = false;
  const bool got = read_and_deliver(s, buffer, more);
  reading_on_owner_thread = false;
  if (!got) {
    s.read_armed = true;  // nothing after all: the next edge finds us armed
  } else if (more && !s.ended) {
    s.readable = true;  // more may wait: the next arm reads again
  }
}

void Poller::on_listener(ListenerState& l) {
  for (;;) {
    Pid waiter;
    {
      std::lock_guard lock(l.mutex);
      // Skip acceptors that died waiting: their connection would be closed unseen.
      while (!l.waiters.empty() && !coppice::detail::is_alive(core_, l.waiters.front())) l.waiters.pop_front();
      if (l.closed || l.waiters.empty()) {
        l.armed = false;
        return;
      }
      waiter = l.waiters.front();
    }
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EAGAIN: nothing more now. Another error (EMFILE, say): wait for the next readiness
      // rather than spin; the waiters keep waiting.
      std::lock_guard lock(l.mutex);
      if (!l.closed) arm_listener(l);
      return;
    }
    if (l.options.no_delay) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto state = std::make_shared<SocketState>(fd, shared_from_this(), next_id(), l.options.read_size,
                                               l.options.high_watermark);
    state->owner.store(waiter.bits(), std::memory_order_relaxed);
    if (!add(state)) return;  // stopping: the socket closes with `state`
    {
      std::lock_guard lock(l.mutex);
      if (!l.waiters.empty() && l.waiters.front() == waiter) l.waiters.pop_front();
    }
    deliver(waiter, Message::of(Accepted{Socket(std::move(state))}));
  }
}

}  // namespace coppice::net::detail

