// Process identifiers and unique references: 64-bit values, cheap to copy and compare.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace coppice {

// A process's identity for its whole life, in 64 bits: the tag of its runtime (high 8 bits),
// the generation of its slot (28 bits) and its slot in that runtime's process table (low 28).
// A slot serves generations 1 to last_generation and is then retired for good, so a runtime
// never hands out the same pid twice (ARCHITECTURE.md, "Pids": 2^56 spawns, over two
// centuries at 10 million a second). The tag tells apart the runtimes alive in one program:
// a pid of another runtime names nobody here. Pid{} names nobody.
class Pid {
 public:
  static constexpr unsigned slot_bits = 28;
  static constexpr unsigned generation_bits = 28;
  static constexpr unsigned tag_bits = 8;
  static constexpr std::uint32_t max_slot = (std::uint32_t{1} << slot_bits) - 1;
  static constexpr std::uint32_t last_generation = (std::uint32_t{1} << generation_bits) - 1;

  constexpr Pid() = default;
  // Slot and generation are cut to their widths; tag 0 belongs to no runtime.
  static constexpr Pid from_parts(std::uint32_t slot, std::uint32_t generation, std::uint8_t runtime_tag = 0) {
    return Pid{(std::uint64_t{runtime_tag} << (slot_bits + generation_bits)) |
               (std::uint64_t{generation & last_generation} << slot_bits) | (slot & max_slot)};
  }
  static constexpr Pid from_bits(std::uint64_t bits) { return Pid{bits}; }

  constexpr std::uint32_t slot() const { return static_cast<std::uint32_t>(bits_) & max_slot; }
  constexpr std::uint32_t generation() const {
    return static_cast<std::uint32_t>(bits_ >> slot_bits) & last_generation;
  }
  // The runtime that handed the pid out (1-255; see Runtime). Room for distribution: the
  // tag is where a node's index (and creation) would go.
  constexpr std::uint8_t runtime_tag() const {
    return static_cast<std::uint8_t>(bits_ >> (slot_bits + generation_bits));
  }
  constexpr std::uint64_t bits() const { return bits_; }
  constexpr explicit operator bool() const { return bits_ != 0; }

  friend constexpr auto operator<=>(Pid, Pid) = default;

  // Printed as OTP prints a local pid: <0.slot.generation>, whatever the runtime (errors
  // about a pid of another runtime name both runtimes' tags).
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
