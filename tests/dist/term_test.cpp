// coppice/term.hpp: the codec against bytes Erlang's term_to_binary/1 made (OTP 25), round trips of
// every kind, and malformed input (every truncation, mutations, forged lengths, nesting, bignums):
// an error that says what, never a crash (this file runs under ASan and UBSan too).
#include "coppice/term.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace coppice;

namespace {

std::string bytes_of(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

// term_to_binary({pong, 42, <<"abc">>, "abc", [1,2|3], #{a => 1}, 3.5, -1, 1 bsl 40,
//                 -(1 bsl 62), [], 'Hello World', [{}], 300, -129}) on OTP 25.
const std::string erlang_bytes = bytes_of(
    {131, 104, 15,  100, 0,   4,   112, 111, 110, 103, 97,  42, 109, 0,   0,   0,   3,   97, 98,  99,  107, 0,   3,
     97,  98,  99,  108, 0,   0,   0,   2,   97,  1,   97,  2,  97,  3,   116, 0,   0,   0,  1,   100, 0,   1,   97,
     97,  1,   70,  64,  12,  0,   0,   0,   0,   0,   0,   98, 255, 255, 255, 255, 110, 6,  0,   0,   0,   0,   0,
     0,   1,   110, 8,   1,   0,   0,   0,   0,   0,   0,   0,  64,  106, 100, 0,   11,  72, 101, 108, 108, 111, 32,
     87,  111, 114, 108, 100, 108, 0,   0,   0,   1,   104, 0,  106, 98,  0,   0,   1,   44, 98,  255, 255, 255, 127});

Term improper(std::vector<Term> elements, Term tail) {
  Term::List l{std::move(elements), std::make_shared<const Term>(std::move(tail))};
  return l;
}

const Term expected_term =
    Term::tuple({Term::atom("pong"), 42, Term::binary("abc"), Term::string("abc"), improper({1, 2}, 3),
                 Term::map({{Term::atom("a"), 1}}), 3.5, -1, std::int64_t{1} << 40, -(std::int64_t{1} << 62),
                 Term::list({}), Term::atom("Hello World"), Term::list({Term::tuple({})}), 300, -129});

}  // namespace

TEST(TermDecode, ReadsWhatErlangWrites) {
  Result<Term> t = decode(erlang_bytes);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(*t, expected_term) << t->to_string();
  EXPECT_EQ(t->to_string(),
            "{pong,42,<<\"abc\">>,\"abc\",[1,2|3],#{a => "
            "1},3.5,-1,1099511627776,-4611686018427387904,"
            "[],'Hello World',[{}],300,-129}");
}

TEST(TermDecode, ReadsAPidALatin1AtomAndRefusesABignum) {
  // term_to_binary(list_to_pid("<0.85.0>")): NEW_PID_EXT.
  Result<Term> pid = decode(bytes_of({131, 88,  100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104,
                                      111, 115, 116, 0, 0,  0,   85,  0,   0,   0,   0,   0,  0,   0,   0}));
  ASSERT_TRUE(pid) << pid.error().message();
  ASSERT_TRUE(pid->is(Term::Kind::pid));
  EXPECT_EQ(pid->pid(), (ErlPid{"nonode@nohost", 85, 0, 0}));
  // term_to_binary('ünïcödé'): ATOM_EXT in Latin-1, read as UTF-8.
  Result<Term> atom = decode(bytes_of({131, 100, 0, 7, 252, 110, 239, 99, 246, 100, 233}));
  ASSERT_TRUE(atom) << atom.error().message();
  EXPECT_TRUE(atom->is_atom("ünïcödé")) << atom->to_string();
  // term_to_binary(1 bsl 64): a bignum beyond 64 bits.
  Result<Term> big = decode(bytes_of({131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind(), ErrorKind::bad_term);
  EXPECT_NE(big.error().message().find("beyond 64 bits"), std::string::npos) << big.error().message();
}

TEST(TermEncode, EveryKindRoundTripsAndErlangsOwnTermEncodesToDecodeAgain) {
  const std::vector<Term> terms = {
      expected_term,
      Term(std::int64_t{INT64_MIN}),
      Term(std::int64_t{INT64_MAX}),
      Term(-0.0),
      Term::atom(std::string(255, 'x')),
      Term::binary(std::string(100000, '\0')),
      Term::string(std::string(70000, 'a')),  // longer than STRING_EXT: a list of integers
      Term::map({}),
      Term(ErlPid{"beam@host", 7, 1, 0x12345678}),
      Term(ErlRef{"beam@host", 3, {1, 2, 3}}),
      Term::tuple({Term::atom("nested"), Term::list({Term::map({{Term::binary("k"), Term::tuple({})}})})}),
  };
  for (const Term& t : terms) {
    Result<std::string> bytes = encode(t);
    ASSERT_TRUE(bytes) << bytes.error().message();
    Result<Term> back = decode(*bytes);
    ASSERT_TRUE(back) << back.error().message();
    if (t.is(Term::Kind::string) && t.chars().size() > 0xffff) {
      ASSERT_TRUE(back->is(Term::Kind::list));
      EXPECT_EQ(back->elements().size(), t.chars().size());
      EXPECT_EQ(back->elements()[0], Term('a'));
    } else {
      EXPECT_EQ(*back, t) << t.to_string().substr(0, 200);
    }
  }
}

TEST(TermEncode, AnAtomLongerThanErlangHoldsIsAnError) {
  for (std::size_t n : {256, 2000}) {
    Result<std::string> bytes = encode(Term::tuple({Term::atom(std::string(n, 'y'))}));
    ASSERT_FALSE(bytes) << n;
    EXPECT_EQ(bytes.error().kind(), ErrorKind::bad_term);
  }
  std::string wide;  // 255 characters of two bytes each: an atom Erlang holds
  for (int i = 0; i < 255; ++i) wide += "é";
  Result<std::string> ok = encode(Term::atom(wide));
  ASSERT_TRUE(ok) << ok.error().message();
  Result<Term> back = decode(*ok);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->is_atom(wide));
}

TEST(TermDecode, EveryTruncationIsAnErrorNeverACrash) {
  for (std::size_t n = 0; n < erlang_bytes.size(); ++n) {
    Result<Term> t = decode(std::string_view(erlang_bytes).substr(0, n));
    ASSERT_FALSE(t) << "a prefix of " << n << " bytes decoded";
    EXPECT_EQ(t.error().kind(), ErrorKind::bad_term);
  }
  Result<Term> trailing = decode(erlang_bytes + "x");
  ASSERT_FALSE(trailing);
  EXPECT_NE(trailing.error().message().find("after the term"), std::string::npos);
}

TEST(TermDecode, ForgedLengthsWrongVersionsUnknownTagsAndDeepNestingAreErrors) {
  struct Case {
    std::string bytes;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"", "no bytes"},
      {bytes_of({130, 97, 1}), "version byte"},
      {bytes_of({131, 109, 255, 255, 255, 255, 1}), "length of 4294967295"},  // a binary of 4 GB
      {bytes_of({131, 108, 127, 255, 255, 255, 106}), "elements in"},         // a list of 2^31
      {bytes_of({131, 116, 127, 255, 255, 255}), "pairs in"},                 // a map of 2^31 pairs
      {bytes_of({131, 105, 255, 255, 255, 255}), "elements in"},              // a tuple of 2^32
      {bytes_of({131, 42}), "unknown tag 42"},
      {bytes_of({131, 112, 0, 0, 0, 0}), "a fun"},
      {bytes_of({131, 80, 0, 0, 0, 9, 120}), "compressed"},
      {bytes_of({131, 77, 0, 0, 0, 1, 3, 255}), "bitstring"},
      {bytes_of({131, 90, 0, 9, 100, 0, 1, 97, 0, 0, 0, 0}), "reference of 9 words"},
      {bytes_of({131, 88, 97, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "node name that is not an atom"},
  };
  for (const Case& c : cases) {
    Result<Term> t = decode(c.bytes);
    ASSERT_FALSE(t) << c.says;
    EXPECT_EQ(t.error().kind(), ErrorKind::bad_term);
    EXPECT_NE(t.error().message().find(c.says), std::string::npos) << t.error().message();
  }
  // A list nested deeper than max_term_depth: an error, not a stack overflow.
  std::string deep = bytes_of({131});
  for (std::size_t i = 0; i < 100000; ++i) deep += bytes_of({108, 0, 0, 0, 1});
  deep += bytes_of({106});
  for (std::size_t i = 0; i < 100000; ++i) deep += bytes_of({106});
  Result<Term> t = decode(deep);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("nesting deeper"), std::string::npos) << t.error().message();
}

TEST(TermDecode, RandomMutationsOfErlangsBytesNeverCrash) {
  std::mt19937 rng(20261207);
  std::size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = erlang_bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 3 == 0) b.resize(rng() % b.size());
    Result<Term> t = decode(b);
    if (t) {
      ++decoded;
      Result<std::string> again = encode(*t);  // what decodes, encodes
      EXPECT_TRUE(again || again.error().kind() == ErrorKind::bad_term);
    } else {
      EXPECT_EQ(t.error().kind(), ErrorKind::bad_term);
    }
  }
  EXPECT_LT(decoded, 20000u);
}

