// The observer's server on loopback, with a plain socket client: the endpoints answer, a bad
// request gets 400 and a closed connection, an unknown path 404, and stop() ends it all.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "coppice/coppice.hpp"
#include "coppice/observe.hpp"
#include "coppice/observer.hpp"
#include "coppice/supervisor.hpp"

using namespace coppice;

namespace {

struct Get {};
class Named : public GenServer<Named> {
 public:
  using calls = Protocol<Get>;
  Init init() {
    set_label("the \"named\" one");
    return ok();
  }
  int handle_call(Get) { return 1; }
  std::string format_status() const { return "state of named"; }
};

// A blocking client connection with a 10 s receive timeout (a hung server fails the test).
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  void write(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  // One response: its status, and its body (by Content-Length). Status 0 if the connection closed first.
  std::pair<int, std::string> response() {
    for (;;) {
      const std::size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::size_t cl = buffer_.find("Content-Length: ");
        const std::size_t length = std::stoul(buffer_.substr(cl + 16));
        if (buffer_.size() >= end + 4 + length) {
          const int status = std::stoi(buffer_.substr(9, 3));
          std::string body = buffer_.substr(end + 4, length);
          buffer_.erase(0, end + 4 + length);
          return {status, body};
        }
      }
      if (!fill()) return {0, {}};
    }
  }
  // True if the server closed the connection (read returns 0 or reset).
  bool closed_by_server() {
    char b[256];
    for (;;) {
      const ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) return n == 0 || errno == ECONNRESET;
    }
  }

 private:
  bool fill() {
    char b[65536];
    const ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n <= 0) return false;
    buffer_.append(b, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

std::pair<int, std::string> get(std::uint16_t port, const std::string& target) {
  Client c(port);
  EXPECT_TRUE(c.connected());
  c.write("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  return c.response();
}

}  // namespace

TEST(ObserverServer, ServesThePageTheJsonAndPrometheus) {
  Runtime rt(RuntimeOptions{.workers = 2, .logger = [](std::string_view) {}});
  auto top = Supervisor::start(rt, {child<Named>("named").name("named")}, SupervisorFlags{});
  ASSERT_TRUE(top);
  auto observer = observer::start(rt);
  ASSERT_TRUE(observer) << observer.error();
  const std::uint16_t port = observer->port();
  ASSERT_NE(port, 0);

  auto [page_status, page] = get(port, "/");
  EXPECT_EQ(page_status, 200);
  EXPECT_NE(page.find("<div id=\"tree\">"), std::string::npos);
  EXPECT_EQ(get(port, "/app.js").first, 200);
  EXPECT_EQ(get(port, "/app.css").first, 200);

  auto [tree_status, tree] = get(port, "/api/tree");
  EXPECT_EQ(tree_status, 200);
  EXPECT_NE(tree.find("\"registered_name\":\"named\""), std::string::npos) << tree;
  EXPECT_EQ(tree.find("observer_http"), std::string::npos) << "the observer's own tree is left out: " << tree;

  auto [list_status, list] = get(port, "/api/processes");
  EXPECT_EQ(list_status, 200);
  EXPECT_NE(list.find("\"label\":\"the \\\"named\\\" one\""), std::string::npos) << list;
  EXPECT_NE(list.find("\"label\":\"observer connection\""), std::string::npos);

  const Pid named = rt.whereis("named");
  auto [one_status, one] = get(port, "/api/process?id=" + std::to_string(named.bits()));
  EXPECT_EQ(one_status, 200);
  EXPECT_NE(one.find("\"state\":\"state of named\""), std::string::npos) << one;
  EXPECT_NE(one.find("\"detailed\":true"), std::string::npos) << one;
  EXPECT_EQ(get(port, "/api/process?id=12").first, 404) << "nobody";
  EXPECT_EQ(get(port, "/api/process?id=x").first, 400);

  auto [m_status, m] = get(port, "/api/metrics");
  EXPECT_EQ(m_status, 200);
  EXPECT_NE(m.find("\"workers\":[{\"index\":0"), std::string::npos) << m;
  auto [p_status, p] = get(port, "/metrics");
  EXPECT_EQ(p_status, 200);
  EXPECT_NE(p.find("coppice_worker_turns_total{worker=\"1\"}"), std::string::npos) << p;

  EXPECT_EQ(get(port, "/nowhere").first, 404);
  observer->stop();
  observer->stop();  // idempotent
  EXPECT_FALSE(Client(port).connected()) << "the listener is closed";
}

TEST(ObserverServer, KeepsAConnectionAliveAcrossPipelinedRequests) {
  Runtime rt(RuntimeOptions{.workers = 1, .logger = [](std::string_view) {}});
  auto observer = observer::start(rt);
  ASSERT_TRUE(observer);
  Client c(observer->port());
  ASSERT_TRUE(c.connected());
  c.write("GET /api/metrics HTTP/1.1\r\n\r\nGET /app.css HTTP/1.1\r\n\r\nGET /metr");
  EXPECT_EQ(c.response().first, 200);
  EXPECT_EQ(c.response().first, 200);
  c.write("ics HTTP/1.1\r\n\r\n");
  auto [status, body] = c.response();
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("# TYPE coppice_processes gauge"), std::string::npos);
}

