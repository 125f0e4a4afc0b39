// Recipe: a producer wired to its consumer again after either restarts, under a Parent.
//
// The question (the same as rewire.cpp's): "My producer is given the consumer's pid when it
// starts. After the consumer crashes and is restarted, the producer keeps sending to the
// dead pid and the items vanish. How do I re-wire them?"
//
// The answer with a Parent (the `parent` library's Parent.GenServer) instead of a
// rest_for_one Supervisor: the pipeline is a Parent with two children, the consumer, and the
// producer bound to it (binds_to). The producer's start function runs inside the parent, at
// every start of the producer, restarts included, and hands the producer the consumer's pid
// from the parent's child table at that moment:
//   - The consumer crashes: the parent stops the producer bound to it, then starts both
//     again in start order, the consumer first, so the new producer is given the new
//     consumer's pid.
//   - The producer crashes: nothing is bound to it, so the consumer is left alone, and the
//     new producer is given the consumer's pid, which has not changed.
// Nobody looks a name up, and the binding says in the spec what depends on what (rest_for_one
// says it through the order of the whole child list). The start function captures the
// parent (`this`): the spec is started by this parent only.
//
// From outside, ParentClient::child_pid asks the parent for a child's pid now, and
// ServerRef::child_of(parent, "producer") names the child across restarts for any call, cast
// or send; the program uses both. (The producer could send to child_of(parent, "consumer")
// too, looked up at every send, with no binding; but what it sent while the consumer was
// down would be lost, and so would anything it had set up with the old consumer.)
//
// The program crashes the consumer, then the producer, and checks each time that both were
// (re)started as expected and that an item produced by the producer running now reaches the
// consumer running now.
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
using coppice::ParentChildSpec;
using coppice::ParentClient;
using coppice::Pid;
using coppice::ServerRef;
using coppice::StartOptions;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Item {  // cast: producer to consumer
  int n;
  Pid producer;
};
struct Produce {  // cast: the program asks the producer for an item
  int n;
};
struct Consumed {  // what the consumer tells the program
  Pid consumer;
  Pid producer;
  int n;
};
struct Crash {};  // cast: the child crashes

class Consumer : public GenServer<Consumer> {
 public:
  using casts = coppice::Protocol<Item, Crash>;
  explicit Consumer(Pid observer) : observer_(observer) {}
  void handle_cast(Item item) { coppice::send(observer_, Consumed{coppice::self(), item.producer, item.n}); }
  NoReply handle_cast(Crash) { return stop_with(ExitReason::other("consumer crashed")); }

 private:
  Pid observer_;
};

class Producer : public GenServer<Producer> {
 public:
  using casts = coppice::Protocol<Produce, Crash>;
  explicit Producer(Pid consumer) : consumer_(consumer) {}
  void handle_cast(Produce p) { Consumer::cast(consumer_, Item{p.n, coppice::self()}); }
  NoReply handle_cast(Crash) { return stop_with(ExitReason::other("producer crashed")); }

 private:
  Pid consumer_;  // given at start: right for this producer's whole life, thanks to binds_to
};

class Pipeline : public Parent<Pipeline> {
 public:
  explicit Pipeline(Pid observer) : observer_(observer) {}

  Async<Init> init() {
    ParentChildSpec producer;
    producer.with_id("producer").bound_to({"consumer"});
    // Runs in this parent at every start of the producer, after the consumer it binds to
    // has started: the consumer's pid is the one running now.
    producer.start = [this](const coppice::StartArgs& a) { return Producer::start_link(a.options, consumer_now()); };
    auto start = start_all_children({coppice::child<Consumer>("consumer", observer_), std::move(producer)});
    co_await start;  // a failed start ends the parent with start_error
    co_return ok();
  }

 private:
  Pid consumer_now() const { return child_pid("consumer").value_or(Pid{}); }

  Pid observer_;
};

struct Pids {
  Pid consumer;
  Pid producer;
};

