// The RESP parser fed as a socket feeds it: requests split anywhere, many per read, and
// malformed input answered with Redis's error (no crash, no resynchronisation).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resp.hpp"

namespace {

using kv::resp::Command;
using kv::resp::Parser;

// Every complete request in the parser now.
std::vector<Command> drain(Parser& p) {
  std::vector<Command> out;
  Command c;
  while (p.next(c) == Parser::Status::command) out.push_back(c);
  return out;
}

const std::string set_request = "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n";

TEST(RespParser, ReadsAMultibulkRequest) {
  Parser p;
  p.feed(set_request);
  auto cs = drain(p);
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0], (Command{"SET", "key:__rand_int__", "xxx"}));
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(RespParser, ReadsAnInlineRequestWithOrWithoutCarriageReturn) {
  Parser p;
  p.feed("PING\r\n  GET   a\t\r\nECHO b\n");
  auto cs = drain(p);
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[0], (Command{"PING"}));
  EXPECT_EQ(cs[1], (Command{"GET", "a"}));
  EXPECT_EQ(cs[2], (Command{"ECHO", "b"}));
}

TEST(RespParser, ARequestSplitAtEveryByteIsReadOnceWhole) {
  const std::string stream = set_request + "PING\r\n" + set_request;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Parser p;
    p.feed(stream.substr(0, cut));
    auto first = drain(p);
    p.feed(stream.substr(cut));
    auto rest = drain(p);
    first.insert(first.end(), rest.begin(), rest.end());
    ASSERT_EQ(first.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(first[1], (Command{"PING"}));
    EXPECT_EQ(first[2], (Command{"SET", "key:__rand_int__", "xxx"}));
  }
}

TEST(RespParser, ByteByByteFeedingGivesTheSameRequests) {
  std::string stream;
  for (int i = 0; i < 16; ++i) stream += set_request;
  Parser p;
  std::vector<Command> got;
  for (char ch : stream) {
    p.feed(std::string_view(&ch, 1));
    auto cs = drain(p);
    got.insert(got.end(), cs.begin(), cs.end());
  }
  EXPECT_EQ(got.size(), 16u);
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(RespParser, SixteenPipelinedRequestsInOneReadAreSixteenCommands) {
  std::string stream;
  for (int i = 0; i < 16; ++i) stream += "*1\r\n$4\r\nPING\r\n";
  Parser p;
  p.feed(stream);
  EXPECT_EQ(drain(p).size(), 16u);
}

TEST(RespParser, BinaryValuesKeepTheirBytes) {
  const std::string value("a\r\n\0b", 5);
  Parser p;
  p.feed("*2\r\n$3\r\nGET\r\n$5\r\n" + value + "\r\n");
  auto cs = drain(p);
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0][1], value);
}

TEST(RespParser, EmptyRequestsAreSkipped) {
  Parser p;
  p.feed("*0\r\n\r\n*-1\r\nPING\r\n");
  auto cs = drain(p);
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0], (Command{"PING"}));
}

// Malformed input: the requests before it are read, then an error in Redis's words, and the
// parser stays in error (the connection closes after answering).
struct Malformed {
  const char* input;
  const char* error;
};

TEST(RespParser, MalformedInputIsAnErrorNeverACrash) {
  const Malformed cases[] = {
      {"*x\r\n", "Protocol error: invalid multibulk length"},
      {"*-\r\n", "Protocol error: invalid multibulk length"},
      {"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"},
      {"*2000000\r\n", "Protocol error: invalid multibulk length"},
      {"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"},
      {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$999999999999\r\n", "Protocol error: invalid bulk length"},
      {"*1\r\n$4\r\nPINGxx", "Protocol error: expected '\\r\\n' after bulk string"},
  };
  for (const auto& c : cases) {
    Parser p;
    p.feed(std::string("PING\r\n") + c.input);
    Command cmd;
    ASSERT_EQ(p.next(cmd), Parser::Status::command) << c.input;
    EXPECT_EQ(p.next(cmd), Parser::Status::error) << c.input;
    EXPECT_EQ(p.error(), c.error) << c.input;
    EXPECT_EQ(p.next(cmd), Parser::Status::error) << "stays in error: " << c.input;
  }
}

TEST(RespParser, AnEndlessLineIsAnErrorOnceItPassesRedissLimit) {
  Parser p;
  std::string junk(Parser::max_inline_length, 'a');
  p.feed(junk);
  Command cmd;
  EXPECT_EQ(p.next(cmd), Parser::Status::incomplete);
  p.feed("a");
  EXPECT_EQ(p.next(cmd), Parser::Status::error);
  EXPECT_EQ(p.error(), "Protocol error: too big inline request");

  Parser q;
  q.feed("*1\r\n$" + junk);
  EXPECT_EQ(q.next(cmd), Parser::Status::error);
  EXPECT_EQ(q.error(), "Protocol error: too big bulk count string");
}

TEST(RespParser, ALargeValueArrivingInPiecesIsReadWhole) {
  const std::string value(1 << 20, 'v');
  const std::string stream = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  Parser p;
  Command cmd;
  for (std::size_t at = 0; at < stream.size(); at += 65536) {
    EXPECT_EQ(p.next(cmd), Parser::Status::incomplete);
    p.feed(std::string_view(stream).substr(at, 65536));
  }
  ASSERT_EQ(p.next(cmd), Parser::Status::command);
  EXPECT_EQ(cmd[2].size(), value.size());
}

TEST(RespEncoding, RepliesAreRedissBytes) {
  std::string out;
  kv::resp::append_simple(out, "OK");
  kv::resp::append_error(out, "ERR x");
  kv::resp::append_integer(out, -42);
  kv::resp::append_bulk(out, "abc");
  kv::resp::append_bulk(out, "");
  kv::resp::append_null(out);
  kv::resp::append_array_header(out, 2);
  EXPECT_EQ(out, "+OK\r\n-ERR x\r\n:-42\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*2\r\n");
}

}  // namespace
