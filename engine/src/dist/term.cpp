// The external term format: encoding through Erlang's ei (ei_x_encode_*), decoding by a reader of
// our own that checks every length against the bytes there are. (ei's decoders take no buffer
// length: they trust their input, and a truncated or forged term would make them read past it. The
// distribution's bytes come from another node; a user's from anywhere.)
#include "coppice/term.hpp"

#include <ei.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <unordered_set>

namespace coppice {

namespace {

// ---- Encoding -------------------------------------------------------------------------------

struct XBuff {
  ei_x_buff x;
  XBuff() { ei_x_new_with_version(&x); }
  ~XBuff() { ei_x_free(&x); }
  XBuff(const XBuff&) = delete;
  XBuff& operator=(const XBuff&) = delete;
};

Status bad(std::string what) { return Error(ErrorKind::bad_term, std::move(what)); }

// A node name as ei's fixed buffer holds it: false for one Erlang could not take as an atom
// (more than 255 characters, or more bytes than the buffer).
bool copy_node(char* to, const std::string& node) {
  std::size_t chars = 0;
  for (unsigned char c : node) chars += (c & 0xC0) != 0x80;
  if (node.empty() || chars > 255 || node.size() > MAXATOMLEN_UTF8 - 1) return false;
  std::memcpy(to, node.data(), node.size());
  to[node.size()] = '\0';
  return true;
}

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

Status encode_into(ei_x_buff* x, const Term& t) {
  switch (t.kind()) {
    case Term::Kind::integer: ei_x_encode_longlong(x, t.integer()); return {};
    case Term::Kind::floating:
      // Erlang has no NaN or infinity: NEW_FLOAT_EXT with one is refused by the other node.
      if (!std::isfinite(t.floating())) return bad("encode: a float that is not finite (" + t.to_string() + ")");
      ei_x_encode_double(x, t.floating());
      return {};
    case Term::Kind::atom:
      if (utf8_length(t.atom_name()) > 255 ||
          ei_x_encode_atom_len_as(x, t.atom_name().data(), static_cast<int>(t.atom_name().size()), ERLANG_UTF8,
                                  ERLANG_UTF8) < 0)
        return bad("encode: the atom '" + t.atom_name().substr(0, 40) + "...' is longer than Erlang's 255 characters");
      return {};
    case Term::Kind::binary: ei_x_encode_binary(x, t.bytes().data(), static_cast<int>(t.bytes().size())); return {};
    case Term::Kind::string:
      if (t.chars().size() <= 0xffff) {
        ei_x_encode_string_len(x, t.chars().data(), static_cast<int>(t.chars().size()));
      } else {  // longer than STRING_EXT holds: a list of small integers, as
                // Erlang sends it
        ei_x_encode_list_header(x, static_cast<long>(t.chars().size()));
        for (unsigned char c : t.chars()) ei_x_encode_long(x, c);
        ei_x_encode_empty_list(x);
      }
      return {};
    case Term::Kind::tuple:
      ei_x_encode_tuple_header(x, static_cast<long>(t.elements().size()));
      for (const Term& e : t.elements())
        if (Status s = encode_into(x, e); !s) return s;
      return {};
    case Term::Kind::list: {
      const Term::List& l = t.as_list();
      if (!l.elements.empty()) {
        ei_x_encode_list_header(x, static_cast<long>(l.elements.size()));
        for (const Term& e : l.elements)
          if (Status s = encode_into(x, e); !s) return s;
      }
      if (l.tail) return encode_into(x, *l.tail);
      ei_x_encode_empty_list(x);
      return {};
    }
    case Term::Kind::map: {
      ei_x_encode_map_header(x, static_cast<long>(t.as_map().entries.size()));
      std::unordered_set<std::string> keys;  // a key twice is badarg to Erlang
      for (const auto& [k, v] : t.as_map().entries) {
        const int start = x->index;
        if (Status s = encode_into(x, k); !s) return s;
        if (!keys.emplace(x->buff + start, static_cast<std::size_t>(x->index - start)).second)
          return bad("encode: the key " + k.to_string().substr(0, 40) + " is in the map twice");
        if (Status s = encode_into(x, v); !s) return s;
      }
      return {};
    }
    case Term::Kind::pid: {
      erlang_pid p{};
      if (!copy_node(p.node, t.pid().node)) return bad("encode: the pid's node name is not an atom Erlang holds");
      p.num = t.pid().id;
      p.serial = t.pid().serial;
      p.creation = t.pid().creation;
      if (ei_x_encode_pid(x, &p) < 0) return bad("encode: ei refused the pid " + t.pid().to_string());
      return {};
    }
    case Term::Kind::ref: {
      erlang_ref r{};
      if (!copy_node(r.node, t.ref().node)) return bad("encode: the reference's node name is not an atom Erlang holds");
      if (t.ref().ids.empty() || t.ref().ids.size() > 5)
        return bad("encode: a reference of " + std::to_string(t.ref().ids.size()) + " words (1 to 5)");
      r.creation = t.ref().creation;
      r.len = static_cast<int>(t.ref().ids.size());
      for (int i = 0; i < r.len; ++i) r.n[i] = t.ref().ids[static_cast<std::size_t>(i)];
      if (ei_x_encode_ref(x, &r) < 0) return bad("encode: ei refused a reference of " + t.ref().node);
      return {};
    }
  }
  return bad("encode: a term of no known kind");
}

// ---- Decoding -------------------------------------------------------------------------------

// A count read from the input is only a claim: room for more grows as elements decode, so a
// forged count at every level of nesting reserves nothing it cannot hold.
constexpr std::size_t reserve_at_most = 256;

class Reader {
 public:
  Reader(std::string_view bytes, std::size_t pos) : b_(bytes), pos_(pos) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return b_.size() - pos_; }

