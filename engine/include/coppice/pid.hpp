// Process identifiers and unique references: 64-bit values, cheap to copy and compare.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace coppice {

// A process's identity for its whole life: a slot in the runtime's process table and the
// generation of that slot. A slot is reused only with a new generation, so a pid never names
// a later process (a generation wraps after 2^32 reuses of one slot). Pid{} names nobody.
class Pid {
 public:
  constexpr Pid() = default;
  static constexpr Pid from_parts(std::uint32_t slot, std::uint32_t generation) {
    return Pid{(std::uint64_t{generation} << 32) | slot};
  }
  static constexpr Pid from_bits(std::uint64_t bits) { return Pid{bits}; }

  constexpr std::uint32_t slot() const { return static_cast<std::uint32_t>(bits_); }
  constexpr std::uint32_t generation() const { return static_cast<std::uint32_t>(bits_ >> 32); }
  constexpr std::uint64_t bits() const { return bits_; }
  constexpr explicit operator bool() const { return bits_ != 0; }

  friend constexpr auto operator<=>(Pid, Pid) = default;

  // Printed as OTP prints a local pid: <0.slot.generation>.
  std::string to_string() const;

 private:
  constexpr explicit Pid(std::uint64_t bits) : bits_(bits) {}
  std::uint64_t bits_ = 0;
};

// A reference unique within one runtime: names a monitor, a call, an alias or a timer.
class Ref {
 public:
  constexpr Ref() = default;
  static constexpr Ref from_bits(std::uint64_t bits) { return Ref{bits}; }
  constexpr std::uint64_t bits() const { return bits_; }
  constexpr explicit operator bool() const { return bits_ != 0; }
  friend constexpr auto operator<=>(Ref, Ref) = default;
  std::string to_string() const;  // #Ref<0.N>

 private:
  constexpr explicit Ref(std::uint64_t bits) : bits_(bits) {}
  std::uint64_t bits_ = 0;
};

std::ostream& operator<<(std::ostream& out, Pid pid);
std::ostream& operator<<(std::ostream& out, Ref ref);

}  // namespace coppice

template <>
struct std::hash<coppice::Pid> {
  std::size_t operator()(coppice::Pid p) const noexcept { return std::hash<std::uint64_t>{}(p.bits()); }
};
template <>
struct std::hash<coppice::Ref> {
  std::size_t operator()(coppice::Ref r) const noexcept { return std::hash<std::uint64_t>{}(r.bits()); }
};
