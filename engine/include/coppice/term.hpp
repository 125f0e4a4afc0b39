// Erlang terms in C++: the values that cross a distribution connection (coppice/node.hpp), and the
// codec between them and Erlang's external term format (what term_to_binary/1 makes).
//
//   Term t = Term::tuple({Term::atom("pong"), 42});
//   std::string bytes = encode(t).value();   // starts with the version byte, 131
//   Result<Term> back = decode(bytes);       // malformed bytes: an error, never a crash
//
// A message type of the user's crosses the wire through one declaration, a specialisation of
// TermCodec, checked at compile time where send and receive use it:
//
//   struct Pong { std::int64_t n; };
//   template <> struct coppice::TermCodec<Pong> {
//     static Term to_term(const Pong& p) { return Term::tuple({Term::atom("pong"), p.n}); }
//     static Result<Pong> from_term(const Term& t);   // an error for a term of another shape
//   };
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "coppice/result.hpp"

namespace coppice {

// An Erlang pid as the wire carries it: its node's name and creation, and the node-local parts.
struct ErlPid {
  std::string node;
  std::uint32_t id = 0;
  std::uint32_t serial = 0;
  std::uint32_t creation = 0;
  friend bool operator==(const ErlPid&, const ErlPid&) = default;
  std::string to_string() const;  // <node.id.serial>, as the node names it in errors
};

// An Erlang reference: its node, creation and up to five 32-bit words.
struct ErlRef {
  std::string node;
  std::uint32_t creation = 0;
  std::vector<std::uint32_t> ids;
  friend bool operator==(const ErlRef&, const ErlRef&) = default;
};

class Term {
 public:
  enum class Kind { integer, floating, atom, binary, string, tuple, list, map, pid, ref };
  struct Atom {
    std::string name;
    friend bool operator==(const Atom&, const Atom&) = default;
  };
  struct Binary {
    std::string bytes;
    friend bool operator==(const Binary&, const Binary&) = default;
  };
  // A list of bytes as Erlang's STRING_EXT carries it ("abc" is [97,98,99] to Erlang).
  struct String {
    std::string chars;
    friend bool operator==(const String&, const String&) = default;
  };
  // The comparisons of the kinds that hold terms are defined after Term is complete (term.cpp):
  // a defaulted one here would instantiate std::pair<Term, Term> on an incomplete Term, which
  // clang refuses.
  struct Tuple {
    std::vector<Term> elements;
    friend bool operator==(const Tuple& a, const Tuple& b);
  };
  // A proper list; an improper one's last tail is `tail` (absent for a proper list).
  struct List {
    std::vector<Term> elements;
    std::shared_ptr<const Term> tail;
    friend bool operator==(const List& a, const List& b);
  };
  struct Map {
    std::vector<std::pair<Term, Term>> entries;  // in the order they were encoded
    friend bool operator==(const Map& a, const Map& b);
  };

  Term() : value_(std::int64_t{0}) {}
  Term(std::int64_t n) : value_(n) {}       // NOLINT: a number is a term
  Term(int n) : value_(std::int64_t{n}) {}  // NOLINT
  Term(double d) : value_(d) {}             // NOLINT
  Term(ErlPid p) : value_(std::move(p)) {}  // NOLINT
  Term(ErlRef r) : value_(std::move(r)) {}  // NOLINT
  Term(Atom a) : value_(std::move(a)) {}    // NOLINT
  Term(Binary b) : value_(std::move(b)) {}  // NOLINT
  Term(String s) : value_(std::move(s)) {}  // NOLINT
  Term(Tuple t) : value_(std::move(t)) {}   // NOLINT
  Term(List l) : value_(std::move(l)) {}    // NOLINT
  Term(Map m) : value_(std::move(m)) {}     // NOLINT

