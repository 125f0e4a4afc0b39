// The envelope a Message owns: the header every message and signal carries, its payload's type
// record, and how one allocation holds both.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "coppice/pid.hpp"

namespace coppice::detail {

// What the runtime does with an envelope when the receiver drains its mailbox. Plain
// messages go to the process's queue; the others are signals the runtime acts on.
enum class SignalKind : std::uint8_t {
  message,
  exit_linked,    // payload Exit: a linked process died
  exit_explicit,  // payload Exit: exit(pid, reason)
  link,           // no payload
  unlink,         // no payload
  monitor,        // no payload; ref: the monitor
  demonitor,      // no payload; ref: the monitor
  down,           // payload Down; delivered only while the monitor is active
  receive_timeout,  // no payload; ref: the wait it ends
  info_request,   // no payload; ref: where to send the ProcessInfo
  wake,           // no payload: only schedules the receiver (used by timers and shutdown)
};

// Describes one payload type. One instance per type; its address identifies the type.
struct alignas(8) TypeInfo {
  void (*destroy)(void* payload) noexcept;
  const char* (*name)() noexcept;
  std::uint32_t payload_offset;
  std::uint32_t alignment;
  SignalKind kind;
};

// How the envelope was addressed (kept in the low bits of the type pointer).
enum class Addressing : std::uint8_t {
  plain = 0,    // sent to a pid or a name
  request = 1,  // a request: `ref` is where the reply goes (see From)
  alias = 2,    // sent to an alias: dropped unless the receiver still has `ref` active
  cast = 3,     // a GenServer cast: a plain message its receiver hands to handle_cast
};

// The mailbox node. Producers write `next` of the node they link after; everything else
// is written once, before the node is published.
struct Envelope {
  std::atomic<Envelope*> next{nullptr};
  std::uintptr_t type_bits = 0;  // const TypeInfo* | monitor bit | Addressing
  Pid from;
  std::uint64_t ref = 0;

  const TypeInfo* type() const { return reinterpret_cast<const TypeInfo*>(type_bits & ~std::uintptr_t{7}); }
  Addressing addressing() const { return static_cast<Addressing>(type_bits & 3); }
  void set_type(const TypeInfo* t, Addressing a = Addressing::plain) {
    type_bits = reinterpret_cast<std::uintptr_t>(t) | static_cast<std::uintptr_t>(a);
  }
  // The call's monitor travels with its messages (ERTS's alias with reply_demonitor): on a
  // request, the receiver places the caller's monitor (`from`, `ref`) as it takes the request
  // in, so no monitor signal goes first; on a reply (Addressing::alias), the replier was the
  // monitored process and has dropped that monitor, so the caller sends no demonitor.
  bool carries_monitor() const { return (type_bits & 4) != 0; }
  void mark_monitor() { type_bits |= 4; }
  void clear_monitor() { type_bits &= ~std::uintptr_t{4}; }
  void* payload() { return reinterpret_cast<char*>(this) + type()->payload_offset; }
};
static_assert(sizeof(Envelope) == 32);

void* allocate_envelope(std::size_t size, std::size_t alignment);
void free_envelope(Envelope* e) noexcept;  // destroys the payload too

template <class T>
void destroy_payload(void* p) noexcept {
  static_cast<T*>(p)->~T();
}
template <class T>
const char* payload_name() noexcept {
  return typeid(T).name();
}
constexpr std::uint32_t payload_offset_for(std::size_t alignment) {
  return static_cast<std::uint32_t>((sizeof(Envelope) + alignment - 1) / alignment * alignment);
}

template <class T, SignalKind K = SignalKind::message>
inline constexpr TypeInfo type_info_v{&destroy_payload<T>, &payload_name<T>,
                                      payload_offset_for(alignof(T)), alignof(T), K};

// Allocates an envelope holding T constructed from args.
template <class T, class... Args>
Envelope* make_envelope(const TypeInfo* info, Args&&... args) {
  const std::size_t align = alignof(T) > alignof(Envelope) ? alignof(T) : alignof(Envelope);
  void* mem = allocate_envelope(info->payload_offset + sizeof(T), align);
  auto* e = new (mem) Envelope{};
  e->set_type(info);
  try {
    new (e->payload()) T(std::forward<Args>(args)...);
  } catch (...) {
    // T's constructor threw: there is no payload to destroy. With no type, free_envelope
    // destroys none and gives the block back to the allocator it came from.
    e->set_type(nullptr);
    free_envelope(e);
    throw;
  }
  return e;
}

template <class F>
struct first_argument;
template <class R, class C, class A>
struct first_argument<R (C::*)(A)> { using type = A; };
template <class R, class C, class A>
struct first_argument<R (C::*)(A) const> { using type = A; };
template <class R, class A>
struct first_argument<R (*)(A)> { using type = A; };
template <class F>
struct first_argument : first_argument<decltype(&F::operator())> {};
template <class F>
using first_argument_t = std::remove_cvref_t<typename first_argument<std::remove_cvref_t<F>>::type>;

}  // namespace coppice::detail
