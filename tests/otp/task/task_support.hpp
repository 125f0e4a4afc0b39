// What the Task tests share: the messages that drive a task, and a look at the owner's mailbox.
#pragma once

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "otp/otp_support.hpp"

namespace coppice_test {

struct Ready {  // a task tells the test it is running
  coppice::Pid pid;
};
struct Release {};  // lets a waiting task finish
struct Crash {};    // makes a waiting task throw TaskError("boom")

struct TaskError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A task's body that says Ready to `observer`, then returns `value` when released, or
// throws TaskError("boom") when told to Crash.
inline coppice::Async<int> wait_then_answer(coppice::Pid observer, int value) {
  coppice::send(observer, Ready{coppice::self()});
  auto is_go = [](const coppice::Message& m) { return m.is<Release>() || m.is<Crash>(); };
  coppice::Message go = co_await coppice::receive_if(is_go);
  if (go.is<Crash>()) throw TaskError("boom");
  co_return value;
}

inline bool contains(const std::vector<coppice::Pid>& pids, coppice::Pid pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// Whatever is in the running process's mailbox now, taken out (empty: nothing).
inline coppice::Async<std::vector<std::string>> leftovers() {
  std::vector<std::string> types;
  for (;;) {
    std::optional<coppice::Message> m = co_await coppice::receive_any(std::chrono::milliseconds{0});
    if (!m) break;
    types.push_back(m->type_name());
  }
  co_return types;
}

// Monitors `pid`, sends it `message`, and waits (taking nothing else) for its Down: after
// it, everything `pid` sent the running process has arrived.
template <class M>
coppice::Async<coppice::ExitReason> end_after(coppice::Pid pid, M message) {
  const coppice::Ref ref = coppice::monitor(pid);
  coppice::send(pid, std::move(message));
  auto is_it = [ref](const coppice::Message& m) {
    const auto* d = m.get_if<coppice::Down>();
    return d != nullptr && d->ref == ref;
  };
  coppice::Message d = co_await coppice::receive_if(is_it);
  co_return d.get<coppice::Down>().reason;
}

}  // namespace coppice_test