  static Term atom(std::string name) { return Atom{std::move(name)}; }
  static Term binary(std::string bytes) { return Binary{std::move(bytes)}; }
  static Term string(std::string chars) { return String{std::move(chars)}; }
  static Term tuple(std::vector<Term> elements) { return Tuple{std::move(elements)}; }
  static Term list(std::vector<Term> elements) { return List{std::move(elements), nullptr}; }
  static Term map(std::vector<std::pair<Term, Term>> entries) { return Map{std::move(entries)}; }
  static Term boolean(bool b) { return atom(b ? "true" : "false"); }

  Kind kind() const { return static_cast<Kind>(value_.index()); }
  bool is(Kind k) const { return kind() == k; }
  bool is_atom(std::string_view name) const { return kind() == Kind::atom && std::get<Atom>(value_).name == name; }
  // The value of the kind asked; a std::bad_variant_access for another kind (use is() first).
  std::int64_t integer() const { return std::get<std::int64_t>(value_); }
  double floating() const { return std::get<double>(value_); }
  const std::string& atom_name() const { return std::get<Atom>(value_).name; }
  const std::string& bytes() const { return std::get<Binary>(value_).bytes; }
  const std::string& chars() const { return std::get<String>(value_).chars; }
  const std::vector<Term>& elements() const {  // a tuple's or a list's
    return kind() == Kind::tuple ? std::get<Tuple>(value_).elements : std::get<List>(value_).elements;
  }
  const List& as_list() const { return std::get<List>(value_); }
  const Map& as_map() const { return std::get<Map>(value_); }
  const ErlPid& pid() const { return std::get<ErlPid>(value_); }
  const ErlRef& ref() const { return std::get<ErlRef>(value_); }
  // A tuple of `arity` elements whose first is the atom `tag` ({tag, ...}).
  bool is_tagged(std::string_view tag, std::size_t arity) const {
    return kind() == Kind::tuple && elements().size() == arity && arity > 0 && elements()[0].is_atom(tag);
  }

  // As Erlang compares: a String and a proper list of the same byte values are one term ("ab" is
  // [97,98]; Erlang sends [1,2] as a string too).
  friend bool operator==(const Term& a, const Term& b);
  // As Erlang prints it: {pong,42}, <<"abc">>, "abc", #{a => 1}, <node.1.0>, #Ref<...>.
  std::string to_string() const;

 private:
  std::variant<std::int64_t, double, Atom, Binary, String, Tuple, List, Map, ErlPid, ErlRef> value_;
};

std::ostream& operator<<(std::ostream& out, const Term& term);  // as to_string()

// External term format, with the version byte (131) in front: term_to_binary/1's bytes. An error
// (bad_term) only for what Erlang cannot hold: an atom longer than 255 characters.
Result<std::string> encode(const Term& term);
// A malformed, truncated or unsupported term is an error (ErrorKind::bad_term) saying what and
// where: never a crash. Unsupported: integers beyond 64 bits (bignums), funs, ports, bitstrings
// that are not whole bytes, compressed terms, and nesting deeper than max_depth.
inline constexpr std::size_t max_term_depth = 512;
Result<Term> decode(std::string_view bytes);
// The same without the version byte, from `offset` (a distribution message's payload); `offset` is
// moved past the term.
Result<Term> decode_from(std::string_view bytes, std::size_t& offset);

// ---- One declaration per message type -------------------------------------------------------

template <class T>
struct TermCodec;  // specialise: static Term to_term(const T&); static Result<T>
                   // from_term(const Term&);

template <class T>
concept TermConvertible = requires(const T& value, const Term& term) {
  { TermCodec<T>::to_term(value) } -> std::convertible_to<Term>;
  { TermCodec<T>::from_term(term) } -> std::same_as<Result<T>>;
};

template <>
struct TermCodec<Term> {
  static Term to_term(const Term& t) { return t; }
  static Result<Term> from_term(const Term& t) { return t; }
};

template <TermConvertible T>
Term to_term(const T& value) {
  return TermCodec<T>::to_term(value);
}
template <TermConvertible T>
Result<T> from_term(const Term& term) {
  return TermCodec<T>::from_term(term);
}

}  // namespace coppice
