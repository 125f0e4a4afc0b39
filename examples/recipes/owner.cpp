// Recipe: a server that owns other servers and leaves no process behind when it stops with
// `normal`.
//
// The question: "My GenServer starts two workers with start_link in init. When it returns
// {:stop, :normal, state}, the workers keep running. How do I make them stop with it?"
//
// Why they dangle: an exit signal carries the reason, and a process that does not trap
// exits ignores `normal` (SEMANTICS.md 1.4). A worker linked to its owner survives the
// owner's normal stop, orphaned. Only an abnormal reason travels down a link and kills.
//
// The answer: the owner does not link to its workers. It start_links a Supervisor in init
// and starts the workers under it. A supervisor traps exits and obeys its parent: an EXIT
// from the process that started it, whatever the reason (normal included), makes it stop its
// children, in reverse start order, and exit. So no way of ending the owner leaves a worker
// behind: a crash or a kill travels the link, and so does a normal stop.
//
// The owner's terminate also stops the supervisor itself and waits for it. The workers are
// then gone before the owner is: whoever waits for the owner's DOWN (the owner's own
// supervisor about to restart it, say, whose new workers would find the old ones' names
// taken) finds nothing left. terminate runs on every clean stop (a callback returning stop,
// coppice::stop) but not on a kill; the link covers that case, asynchronously.
//
// The program shows the dangling worker first (a naive owner), then checks the answer:
// after the owner stops with normal, monitors see every worker and the supervisor go, and
// Runtime::process_count() is back where it was.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Init;
using coppice::NoReply;
using coppice::Pid;
using coppice::Result;
using coppice::StartOptions;
using coppice::Supervisor;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Ping {};
struct Finish {};  // cast: the owner stops itself with normal
struct GetWorkers {};
struct Workers {
  Pid supervisor;  // Pid{} for the naive owner
  std::vector<Pid> pids;
};

// A worker that does not trap exits, as most do.
class Worker : public GenServer<Worker> {
 public:
  using calls = coppice::Protocol<Ping>;
  Pid handle_call(Ping) { return coppice::self(); }
};

// What not to do: workers start_linked straight from init.
class NaiveOwner : public GenServer<NaiveOwner> {
 public:
  using calls = coppice::Protocol<GetWorkers>;
  using casts = coppice::Protocol<Finish>;
  Async<Init> init() {
    auto start = Worker::start_link(StartOptions{});
    Result<Pid> worker = co_await start;
    if (!worker) co_return stop_with(worker.error().reason());
    worker_ = *worker;
    co_return ok();
  }
  Workers handle_call(GetWorkers) { return {Pid{}, {worker_}}; }
  NoReply handle_cast(Finish) { return stop_with(ExitReason::normal()); }

 private:
  Pid worker_;
};

// The answer: the workers live under a supervisor that the owner start_links.
class Owner : public GenServer<Owner> {
 public:
  using calls = coppice::Protocol<GetWorkers>;
  using casts = coppice::Protocol<Finish>;

  Async<Init> init() {
    auto start = Supervisor::start_link({coppice::child<Worker>("sensor"), coppice::child<Worker>("logger")});
    Result<Pid> sup = co_await start;
    if (!sup) co_return stop_with(sup.error().reason());
    supervisor_ = *sup;
    co_return ok();
  }

  Async<Workers> handle_call(GetWorkers) {
    auto which = Supervisor::which_children(supervisor_);
    Result<std::vector<coppice::ChildInfo>> children = co_await which;
    Workers w{supervisor_, {}};
    if (children)
      for (const auto& c : *children) w.pids.push_back(c.pid);
    co_return w;
  }

  NoReply handle_cast(Finish) { return stop_with(ExitReason::normal()); }

