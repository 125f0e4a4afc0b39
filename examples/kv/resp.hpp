// RESP (the Redis protocol): an incremental request parser and the reply encoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kv::resp {

// One request: its words, the command name first (as the client sent it, any case).
using Command = std::vector<std::string>;

// Parses requests from a byte stream read in pieces of any size: a request may be split
// across reads, and one read may hold many (pipelining). Both forms Redis accepts: multibulk
// (`*2\r\n$3\r\nGET\r\n$1\r\na\r\n`) and inline (`PING\r\n`, words split on blanks).
// After an error the stream cannot be resynchronised: the connection answers it and closes.
class Parser {
 public:
  enum class Status : std::uint8_t { command, incomplete, error };

  // Redis's own limits (proto-max-bulk-len, the multibulk count, PROTO_INLINE_MAX_SIZE).
  static constexpr std::int64_t max_bulk_length = 512ll * 1024 * 1024;
  static constexpr std::int64_t max_multibulk_length = 1024 * 1024;
  static constexpr std::size_t max_inline_length = 64 * 1024;

  void feed(std::string_view bytes);
  // The next complete request into `out` (command); incomplete: wait for more bytes; error:
  // error() says what, in Redis's words (without "-ERR ").
  Status next(Command& out);
  const std::string& error() const { return error_; }
  // Bytes received and not yet parsed into a request.
  std::size_t buffered() const { return buffer_.size() - position_; }

 private:
  Status fail(std::string message);
  Status parse_inline(Command& out);
  Status parse_multibulk(Command& out);

  std::string buffer_;
  std::size_t position_ = 0;  // where the next request starts in buffer_
  std::string error_;
  std::vector<std::pair<std::size_t, std::size_t>> spans_;  // scratch: offset and size of each argument
};

// Reply encoders: each appends one RESP value to `out`.
void append_simple(std::string& out, std::string_view text);  // +text
void append_error(std::string& out, std::string_view text);   // -text (text names its kind: "ERR ...")
void append_integer(std::string& out, long long n);
void append_bulk(std::string& out, std::string_view bytes);
void append_null(std::string& out);  // the nil bulk string, $-1
void append_array_header(std::string& out, std::size_t n);

}  // namespace kv::resp