// ---- One declaration per message type ----

namespace {
struct Ping {
  std::int64_t n;
};
}  // namespace

template <>
struct coppice::TermCodec<Ping> {
  static Term to_term(const Ping& p) { return Term::tuple({Term::atom("ping"), p.n}); }
  static Result<Ping> from_term(const Term& t) {
    if (!t.is_tagged("ping", 2) || !t.elements()[1].is(Term::Kind::integer))
      return Error(ErrorKind::bad_term, "not {ping, N}: " + t.to_string());
    return Ping{t.elements()[1].integer()};
  }
};

static_assert(TermConvertible<Ping>);
static_assert(TermConvertible<Term>);
static_assert(!TermConvertible<int*>, "a type without a declaration does not cross the wire");

TEST(TermCodec, AUserTypeCrossesThroughItsOneDeclaration) {
  Result<std::string> bytes = encode(to_term(Ping{41}));
  ASSERT_TRUE(bytes);
  Result<Term> t = decode(*bytes);
  ASSERT_TRUE(t);
  Result<Ping> p = from_term<Ping>(*t);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->n, 41);
  Result<Ping> wrong = from_term<Ping>(Term::tuple({Term::atom("pong"), 1}));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind(), ErrorKind::bad_term);
}

// ---- Found by review: what the encoder let through, and inputs that threw ----

