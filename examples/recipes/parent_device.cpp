// Recipe: a server that owns a device helper and says a last "bye" through it before it
// stops, leaving nothing behind.
//
// The question: "My GenServer starts a helper that owns the serial line (start_link in init).
// In terminate/2 I want to write a last 'bye' through the helper, but sometimes the helper is
// already gone, and when my server stops with :normal the helper keeps running."
//
// Why: the helper is linked, not supervised. A normal stop sends the helper a `normal` exit
// signal, which a process that does not trap exits ignores: it dangles (SEMANTICS.md 8, seed
// question 111). And when something kills the pair with an abnormal reason, the helper may
// die first, so terminate finds nobody to talk to.
//
// The answer: make the server a Parent (the `parent` library's Parent.GenServer) and start
// the helper as its child. A Parent stops in a fixed order (SEMANTICS.md 7.5): its terminate
// runs first, with every child still running, so it can ask the helper for the last words;
// then it stops its children itself, synchronously, in reverse start order (a `normal` stop
// becomes `shutdown` for them, a signal they cannot ignore); then it exits. Under a
// supervisor, a Parent is a supervisor child (shutdown infinity), so the supervisor waits
// for all of this too.
//
// The serial line is the program's Inbox: the helper passes each write to it, and
// acknowledges the write once it has. The program stops the server with `normal` and checks,
// in the order things reached the line, that "bye" came before the helper's DOWN, which came
// before the server's; then it does the same with the server under a Supervisor that is shut
// down.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <chrono>
#include <iostream>
#include <string>

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Init;
using coppice::NoReply;
using coppice::Parent;
using coppice::ParentClient;
using coppice::Pid;
using coppice::Result;
using coppice::StartOptions;
using coppice::Supervisor;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Write {
  std::string text;
};
struct Written {};
struct Line {  // what reaches the serial line
  std::string text;
};
struct Finish {};  // cast: the modem is done and stops with normal

// The device helper: owns the serial line; a write is acknowledged once the line has it.
class Device : public GenServer<Device> {
 public:
  using calls = coppice::Protocol<Write>;
  explicit Device(Pid line) : line_(line) {}
  Written handle_call(Write w) {
    coppice::send(line_, Line{std::move(w.text)});
    return {};
  }

 private:
  Pid line_;
};

// The server with last words: a Parent whose child is the device helper.
class Modem : public Parent<Modem> {
 public:
  using casts = coppice::Protocol<Finish>;
  explicit Modem(Pid line) : line_(line) {}

  Async<Init> init() {
    auto start = start_child(coppice::child<Device>("device", line_));
    Result<Pid> device = co_await start;
    if (!device) co_return stop_with(device.error().reason());
    auto hello = say("hello");  // a named local: see README, "g++ 12 and temporaries in co_await"
    co_await hello;
    co_return ok();
  }

  NoReply handle_cast(Finish) { return stop_with(ExitReason::normal()); }

  // Runs before the Parent stops its children: the device is still there to take "bye".
  // Only then does the Parent stop the device, and only after that does the modem exit.
  Async<void> terminate(const ExitReason&) {
    auto bye = say("bye");
    co_await bye;
  }

 private:
  // The device as the child table knows it now: a restart would have given it another pid.
  Async<void> say(std::string text) {
    Result<Pid> device = child_pid("device");
    if (!device || !*device) {
      coppice::log("modem: no device to say \"" + text + "\" to");
      co_return;
    }
    auto write = Device::call(*device, Write{std::move(text)}, 1s);
    Result<Written> written = co_await write;
    if (!written) coppice::log("modem: the device did not take the write: " + written.error().to_string());
  }

  Pid line_;
};

// The next message on the line, whatever it is: the checks are about the order.
coppice::Message next(coppice::Inbox& inbox, const std::string& expected) {
  std::optional<coppice::Message> m = inbox.receive_any(failure_bound);
  expect(m.has_value(), "nothing reached the program, expected " + expected);
  return std::move(*m);
}

void expect_line(coppice::Inbox& inbox, const std::string& text) {
  coppice::Message m = next(inbox, "the line \"" + text + "\"");
  expect(m.is<Line>() && m.get<Line>().text == text, "expected the line \"" + text + "\" next");
}

void expect_down(coppice::Inbox& inbox, coppice::Ref ref, const std::string& who, const ExitReason& reason) {
  coppice::Message m = next(inbox, "the DOWN of the " + who);
  expect(m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref, "expected the DOWN of the " + who + " next");
  const ExitReason& got = m.get<coppice::Down>().reason;
  expect(got == reason, "the " + who + " exits with " + reason.to_string() + ", not " + got.to_string());
}

// Watches the modem and its device, makes `stop_it` end the modem, and checks what reached
// the line, in order: "bye", the device's DOWN, the modem's DOWN.
template <class StopIt>
void last_words(coppice::Runtime& rt, coppice::Inbox& inbox, Pid modem, const ExitReason& modem_reason, StopIt stop_it) {
  expect_line(inbox, "hello");
  const Pid device = ParentClient::child_pid(rt, modem, "device").value();
  const coppice::Ref device_watch = inbox.monitor(device);
  const coppice::Ref modem_watch = inbox.monitor(modem);
  stop_it();
  // The device sent "bye" before it exited, and both reached us from the device: in order.
  expect_line(inbox, "bye");
  // shutdown: a normal stop of the modem becomes shutdown for its children, which a process
  // that does not trap exits cannot ignore.
  expect_down(inbox, device_watch, "device", ExitReason::shutdown());
  // The modem waited for the device's exit before its own.
  expect_down(inbox, modem_watch, "modem", modem_reason);
  expect(!rt.alive(device), "the device is gone");
  std::cout << "modem " << modem << " said \"bye\" through device " << device << ", then the device stopped ("
            << ExitReason::shutdown() << "), then the modem (" << modem_reason << ")\n";
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox line(rt);
  const std::size_t before = rt.process_count();

  // 1. The modem stops itself with normal ({:stop, :normal, state}).
  Pid modem = Modem::start(rt, StartOptions{}, line.pid()).value();
  last_words(rt, line, modem, ExitReason::normal(),
             [&] { Modem::cast(rt, modem, Finish{}); });
  expect(rt.process_count() == before,
         "process_count is back to " + std::to_string(before) + ", it is " + std::to_string(rt.process_count()));
  std::cout << "process_count back to " << before << ": no device left running\n";

  // 2. The modem under a Supervisor (coppice::child<Modem> makes it a supervisor child:
  // shutdown infinity), and the supervisor is shut down.
  Pid sup = Supervisor::start(rt, {coppice::child<Modem>("modem", line.pid())}).value();
  modem = Supervisor::which_child(rt, sup, "modem").value().pid;
  last_words(rt, line, modem, ExitReason::shutdown(),
             [&] { expect(coppice::stop(rt, sup, ExitReason::shutdown()).has_value(), "stop the supervisor"); });
  expect(rt.process_count() == before, "process_count is back to " + std::to_string(before) + " after the supervisor");
  std::cout << "supervisor stop: the same last words, the same order\n";
  return 0;
}

int main() { return recipe_check::run_recipe("parent_device", run); }
