// How a process is spawned: its memory, the object built in it, and a coroutine body's process.
// Part of process.hpp, which includes it after class Process.
#pragma once

#include <cstddef>
#include <tuple>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "coppice/async.hpp"
#include "coppice/detail/runtime_core.hpp"
#include "coppice/message.hpp"
#include "coppice/pid.hpp"

namespace coppice::detail {

struct ProcessHeader;

struct SpawnOptions {
  bool link = false;
  // Monitors the child with `*monitor_ref` when that is set (a start uses its alias's ref,
  // so the acknowledgement can carry the monitor away: send_reply_envelope), or else with a
  // fresh ref written there.
  bool monitor = false;
  Ref* monitor_ref = nullptr;
  // The process stands for a process of another node (src/runtime/proxy.hpp): the signals that
  // reach it are handed to it as ProxySignal messages, and no exit signal kills it.
  bool proxy = false;
};

struct ProcessMemory {
  ProcessHeader* header;
  void* object;  // where the Process object is built
  std::size_t bytes;  // header and object
};

// What the listing shows of a process's class (coppice/observe.hpp): its behaviour and the
// class to name. A class says them with `observed_behaviour` and `observed_type` (a
// GenServer's process names the server's class); any other is "plain", named as itself.
struct ProcessDescriptor;
template <class P>
constexpr std::string_view observed_behaviour() {
  if constexpr (requires { P::observed_behaviour; }) {
    return P::observed_behaviour;
  } else {
    return "plain";
  }
}
template <class P>
struct observed_type {
  using type = P;
};
template <class P>
  requires requires { typename P::observed_type; }
struct observed_type<P> {
  using type = typename P::observed_type;
};
// One descriptor per process class, made on its first spawn. `object_offset` is where the
// Process is, from the header: the same for every process of the class (its alignment puts
// the object at the same place, and the Process within it is at a fixed offset), so the header
// keeps no pointer to it.
const ProcessDescriptor* describe_process(std::string_view behaviour, const std::type_info& type, std::size_t bytes,
                                          std::size_t object_offset);
template <class P>
const ProcessDescriptor* descriptor_of(std::size_t bytes, std::size_t object_offset) {
  static const ProcessDescriptor* const d =
      describe_process(observed_behaviour<P>(), typeid(typename observed_type<P>::type), bytes, object_offset);
  return d;
}
ProcessMemory allocate_process(std::size_t object_size, std::size_t object_alignment);
void abandon_process(ProcessMemory memory) noexcept;  // the object's constructor threw
Pid start_process(RuntimeCore& core, ProcessMemory memory, Process* object, const SpawnOptions& options,
                  const ProcessDescriptor* descriptor);

template <class P, class... Args>
Pid spawn_in(RuntimeCore& core, const SpawnOptions& options, Args&&... args) {
  static_assert(std::is_base_of_v<Process, P>, "a process class derives from coppice::Process");
  ProcessMemory memory = allocate_process(sizeof(P), alignof(P));
  P* object;
  try {
    object = new (memory.object) P(std::forward<Args>(args)...);
  } catch (...) {
    abandon_process(memory);
    throw;
  }
  Process* base = object;
  const auto offset = static_cast<std::size_t>(reinterpret_cast<char*>(base) - reinterpret_cast<char*>(memory.header));
  return start_process(core, memory, base, options, descriptor_of<P>(memory.bytes, offset));
}

// A process whose body is a coroutine: the callable and its arguments live in the process.
template <class F, class... Args>
class BodyProcess final : public Process {
 public:
  using observed_type = F;  // the listing names the body, not this wrapper
  template <class G, class... A>
  explicit BodyProcess(G&& f, A&&... args) : f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}
  void init() override { start_activity(std::apply(f_, args_).release(), true); }
  void handle(Message) override {}

 private:
  F f_;
  std::tuple<Args...> args_;
};

template <class F, class... Args>
concept AsyncBody = std::is_same_v<std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>, Async<void>>;

}  // namespace coppice::detail