  Result<Term> term(std::size_t depth) {
    if (depth > max_term_depth) return fail("nesting deeper than " + std::to_string(max_term_depth));
    const std::size_t at = pos_;
    auto tag = u8();
    if (!tag) return tag.error();
    switch (*tag) {
      case 97: {  // SMALL_INTEGER_EXT
        auto v = u8();
        if (!v) return v.error();
        return Term(std::int64_t{*v});
      }
      case 98: {  // INTEGER_EXT
        auto v = u32();
        if (!v) return v.error();
        return Term(std::int64_t{static_cast<std::int32_t>(*v)});
      }
      case 70: {  // NEW_FLOAT_EXT
        auto v = u64();
        if (!v) return v.error();
        return Term(std::bit_cast<double>(*v));
      }
      case 99: {  // FLOAT_EXT: 31 bytes of printf text
        auto s = take(31);
        if (!s) return s.error();
        std::string text(*s);
        char* end = nullptr;
        const double d = std::strtod(text.c_str(), &end);
        if (end == text.c_str()) return fail_at(at, "a FLOAT_EXT that is not a number");
        return Term(d);
      }
      case 100:    // ATOM_EXT (Latin-1)
      case 115:    // SMALL_ATOM_EXT
      case 118:    // ATOM_UTF8_EXT
      case 119: {  // SMALL_ATOM_UTF8_EXT
        auto name = atom_body(*tag);
        if (!name) return name.error();
        return Term::atom(std::move(*name));
      }
      case 104:    // SMALL_TUPLE_EXT
      case 105: {  // LARGE_TUPLE_EXT
        auto n = *tag == 104 ? count8() : count32();
        if (!n) return n.error();
        std::vector<Term> elements;
        elements.reserve(std::min<std::size_t>(*n, reserve_at_most));
        for (std::size_t i = 0; i < *n; ++i) {
          auto e = term(depth + 1);
          if (!e) return e.error();
          elements.push_back(std::move(*e));
        }
        return Term::tuple(std::move(elements));
      }
      case 106:  // NIL_EXT
        return Term::list({});
      case 107: {  // STRING_EXT
        auto n = u16();
        if (!n) return n.error();
        auto s = take(*n);
        if (!s) return s.error();
        return Term::string(std::string(*s));
      }
      case 108: {  // LIST_EXT: elements, then the tail (NIL for a proper list)
        auto n = count32();
        if (!n) return n.error();
        Term::List l;
        l.elements.reserve(std::min<std::size_t>(*n, reserve_at_most));
        for (std::size_t i = 0; i < *n; ++i) {
          auto e = term(depth + 1);
          if (!e) return e.error();
          l.elements.push_back(std::move(*e));
        }
        auto tail = term(depth + 1);
        if (!tail) return tail.error();
        if (tail->kind() == Term::Kind::list && tail->as_list().elements.empty() && !tail->as_list().tail)
          return Term(std::move(l));
        l.tail = std::make_shared<const Term>(std::move(*tail));
        return Term(std::move(l));
      }
      case 109: {  // BINARY_EXT
        auto n = u32();
        if (!n) return n.error();
        auto s = take(*n);
        if (!s) return s.error();
        return Term::binary(std::string(*s));
      }
      case 77: {  // BIT_BINARY_EXT: whole bytes only
        auto n = u32();
        if (!n) return n.error();
        auto bits = u8();
        if (!bits) return bits.error();
        if (*bits != 8 || *n == 0) return fail_at(at, "a bitstring that is not whole bytes (unsupported)");
        auto s = take(*n);
        if (!s) return s.error();
        return Term::binary(std::string(*s));
      }
      case 110:    // SMALL_BIG_EXT
      case 111: {  // LARGE_BIG_EXT
        std::uint32_t n = 0;
        if (*tag == 110) {
          auto v = u8();
          if (!v) return v.error();
          n = *v;
        } else {
          auto v = u32();
          if (!v) return v.error();
          n = *v;
        }
        auto sign = u8();
        if (!sign) return sign.error();
        auto digits = take(n);
        if (!digits) return digits.error();
        std::uint64_t magnitude = 0;
        for (std::size_t i = digits->size(); i-- > 0;) {
          const auto d = static_cast<unsigned char>((*digits)[i]);
          if (magnitude > (~std::uint64_t{0} >> 8))
            return fail_at(at, "an integer beyond 64 bits (bignums are not supported)");
          magnitude = (magnitude << 8) | d;
        }
        if (*sign == 0 && magnitude <= static_cast<std::uint64_t>(INT64_MAX))
          return Term(static_cast<std::int64_t>(magnitude));
        if (*sign != 0 && magnitude <= static_cast<std::uint64_t>(INT64_MAX) + 1)
          return Term(static_cast<std::int64_t>(0 - magnitude));
        return fail_at(at, "an integer beyond 64 bits (bignums are not supported)");
      }
      case 116: {  // MAP_EXT
        auto n = u32();
        if (!n) return n.error();
        if (*n > left() / 2)
          return fail_at(at, "a map of " + std::to_string(*n) + " pairs in " + std::to_string(left()) + " bytes");
        std::vector<std::pair<Term, Term>> entries;
        entries.reserve(std::min<std::size_t>(*n, reserve_at_most));
        for (std::uint32_t i = 0; i < *n; ++i) {
          auto k = term(depth + 1);
          if (!k) return k.error();
          auto v = term(depth + 1);
          if (!v) return v.error();
          entries.emplace_back(std::move(*k), std::move(*v));
        }
        return Term::map(std::move(entries));
      }
      case 88:     // NEW_PID_EXT
      case 103: {  // PID_EXT
        auto node = node_atom();
        if (!node) return node.error();
        auto id = u32();
        if (!id) return id.error();
        auto serial = u32();
        if (!serial) return serial.error();
        ErlPid p{std::move(*node), *id, *serial, 0};
        if (*tag == 88) {
          auto c = u32();
          if (!c) return c.error();
          p.creation = *c;
        } else {
          auto c = u8();
          if (!c) return c.error();
          p.creation = *c;
        }
        return Term(std::move(p));
      }
      case 90:     // NEWER_REFERENCE_EXT
      case 114: {  // NEW_REFERENCE_EXT
        auto len = u16();
        if (!len) return len.error();
        if (*len == 0 || *len > 5) return fail_at(at, "a reference of " + std::to_string(*len) + " words");
        auto node = node_atom();
        if (!node) return node.error();
        ErlRef r{std::move(*node), 0, {}};
        if (*tag == 90) {
          auto c = u32();
          if (!c) return c.error();
          r.creation = *c;
        } else {
          auto c = u8();
          if (!c) return c.error();
          r.creation = *c;
        }
        for (unsigned i = 0; i < *len; ++i) {
          auto w = u32();
          if (!w) return w.error();
          r.ids.push_back(*w);
        }
        return Term(std::move(r));
      }
      case 80: return fail_at(at, "a compressed term (unsupported)");
      case 82: return fail_at(at, "an atom cache reference outside a distribution header");
      case 112:
      case 113:
      case 117: return fail_at(at, "a fun (unsupported: code does not cross to coppice)");
      case 102:
      case 89:
      case 120: return fail_at(at, "a port (unsupported)");
      default: return fail_at(at, "unknown tag " + std::to_string(*tag));
    }
  }