TEST(ObserverServer, ABadRequestGets400AndTheConnectionClosed) {
  Runtime rt(RuntimeOptions{.workers = 1, .logger = [](std::string_view) {}});
  auto observer = observer::start(rt);
  ASSERT_TRUE(observer);
  {
    Client c(observer->port());
    c.write("this is not http\r\n\r\n");
    EXPECT_EQ(c.response().first, 400);
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    Client c(observer->port());  // huge: no end of headers within the bound
    c.write("GET / HTTP/1.1\r\n");
    for (int i = 0; i < 20; ++i) c.write("X-Filler: " + std::string(1000, 'a') + "\r\n");
    EXPECT_EQ(c.response().first, 400);
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    Client c(observer->port());
    c.write("POST /api/tree HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(c.response().first, 405);
    EXPECT_TRUE(c.closed_by_server());
  }
  // The server is still there.
  EXPECT_EQ(get(observer->port(), "/api/metrics").first, 200);
}

TEST(ObserverServer, TheDestructorStopsAnObserverWithAConnectionOpen) {
  Runtime rt(RuntimeOptions{.workers = 1, .logger = [](std::string_view) {}});
  std::uint16_t port = 0;
  auto idle = std::make_unique<Client>(0);
  {
    auto observer = observer::start(rt);
    ASSERT_TRUE(observer);
    port = observer->port();
    idle = std::make_unique<Client>(port);
    ASSERT_TRUE(idle->connected());
    idle->write("GET /api/metrics HTTP/1.1\r\n\r\n");
    EXPECT_EQ(idle->response().first, 200);
  }
  EXPECT_TRUE(idle->closed_by_server()) << "its connection process ended with the observer";
  EXPECT_FALSE(Client(port).connected());
}

TEST(ObserverServer, DrawsTheRootsItIsGivenOrEveryTopLevelSupervisor) {
  Runtime rt(RuntimeOptions{.workers = 2, .logger = [](std::string_view) {}});
  ASSERT_TRUE(Supervisor::start(rt, {child<Named>("named").name("named")}, SupervisorFlags{}, StartOptions{.name = "first"}));
  ASSERT_TRUE(Supervisor::start(rt, {Supervisor::child_spec("inner", std::vector<ChildSpec>{child<Named>("w")})}, SupervisorFlags{}, StartOptions{.name = "second"}));
  {
    auto all = observer::start(rt);
    ASSERT_TRUE(all);
    const std::string trees = get(all->port(), "/api/tree").second;
    EXPECT_NE(trees.find("\"registered_name\":\"first\""), std::string::npos) << trees;
    EXPECT_NE(trees.find("\"registered_name\":\"second\""), std::string::npos) << trees;
    std::size_t roots = 0;
    for (std::size_t at = trees.find("\"root\":"); at != std::string::npos; at = trees.find("\"root\":", at + 1)) ++roots;
    EXPECT_EQ(roots, 2u) << "the inner supervisor is drawn inside second, not as a root: " << trees;
  }
  auto one = observer::start(rt, observer::ObserverOptions{.roots = {ServerRef("second")}});
  ASSERT_TRUE(one);
  const std::string trees = get(one->port(), "/api/tree").second;
  EXPECT_EQ(trees.find("\"registered_name\":\"first\""), std::string::npos) << trees;
  EXPECT_NE(trees.find("\"root\":\"second\""), std::string::npos) << trees;
  EXPECT_NE(trees.find("\"child_id\":\"inner\""), std::string::npos) << trees;
}
