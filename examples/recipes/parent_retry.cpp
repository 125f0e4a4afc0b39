// Recipe: a job that runs a task, learns that it failed, and tries again after a delay that
// grows, until the task succeeds.
//
// The question: "My task fails when the upstream is briefly down. A supervisor restarts it
// at once, again and again, and gives up after three tries in five seconds. How do I retry
// with a growing delay, and hear when it finally worked?"
//
// The answer, the `parent` library's recipe (SEMANTICS.md 7.4): the job is a Parent and runs
// the task as an ephemeral temporary child. A temporary child is never restarted; an
// ephemeral one that stops on its own is removed and reported to the parent's
// handle_stopped_children, with its exit reason. On a failure the job keeps what it was given
// (the StoppedChildren, spec included), sends itself a message after a delay
// (coppice::send_after), doubles the delay, and on that message hands the task back with
// return_children, which starts it again in its old place. On a normal exit the job has its
// answer. The retry policy is the job's own code: it can give up, change the delay by the
// error, or ask someone first.
//
// The one-line alternative, when the policy is just "restart with exponential backoff": a
// transient child with with_backoff(coppice::Backoff{...}). The parent restarts it after each
// crash, after a delay that doubles (with a random jitter, so that many children do not retry
// in step), and does not restart it once it exits normally. Made ephemeral too, its normal
// exit reaches handle_stopped_children, where the job has its answer.
//
// Either way each restart counts toward the parent's restart intensity (3 in 5 s by
// default): a job that retries more often than that within the period must raise it
// (ParentOptions), or it stops with too_many_restarts.
//
// The upstream here fails the first two fetches. The program runs each job, checks that the
// task succeeded on its third attempt and that the attempts were at least the delays apart
// (timers never fire early), and that the job then stopped with normal.
#include <coppice/coppice.hpp>

#include "check.hpp"

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coppice::Async;
using coppice::ExitReason;
using coppice::GenServer;
using coppice::Init;
using coppice::NoReply;
using coppice::Parent;
using coppice::ParentChildSpec;
using coppice::Pid;
using coppice::Restart;
using coppice::Result;
using coppice::StartOptions;
using coppice::StoppedChildren;
using Clock = std::chrono::steady_clock;

using recipe_check::expect;

// Bounds a wait for something that must happen; reaching it is a failure, not a pace.
constexpr auto failure_bound = 10s;

struct Fetch {};  // call: task to upstream
struct Answer {
  bool available = false;
  std::string value;
};
struct Attempted {  // upstream to the program: one per fetch
  int n;
  Clock::time_point at;
  bool answered;
};
struct Fetched {  // task to its job, just before it exits normal
  std::string value;
};
struct JobDone {  // job to the program
  std::string value;
};
struct Run {};    // the task's continue
struct Retry {};  // the job's timer

// The upstream: unavailable for the first `failures` fetches.
class Upstream : public GenServer<Upstream> {
 public:
  using calls = coppice::Protocol<Fetch>;
  Upstream(Pid observer, int failures) : observer_(observer), failures_(failures) {}
  Answer handle_call(Fetch) {
    ++fetches_;
    const bool up = fetches_ > failures_;
    coppice::send(observer_, Attempted{fetches_, Clock::now(), up});
    if (!up) return {};
    return {true, "42"};
  }

 private:
  Pid observer_;
  int failures_;
  int fetches_ = 0;
};

// The task: one fetch. It crashes if the upstream is down, and exits normal once it has
// handed the answer to its job.
class Fetcher : public GenServer<Fetcher> {
 public:
  Fetcher(Pid upstream, Pid job) : upstream_(upstream), job_(job) {}
  // The fetch runs after init, so that the job's start_child does not wait for it.
  Init init() { return ok(continue_with(Run{})); }
  Async<NoReply> handle_continue(Run) {
    auto fetch = Upstream::call(upstream_, Fetch{}, 1s);
    Result<Answer> answer = co_await fetch;
    if (!answer || !answer->available) co_return stop_with(ExitReason::other("upstream unavailable"));
    coppice::send(job_, Fetched{answer->value});
    co_return stop_with(ExitReason::normal());
  }

 private:
  Pid upstream_;
  Pid job_;
};

// The `parent` library's recipe: the job retries by hand.
class RetryingJob : public Parent<RetryingJob> {
 public:
  using infos = coppice::Protocol<Fetched, Retry>;
  static constexpr int max_attempts = 4;  // 3 retries: within the default restart intensity
  static constexpr std::chrono::milliseconds first_delay = 50ms;
  RetryingJob(Pid observer, Pid upstream) : observer_(observer), upstream_(upstream) {}

  Async<Init> init() {
    ParentChildSpec task = coppice::child<Fetcher>("fetch", upstream_, coppice::self());
    auto start = start_child(task.with_restart(Restart::temporary).as_ephemeral());
    Result<Pid> r = co_await start;
    if (!r) co_return stop_with(r.error().reason());
    co_return ok();
  }

  // Arrives before the task's exit: both come from the task.
  void handle_info(Fetched f) { value_ = std::move(f.value); }

