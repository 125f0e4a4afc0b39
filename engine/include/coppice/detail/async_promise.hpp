// What every Async<T>'s promise shares: the continuation, the exception, the frame's allocator.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>

namespace coppice::detail {

void* allocate_frame(std::size_t size);
void free_frame(void* frame) noexcept;

struct AsyncPromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;

  // Coroutine frames come from the runtime's allocator, like processes and envelopes.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame) noexcept { free_frame(frame); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      // Symmetric transfer back to whoever awaited us; the root returns to the worker.
      auto next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

}  // namespace coppice::detail
