// What every stress test shares: sizes scaled for sanitizer builds, a watchdog that turns a
// hang into a failure, a cheap random generator, and a counted payload that exposes leaks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "coppice/options.hpp"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define COPPICE_STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define COPPICE_STRESS_SANITIZED 1
#endif
#endif

namespace coppice::stress {

#ifdef COPPICE_STRESS_SANITIZED
// A sanitizer makes every atomic and every allocation 5-20x slower: a tenth of the work
// keeps each test well under a minute on two cores and still interleaves plenty.
inline constexpr int scale = 1;
inline constexpr bool sanitized = true;
#else
inline constexpr int scale = 10;
inline constexpr bool sanitized = false;
#endif

// How long a test waits for something that must happen before calling it lost. Far above
// what any of them needs, so that only a real hang (a lost wake-up, a lost message) hits it.
inline constexpr std::chrono::seconds patience{sanitized ? 60 : 20};

// Aborts the test binary, with a message, if the scope is not left within `limit`: a lost
// wake-up or a deadlock becomes a failure with a name instead of a ctest timeout.
class Watchdog {
 public:
  Watchdog(const char* what, std::chrono::seconds limit) : what_(what) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr, "stress watchdog: '%s' still running after %lld s: hung\n", what_,
                     static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  const char* what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Options for a stress runtime. Parking at once (no spin) by default: every idle moment
// then goes through the park and wake-up paths, where lost wake-ups hide.
inline RuntimeOptions options(unsigned workers, std::chrono::microseconds spin_before_park = {},
                              unsigned messages_per_turn = 100, bool quiet = false) {
  RuntimeOptions o;
  o.workers = workers;
  o.spin_before_park = spin_before_park;
  o.messages_per_turn = messages_per_turn;
  if (quiet) o.logger = [](std::string_view) {};  // for tests whose processes crash on purpose
  return o;
}

// xorshift64*: deterministic per seed, no shared state, cheap enough for every message.
struct Random {
  std::uint64_t state;
  explicit Random(std::uint64_t seed) : state(seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL) {
    if (state == 0) state = 1;
  }
  std::uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL;
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return x;
}

// A payload that counts its live instances, and owns heap memory: a message the runtime
// leaks shows up as a non-zero count in any build and as a leak report under ASan.
struct Counted {
  static inline std::atomic<long> live{0};
  std::string ballast;
  Counted() : ballast(48, 'x') { live.fetch_add(1, std::memory_order_relaxed); }
  Counted(const Counted& o) : ballast(o.ballast) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted(Counted&& o) noexcept : ballast(std::move(o.ballast)) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() { live.fetch_sub(1, std::memory_order_relaxed); }
};

// Waits (yielding, bounded) until `done()` holds, for effects no message announces (the
// process count dropping after the last DOWN went out). False on timeout.
template <class F>
bool eventually(F&& done, std::chrono::seconds limit = patience) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace coppice::stress
