// example_observer: a small supervision tree at work, watched by the observer page. Prints
// "observer listening on http://127.0.0.1:PORT/" first, then runs until stdin closes or SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include <coppice/coppice.hpp>
#include <coppice/dynamic_supervisor.hpp>
#include <coppice/observe.hpp>
#include <coppice/observer.hpp>
#include <coppice/supervisor.hpp>

using namespace std::chrono_literals;

namespace {

struct Get {};
struct Put {
  int value;
};
struct Tick {};

// A counter: a GenServer with a state to show (format_status).
class Counter : public coppice::GenServer<Counter> {
 public:
  using calls = coppice::Protocol<Get>;
  using casts = coppice::Protocol<Put>;
  coppice::Init init() {
    coppice::set_label("counter of puts");
    return ok();
  }
  int handle_call(Get) { return total_; }
  void handle_cast(Put p) {
    total_ += p.value;
    ++puts_;
  }
  std::string format_status() const {
    return "total=" + std::to_string(total_) + " puts=" + std::to_string(puts_);
  }

 private:
  int total_ = 0;
  int puts_ = 0;
};

// A cache that holds a few strings (no format_status: its state shows as "").
class Cache : public coppice::GenServer<Cache> {
 public:
  using calls = coppice::Protocol<Get>;
  coppice::Init init() { return ok(); }
  int handle_call(Get) { return static_cast<int>(entries_.size()); }
  coppice::NoReply handle_info(coppice::Message) {
    entries_.push_back("entry " + std::to_string(entries_.size()));
    return noreply();
  }

 private:
  std::vector<std::string> entries_;
};

// A labelled worker that ticks: it puts into the counter, and lets a few messages pile up
// in its own mailbox, so that the queue column has something to sort.
class Ticker : public coppice::GenServer<Ticker> {
 public:
  using calls = coppice::Protocol<Get>;
  explicit Ticker(int n) : n_(n) {}
  coppice::Init init() {
    coppice::set_label("ticker " + std::to_string(n_));
    coppice::send_after(std::chrono::milliseconds(100 + 50 * n_), coppice::self(), Tick{});
    return ok();
  }
  int handle_call(Get) { return ticks_; }
  coppice::NoReply handle_info(coppice::Message m) {
    if (m.is<Tick>()) {
      ++ticks_;
      coppice::Pid counter = coppice::whereis("counter");
      if (counter) Counter::cast(counter, Put{n_});
      coppice::send_after(200ms, coppice::self(), Tick{});
    }
    return noreply();
  }

 private:
  int n_;
  int ticks_ = 0;
};

// A plain process that waits for one kind of message while others pile up behind it: its
// queue is what the table's "queue" column sorts first.
struct Flush {};
coppice::Async<void> backlog() {
  coppice::set_label("backlog");
  (void)co_await coppice::receive<Flush>();
}

std::atomic<bool> stop_now{false};
void on_signal(int) { stop_now = true; }

}  // namespace

int main() {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  coppice::Runtime rt(coppice::RuntimeOptions{.workers = 2});

  auto top = coppice::Supervisor::start(
      rt,
      {coppice::child<Counter>("counter").name("counter"), coppice::child<Cache>("cache").name("cache"),
       coppice::DynamicSupervisor::child_spec("tickers", {})},
      coppice::SupervisorFlags{}, coppice::StartOptions{.name = "app"});
  if (!top) {
    std::cerr << "example_observer: the tree did not start: " << top.error() << "\n";
    return 1;
  }
  const coppice::Pid tickers = coppice::Supervisor::which_child(rt, *top, "tickers").value().pid;
  for (int i = 1; i <= 4; ++i)
    (void)coppice::DynamicSupervisor::start_child(rt, tickers, coppice::child<Ticker>("ticker", i));
  // Handled at once: they show in the cache's reductions.
  coppice::Pid cache = rt.whereis("cache");
  for (int i = 0; i < 50; ++i) rt.send(cache, i);

  const coppice::Pid waiting = rt.spawn(backlog);
  (void)rt.register_name("backlog", waiting);
  for (int i = 0; i < 40; ++i) rt.send(waiting, i);

  auto observer = coppice::observer::start(rt);
  if (!observer) {
    std::cerr << "example_observer: " << observer.error() << "\n";
    return 1;
  }
  std::cout << "observer listening on http://127.0.0.1:" << observer->port() << "/" << std::endl;

  // Until stdin closes (or a signal): poll with a timeout so that a signal is seen too.
  while (!stop_now) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = ::poll(&p, 1, 200);
    if (r > 0) {
      char buffer[256];
      const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
      if (n <= 0) break;
    } else if (r < 0 && errno != EINTR) {
      break;
    }
  }
  observer->stop();
  (void)coppice::stop(rt, *top, coppice::ExitReason::shutdown());
  rt.send(waiting, Flush{});
  std::cout << "observer stopped" << std::endl;
  return 0;
}
