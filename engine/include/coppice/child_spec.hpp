// Child specs and what every supervisor shares: restart types, shutdown values, the start
// function, validation that names the bad field, and restart intensity.
#pragma once

#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/gen_server.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"

namespace coppice {

// When a child that exited is restarted (SEMANTICS.md 3.5): permanent always; transient
// unless the reason is normal, shutdown or shutdown with a detail; temporary never.
enum class Restart : std::uint8_t { permanent, transient, temporary };
enum class ChildType : std::uint8_t { worker, supervisor };

std::string_view to_string(Restart r);
std::string_view to_string(ChildType t);

namespace detail {
// A supervision duration (any std::chrono unit) in the whole milliseconds the supervisors
// count in: rounded up, so that a positive one never becomes 0; a negative one stays
// negative, for validation to refuse.
inline std::chrono::milliseconds supervision_ms(std::chrono::nanoseconds t) {
  return t < t.zero() ? std::chrono::floor<std::chrono::milliseconds>(t) : std::chrono::ceil<std::chrono::milliseconds>(t);
}
// "5000 ms", or "500 us" / "12 ns" when it is not whole milliseconds: for error messages.
std::string duration_text(std::chrono::nanoseconds t);
}  // namespace detail

// How a child is stopped (SEMANTICS.md 3.4): brutal_kill (kill at once), a timeout (shutdown,
// then kill when it has not exited in time), or infinity (shutdown, and wait).
class Shutdown {
 public:
  enum class Kind : std::uint8_t { brutal_kill, timeout, infinity };
  static Shutdown brutal_kill() { return Shutdown(Kind::brutal_kill, {}); }
  // Any std::chrono duration, kept in whole milliseconds (rounded up: 500us waits 1 ms).
  static Shutdown timeout(std::chrono::nanoseconds t) { return Shutdown(Kind::timeout, detail::supervision_ms(t)); }
  static Shutdown infinity() { return Shutdown(Kind::infinity, {}); }
  Kind kind() const { return kind_; }
  std::chrono::milliseconds time() const { return time_; }
  std::string to_string() const;
  friend bool operator==(const Shutdown&, const Shutdown&) = default;

 private:
  Shutdown(Kind k, std::chrono::milliseconds t) : kind_(k), time_(t) {}
  Kind kind_;
  std::chrono::milliseconds time_;
};

// What a start function receives: the options to start with (the child's name) and a
// DynamicSupervisor's extra_arguments (empty elsewhere).
struct StartArgs {
  StartOptions options;
  std::vector<std::any> extra;
};

// Starts the child from inside the supervisor: it must start a process linked to the caller
// (a start_link) and return its pid once it is ready; or Error ignore; or another error.
using StartFunction = std::function<Async<Result<Pid>>(const StartArgs&)>;

// OTP's child spec. Only `id` and `start` are required; the rest have OTP's defaults.
struct ChildSpec {
  std::string id;
  StartFunction start;
  Restart restart = Restart::permanent;
  std::optional<Shutdown> shutdown;  // default: 5000 ms for a worker, infinity for a supervisor
  ChildType type = ChildType::worker;
  bool significant = false;
  std::vector<std::string> modules;  // informational, as OTP's `modules`
  StartOptions options;              // passed to `start`: the name the child registers under
  // Optional: starts the child without waiting for its init (see PendingStart); a
  // DynamicSupervisor uses it to serve other requests while children initialise.
  std::function<PendingStart(const StartArgs&)> spawn;

  // Builders, so that a spec reads as one expression.
  ChildSpec& with_restart(Restart r) { restart = r; return *this; }
  ChildSpec& with_shutdown(Shutdown s) { shutdown = s; return *this; }
  ChildSpec& as_supervisor() { type = ChildType::supervisor; return *this; }
  ChildSpec& as_significant(bool on = true) { significant = on; return *this; }
  ChildSpec& name(ServerRef n) { options.name = std::move(n); return *this; }

  Shutdown effective_shutdown() const {
    if (shutdown) return *shutdown;
    return type == ChildType::supervisor ? Shutdown::infinity() : Shutdown::timeout(std::chrono::milliseconds(5000));
  }
};

// A spec that starts the GenServer S with `args` (S::start_link). A DynamicSupervisor's extra
// arguments are passed first when S can be built from (const std::vector<std::any>&, args...).
template <class S, class... Args>
ChildSpec child(std::string id, Args... args) {
  ChildSpec spec;
  spec.id = std::move(id);
  spec.modules = {std::string(detail::behaviour_name<S>())};
  spec.start = [... args = args](const StartArgs& a) -> Async<Result<Pid>> {
    if constexpr (std::is_constructible_v<S, const std::vector<std::any>&, Args...>) {
      return S::start_link(a.options, a.extra, args...);
    } else {
      return S::start_link(a.options, args...);
    }
  };
  spec.spawn = [... args = std::move(args)](const StartArgs& a) -> PendingStart {
    if constexpr (std::is_constructible_v<S, const std::vector<std::any>&, Args...>) {
      return S::spawn_link(a.options, a.extra, args...);
    } else {
      return S::spawn_link(a.options, args...);
    }
  };
  if constexpr (requires { S::child_type; }) spec.type = S::child_type;
  return spec;
}

// A validation error names the field: invalid_child_spec "id: missing", and so on.
Status validate(const ChildSpec& spec, bool id_required = true);

namespace detail {
// "invalid <what>: <field>: <problem>", of `kind`: the shape of every validation error.
Error invalid_field(ErrorKind kind, std::string_view what, std::string_view field, std::string_view problem);
}  // namespace detail

// ---- Restart intensity (SEMANTICS.md 3.7) ------------------------------------------------

// Counts restarts in a sliding window: more than `intensity` within `period` (inclusive,
// millisecond monotonic clock) means give up. O(1) amortised per restart: entries leave the
// window from the front, whatever the window holds. Restarts in the same millisecond share an
// entry, so the window holds at most one entry per millisecond of the period, plus one (it is
// inclusive), however many restarts it counts: a storm of 10,000 restarts in 20 ms is 20
// entries, not a vector grown by doubling to 16,384, whose copies were W3's slowest restarts.
class RestartIntensity {
 public:
  // `period` in any std::chrono unit, counted in whole milliseconds (rounded up).
  RestartIntensity(int intensity, std::chrono::nanoseconds period)
      : intensity_(intensity), period_(detail::supervision_ms(period)) {}
  // Records a restart now; true if the limit is exceeded (the supervisor gives up).
  bool add(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  std::size_t in_window() const { return in_window_; }
  int intensity() const { return intensity_; }
  std::chrono::milliseconds period() const { return period_; }

 private:
  int intensity_;
  std::chrono::milliseconds period_;
  struct Tick {
    std::int64_t ms;      // steady clock, milliseconds
    std::uint64_t count;  // restarts in that millisecond
  };
  std::vector<Tick> ticks_;  // oldest first; [head_, end) are in the window
  std::size_t head_ = 0;
  std::size_t in_window_ = 0;  // the counts of [head_, end)
};

}  // namespace coppice
