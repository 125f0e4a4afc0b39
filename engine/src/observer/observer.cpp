// The observer's server (see coppice/observer.hpp): an acceptor pool of connection processes
// that answer the page's files themselves and hand everything else to one plain thread.
#include "coppice/observer.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "coppice/gen_server.hpp"
#include "coppice/net.hpp"
#include "coppice/observe.hpp"
#include "coppice/process.hpp"
#include "coppice/runtime.hpp"
#include "coppice/supervisor.hpp"
#include "observer/assets.hpp"
#include "observer/format.hpp"
#include "observer/http.hpp"

namespace coppice::observer {

namespace detail {

namespace {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// A request for the thread, and its answer, sent back to the connection process.
struct Job {
  Pid reply_to;
  std::uint64_t sequence = 0;
  HttpRequest request;
};
struct JobDone {
  std::uint64_t sequence = 0;
  HttpResponse response;
};

// How long a connection waits: for the thread's answer (a listing with details waits up to a
// second for slow processes, a tree up to two), and for the next request on an idle connection.
constexpr auto answer_timeout = 20s;
constexpr auto idle_timeout = 60s;

HttpResponse json_error(int status, std::string_view message) {
  return {status, "application/json", "{\"error\":" + json_string(message) + "}"};
}

bool is_supervisor(std::string_view behaviour) {
  return behaviour == "Supervisor" || behaviour == "DynamicSupervisor" || behaviour == "PartitionSupervisor" ||
         behaviour == "Parent";
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// What the connection processes and the thread share: the queue of jobs, and what the thread
// needs to answer them.
struct Shared {
  Runtime* runtime = nullptr;
  std::vector<ServerRef> roots;
  Pid own_supervisor;  // left out of the trees drawn by default
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> jobs;
  bool stopping = false;

  // False once stopping: the job is dropped (its connection is being shut down).
  bool push(Job job) {
    std::lock_guard lock(mutex);
    if (stopping) return false;
    jobs.push_back(std::move(job));
    wake.notify_one();
    return true;
  }
};

struct ObserverState {
  std::shared_ptr<Shared> shared;
  std::thread thread;
  Pid supervisor;
  std::uint16_t port = 0;
  std::mutex stop_mutex;
  bool stopped = false;
};

namespace {

Snapshot take_snapshot(Runtime& rt) {
  Snapshot s;
  s.metrics = metrics(rt);
  // The depths from a walk that keeps no snapshot: a scrape of a million processes costs one
  // batch of entries, not a million (coppice::for_each_process).
  for_each_process(rt, [&](const ProcessEntry& e) {
    s.depths.add(e.message_queue_len);
    s.queued += e.message_queue_len;
  });
  s.supervisors = supervisor_stats(rt);
  s.supervisor_totals = supervisor_totals(rt);
  s.time = now_seconds();
  return s;
}

HttpResponse answer_process(Runtime& rt, const HttpRequest& request) {
  const std::string id = query_parameter(request.query, "id");
  std::uint64_t bits = 0;
  if (id.empty() || id.size() > 20 || id.find_first_not_of("0123456789") != std::string::npos)
    return json_error(400, "expected ?id=N, N a pid's id");
  try {
    bits = std::stoull(id);
  } catch (const std::exception&) {
    return json_error(400, "expected ?id=N, N a pid's id");
  }
  Result<ProcessEntry> entry = process_entry(rt, Pid::from_bits(bits), ListOptions{.details = true});
  if (!entry) return json_error(404, entry.error().message());
  std::string state;
  const std::string_view b = entry->behaviour;
  if (b != "plain" && b != "Task" && b != "inbox" && !b.empty()) {
    Result<ServerStatus> status = sys::get_status(rt, entry->pid, 1s);
    if (status) state = std::move(status->state);
  }
  return {200, "application/json", entry_json(*entry, &state)};
}

HttpResponse answer_trees(Runtime& rt, const Shared& shared) {
  std::vector<ServerRef> roots = shared.roots;
  if (roots.empty()) {
    const std::vector<ProcessEntry> listing = list_processes(rt);
    std::set<Pid> supervisors;
    for (const ProcessEntry& e : listing)
      if (is_supervisor(e.behaviour)) supervisors.insert(e.pid);
    for (const ProcessEntry& e : listing) {
      // The observer's own tree is left out (its acceptor pool's parent is a supervisor).
      if (!is_supervisor(e.behaviour) || e.pid == shared.own_supervisor || supervisors.count(e.parent) > 0) continue;
      roots.emplace_back(e.pid);
    }
  }
  std::vector<RootTree> trees;
  for (const ServerRef& root : roots) {
    std::string name = root.is_pid() ? root.pid().to_string() : root.is_local_name() ? root.local_name() : "(a root)";
    trees.push_back(RootTree{std::move(name), supervision_tree(rt, root, 2s)});
  }
  return {200, "application/json", trees_json(trees)};
}

HttpResponse answer(Shared& shared, const HttpRequest& request) {
  Runtime& rt = *shared.runtime;
  try {
    if (request.path == "/api/processes")
      return {200, "application/json", processes_json(list_processes(rt, ListOptions{.details = true}))};
    if (request.path == "/api/process") return answer_process(rt, request);
    if (request.path == "/api/tree") return answer_trees(rt, shared);
    if (request.path == "/api/metrics") return {200, "application/json", metrics_json(take_snapshot(rt))};
    if (request.path == "/metrics")
      return {200, "text/plain; version=0.0.4; charset=utf-8", prometheus_text(take_snapshot(rt))};
  } catch (const std::exception& e) {
    return json_error(500, e.what());
  }
  return json_error(404, "no such path");
}

bool for_the_thread(std::string_view path) {
  return path == "/api/processes" || path == "/api/process" || path == "/api/tree" || path == "/api/metrics" ||
         path == "/metrics";
}

const PageAsset* find_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (std::size_t i = 0; i < page_asset_count; ++i)
    if (page_assets[i].path == path) return &page_assets[i];
  return nullptr;
}

// The thread: answers jobs one at a time until stopping.
void run_thread(std::shared_ptr<Shared> shared) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(shared->mutex);
      shared->wake.wait(lock, [&] { return shared->stopping || !shared->jobs.empty(); });
      if (shared->stopping) return;
      job = std::move(shared->jobs.front());
      shared->jobs.pop_front();
    }
    HttpResponse response = answer(*shared, job.request);
    shared->runtime->send(job.reply_to, JobDone{job.sequence, std::move(response)});
  }
}

// Writes `bytes` whole; false when the connection is gone. An empty `bytes` waits until
// nothing is queued. Past the socket's high watermark, waits for Sent before writing more.
Async<bool> write_all(net::Socket& socket, const std::string& bytes) {
  for (;;) {
    if (bytes.empty() && socket.queued_bytes() == 0) co_return true;
    if (!bytes.empty()) {
      auto taken = socket.send(bytes);
      if (taken) co_return true;
      if (taken.error().kind() != ErrorKind::would_block) co_return false;
    }
    const auto id = socket.id();
    Message m = co_await receive_if([id](const Message& m) {
      if (auto* s = m.get_if<net::Sent>()) return s->socket == id;
      if (auto* c = m.get_if<net::Closed>()) return c->socket == id;
      return false;
    });
    if (m.is<net::Closed>()) co_return false;
  }
}

// Before closing after an error: reads and drops what the client still sends (until it
// closes, goes quiet for a moment, or passes a bound), so that the close is a FIN after our
// answer, not a reset (which unread bytes would cause) that could destroy the answer in flight.
Async<void> linger(net::Socket& socket) {
  const auto id = socket.id();
  std::size_t dropped = 0;
  while (dropped < (std::size_t{1} << 20) && socket.set_active_once()) {
    auto m = co_await receive_if(
        [id](const Message& m) {
          if (auto* d = m.get_if<net::Data>()) return d->socket == id;
          if (auto* c = m.get_if<net::Closed>()) return c->socket == id;
          return false;
        },
        200ms);
    if (!m || m->is<net::Closed>()) co_return;
    dropped += m->get<net::Data>().bytes.size();
  }
}

Async<void> serve_connection(std::shared_ptr<Shared> shared, net::Socket socket) {
  set_label("observer connection");
  HttpParser parser;
  std::uint64_t sequence = 0;
  const auto id = socket.id();
  if (!socket.set_active_once()) co_return;
  for (;;) {
    auto m = co_await receive_if(
        [id](const Message& m) {
          if (auto* d = m.get_if<net::Data>()) return d->socket == id;
          if (auto* c = m.get_if<net::Closed>()) return c->socket == id;
          return m.is<JobDone>();  // an answer that came after its wait gave up: dropped below
        },
        idle_timeout);
    if (!m || m->is<net::Closed>()) co_return;
    if (m->is<JobDone>()) continue;
    parser.feed(m->get<net::Data>().bytes);
    for (;;) {
      HttpRequest request;
      const HttpParser::Status status = parser.next(request);
      if (status == HttpParser::Status::incomplete) break;
      if (status == HttpParser::Status::error) {
        const std::string body = "bad request: " + parser.error() + "\n";
        if (co_await write_all(socket, http_response(400, "text/plain; charset=utf-8", body, false)) &&
            co_await write_all(socket, {}))
          co_await linger(socket);
        co_return;
      }
      HttpResponse response;
      bool keep_alive = request.keep_alive;
      std::string extra;
      if (request.method != "GET") {
        // Whatever body it has is unread: the connection cannot go on.
        response = {405, "text/plain; charset=utf-8", "only GET\n"};
        keep_alive = false;
        extra = "Allow: GET\r\n";
      } else if (const PageAsset* asset = find_asset(request.path)) {
        response = {200, std::string(asset->content_type), std::string(asset->body)};
      } else if (for_the_thread(request.path)) {
        const std::uint64_t s = ++sequence;
        if (!shared->push(Job{self(), s, request})) co_return;
        auto done = co_await receive_if(
            [s](const Message& m) {
              const auto* d = m.get_if<JobDone>();
              return d != nullptr && d->sequence == s;
            },
            answer_timeout);
        if (done) {
          response = std::move(done->get<JobDone>().response);
        } else {
          response = json_error(503, "the observer's thread did not answer in time");
        }
      } else {
        response = {404, "text/plain; charset=utf-8", "not found\n"};
      }
      if (!co_await write_all(socket, http_response(response.status, response.content_type, response.body,
                                                    keep_alive, extra)))
        co_return;
      if (!keep_alive) {
        if (co_await write_all(socket, {})) co_await linger(socket);
        co_return;
      }
    }
    if (!socket.set_active_once()) co_return;
  }
}

}  // namespace

}  // namespace detail

