// Recipe: a child that keeps a stable name across restarts, so that callers keep calling.
//
// The question: "My supervisor restarts the worker, but the pid my clients kept is dead.
// How do clients find the new one?"
//
// The answer: clients do not keep the pid; they call the name. The child spec carries the
// name (ChildSpec::name, a ServerRef), and every start, restarts included, registers it
// before init runs. A dying process releases its name before its links and monitors hear of
// the death, so the name is free when the supervisor restarts the child. Two kinds of names
// work the same way: a local name ("echo"), and a key in a Registry
// (ServerRef::via("names", "echo"), Elixir's {:via, Registry, {names, "echo"}}); a Registry
// name is free at once too, even before the registry has cleaned up after the dead holder.
//
// The program kills each child and calls the name again: the answer comes from the
// restarted child, with another pid. It knows the restart is done without sleeping: a dying
// process signals its links (the supervisor's EXIT) before its monitors (our DOWN), so a
// call to the supervisor sent after the DOWN is answered after the supervisor has handled
// the EXIT and restarted the child.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coppice::ChildSpec;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Pid;
using coppice::Result;
using coppice::ServerRef;
using coppice::Supervisor;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Whoami {};

class Echo : public GenServer<Echo> {
 public:
  using calls = coppice::Protocol<Whoami>;
  Pid handle_call(Whoami) { return coppice::self(); }
};

// The Registry, as the first child: it starts before the children named in it and stops
// after them.
ChildSpec registry_child(std::string name) {
  ChildSpec spec;
  spec.id = "registry";
  spec.start = [name](const coppice::StartArgs&) {
    coppice::RegistryOptions o;
    o.name = name;
    return coppice::Registry::start_link(o);
  };
  spec.as_supervisor();  // shutdown infinity: it stops its partitions, then itself
  return spec;
}

// Kills the child `id` (known to callers as `name`) and checks that the name answers from a
// new pid once the supervisor has restarted it.
void survives_a_kill(coppice::Runtime& rt, coppice::Inbox& inbox, Pid sup, const std::string& id,
                     const ServerRef& name) {
  Pid old = Echo::call(rt, name, Whoami{}).value();
  coppice::Ref watch = inbox.monitor(old);
  rt.exit(old, ExitReason::kill());
  auto is_down = [watch](const coppice::Message& m) {
    return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch;
  };
  std::optional<coppice::Message> down = inbox.receive_if(is_down, failure_bound);
  expect(down.has_value(), "no DOWN from the killed " + name.to_string());

  // Answered only after the supervisor has handled the EXIT, which reached it before our
  // DOWN reached us: the child has been restarted by now.
  coppice::ChildInfo info = Supervisor::which_child(rt, sup, id).value();
  Result<Pid> now = Echo::call(rt, name, Whoami{});
  expect(now.has_value(),
         "calling " + name.to_string() + " after the restart: " + (now ? "" : now.error().to_string()));
  expect(*now != old, name.to_string() + " answers from a new pid");
  expect(*now == info.pid, name.to_string() + " answers from the child the supervisor restarted");

  // A caller that kept the old pid is left with a dead process.
  Result<Pid> stale = Echo::call(rt, old, Whoami{});
  expect(!stale && stale.error().kind() == coppice::ErrorKind::noproc, "the old pid is dead (noproc)");

  std::cout << name.to_string() << ": " << old << " killed, restarted as " << *now << ", the name answers from it\n";
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  const ServerRef local = "echo";
  const ServerRef via = ServerRef::via("names", "echo");

  Pid sup = Supervisor::start(rt, {registry_child("names"),  // the Registry, started first
                                   coppice::child<Echo>("by_local_name").name(local),
                                   coppice::child<Echo>("by_registry_name").name(via)})
                .value();
  survives_a_kill(rt, inbox, sup, "by_local_name", local);
  survives_a_kill(rt, inbox, sup, "by_registry_name", via);

  coppice::ChildCounts counts = Supervisor::count_children(rt, sup).value();
  expect(counts.active == 3, "all three children run after the restarts");
  expect(coppice::stop(rt, sup, ExitReason::shutdown()).has_value(), "stop the supervisor");
  expect(!rt.whereis("echo"), "the local name is free once the tree has stopped");
  std::cout << "both names answered across restarts\n";
  return 0;
}

int main() { return recipe_check::run_recipe("stable_name", run); }
