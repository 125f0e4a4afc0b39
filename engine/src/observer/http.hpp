// The observer's HTTP/1.1: an incremental parser for GET requests with a bounded size, and
// the responses it writes. Internal to coppice::observer (tested in tests/observer).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace coppice::observer::detail {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // before '?'
  std::string query;   // after '?', "" if none
  bool keep_alive = true;
};

// Bytes in, requests out, in order (pipelined requests included). A request is its request
// line and headers (no body: a request that announces one is refused), at most max_size
// bytes; anything larger, or malformed, is an error, after which the connection should get
// a 400 and be closed (the parser stays in error).
class HttpParser {
 public:
  static constexpr std::size_t max_size = 8 * 1024;
  enum class Status { incomplete, request, error };

  void feed(std::string_view bytes) { buffer_.append(bytes); }
  Status next(HttpRequest& out);
  const std::string& error() const { return error_; }

 private:
  Status fail(std::string why);
  std::string buffer_;
  std::string error_;
  bool failed_ = false;
};

// One whole response with Content-Length; `extra_headers` lines end in "\r\n".
std::string http_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          std::string_view extra_headers = {});
std::string_view reason_phrase(int status);
// The value of `key` in a query string (a=1&b=2), percent-decoded; "" if absent.
std::string query_parameter(std::string_view query, std::string_view key);

}  // namespace coppice::observer::detail