Observer::Observer(Observer&&) noexcept = default;
Observer& Observer::operator=(Observer&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
  }
  return *this;
}
Observer::~Observer() { stop(); }

std::uint16_t Observer::port() const { return state_ ? state_->port : 0; }

void Observer::stop() {
  if (!state_) return;
  detail::ObserverState& st = *state_;
  std::lock_guard lock(st.stop_mutex);
  if (st.stopped) return;
  st.stopped = true;
  {
    // Stopping first: a connection that asks now gets nothing and ends; then the tree's
    // shutdown ends every connection, waiting or not.
    std::lock_guard l(st.shared->mutex);
    st.shared->stopping = true;
    st.shared->jobs.clear();
    st.shared->wake.notify_all();
  }
  st.thread.join();
  // A supervisor started from a plain thread has no parent to take an exit signal from:
  // stop() asks it as OTP's gen_server:stop does. noproc: the runtime has stopped it already.
  (void)coppice::stop(*st.shared->runtime, st.supervisor, ExitReason::shutdown());
}

Result<Observer> start(Runtime& runtime, ObserverOptions options) {
  auto listener = net::Listener::listen(runtime, options.address, options.port);
  if (!listener) return listener.error();
  auto shared = std::make_shared<detail::Shared>();
  shared->runtime = &runtime;
  shared->roots = std::move(options.roots);
  auto state = std::make_shared<detail::ObserverState>();
  state->port = listener->port();
  state->shared = shared;

  auto connection = [shared](net::Socket socket) { return detail::serve_connection(shared, std::move(socket)); };
  net::AcceptorPoolOptions pool;
  pool.acceptors = 2;
  pool.max_connections = 64;
  auto top = Supervisor::start(runtime, {net::acceptor_pool("observer_http", *listener, pool, connection)});
  if (!top) {
    listener->close();
    return top.error();
  }
  state->supervisor = *top;
  {
    // Written before the thread starts and read only by it afterwards.
    std::lock_guard lock(shared->mutex);
    shared->own_supervisor = *top;
  }
  state->thread = std::thread(detail::run_thread, shared);
  return Observer(std::move(state));
}

}  // namespace coppice::observer
