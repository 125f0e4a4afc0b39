// S2 kv_server_crash: an error-tolerant Redis-protocol load client (redis-benchmark stops at
// the first error) that crashes one shard every 100 ms while it runs, and accounts for every
// request: OK, error (by shard), lost with its connection, or hung (no reply by its deadline).
//
// usage: coppice_crash_client --port P [--host 127.0.0.1] [--connections 50] [--pipeline 16]
//          [--seconds 10] [--crash-every-ms 100] [--crash-shard N|rotate|none]
//          [--deadline-ms 2000] [--keys 1000] [--window-ms 1000] [--shards N]
//
// The key -> shard mapping: the server's own answer to `DEBUG SHARD key` when it has one;
// otherwise computed as examples/kv routes keys, PartitionSupervisor::partition_for over the
// shard count (--shards, or the count the server names when asked to crash a shard it does not
// have). Without either (redis-server, say) shards are unknown and errors outside the crashed
// shard are not checked (null in the JSON).
// Prints one JSON object on stdout; exits 0 when the run completed (whatever it counted), 2 on
// bad arguments, 1 when it could not connect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <coppice/partition_supervisor.hpp>

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 50;
  int pipeline = 16;
  double seconds = 10;
  int crash_every_ms = 100;
  std::string crash_shard = "0";  // a number, "rotate" or "none"
  int deadline_ms = 2000;
  int keys = 1000;
  // An error counts as the crashed shard's when that shard was crashed in
  // [sent - window, replied]: its restart may still be under way when the request arrives.
  int window_ms = 1000;
  int shards = 0;  // 0: ask the server
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "coppice_crash_client: %s\n", why);
  std::fprintf(stderr,
               "usage: coppice_crash_client --port P [--host H] [--connections N] [--pipeline N] [--seconds S]\n"
               "         [--crash-every-ms MS] [--crash-shard N|rotate|none] [--deadline-ms MS] [--keys N]\n"
               "         [--window-ms MS] [--shards N]\n");
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto number = [&]() {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 0) usage(("not a number: " + v).c_str());
      return static_cast<int>(n);
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = number();
    else if (a == "--connections") o.connections = number();
    else if (a == "--pipeline") o.pipeline = number();
    else if (a == "--seconds") o.seconds = std::atof(value().c_str());
    else if (a == "--crash-every-ms") o.crash_every_ms = number();
    else if (a == "--crash-shard") o.crash_shard = value();
    else if (a == "--deadline-ms") o.deadline_ms = number();
    else if (a == "--keys") o.keys = number();
    else if (a == "--window-ms") o.window_ms = number();
    else if (a == "--shards") o.shards = number();
    else usage(("unknown option " + a).c_str());
  }
  if (o.port <= 0 || o.port > 65535) usage("--port is required");
  if (o.connections < 1 || o.pipeline < 1 || o.keys < 1 || o.seconds <= 0 || o.crash_every_ms < 1)
    usage("--connections, --pipeline, --keys, --seconds and --crash-every-ms must be positive");
  return o;
}

std::string command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// One parsed reply: its type byte and its first line (an error's message, an integer's digits).
struct Reply {
  char type = 0;
  std::string line;
};

// Parses one complete reply at buf[pos..]; returns the bytes it took, 0 when incomplete, -1
// when the bytes are not RESP.
long parse_reply(const std::string& buf, size_t pos, Reply* reply) {
  size_t eol = buf.find("\r\n", pos);
  if (eol == std::string::npos) return 0;
  if (eol == pos) return -1;
  char type = buf[pos];
  std::string line = buf.substr(pos + 1, eol - pos - 1);
  size_t next = eol + 2;
  if (reply) *reply = Reply{type, line};
  switch (type) {
    case '+': case '-': case ':': return static_cast<long>(next - pos);
    case '$': {
      long n = std::atol(line.c_str());
      if (n < 0) return static_cast<long>(next - pos);
      if (buf.size() < next + static_cast<size_t>(n) + 2) return 0;
      return static_cast<long>(next + n + 2 - pos);
    }
    case '*': {
      long n = std::atol(line.c_str());
      for (long k = 0; k < n; ++k) {
        long took = parse_reply(buf, next, nullptr);
        if (took <= 0) return took;
        next += static_cast<size_t>(took);
      }
      return static_cast<long>(next - pos);
    }
    default: return -1;
  }
}

