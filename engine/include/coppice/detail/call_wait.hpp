// A call in flight (CallWait) and its reply read as the type asked for (reply_as).
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "coppice/detail/receive_wait.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"

namespace coppice::detail {

// A call in flight: request sent with a monitor on the server and an alias for the reply.
struct CallWait {
  ReceiveWait wait;
  Pid to;
  std::string name;  // when called by name
  Envelope* request = nullptr;
  bool started = false;
  Error early{ErrorKind::noproc, {}};
  bool failed_early = false;

  CallWait() = default;
  // Moved only before it is awaited.
  CallWait(CallWait&& o) noexcept
      : wait(std::move(o.wait)), to(o.to), name(std::move(o.name)), request(std::exchange(o.request, nullptr)) {}
  CallWait& operator=(CallWait&&) = delete;
  ~CallWait();
  bool start();     // sends, then looks for the answer: true if it is already there
  bool send_now();  // sends only; false if it failed early (see `early`)
  Result<Message> finish();
};

// A call's reply as an R: the reply itself, an error that came instead, or invalid_argument
// when the reply holds another type.
template <class R>
Result<R> reply_as(Result<Message> reply, Pid to) {
  if (!reply) return reply.error();
  if (const Error* e = reply->template get_if<Error>(); e != nullptr && !std::is_same_v<R, Error>) return *e;
  if constexpr (std::is_same_v<R, Message>) {
    return std::move(reply).value();
  } else {
    if (!reply->template is<R>())
      return Error(ErrorKind::invalid_argument, "call: the reply holds " + reply->type_name() + ", not the type asked for",
                   to);
    return reply->template take<R>();
  }
}

}  // namespace coppice::detail
