// The observer's HTTP parser: whole, split and pipelined requests, keep-alive, and what it
// refuses (huge, malformed, with a body), never reading past its bound.
#include <gtest/gtest.h>

#include <string>

#include "observer/http.hpp"

using coppice::observer::detail::HttpParser;
using coppice::observer::detail::HttpRequest;
using coppice::observer::detail::http_response;
using coppice::observer::detail::query_parameter;
using Status = HttpParser::Status;

TEST(HttpParser, ParsesAGetWithItsPathAndQuery) {
  HttpParser p;
  p.feed("GET /api/process?id=42&x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
  HttpRequest r;
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/api/process?id=42&x=1");
  EXPECT_EQ(r.path, "/api/process");
  EXPECT_EQ(r.query, "id=42&x=1");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(p.next(r), Status::incomplete);
}

TEST(HttpParser, ARequestSplitAnywhereIsParsedOnceWhole) {
  const std::string whole = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t cut = 1; cut < whole.size(); ++cut) {
    HttpParser p;
    HttpRequest r;
    p.feed(whole.substr(0, cut));
    ASSERT_EQ(p.next(r), Status::incomplete) << "cut at " << cut;
    p.feed(whole.substr(cut));
    ASSERT_EQ(p.next(r), Status::request) << "cut at " << cut;
    EXPECT_EQ(r.path, "/metrics");
  }
  // One byte at a time.
  HttpParser p;
  HttpRequest r;
  for (std::size_t i = 0; i + 1 < whole.size(); ++i) {
    p.feed(whole.substr(i, 1));
    ASSERT_EQ(p.next(r), Status::incomplete);
  }
  p.feed(whole.substr(whole.size() - 1));
  EXPECT_EQ(p.next(r), Status::request);
}

TEST(HttpParser, PipelinedRequestsComeOutInOrder) {
  HttpParser p;
  p.feed("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\n");
  HttpRequest r;
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_EQ(r.path, "/a");
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_EQ(r.path, "/b");
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(p.next(r), Status::incomplete);
  p.feed("\r\n");
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_EQ(r.path, "/c");
}

TEST(HttpParser, Http10KeepsAliveOnlyWhenAsked) {
  HttpParser p;
  HttpRequest r;
  p.feed("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\nGET / HTTP/1.1\n\n");
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(p.next(r), Status::request) << "bare newlines are accepted";
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpParser, AHugeRequestIsAnErrorBeforeItsEnd) {
  HttpParser p;
  HttpRequest r;
  p.feed("GET / HTTP/1.1\r\n");
  const std::string header = "X-Filler: " + std::string(1000, 'a') + "\r\n";
  Status s = Status::incomplete;
  for (int i = 0; i < 100 && s == Status::incomplete; ++i) {
    p.feed(header);
    s = p.next(r);
  }
  EXPECT_EQ(s, Status::error);
  EXPECT_EQ(p.error(), "request too large");
  p.feed("\r\n");
  EXPECT_EQ(p.next(r), Status::error) << "an error stays an error";
  // A single line longer than the bound, with no newline at all.
  HttpParser q;
  q.feed(std::string(HttpParser::max_size + 1, 'G'));
  EXPECT_EQ(q.next(r), Status::error);
}

TEST(HttpParser, MalformedRequestsAreErrors) {
  const char* bad[] = {
      "GET\r\n\r\n",
      "GET /\r\n\r\n",
      "GET / HTTP/1.1 extra\r\n\r\n",
      "GET noslash HTTP/1.1\r\n\r\n",
      "get / HTTP/1.1\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
      "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\r\n\r\n",  // like a TLS hello
  };
  for (const char* b : bad) {
    HttpParser p;
    HttpRequest r;
    p.feed(b);
    EXPECT_EQ(p.next(r), Status::error) << b;
    EXPECT_FALSE(p.error().empty());
  }
}

TEST(HttpParser, OtherMethodsParseSoThatTheServerCanAnswer405) {
  HttpParser p;
  HttpRequest r;
  p.feed("POST /api/tree HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(p.next(r), Status::request);
  EXPECT_EQ(r.method, "POST");
}

TEST(HttpResponse, CarriesItsLengthAndConnection) {
  EXPECT_EQ(http_response(404, "text/plain", "nope", false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\nnope");
  const std::string ok = http_response(200, "application/json", "{}", true, "X-A: b\r\n");
  EXPECT_NE(ok.find("Connection: keep-alive\r\nX-A: b\r\n\r\n{}"), std::string::npos);
}

TEST(QueryParameter, FindsAndDecodes) {
  EXPECT_EQ(query_parameter("id=42&sort=memory", "sort"), "memory");
  EXPECT_EQ(query_parameter("id=42&sort=memory", "id"), "42");
  EXPECT_EQ(query_parameter("ids=1&id=2", "id"), "2");
  EXPECT_EQ(query_parameter("q=a%20b+c%2", "q"), "a b c%2");
  EXPECT_EQ(query_parameter("", "id"), "");
  EXPECT_EQ(query_parameter("id", "id"), "");
}