 private:
  Error fail(std::string what) const { return fail_at(pos_, std::move(what)); }
  Error fail_at(std::size_t at, std::string what) const {
    return Error(ErrorKind::bad_term, "decode: " + what + " at byte " + std::to_string(at));
  }
  Result<std::string_view> take(std::size_t n) {
    if (n > left()) return fail("a length of " + std::to_string(n) + " with " + std::to_string(left()) + " bytes left");
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  Result<std::uint8_t> u8() {
    auto s = take(1);
    if (!s) return s.error();
    return static_cast<std::uint8_t>((*s)[0]);
  }
  Result<std::uint16_t> u16() {
    auto s = take(2);
    if (!s) return s.error();
    return static_cast<std::uint16_t>((static_cast<unsigned char>((*s)[0]) << 8) | static_cast<unsigned char>((*s)[1]));
  }
  Result<std::uint32_t> u32() {
    auto s = take(4);
    if (!s) return s.error();
    std::uint32_t v = 0;
    for (char c : *s) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
  }
  Result<std::uint64_t> u64() {
    auto s = take(8);
    if (!s) return s.error();
    std::uint64_t v = 0;
    for (char c : *s) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
  }
  // An element count, no more than the bytes left (each element takes at least one).
  Result<std::size_t> count8() {
    auto n = u8();
    if (!n) return n.error();
    if (*n > left()) return fail(std::to_string(*n) + " elements in " + std::to_string(left()) + " bytes");
    return std::size_t{*n};
  }
  Result<std::size_t> count32() {
    auto n = u32();
    if (!n) return n.error();
    if (*n > left()) return fail(std::to_string(*n) + " elements in " + std::to_string(left()) + " bytes");
    return std::size_t{*n};
  }
  Result<std::string> atom_body(std::uint8_t tag) {
    std::size_t n = 0;
    if (tag == 115 || tag == 119) {
      auto v = u8();
      if (!v) return v.error();
      n = *v;
    } else {
      auto v = u16();
      if (!v) return v.error();
      n = *v;
    }
    auto s = take(n);
    if (!s) return s.error();
    if (tag == 118 || tag == 119) return std::string(*s);
    std::string utf8;  // Latin-1 to UTF-8
    for (unsigned char c : *s) {
      if (c < 0x80) {
        utf8 += static_cast<char>(c);
      } else {
        utf8 += static_cast<char>(0xC0 | (c >> 6));
        utf8 += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    return utf8;
  }
  Result<std::string> node_atom() {
    const std::size_t at = pos_;
    auto tag = u8();
    if (!tag) return tag.error();
    if (*tag != 100 && *tag != 115 && *tag != 118 && *tag != 119) return fail_at(at, "a node name that is not an atom");
    return atom_body(*tag);
  }

  std::string_view b_;
  std::size_t pos_;
};

void print(std::ostringstream& out, const Term& t);

void print_chars(std::ostringstream& out, const std::string& s, char quote) {
  out << quote;
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out << '\\' << c;
    } else if (c < 0x20 || c == 0x7f) {
      out << "\\x{" << std::hex << static_cast<int>(c) << std::dec << '}';
    } else {
      out << c;
    }
  }
  out << quote;
}

bool plain_atom(const std::string& name) {
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '@')) return false;
  return true;
}

