// A callback's result read as a Step (what the server does next), and the replies it sends.
// Part of gen_server.hpp, which includes it after the callback result types it uses.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "coppice/async.hpp"
#include "coppice/detail/server_fwd.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/message.hpp"
#include "coppice/process.hpp"

namespace coppice::detail {

// What a callback asked for, once its result is read.
struct Step {
  enum class Kind : std::uint8_t { next, stop };
  Kind kind = Kind::next;
  After after;
  ExitReason reason;
  std::optional<Message> reply;  // a stop's reply, sent after terminate
  From reply_to;
};

template <class T>
struct is_async : std::false_type {};
template <class T>
struct is_async<Async<T>> : std::true_type {
  using type = T;
};
template <class T>
struct is_call_return : std::false_type {};
template <class R>
struct is_call_return<CallReturn<R>> : std::true_type {
  using type = R;
};

// The reply type R of a call result: R, CallReturn<R>, or Async of either.
template <class X>
struct reply_type {
  using type = X;
};
template <class R>
struct reply_type<CallReturn<R>> {
  using type = R;
};
template <class X>
struct reply_type<Async<X>> : reply_type<X> {};

inline Message as_message(Message m) { return m; }
template <class X>
Message as_message(X&& x) {
  return Message::of(std::forward<X>(x));
}
inline void send_reply(const From& to, Message m) { send_reply_envelope(current_core(), to, m.release()); }

// Reads a handle_call result.
template <class X>
Step call_step(X&& result, const From& from) {
  using T = std::remove_cvref_t<X>;
  Step s;
  if constexpr (std::is_void_v<T>) {
    return s;
  } else if constexpr (is_call_return<T>::value) {
    s.after = std::move(result.after());
    if (result.stops()) {
      s.kind = Step::Kind::stop;
      s.reason = result.reason();
      if (result.value()) {
        s.reply = as_message(std::move(*result.value()));
        s.reply_to = from;
      }
    } else if (result.value()) {
      send_reply(from, as_message(std::move(*result.value())));
    }
    return s;
  } else if constexpr (std::is_same_v<T, NoReply> || std::is_same_v<T, StopRequest>) {
    return call_step(CallReturn<Message>(std::forward<X>(result)), from);
  } else {
    send_reply(from, as_message(std::forward<X>(result)));
    return s;
  }
}

// Reads a handle_cast / handle_info / handle_continue result.
template <class X>
Step noreply_step(X&& result) {
  using T = std::remove_cvref_t<X>;
  Step s;
  if constexpr (std::is_void_v<T>) {
    return s;
  } else {
    NoReply n(std::forward<X>(result));
    s.after = std::move(n.after());
    if (n.stops()) {
      s.kind = Step::Kind::stop;
      s.reason = n.reason();
    }
    return s;
  }
}

// A handle_call may also end by throwing its reply, `throw CallReturn<R>(value)` (Elixir's
// `throw {:reply, value, state}`, for a reply from deep inside helper functions): it is
// read as if returned. R is the handler's reply type.
template <class X>
inline constexpr bool throws_reply = [] {
  using R = typename reply_type<X>::type;
  return !std::is_void_v<R> && !std::is_same_v<R, NoReply> && !std::is_same_v<R, StopRequest>;
}();

template <class X>
Async<Step> call_step_async(Async<X> work, From from) {
  if constexpr (std::is_void_v<X>) {
    co_await work;
    co_return Step{};
  } else if constexpr (throws_reply<X>) {
    std::optional<CallReturn<typename reply_type<X>::type>> thrown;
    try {
      X result = co_await work;
      co_return call_step(std::move(result), from);
    } catch (CallReturn<typename reply_type<X>::type>& r) {
      thrown.emplace(std::move(r));
    }
    co_return call_step(std::move(*thrown), from);
  } else {
    X result = co_await work;
    co_return call_step(std::move(result), from);
  }
}
template <class X>
Async<Step> noreply_step_async(Async<X> work) {
  if constexpr (std::is_void_v<X>) {
    co_await work;
    co_return Step{};
  } else {
    X result = co_await work;
    co_return noreply_step(std::move(result));
  }
}

// Invokes `f` and reads its result with `read` (sync) or wraps it (async).
template <class F, class Read, class ReadAsync>
Dispatched invoke_step(F&& f, Read&& read, ReadAsync&& read_async) {
  using X = std::invoke_result_t<F>;
  if constexpr (is_async<X>::value) {
    return Dispatched(std::in_place_index<1>, read_async(f()));
  } else if constexpr (std::is_void_v<X>) {
    f();
    return Dispatched(std::in_place_index<0>, Step{});
  } else {
    return Dispatched(std::in_place_index<0>, read(f()));
  }
}

}  // namespace coppice::detail