  // Stops the workers before the owner goes. Unlink first: the owner does not trap exits,
  // and the supervisor's exit (shutdown) would otherwise reach it as a signal and end it
  // in the middle of this terminate, with reason shutdown instead of normal.
  Async<void> terminate(const ExitReason&) {
    coppice::unlink(supervisor_);
    auto stopping = coppice::stop(supervisor_, ExitReason::shutdown());
    coppice::Status stopped = co_await stopping;
    (void)stopped;  // noproc: the supervisor had already gone, which is what we wanted
  }

 private:
  Pid supervisor_;
};

// The Down of `ref`, which must arrive.
coppice::Down down_of(coppice::Inbox& inbox, coppice::Ref ref, const std::string& what) {
  auto is_it = [ref](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref; };
  std::optional<coppice::Message> m = inbox.receive_if(is_it, failure_bound);
  expect(m.has_value(), "no DOWN from " + what);
  return m->take<coppice::Down>();
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  const std::size_t before = rt.process_count();

  // 1. The problem: the naive owner stops with normal and its worker keeps running.
  {
    Pid owner = NaiveOwner::start(rt, StartOptions{}).value();
    Pid worker = NaiveOwner::call(rt, owner, GetWorkers{}).value().pids.at(0);
    coppice::Ref watch = inbox.monitor(owner);
    NaiveOwner::cast(rt, owner, Finish{});
    expect(down_of(inbox, watch, "the naive owner").reason == ExitReason::normal(),
           "the naive owner stops with normal");
    // The owner's exit signal reached the worker before its DOWN reached us, so this call is
    // answered after the worker has seen (and ignored) it.
    Result<Pid> still = Worker::call(rt, worker, Ping{});
    expect(still.has_value() && *still == worker, "the naive owner's worker still answers (it dangles)");
    std::cout << "naive owner stopped with normal; its worker " << worker << " still runs, orphaned\n";
    expect(coppice::stop(rt, worker).has_value(), "stop the dangling worker by hand");
  }

  // 2. The answer: the owner's workers live under its supervisor.
  Pid owner = Owner::start(rt, StartOptions{}).value();
  Workers w = Owner::call(rt, owner, GetWorkers{}).value();
  expect(w.pids.size() == 2, "the owner has two workers");
  std::vector<std::pair<Pid, coppice::Ref>> watched{{owner, inbox.monitor(owner)},
                                                    {w.supervisor, inbox.monitor(w.supervisor)}};
  for (Pid p : w.pids) watched.emplace_back(p, inbox.monitor(p));
  std::cout << "owner " << owner << " with supervisor " << w.supervisor << " and workers " << w.pids[0] << ", "
            << w.pids[1] << "\n";

  Owner::cast(rt, owner, Finish{});
  coppice::Down owner_down = down_of(inbox, watched[0].second, "the owner");
  expect(owner_down.reason == ExitReason::normal(),
         "the owner stops with normal, got " + owner_down.reason.to_string());
  // terminate waited for the supervisor, which waited for the workers: all of them had
  // exited before the owner's DOWN was sent.
  for (Pid p : w.pids) expect(!rt.alive(p), "worker " + p.to_string() + " is gone before the owner's DOWN");
  expect(!rt.alive(w.supervisor), "the supervisor is gone before the owner's DOWN");
  for (std::size_t i = 1; i < watched.size(); ++i) {
    coppice::Down d = down_of(inbox, watched[i].second, watched[i].first.to_string());
    expect(d.reason == ExitReason::shutdown(),
           watched[i].first.to_string() + " stops with shutdown, got " + d.reason.to_string());
    std::cout << "DOWN " << watched[i].first << " " << d.reason << "\n";
  }
  std::cout << "DOWN " << owner << " " << owner_down.reason << " (owner)\n";
  expect(rt.process_count() == before,
         "process_count is back to " + std::to_string(before) + ", it is " + std::to_string(rt.process_count()));
  std::cout << "process_count back to " << before << ": nothing dangles\n";
  return 0;
}

int main() { return recipe_check::run_recipe("owner", run); }
