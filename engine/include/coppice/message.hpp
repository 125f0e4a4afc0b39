// Message: a type-erased, move-only payload; envelope and payload share one allocation.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "coppice/pid.hpp"
#include "coppice/detail/envelope.hpp"

namespace coppice {

// Where to send the reply to a request: the caller and the reference its reply must carry.
// A From can be handed to any process, which may reply in the caller's place.
struct From {
  Pid pid;
  Ref ref;
  friend bool operator==(const From&, const From&) = default;
};

class BadMessageAccess : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Message {
 public:
  Message() = default;
  Message(Message&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Message& operator=(Message&& o) noexcept {
    if (this != &o) {
      reset();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message() { reset(); }

  // A message holding a T built from args.
  template <class T, class... Args>
  static Message make(Args&&... args) {
    static_assert(!std::is_reference_v<T> && std::is_move_constructible_v<T>,
                  "a message holds a movable value");
    return Message(detail::make_envelope<T>(&detail::type_info_v<T>, std::forward<Args>(args)...));
  }
  template <class T>
  static Message of(T&& value) {
    return make<std::remove_cvref_t<T>>(std::forward<T>(value));
  }

  bool empty() const { return e_ == nullptr; }
  explicit operator bool() const { return e_ != nullptr; }

  template <class T>
  bool is() const {
    return e_ != nullptr && e_->type() == &detail::type_info_v<T>;
  }
  template <class T>
  T* get_if() {
    return is<T>() ? static_cast<T*>(e_->payload()) : nullptr;
  }
  template <class T>
  const T* get_if() const {
    return is<T>() ? static_cast<const T*>(e_->payload()) : nullptr;
  }
  template <class T>
  T& get() {
    if (!is<T>()) throw BadMessageAccess(mismatch(detail::payload_name<T>()));
    return *static_cast<T*>(e_->payload());
  }
  template <class T>
  const T& get() const {
    if (!is<T>()) throw BadMessageAccess(mismatch(detail::payload_name<T>()));
    return *static_cast<const T*>(e_->payload());
  }
  // Moves the payload out; the message stays, holding a moved-from T.
  template <class T>
  T take() {
    return std::move(get<T>());
  }

  // Calls the first handler whose parameter type is the payload's type; false if none is.
  template <class... Handlers>
  bool match(Handlers&&... handlers) {
    return (try_one(std::forward<Handlers>(handlers)) || ...);
  }

  // The sender (Pid{} when a plain thread without an inbox sent it).
  Pid from() const { return e_ ? e_->from : Pid{}; }
  // Set when the message is a request: where the reply goes.
  std::optional<coppice::From> reply_to() const {
    if (e_ && e_->addressing() == detail::Addressing::request) return coppice::From{e_->from, Ref::from_bits(e_->ref)};
    return std::nullopt;
  }
  // Sent with cast() (a GenServer's handle_cast gets it) rather than send().
  bool is_cast() const { return e_ && e_->addressing() == detail::Addressing::cast; }
  // The payload's type, demangled, for diagnostics.
  std::string type_name() const;

  // Ownership of the envelope, for the runtime.
  detail::Envelope* release() { return std::exchange(e_, nullptr); }
  static Message adopt(detail::Envelope* e) { return Message(e); }
  detail::Envelope* envelope() const { return e_; }

 private:
  explicit Message(detail::Envelope* e) : e_(e) {}
  void reset() {
    if (e_) detail::free_envelope(std::exchange(e_, nullptr));
  }
  std::string mismatch(const char* wanted) const;

  template <class H>
  bool try_one(H&& h) {
    using T = detail::first_argument_t<H>;
    if (T* p = get_if<T>()) {
      std::forward<H>(h)(*p);
      return true;
    }
    return false;
  }

  detail::Envelope* e_ = nullptr;
};

}  // namespace coppice
