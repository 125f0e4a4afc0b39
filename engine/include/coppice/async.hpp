// Async<T>: the coroutine type of process bodies and of everything a process awaits.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

#include "coppice/detail/async_promise.hpp"

namespace coppice {

// A lazily started coroutine returning T. Awaiting it runs it; a process can also make one
// its body (spawn) or its current activity (Process::await).
template <class T = void>
class [[nodiscard]] Async {
 public:
  struct promise_type : detail::AsyncPromiseBase {
    std::optional<T> value;
    Async get_return_object() { return Async{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    template <class U>
    void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
  };

  Async(Async&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Async& operator=(Async&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~Async() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    return h_;
  }
  T await_resume() {
    auto& p = h_.promise();
    if (p.exception) std::rethrow_exception(p.exception);
    return std::move(*p.value);
  }

  std::coroutine_handle<promise_type> release() { return std::exchange(h_, {}); }

 private:
  explicit Async(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

template <>
class [[nodiscard]] Async<void> {
 public:
  struct promise_type : detail::AsyncPromiseBase {
    Async get_return_object() { return Async{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    void return_void() noexcept {}
  };

  Async(Async&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Async& operator=(Async&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~Async() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    return h_;
  }
  void await_resume() {
    if (h_.promise().exception) std::rethrow_exception(h_.promise().exception);
  }

  std::coroutine_handle<promise_type> release() { return std::exchange(h_, {}); }

 private:
  explicit Async(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

}  // namespace coppice
