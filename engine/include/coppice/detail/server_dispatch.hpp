// Finding the callback for a message: the callback concepts, the calls/casts/infos tables.
// Part of gen_server.hpp, which includes it after the callback result types it uses.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "coppice/detail/server_step.hpp"
#include "coppice/message.hpp"

namespace coppice::detail {

// ---- Finding the callback for a message ----------------------------------------------------

template <class D, class T>
concept HasCallFrom = requires(D& d, T&& t, const From& f) { d.handle_call(std::move(t), f); };
template <class D, class T>
concept HasCall = requires(D& d, T&& t) { d.handle_call(std::move(t)); };
template <class D, class T>
concept HasCast = requires(D& d, T&& t) { d.handle_cast(std::move(t)); };
template <class D, class T>
concept HasInfo = requires(D& d, T&& t) { d.handle_info(std::move(t)); };
template <class D, class T>
concept HasContinue = requires(D& d, T&& t) { d.handle_continue(std::move(t)); };

template <class D>
concept HasCalls = requires { typename D::calls; };
template <class D>
concept HasCasts = requires { typename D::casts; };
template <class D>
concept HasInfos = requires { typename D::infos; };

// Invokes a handle_call; a thrown CallReturn<R> is its reply (see throws_reply).
template <class F>
Dispatched invoke_call(F&& f, const From& from) {
  auto run = [&] {
    return invoke_step(f, [&](auto&& r) { return call_step(std::forward<decltype(r)>(r), from); },
                       [&](auto&& a) { return call_step_async(std::move(a), from); });
  };
  using X = std::invoke_result_t<F>;
  if constexpr (!is_async<X>::value && throws_reply<X>) {
    try {
      return run();
    } catch (CallReturn<typename reply_type<X>::type>& thrown) {
      return Dispatched(std::in_place_index<0>, call_step(std::move(thrown), from));
    }
  } else {
    return run();
  }
}

template <class D, class T>
Dispatched dispatch_call(D& d, Message& m, const From& from) {
  T& value = m.get<T>();
  if constexpr (HasCallFrom<D, T>) {
    return invoke_call([&] { return d.handle_call(std::move(value), from); }, from);
  } else {
    static_assert(HasCall<D, T>, "a type in `calls` needs handle_call(T) or handle_call(T, const From&)");
    return invoke_call([&] { return d.handle_call(std::move(value)); }, from);
  }
}

template <class D, class T, bool IsCast>
Dispatched dispatch_noreply(D& d, Message& m) {
  T& value = m.get<T>();
  auto call = [&] {
    if constexpr (IsCast) {
      static_assert(HasCast<D, T>, "a type in `casts` needs handle_cast(T)");
      return d.handle_cast(std::move(value));
    } else {
      static_assert(HasInfo<D, T>, "a type in `infos` needs handle_info(T)");
      return d.handle_info(std::move(value));
    }
  };
  return invoke_step(call, [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                     [](auto&& a) { return noreply_step_async(std::move(a)); });
}

template <class D, class Req>
auto call_result_of() {
  if constexpr (HasCallFrom<D, Req>) {
    return std::type_identity<decltype(std::declval<D&>().handle_call(std::declval<Req>(), std::declval<const From&>()))>{};
  } else {
    return std::type_identity<decltype(std::declval<D&>().handle_call(std::declval<Req>()))>{};
  }
}
// The reply type of D's handle_call(Req): what the typed client helpers return.
template <class D, class Req>
using call_reply_t = typename reply_type<typename decltype(call_result_of<D, Req>())::type>::type;

template <class D, class P>
struct CallTable;
template <class D, class... T>
struct CallTable<D, Protocol<T...>> {
  static bool dispatch(D& d, Message& m, const From& from, std::optional<Dispatched>& out) {
    return ((m.is<T>() ? (out.emplace(dispatch_call<D, T>(d, m, from)), true) : false) || ...);
  }
  template <class Req>
  static constexpr bool contains = (std::is_same_v<Req, T> || ...);
};
template <class D, class P, bool IsCast>
struct NoReplyTable;
template <class D, class... T, bool IsCast>
struct NoReplyTable<D, Protocol<T...>, IsCast> {
  static bool dispatch(D& d, Message& m, std::optional<Dispatched>& out) {
    return ((m.is<T>() ? (out.emplace(dispatch_noreply<D, T, IsCast>(d, m)), true) : false) || ...);
  }
  template <class Msg>
  static constexpr bool contains = (std::is_same_v<Msg, T> || ...);
};

template <class D, class Msg>
Dispatched continue_thunk(void* server, Message& payload) {
  D& d = *static_cast<D*>(server);
  Msg& value = payload.get<Msg>();
  static_assert(HasContinue<D, Msg>, "continue_with(T) needs handle_continue(T)");
  return invoke_step([&] { return d.handle_continue(std::move(value)); },
                     [](auto&& r) { return noreply_step(std::forward<decltype(r)>(r)); },
                     [](auto&& a) { return noreply_step_async(std::move(a)); });
}

}  // namespace coppice::detail