void print(std::ostringstream& out, const Term& t) {
  switch (t.kind()) {
    case Term::Kind::integer: out << t.integer(); break;
    case Term::Kind::floating: out << t.floating(); break;
    case Term::Kind::atom:
      if (plain_atom(t.atom_name())) {
        out << t.atom_name();
      } else {
        print_chars(out, t.atom_name(), '\'');
      }
      break;
    case Term::Kind::binary:
      out << "<<";
      print_chars(out, t.bytes(), '"');
      out << ">>";
      break;
    case Term::Kind::string: print_chars(out, t.chars(), '"'); break;
    case Term::Kind::tuple:
    case Term::Kind::list: {
      const bool tuple = t.kind() == Term::Kind::tuple;
      out << (tuple ? '{' : '[');
      for (std::size_t i = 0; i < t.elements().size(); ++i) {
        if (i) out << ',';
        print(out, t.elements()[i]);
      }
      if (!tuple && t.as_list().tail) {
        out << '|';
        print(out, *t.as_list().tail);
      }
      out << (tuple ? '}' : ']');
      break;
    }
    case Term::Kind::map: {
      out << "#{";
      bool first = true;
      for (const auto& [k, v] : t.as_map().entries) {
        if (!first) out << ',';
        first = false;
        print(out, k);
        out << " => ";
        print(out, v);
      }
      out << '}';
      break;
    }
    case Term::Kind::pid: out << t.pid().to_string(); break;
    case Term::Kind::ref: {
      out << "#Ref<" << t.ref().node;
      for (std::uint32_t w : t.ref().ids) out << '.' << w;
      out << '>';
      break;
    }
  }
}

}  // namespace

