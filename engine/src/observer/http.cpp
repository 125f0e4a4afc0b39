// The observer's HTTP parser and responses (see http.hpp).
#include "observer/http.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace coppice::observer::detail {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A token of the request line or a header: printable ASCII only (no control bytes, no DEL).
bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

HttpParser::Status HttpParser::fail(std::string why) {
  failed_ = true;
  error_ = std::move(why);
  buffer_.clear();
  return Status::error;
}

HttpParser::Status HttpParser::next(HttpRequest& out) {
  if (failed_) return Status::error;
  // Empty lines before a request line are allowed (RFC 9112, 2.2).
  std::size_t start = 0;
  while (start < buffer_.size() && (buffer_[start] == '\r' || buffer_[start] == '\n')) ++start;
  // The end of the headers: an empty line, "\r\n\r\n" or (leniently) "\n\n".
  std::size_t end = std::string::npos, after = 0;
  for (std::size_t i = start; i < buffer_.size(); ++i) {
    if (buffer_[i] != '\n') continue;
    if (i + 1 < buffer_.size() && buffer_[i + 1] == '\n') {
      end = i, after = i + 2;
      break;
    }
    if (i + 2 < buffer_.size() && buffer_[i + 1] == '\r' && buffer_[i + 2] == '\n') {
      end = i, after = i + 3;
      break;
    }
  }
  if (end == std::string::npos) {
    if (buffer_.size() - start > max_size) return fail("request too large");
    if (start > 0) buffer_.erase(0, start);
    return Status::incomplete;
  }
  if (after - start > max_size) return fail("request too large");
  std::string_view head(buffer_.data() + start, end - start);

  HttpRequest request;
  bool first = true;
  bool http10 = false;
  std::string connection;
  while (!head.empty() || first) {
    const std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!printable(line)) {
      // A header value may carry bytes above 0x7f (obs-text); a control byte never.
      if (std::any_of(line.begin(), line.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u < 0x20 && c != '\t';
          }) || first)
        return fail("control bytes in the request");
    }
    if (first) {
      first = false;
      const std::size_t a = line.find(' ');
      const std::size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
      if (a == std::string_view::npos || b == std::string_view::npos || line.find(' ', b + 1) != std::string_view::npos)
        return fail("malformed request line");
      request.method = std::string(line.substr(0, a));
      request.target = std::string(line.substr(a + 1, b - a - 1));
      const std::string_view version = line.substr(b + 1);
      if (request.method.empty() ||
          !std::all_of(request.method.begin(), request.method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        return fail("malformed method");
      if (request.target.empty() || request.target.front() != '/') return fail("malformed target");
      if (version == "HTTP/1.0") {
        http10 = true;
      } else if (version != "HTTP/1.1") {
        return fail("unsupported version");
      }
      continue;
    }
    if (line.empty()) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header");
    const std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) return fail("malformed header");
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      if (value != "0") return fail("a request with a body");
    } else if (iequals(name, "transfer-encoding")) {
      return fail("a request with a body");
    } else if (iequals(name, "connection")) {
      connection = std::string(value);
    }
  }
  const bool close = iequals(connection, "close");
  const bool keep = iequals(connection, "keep-alive");
  request.keep_alive = http10 ? keep : !close;
  const std::size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  buffer_.erase(0, after);
  out = std::move(request);
  return Status::request;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string http_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          std::string_view extra_headers) {
  std::string out;
  out.reserve(body.size() + 160);
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nCache-Control: no-store\r\nConnection: ";
  out += keep_alive ? "keep-alive" : "close";
  out += "\r\n";
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

std::string query_parameter(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    if (eq == std::string_view::npos) return {};
    const std::string_view raw = pair.substr(eq + 1);
    std::string value;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        value += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 && hex_value(raw[i + 2]) >= 0) {
        value += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
        i += 2;
      } else {
        value += raw[i];
      }
    }
    return value;
  }
  return {};
}

}  // namespace coppice::observer::detail