  // The task stopped on its own and is not restarted (temporary): it failed, or it is done.
  NoReply handle_stopped_children(StoppedChildren stopped) {
    ++attempts_;
    if (stopped.front().exit_reason.is_normal()) {
      coppice::send(observer_, JobDone{value_});
      return stop_with(ExitReason::normal());
    }
    if (attempts_ == max_attempts) return stop_with(ExitReason::other("gave up after " + std::to_string(attempts_) + " attempts"));
    delay_ = attempts_ == 1 ? first_delay : delay_ * 2;
    retry_ = std::move(stopped);  // not running: nothing to stop if the job ends meanwhile
    coppice::send_after(delay_, coppice::self(), Retry{});
    return noreply();
  }

  // Starts the task again, in its old place; it counts as a restart (it had crashed).
  Async<void> handle_info(Retry) {
    auto again = return_children(std::move(retry_));
    coppice::Status s = co_await again;
    if (!s) coppice::log("job: return_children: " + s.error().to_string());
  }

 private:
  Pid observer_;
  Pid upstream_;
  std::string value_;
  int attempts_ = 0;
  std::chrono::milliseconds delay_{0};
  StoppedChildren retry_;
};

// The one-line alternative: the parent restarts the task itself, with backoff.
class BackoffJob : public Parent<BackoffJob> {
 public:
  using infos = coppice::Protocol<Fetched>;
  // 50 ms, then 100, 200, ... up to 2 s. No jitter here, so that the program can check the
  // delays exactly; keep some in real use. (Set field by field: g++ warns about designated
  // initializers that leave a field out.)
  static coppice::Backoff backoff() {
    coppice::Backoff b;
    b.initial = 50ms;
    b.max = 2s;
    b.multiplier = 2.0;
    b.jitter = 0.0;
    return b;
  }
  BackoffJob(Pid observer, Pid upstream) : observer_(observer), upstream_(upstream) {}

  Async<Init> init() {
    ParentChildSpec task = coppice::child<Fetcher>("fetch", upstream_, coppice::self());
    auto start = start_child(task.with_restart(Restart::transient).as_ephemeral().with_backoff(backoff()));
    Result<Pid> r = co_await start;
    if (!r) co_return stop_with(r.error().reason());
    co_return ok();
  }

  void handle_info(Fetched f) { value_ = std::move(f.value); }

  // Restarted after each crash, a transient child stops for good only when it exits normally.
  NoReply handle_stopped_children(StoppedChildren) {
    coppice::send(observer_, JobDone{value_});
    return stop_with(ExitReason::normal());
  }

 private:
  Pid observer_;
  Pid upstream_;
  std::string value_;
};

// Runs a job against an upstream that fails twice; checks the three attempts, their spacing,
// the answer, and that the job then stopped with normal.
template <class Job>
void succeeds_on_the_third_attempt(coppice::Runtime& rt, coppice::Inbox& inbox, const std::string& name,
                                   std::vector<std::chrono::milliseconds> delays) {
  Pid upstream = Upstream::start(rt, StartOptions{}, inbox.pid(), 2).value();
  Pid job = Job::start(rt, StartOptions{}, inbox.pid(), upstream).value();
  const coppice::Ref watch = inbox.monitor(job);

  std::vector<Attempted> attempts;
  for (int i = 0; i < 3; ++i) {
    std::optional<Attempted> a = inbox.receive<Attempted>(failure_bound);
    expect(a.has_value(), name + ": attempt " + std::to_string(i + 1) + " never came");
    attempts.push_back(*a);
  }
  expect(!attempts[0].answered && !attempts[1].answered && attempts[2].answered,
         name + ": the first two attempts failed, the third succeeded");
  std::optional<JobDone> done = inbox.receive<JobDone>(failure_bound);
  expect(done.has_value() && done->value == "42", name + ": the job got the answer");
  auto is_down = [watch](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch; };
  std::optional<coppice::Message> down = inbox.receive_if(is_down, failure_bound);
  expect(down && down->get<coppice::Down>().reason == ExitReason::normal(), name + ": the job stopped with normal");
  expect(!inbox.receive<Attempted>(0ms).has_value(), name + ": no fourth attempt");

  std::cout << name << ": 3 attempts;";
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(attempts[i].at - attempts[i - 1].at);
    expect(gap >= delays[i - 1], name + ": attempt " + std::to_string(i + 1) + " came " + std::to_string(gap.count()) +
                                     " ms after the previous one, before the delay of " +
                                     std::to_string(delays[i - 1].count()) + " ms");
    std::cout << " retry " << i << " after " << gap.count() << " ms (delay " << delays[i - 1].count() << " ms);";
  }
  std::cout << " answer " << done->value << "\n";
  expect(coppice::stop(rt, upstream).has_value(), "stop the upstream");
}

int run() {
  coppice::Runtime rt;
  coppice::Inbox inbox(rt);
  succeeds_on_the_third_attempt<RetryingJob>(rt, inbox, "handle_stopped_children + send_after",
                                             {RetryingJob::first_delay, 2 * RetryingJob::first_delay});
  // Backoff's durations take any unit (nanoseconds): the delays here are in milliseconds.
  const auto initial = std::chrono::duration_cast<std::chrono::milliseconds>(BackoffJob::backoff().initial);
  succeeds_on_the_third_attempt<BackoffJob>(rt, inbox, "with_backoff", {initial, 2 * initial});
  return 0;
}

int main() { return recipe_check::run_recipe("parent_retry", run); }
