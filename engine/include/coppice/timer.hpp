// A handle on a pending timer, for cancel_timer.
#pragma once

#include <cstdint>

namespace coppice {

class TimerRef {
 public:
  constexpr TimerRef() = default;
  constexpr TimerRef(std::uint32_t index, std::uint32_t generation) : index_(index), generation_(generation) {}
  constexpr std::uint32_t index() const { return index_; }
  constexpr std::uint32_t generation() const { return generation_; }
  constexpr explicit operator bool() const { return generation_ != 0; }
  friend constexpr bool operator==(TimerRef, TimerRef) = default;

 private:
  std::uint32_t index_ = 0;
  std::uint32_t generation_ = 0;
};

}  // namespace coppice
