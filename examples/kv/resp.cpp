// RESP parsing and reply encoding (see resp.hpp).
#include "resp.hpp"

#include <charconv>
#include <cstring>

namespace kv::resp {

namespace {

// A whole decimal integer in `text`, or false (empty, a sign alone, trailing bytes, overflow).
bool parse_integer(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end;
}

}  // namespace

void Parser::feed(std::string_view bytes) {
  // Drop what has been parsed before appending, so that the buffer holds at most one
  // partial request plus the new read (not the connection's whole history).
  if (position_ == buffer_.size()) {
    buffer_.clear();
    position_ = 0;
  } else if (position_ > 0) {
    buffer_.erase(0, position_);
    position_ = 0;
  }
  buffer_.append(bytes);
}

Parser::Status Parser::fail(std::string message) {
  error_ = std::move(message);
  return Status::error;
}

Parser::Status Parser::next(Command& out) {
  // An empty multibulk (*0, *-1) or a blank inline line is skipped, as Redis does.
  for (;;) {
    if (!error_.empty()) return Status::error;
    if (position_ == buffer_.size()) return Status::incomplete;
    const std::size_t before = position_;
    Status s = buffer_[position_] == '*' ? parse_multibulk(out) : parse_inline(out);
    if (s != Status::command || !out.empty()) return s;
    if (position_ == before) return Status::incomplete;  // cannot happen; never spin
  }
}

Parser::Status Parser::parse_inline(Command& out) {
  const char* start = buffer_.data() + position_;
  const std::size_t available = buffer_.size() - position_;
  const void* newline = std::memchr(start, '\n', available);
  if (newline == nullptr) {
    if (available > max_inline_length) return fail("Protocol error: too big inline request");
    return Status::incomplete;
  }
  std::size_t length = static_cast<const char*>(newline) - start;
  position_ += length + 1;
  if (length > 0 && start[length - 1] == '\r') --length;
  out.clear();
  std::size_t i = 0;
  while (i < length) {
    while (i < length && (start[i] == ' ' || start[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < length && start[j] != ' ' && start[j] != '\t') ++j;
    if (j > i) out.emplace_back(start + i, j - i);
    i = j;
  }
  return Status::command;
}

Parser::Status Parser::parse_multibulk(Command& out) {
  // Find every argument's span first; build the strings only once the request is complete,
  // so that a request split over many reads costs a rescan of its headers, not a copy.
  const std::string_view buffer(buffer_);
  std::size_t cursor = position_;
  auto line_end = [&](std::size_t from) { return buffer.find("\r\n", from); };

  std::size_t header_end = line_end(cursor);
  if (header_end == std::string_view::npos) {
    if (buffer.size() - cursor > max_inline_length) return fail("Protocol error: too big mbulk count string");
    return Status::incomplete;
  }
  std::int64_t count = 0;
  if (!parse_integer(buffer.substr(cursor + 1, header_end - cursor - 1), count) || count > max_multibulk_length)
    return fail("Protocol error: invalid multibulk length");
  cursor = header_end + 2;
  if (count <= 0) {
    position_ = cursor;
    out.clear();
    return Status::command;
  }

  spans_.clear();
  for (std::int64_t k = 0; k < count; ++k) {
    if (cursor >= buffer.size()) return Status::incomplete;
    if (buffer[cursor] != '$')
      return fail(std::string("Protocol error: expected '$', got '") + buffer[cursor] + "'");
    std::size_t length_end = line_end(cursor);
    if (length_end == std::string_view::npos) {
      if (buffer.size() - cursor > max_inline_length) return fail("Protocol error: too big bulk count string");
      return Status::incomplete;
    }
    std::int64_t length = 0;
    if (!parse_integer(buffer.substr(cursor + 1, length_end - cursor - 1), length) || length < 0 ||
        length > max_bulk_length)
      return fail("Protocol error: invalid bulk length");
    cursor = length_end + 2;
    const auto size = static_cast<std::size_t>(length);
    if (buffer.size() - cursor < size + 2) return Status::incomplete;
    if (buffer[cursor + size] != '\r' || buffer[cursor + size + 1] != '\n')
      return fail("Protocol error: expected '\\r\\n' after bulk string");
    spans_.emplace_back(cursor, size);
    cursor += size + 2;
  }
  out.clear();
  out.reserve(spans_.size());
  for (auto [offset, size] : spans_) out.emplace_back(buffer.substr(offset, size));
  position_ = cursor;
  return Status::command;
}

void append_simple(std::string& out, std::string_view text) {
  out += '+';
  out += text;
  out += "\r\n";
}

void append_error(std::string& out, std::string_view text) {
  out += '-';
  out += text;
  out += "\r\n";
}

void append_integer(std::string& out, long long n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out += ':';
  out.append(digits, end);
  out += "\r\n";
}

void append_bulk(std::string& out, std::string_view bytes) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, bytes.size());
  out += '$';
  out.append(digits, end);
  out += "\r\n";
  out += bytes;
  out += "\r\n";
}

void append_null(std::string& out) { out += "$-1\r\n"; }

void append_array_header(std::string& out, std::size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out += '*';
  out.append(digits, end);
  out += "\r\n";
}

}  // namespace kv::resp