// The children's pids, from the parent's table.
Pids children_of(coppice::Runtime& rt, Pid pipeline) {
  Pids p;
  p.consumer = ParentClient::child_pid(rt, pipeline, "consumer").value();
  p.producer = ParentClient::child_pid(rt, pipeline, "producer").value();
  expect(p.consumer && p.producer, "both children are running");
  return p;
}

coppice::Down down_of(coppice::Inbox& inbox, coppice::Ref ref, const std::string& what) {
  auto is_it = [ref](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == ref; };
  std::optional<coppice::Message> m = inbox.receive_if(is_it, failure_bound);
  expect(m.has_value(), "no DOWN from " + what);
  return m->take<coppice::Down>();
}

// Asks the producer running now for item `n` and checks that the consumer running now got
// it from that producer.
void item_reaches_the_consumer(coppice::Runtime& rt, coppice::Inbox& inbox, Pid pipeline, int n) {
  const Pids now = children_of(rt, pipeline);
  Producer::cast(rt, ServerRef::child_of(pipeline, "producer"), Produce{n});
  std::optional<Consumed> c = inbox.receive<Consumed>(failure_bound);
  expect(c.has_value(), "item " + std::to_string(n) + " reached no consumer");
  expect(c->n == n, "the consumer got item " + std::to_string(c->n) + ", expected " + std::to_string(n));
  expect(c->consumer == now.consumer, "item " + std::to_string(n) + " reached the consumer running now");
  expect(c->producer == now.producer, "item " + std::to_string(n) + " came from the producer running now");
  std::cout << "item " << n << ": producer " << c->producer << " -> consumer " << c->consumer << "\n";
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  Pid pipeline = Pipeline::start(rt, StartOptions{}, inbox.pid()).value();
  item_reaches_the_consumer(rt, inbox, pipeline, 1);

  // 1. The consumer crashes: the producer bound to it is stopped, and both start again.
  const Pids first = children_of(rt, pipeline);
  coppice::Ref consumer_watch = inbox.monitor(first.consumer);
  coppice::Ref producer_watch = inbox.monitor(first.producer);
  Consumer::cast(rt, first.consumer, Crash{});
  expect(down_of(inbox, consumer_watch, "the first consumer").reason == ExitReason::other("consumer crashed"),
         "the consumer crashed");
  expect(down_of(inbox, producer_watch, "the first producer").reason == ExitReason::shutdown(),
         "the parent stopped the producer bound to the consumer, with shutdown");
  // The parent had the consumer's EXIT (a link) before we had its DOWN (a monitor), and it
  // restarts both before it answers anything else: children_of sees the new ones.
  const Pids second = children_of(rt, pipeline);
  expect(second.consumer != first.consumer && second.producer != first.producer, "both children run with new pids");
  std::cout << "consumer crashed: both restarted\n";
  item_reaches_the_consumer(rt, inbox, pipeline, 2);

  // 2. The producer crashes: the consumer keeps running, the new producer is given it.
  producer_watch = inbox.monitor(second.producer);
  Producer::cast(rt, second.producer, Crash{});
  expect(down_of(inbox, producer_watch, "the second producer").reason == ExitReason::other("producer crashed"),
         "the producer crashed");
  const Pids third = children_of(rt, pipeline);
  expect(third.consumer == second.consumer, "the consumer is not restarted when the producer crashes");
  expect(third.producer != second.producer, "the producer runs with a new pid");
  std::cout << "producer crashed: the producer alone restarted\n";
  item_reaches_the_consumer(rt, inbox, pipeline, 3);

  expect(coppice::stop(rt, pipeline, ExitReason::shutdown()).has_value(), "stop the pipeline");
  expect(!rt.alive(third.consumer) && !rt.alive(third.producer), "the pipeline's children stopped with it");
  std::cout << "items reached the consumer after either crashed\n";
  return 0;
}

int main() { return recipe_check::run_recipe("parent_rewire", run); }
