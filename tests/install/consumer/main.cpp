// Install check: a process that answers n with n + 1, asked from main through an Inbox.
#include <chrono>
#include <cstdio>
#include <optional>

#include <coppice/coppice.hpp>

namespace {

class Increment : public coppice::Process {
 public:
  void handle(coppice::Message m) override {
    if (const int* n = m.get_if<int>()) coppice::send(m.from(), *n + 1);
  }
};

}  // namespace

int main() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  coppice::Pid pid = rt.spawn<Increment>();
  inbox.send(pid, 41);
  std::optional<int> answer = inbox.receive<int>(std::chrono::seconds(5));
  if (!answer) {
    std::printf("coppice_consumer: no answer from %s within 5 s\n", pid.to_string().c_str());
    return 1;
  }
  std::printf("coppice_consumer: sent 41 to %s, got %d\n", pid.to_string().c_str(), *answer);
  return *answer == 42 ? 0 : 1;
}