bool operator==(const Term::Tuple& a, const Term::Tuple& b) { return a.elements == b.elements; }
bool operator==(const Term::Map& a, const Term::Map& b) { return a.entries == b.entries; }

bool operator==(const Term::List& a, const Term::List& b) {
  return a.elements == b.elements && ((!a.tail && !b.tail) || (a.tail && b.tail && *a.tail == *b.tail));
}

namespace {
bool same_chars(const std::string& chars, const Term::List& l) {
  if (l.tail || l.elements.size() != chars.size()) return false;
  for (std::size_t i = 0; i < chars.size(); ++i) {
    const Term& e = l.elements[i];
    if (!e.is(Term::Kind::integer) || e.integer() != static_cast<unsigned char>(chars[i])) return false;
  }
  return true;
}
}  // namespace

bool operator==(const Term& a, const Term& b) {
  if (a.kind() == Term::Kind::string && b.kind() == Term::Kind::list) return same_chars(a.chars(), b.as_list());
  if (a.kind() == Term::Kind::list && b.kind() == Term::Kind::string) return same_chars(b.chars(), a.as_list());
  return a.value_ == b.value_;
}

std::string ErlPid::to_string() const {
  return "<" + node + "." + std::to_string(id) + "." + std::to_string(serial) + ">";
}

std::string Term::to_string() const {
  std::ostringstream out;
  print(out, *this);
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Term& term) { return out << term.to_string(); }

Result<std::string> encode(const Term& term) {
  XBuff b;
  if (Status s = encode_into(&b.x, term); !s) return s.error();
  return std::string(b.x.buff, static_cast<std::size_t>(b.x.index));
}

Result<Term> decode_from(std::string_view bytes, std::size_t& offset) {
  if (offset > bytes.size())
    return Error(ErrorKind::bad_term,
                 "decode: an offset of " + std::to_string(offset) + " in " + std::to_string(bytes.size()) + " bytes");
  Reader r(bytes, offset);
  Result<Term> t = r.term(0);
  if (t) offset = r.pos();
  return t;
}

Result<Term> decode(std::string_view bytes) {
  if (bytes.empty()) return Error(ErrorKind::bad_term, "decode: no bytes");
  if (static_cast<unsigned char>(bytes[0]) != 131)
    return Error(ErrorKind::bad_term,
                 "decode: the version byte is " + std::to_string(static_cast<unsigned char>(bytes[0])) + ", not 131");
  std::size_t offset = 1;
  Result<Term> t = decode_from(bytes, offset);
  if (t && offset != bytes.size())
    return Error(ErrorKind::bad_term, "decode: " + std::to_string(bytes.size() - offset) + " bytes after the term");
  return t;
}

}  // namespace coppice
