// Recipe: a child that must send a last "bye" to a device before it stops.
//
// The question: "My GenServer's terminate/2 should close the serial line, but it is never
// called when the supervisor shuts down. Why?"
//
// Why: a supervisor stops a child with the exit signal `shutdown`. A process that does not
// trap exits dies of that signal at once, and terminate does not run (SEMANTICS.md 2.4).
//
// The answer: the child traps exits in init. The supervisor's `shutdown` then arrives as an
// EXIT from its parent, which a GenServer turns into terminate(shutdown) and a stop. The
// child spec's shutdown timeout is how long the supervisor lets terminate run before it
// kills the child: give it the time the last words need. (brutal_kill never runs terminate;
// infinity waits as long as terminate takes, which suits a supervisor child, not a worker
// that might hang on a device.)
//
// The device here is a server standing in for a serial line: a write is acknowledged once
// the line has it, and it tells the program every line it got. It is the child's earlier
// sibling: a supervisor stops its children in reverse start order, so the device is still
// there when the child says its last words. The program checks that the device got "bye"
// when the child is stopped through terminate_child, and again when the whole supervisor
// is stopped.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Init;
using coppice::Pid;
using coppice::Result;
using coppice::Shutdown;
using coppice::Supervisor;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Write {
  std::string text;
};
struct Written {};
struct Line {  // what the device tells the program
  std::string text;
};

// The serial line: acknowledges each write once it has passed the line on.
class SerialLine : public GenServer<SerialLine> {
 public:
  using calls = coppice::Protocol<Write>;
  explicit SerialLine(Pid observer) : observer_(observer) {}
  Written handle_call(Write w) {
    coppice::send(observer_, Line{std::move(w.text)});
    return {};
  }

 private:
  Pid observer_;
};

// The child with last words.
class Modem : public GenServer<Modem> {
 public:
  Async<Init> init() {
    // Without this, the supervisor's shutdown kills the modem and terminate never runs.
    coppice::trap_exit(true);
    auto hello = say("hello");  // a named local: see README, "g++ 12 and temporaries in co_await"
    co_await hello;
    co_return ok();
  }
  Async<void> terminate(const ExitReason&) {
    auto bye = say("bye");
    co_await bye;
  }

 private:
  static Async<void> say(std::string text) {
    auto write = SerialLine::call("serial", Write{std::move(text)}, 1s);
    Result<Written> written = co_await write;
    if (!written) coppice::log("modem: the serial line did not take the write: " + written.error().to_string());
  }
};

std::string next_line(coppice::Inbox& inbox) {
  std::optional<Line> line = inbox.receive<Line>(failure_bound);
  expect(line.has_value(), "the device got no line");
  return line->text;
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  Pid sup = Supervisor::start(rt, {coppice::child<SerialLine>("serial", inbox.pid()).name("serial"),
                                   // 2 s for terminate, then kill (the default for a worker is 5 s)
                                   coppice::child<Modem>("modem").with_shutdown(Shutdown::timeout(2s))})
                .value();
  expect(next_line(inbox) == "hello", "the modem said hello in init");

  // 1. terminate_child: terminate runs, the device gets bye, then the child is gone.
  Pid modem = Supervisor::which_child(rt, sup, "modem").value().pid;
  coppice::Ref watch = inbox.monitor(modem);
  expect(Supervisor::terminate_child(rt, sup, "modem").has_value(), "terminate_child modem");
  // The write was acknowledged before the modem exited, so "bye" is already here.
  std::optional<Line> bye = inbox.receive<Line>(0ms);
  expect(bye && bye->text == "bye", "the device got bye before terminate_child returned");
  auto is_down = [watch](const coppice::Message& m) {
    return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch;
  };
  std::optional<coppice::Message> down = inbox.receive_if(is_down, failure_bound);
  expect(down.has_value(), "no DOWN from the modem");
  // shutdown, not killed: terminate finished within the shutdown timeout.
  expect(down->get<coppice::Down>().reason == ExitReason::shutdown(), "the modem exited with shutdown");
  std::cout << "terminate_child: the device got \"bye\", the modem exited with shutdown\n";

  // 2. Stopping the supervisor: the modem goes first (reverse start order) and says bye.
  expect(Supervisor::restart_child(rt, sup, "modem").has_value(), "restart_child modem");
  expect(next_line(inbox) == "hello", "the restarted modem said hello");
  expect(coppice::stop(rt, sup, ExitReason::shutdown()).has_value(), "stop the supervisor");
  bye = inbox.receive<Line>(0ms);
  expect(bye && bye->text == "bye", "the device got bye before the supervisor's stop returned");
  std::cout << "supervisor stop: the device got \"bye\" before the tree was gone\n";
  return 0;
}

int main() { return recipe_check::run_recipe("last_words", run); }