TEST(TermEncode, WhatErlangWouldRejectIsAnErrorNotBytes) {
  auto refused = [](const Term& t, const char* says) {
    Result<std::string> bytes = encode(t);
    ASSERT_FALSE(bytes) << t.to_string().substr(0, 80);
    EXPECT_EQ(bytes.error().kind(), ErrorKind::bad_term);
    EXPECT_NE(bytes.error().message().find(says), std::string::npos) << bytes.error().message();
  };
  refused(Term(std::numeric_limits<double>::quiet_NaN()), "not finite");
  refused(Term::tuple({1, Term(std::numeric_limits<double>::infinity())}), "not finite");
  refused(Term(ErlRef{"n@h", 0, {}}), "words");
  refused(Term(ErlRef{"n@h", 0, {1, 2, 3, 4, 5, 6}}), "words");
  refused(Term(ErlPid{std::string(300, 'n'), 1, 0, 0}), "node name");
  refused(Term::map({{Term::atom("k"), 1}, {Term::atom("k"), 2}}), "twice");
}

TEST(TermDecode, AnOffsetPastTheBytesIsAnError) {
  std::size_t offset = erlang_bytes.size() + 5;
  Result<Term> t = decode_from(erlang_bytes, offset);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().kind(), ErrorKind::bad_term);
}

// The sanitizers reserve terabytes of shadow address space: an address-space limit is for the
// plain builds only (gcc says so with __SANITIZE_*__, clang with __has_feature).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COPPICE_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COPPICE_TEST_SANITIZED 1
#endif
#endif
#if !defined(COPPICE_TEST_SANITIZED)
// Forged element counts at every level of nesting must not make the decoder reserve memory for
// them: under a 2 GB address-space limit, 512 nested tuples each claiming as many elements as
// bytes are left decode to an error, not std::bad_alloc (which would end the node's reader).
namespace {
[[noreturn]] void decode_under_two_gigabytes(const std::string& bytes) {
  const rlimit limit{std::size_t{2} << 30, std::size_t{2} << 30};
  setrlimit(RLIMIT_AS, &limit);
  Result<Term> t = decode(bytes);
  std::exit(!t && t.error().kind() == ErrorKind::bad_term ? 0 : 1);
}
}  // namespace

TEST(TermDecodeDeathTest, ForgedCountsReserveNothingTheyCannotHold) {
  std::string forged = bytes_of({131});
  for (int i = 0; i < 512; ++i) forged += bytes_of({105, 0, 1, 255, 255});  // LARGE_TUPLE of 131071
  forged += std::string(200000, '\0');
  EXPECT_EXIT(decode_under_two_gigabytes(forged), ::testing::ExitedWithCode(0), "");
}
#endif