int connect_to(const Options& o, bool blocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Blocking: sends one pipelined batch and reads its replies (setup only, before the load).
std::optional<std::vector<Reply>> exchange(int fd, const std::string& batch, size_t replies) {
  for (size_t sent = 0; sent < batch.size();) {
    ssize_t n = ::send(fd, batch.data() + sent, batch.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return std::nullopt;
    sent += static_cast<size_t>(n);
  }
  std::vector<Reply> out;
  std::string buf;
  size_t pos = 0;
  char chunk[65536];
  while (out.size() < replies) {
    Reply r;
    long took = parse_reply(buf, pos, &r);
    if (took < 0) return std::nullopt;
    if (took > 0) {
      pos += static_cast<size_t>(took);
      out.push_back(r);
      continue;
    }
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return out;
}

struct Request {
  int64_t sent_us;
  int shard;  // -1: no key (PING) or unknown
  bool hung = false;
};

struct Connection {
  int fd = -1;
  std::string out;
  std::string in;
  size_t in_pos = 0;
  std::deque<Request> pending;
  bool control = false;  // the connection that sends DEBUG CRASH
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

class Run {
 public:
  explicit Run(Options o) : o_(std::move(o)) {}

  int main() {
    if (!map_shards()) return fail("cannot connect to " + o_.host + ":" + std::to_string(o_.port));
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < o_.connections; ++i) {
      if (!open(connections_.emplace_back())) return fail("cannot connect a load connection");
    }
    control_.control = true;
    if (!open(control_)) return fail("cannot connect the control connection");

    crash_plan();
    start_us_ = now_us();
    int64_t stop_us = start_us_ + static_cast<int64_t>(o_.seconds * 1e6);
    int64_t next_crash = start_us_ + o_.crash_every_ms * 1000;
    bool loading = true;
    int64_t drain_until = 0;
    for (;;) {
      int64_t now = now_us();
      if (loading && now >= stop_us) {
        loading = false;
        end_load_us_ = now;
        // Every request still out gets its full deadline, and a little more to be read.
        drain_until = now + o_.deadline_ms * 1000 + 100'000;
      }
      if (loading) {
        if (crashing_ && now >= next_crash) {
          send_crash(now);
          next_crash += o_.crash_every_ms * 1000;
        }
        for (auto& c : connections_) top_up(c, now);
      }
      mark_hung(now);
      if (!loading && (outstanding() == 0 || now >= drain_until)) break;
      epoll_event events[64];
      int n = ::epoll_wait(epoll_, events, 64, 5);
      for (int k = 0; k < n; ++k) {
        auto* c = static_cast<Connection*>(events[k].data.ptr);
        if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read(*c);
        if (c->fd >= 0 && (events[k].events & EPOLLOUT)) flush(*c);
      }
    }
    int64_t end = now_us();
    print(end);
    return 0;
  }

 private:
  int fail(const std::string& why) {
    std::printf("{\"error\": %s}\n", json_string(why).c_str());
    return 1;
  }

  // Asks the server for every key's shard; without an answer the shards stay unknown.
  bool map_shards() {
    int fd = connect_to(o_, true);
    if (fd < 0) return false;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < o_.keys; ++i) {
      keys_.push_back({"s:" + std::to_string(i), -1});
      keys_.push_back({"c:" + std::to_string(i), -1});
      keys_.push_back({"l:" + std::to_string(i), -1});
    }
    std::string batch;
    for (auto& k : keys_) batch += command({"DEBUG", "SHARD", k.name});
    auto replies = exchange(fd, batch, keys_.size());
    if (replies && std::all_of(replies->begin(), replies->end(), [](const Reply& r) { return r.type == ':'; })) {
      ::close(fd);
      for (size_t i = 0; i < keys_.size(); ++i) {
        keys_[i].shard = std::atoi((*replies)[i].line.c_str());
        shards_ = std::max(shards_, keys_[i].shard + 1);
      }
      shard_map_ = "server";
      return true;
    }
    std::string why = !replies                  ? "no reply to DEBUG SHARD"
                      : replies->front().type == '-' ? "DEBUG SHARD answered " + replies->front().line
                                                     : "DEBUG SHARD answered something else than a number";
    // examples/kv names its shard count when asked to crash one it does not have:
    // "ERR no such shard: 4294967295 (there are 4)".
    int shards = o_.shards;
    std::string source = "--shards";
    if (shards == 0 && replies) {
      auto probe = exchange(fd, command({"DEBUG", "CRASH", "4294967295"}), 1);
      const std::string marker = "(there are ";
      size_t at = probe ? probe->front().line.find(marker) : std::string::npos;
      if (at != std::string::npos) {
        shards = std::atoi(probe->front().line.c_str() + at + marker.size());
        source = "the server's count";
      }
    }
    ::close(fd);
    if (shards <= 0) {
      shard_map_ = "unavailable: " + why;
      return true;
    }
    for (auto& k : keys_) k.shard = static_cast<int>(coppice::PartitionSupervisor::partition_for(k.name, shards));
    shards_ = shards;
    shard_map_ = "computed: PartitionSupervisor::partition_for over " + std::to_string(shards) + " shards (" +
                 source + ")";
    return true;
  }

  void crash_plan() {
    if (o_.crash_shard == "none") return;
    if (o_.crash_shard == "rotate") {
      if (shards_ == 0) return;  // nothing to rotate over: crash nothing rather than guess
      rotate_ = true;
    } else {
      fixed_shard_ = std::atoi(o_.crash_shard.c_str());
    }
    crashing_ = true;
  }

  bool open(Connection& c) {
    c.fd = connect_to(o_, false);
    if (c.fd < 0) return false;
    c.in.clear();
    c.in_pos = 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c;
    return ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) == 0;
  }

  void send_crash(int64_t now) {
    int shard = rotate_ ? static_cast<int>(crashes_sent_ % static_cast<uint64_t>(shards_)) : fixed_shard_;
    crashes_.push_back({now, shard});
    crashed_shards_.insert(shard);
    ++crashes_sent_;
    control_.out += command({"DEBUG", "CRASH", std::to_string(shard)});
    control_.pending.push_back({now, shard});
    flush(control_);
  }

  void top_up(Connection& c, int64_t now) {
    if (c.fd < 0) {
      // Lost: reconnect (a failed connect counts once more and is retried next turn).
      if (!open(c)) {
        c.fd = -1;
        return;
      }
      ++reconnects_;
    }
    if (c.pending.size() >= static_cast<size_t>(o_.pipeline)) return;
    while (c.pending.size() < static_cast<size_t>(o_.pipeline)) {
      uint64_t n = sent_++;
      const Key& k = keys_[(n / 6 * 7919 % (keys_.size() / 3)) * 3 + (n % 6 < 2 ? 0 : n % 6 < 3 ? 1 : 2)];
      int shard = k.shard;
      switch (n % 6) {
        case 0: c.out += command({"SET", k.name, "1"}); break;
        case 1: c.out += command({"GET", k.name}); break;
        case 2: c.out += command({"INCR", k.name}); break;
        case 3: c.out += command({"LPUSH", k.name, "x"}); break;
        case 4: c.out += command({"LPOP", k.name}); break;
        default: c.out += command({"PING"}); shard = -1; break;
      }
      c.pending.push_back({now, shard});
    }
    flush(c);
  }

  void flush(Connection& c) {
    while (c.fd >= 0 && !c.out.empty()) {
      ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        lose(c, n < 0 ? std::strerror(errno) : "closed");
        return;
      }
    }
  }

  void read(Connection& c) {
    char chunk[65536];
    for (;;) {
      if (c.fd < 0) return;
      ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
      if (n > 0) {
        c.in.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      consume(c);
      lose(c, n == 0 ? "closed by the server" : std::strerror(errno));
      return;
    }
    consume(c);
  }

  void consume(Connection& c) {
    int64_t now = now_us();
    for (;;) {
      Reply r;
      long took = parse_reply(c.in, c.in_pos, &r);
      if (took == 0) break;
      if (took < 0 || c.pending.empty()) {
        lose(c, took < 0 ? "not RESP" : "a reply to no request");
        return;
      }
      c.in_pos += static_cast<size_t>(took);
      Request req = c.pending.front();
      c.pending.pop_front();
      if (c.control) {
        if (r.type == '-') {
          ++crash_errors_;
          if (crash_error_sample_.empty()) crash_error_sample_ = r.line;
        } else {
          ++crash_ok_;
        }
        continue;
      }
      ++replies_;
      if (req.hung) ++late_replies_;
      if (r.type == '-') {
        error(req, now, r.line);
      } else {
        ++ok_;
        latencies_us_.push_back(static_cast<uint32_t>(std::min<int64_t>(now - req.sent_us, UINT32_MAX)));
      }
    }
    if (c.in_pos > 65536) {
      c.in.erase(0, c.in_pos);
      c.in_pos = 0;
    }
  }

  void error(const Request& req, int64_t now, const std::string& message) {
    ++errors_;
    ++errors_by_shard_[req.shard];
    if (error_samples_.size() < 5) error_samples_.insert(message.substr(0, 120));
    if (shards_ == 0) return;
    bool inside = false;
    for (auto it = crashes_.rbegin(); it != crashes_.rend() && it->at_us >= req.sent_us - o_.window_ms * 1000; ++it) {
      if (it->shard == req.shard && it->at_us <= now) inside = true;
    }
    ++(inside ? errors_inside_ : errors_outside_);
  }

  // The connection is gone: what it had out failed (not hung: the client knows it), counted as
  // errors of their shards; the load reconnects it.
  void lose(Connection& c, const std::string& why) {
    if (c.fd < 0) return;
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.out.clear();
    c.in.clear();
    c.in_pos = 0;
    ++connection_losses_;
    if (loss_sample_.empty()) loss_sample_ = why;
    int64_t now = now_us();
    for (auto& req : c.pending) {
      if (c.control) {
        ++crash_errors_;
        continue;
      }
      ++lost_requests_;
      if (req.hung) continue;  // already counted as hung
      error(req, now, "connection lost: " + why);
    }
    c.pending.clear();
    if (c.control) open(c);
  }

  void mark_hung(int64_t now) {
    int64_t limit = now - o_.deadline_ms * 1000;
    for (auto& c : connections_) {
      for (auto& req : c.pending) {
        if (req.sent_us > limit) break;  // replies come in order: the rest are younger
        if (!req.hung) {
          req.hung = true;
          ++hung_;
        }
      }
    }
  }

  size_t outstanding() const {
    size_t n = 0;
    for (const auto& c : connections_) {
      for (const auto& req : c.pending) n += req.hung ? 0 : 1;
    }
    return n;
  }

  void print(int64_t end) {
    // Requests still out after the drain had their deadline: they are hung (mark_hung counted them).
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) -> uint32_t {
      if (latencies_us_.empty()) return 0;
      size_t i = static_cast<size_t>(p * static_cast<double>(latencies_us_.size() - 1));
      return latencies_us_[i];
    };
    double load_s = static_cast<double>(end_load_us_ - start_us_) / 1e6;
    std::string by_shard = "{";
    for (auto& [shard, n] : errors_by_shard_) {
      if (by_shard.size() > 1) by_shard += ", ";
      by_shard += json_string(shard < 0 ? "none" : std::to_string(shard)) + ": " + std::to_string(n);
    }
    by_shard += "}";
    std::string crashed = "[";
    for (int s : crashed_shards_) crashed += (crashed.size() > 1 ? ", " : "") + std::to_string(s);
    crashed += "]";
    std::string samples = "[";
    for (auto& s : error_samples_) samples += (samples.size() > 1 ? ", " : "") + json_string(s);
    samples += "]";
    bool known = shards_ > 0;
    std::printf(
        "{\"connections\": %d, \"pipeline\": %d, \"seconds\": %.3f, \"crash_every_ms\": %d, \"deadline_ms\": %d, "
        "\"window_ms\": %d, \"shards\": %d, \"shard_map\": %s, \"crashed_shards\": %s, "
        "\"requests\": %llu, \"replies\": %llu, \"ok\": %llu, \"errors\": %llu, \"errors_by_shard\": %s, "
        "\"errors_in_crashed_shard\": %s, \"errors_outside_crashed_shard\": %s, \"hung\": %llu, "
        "\"late_replies\": %llu, \"connection_losses\": %llu, \"lost_requests\": %llu, \"reconnects\": %llu, "
        "\"crashes_sent\": %llu, \"crash_replies_ok\": %llu, \"crash_errors\": %llu, \"crash_error_sample\": %s, "
        "\"connection_loss_sample\": %s, \"error_samples\": %s, \"requests_per_s\": %.0f, "
        "\"ok_p50_us\": %u, \"ok_p99_us\": %u, \"ok_max_us\": %u, \"wall_s\": %.3f}\n",
        o_.connections, o_.pipeline, load_s, o_.crash_every_ms, o_.deadline_ms, o_.window_ms, shards_,
        json_string(shard_map_).c_str(), crashed.c_str(), ull(sent_), ull(replies_), ull(ok_), ull(errors_),
        by_shard.c_str(), known ? std::to_string(errors_inside_).c_str() : "null",
        known ? std::to_string(errors_outside_).c_str() : "null", ull(hung_), ull(late_replies_),
        ull(connection_losses_), ull(lost_requests_), ull(reconnects_), ull(crashes_sent_), ull(crash_ok_),
        ull(crash_errors_), json_string(crash_error_sample_).c_str(), json_string(loss_sample_).c_str(),
        samples.c_str(), load_s > 0 ? static_cast<double>(replies_) / load_s : 0.0, pct(0.5), pct(0.99),
        latencies_us_.empty() ? 0u : latencies_us_.back(), static_cast<double>(end - start_us_) / 1e6);
  }

  static unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

  struct Key {
    std::string name;
    int shard;
  };
  struct Crash {
    int64_t at_us;
    int shard;
  };

  Options o_;
  int epoll_ = -1;
  std::deque<Connection> connections_;  // a deque: epoll holds pointers to its elements
  Connection control_;
  std::vector<Key> keys_;
  int shards_ = 0;
  std::string shard_map_;
  bool crashing_ = false;
  bool rotate_ = false;
  int fixed_shard_ = 0;
  std::vector<Crash> crashes_;
  std::set<int> crashed_shards_;
  int64_t start_us_ = 0;
  int64_t end_load_us_ = 0;
  uint64_t sent_ = 0, replies_ = 0, ok_ = 0, errors_ = 0, errors_inside_ = 0, errors_outside_ = 0;
  uint64_t hung_ = 0, late_replies_ = 0, connection_losses_ = 0, lost_requests_ = 0, reconnects_ = 0;
  uint64_t crashes_sent_ = 0, crash_ok_ = 0, crash_errors_ = 0;
  std::map<int, uint64_t> errors_by_shard_;
  std::set<std::string> error_samples_;
  std::string crash_error_sample_, loss_sample_;
  std::vector<uint32_t> latencies_us_;
};

}  // namespace

int main(int argc, char** argv) {
  Run run(parse_options(argc, argv));
  return run.main();
}
