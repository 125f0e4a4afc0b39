// Recipe: a producer that is wired to its consumer again after either of them restarts.
//
// The question: "My producer looks up the consumer's pid in init and sends it items. After
// the consumer crashes and is restarted, the producer keeps sending to the dead pid and the
// items vanish. How do I re-wire them?"
//
// Why: a pid names one process for its whole life, and a send to a dead pid is dropped
// silently (as in OTP). The producer's copy of the pid is state that the consumer's restart
// made stale.
//
// The answer: both under one Supervisor with the rest_for_one strategy, the consumer first,
// registered under a name; the producer finds the consumer by that name in its init.
//   - The consumer restarts: rest_for_one also stops and restarts every child started after
//     it, the producer included, whose new init finds the new consumer by name.
//   - The producer restarts: the consumer, started before it, is left alone, and the new
//     producer finds it by name.
// (one_for_one would restart the consumer alone and leave the producer holding the dead pid;
// one_for_all would also restart the consumer when only the producer died.) A producer that
// looked the name up on every send would not need rest_for_one for this, but would still
// lose what it sent in the gap, and anything else it had set up with the old consumer (here
// a subscription) would be gone.
//
// The program kills the consumer, then the producer, and checks each time that produced
// items reach the consumer now running.
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
using coppice::Supervisor;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Subscribe {};  // call: the producer introduces itself to the consumer
struct Subscribed {
  Pid consumer;
};
struct Item {  // cast: producer to consumer
  int n;
};
struct Produce {  // cast: the program asks the producer for an item
  int n;
};
struct Consumed {  // what the consumer tells the program
  Pid consumer;
  Pid producer;
  int n;
};

class Consumer : public GenServer<Consumer> {
 public:
  using calls = coppice::Protocol<Subscribe>;
  using casts = coppice::Protocol<Item>;
  explicit Consumer(Pid observer) : observer_(observer) {}
  Subscribed handle_call(Subscribe, const coppice::From& from) {
    producer_ = from.pid;
    return {coppice::self()};
  }
  void handle_cast(Item item) { coppice::send(observer_, Consumed{coppice::self(), producer_, item.n}); }

 private:
  Pid observer_;
  Pid producer_;  // who subscribed: the state a restart of either side invalidates
};

class Producer : public GenServer<Producer> {
 public:
  using casts = coppice::Protocol<Produce>;
  // The consumer is found by name, once, and subscribed to: a restarted producer, or a
  // producer restarted after the consumer, finds the consumer running now.
  Async<Init> init() {
    auto subscribe = Consumer::call("consumer", Subscribe{});
    Result<Subscribed> s = co_await subscribe;
    if (!s) co_return stop_with(ExitReason::other("no consumer: " + s.error().to_string()));
    consumer_ = s->consumer;
    co_return ok();
  }
  void handle_cast(Produce p) { Consumer::cast(consumer_, Item{p.n}); }

 private:
  Pid consumer_;
};

coppice::Down down_of(coppice::Inbox& inbox, coppice::Ref ref, const std::string& what) {
  auto is_it = [ref](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref; };
  std::optional<coppice::Message> m = inbox.receive_if(is_it, failure_bound);
  expect(m.has_value(), "no DOWN from " + what);
  return m->take<coppice::Down>();
}

// Asks the producer for item `n` and checks that the running consumer got it from the
// running producer.
void item_reaches_the_consumer(coppice::Runtime& rt, coppice::Inbox& inbox, int n) {
  Producer::cast(rt, "producer", Produce{n});
  std::optional<Consumed> c = inbox.receive<Consumed>(failure_bound);
  expect(c.has_value(), "item " + std::to_string(n) + " reached no consumer");
  expect(c->n == n, "the consumer got item " + std::to_string(c->n) + ", expected " + std::to_string(n));
  expect(c->consumer == rt.whereis("consumer"), "item " + std::to_string(n) + " reached the consumer running now");
  expect(c->producer == rt.whereis("producer"), "the consumer's subscriber is the producer running now");
  std::cout << "item " << n << ": producer " << c->producer << " -> consumer " << c->consumer << "\n";
}

// Kills the child registered as `name` and waits until the supervisor has restarted what the
// strategy says: a dying process signals its links (the supervisor) before its monitors (us),
// so a call to the supervisor sent after the DOWN is answered after the restart.
void kill_child(coppice::Runtime& rt, coppice::Inbox& inbox, Pid sup, const std::string& name) {
  Pid victim = rt.whereis(name);
  coppice::Ref watch = inbox.monitor(victim);
  rt.exit(victim, ExitReason::kill());
  (void)down_of(inbox, watch, name);
  (void)Supervisor::which_children(rt, sup).value();
  std::cout << name << " " << victim << " killed\n";
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  Pid sup = Supervisor::start(rt,
                              {coppice::child<Consumer>("consumer", inbox.pid()).name("consumer"),
                               coppice::child<Producer>("producer").name("producer")},
                              {.strategy = coppice::Strategy::rest_for_one})
                .value();
  item_reaches_the_consumer(rt, inbox, 1);

  // The consumer dies: the producer is stopped and restarted after it (rest_for_one).
  const Pid first_consumer = rt.whereis("consumer");
  const Pid first_producer = rt.whereis("producer");
  coppice::Ref producer_watch = inbox.monitor(first_producer);
  kill_child(rt, inbox, sup, "consumer");
  expect(down_of(inbox, producer_watch, "the first producer").reason == ExitReason::shutdown(),
         "rest_for_one stopped the producer with shutdown");
  expect(rt.whereis("consumer") != first_consumer && rt.whereis("producer") != first_producer,
         "both children run with new pids");
  item_reaches_the_consumer(rt, inbox, 2);

  // The producer dies: the consumer, started before it, keeps running.
  const Pid second_consumer = rt.whereis("consumer");
  kill_child(rt, inbox, sup, "producer");
  expect(rt.whereis("consumer") == second_consumer, "the consumer is not restarted when the producer dies");
  item_reaches_the_consumer(rt, inbox, 3);

  expect(coppice::stop(rt, sup, ExitReason::shutdown()).has_value(), "stop the supervisor");
  std::cout << "items reached the consumer after either restarted\n";
  return 0;
}

int main() { return recipe_check::run_recipe("rewire", run); }
