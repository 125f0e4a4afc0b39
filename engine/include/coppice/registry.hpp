// Registry: Elixir's local key-value process registry. Processes register themselves under
// keys (unique or duplicate) with a value; anyone looks them up without messaging.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coppice/async.hpp"
#include "coppice/pid.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"

namespace coppice {

// How keys map to processes (Elixir's :keys option).
enum class RegistryKeys : std::uint8_t {
  unique,            // a key has at most one live process; partitioned by key
  duplicate,         // Elixir's {:duplicate, :pid}: any number per key; partitioned by pid
  duplicate_by_key,  // Elixir's {:duplicate, :key}: any number per key; partitioned by key
};

std::string_view to_string(RegistryKeys keys);

struct RegistryOptions {
  std::string name;  // required; one running registry per name in a runtime
  RegistryKeys keys = RegistryKeys::unique;
  // Each partition is a process with its own lock and its own share of the cleanup work:
  // more partitions spread writers and dead-process cleanup over cores. 1 suits most uses.
  unsigned partitions = 1;
  // Locally registered names told of every explicit register_key and unregister, never of
  // a death (a listener that must know monitors the pid it was told about).
  std::vector<std::string> listeners{};
  // Initial meta entries (see Registry::meta).
  std::vector<std::pair<std::string, std::any>> meta{};
};

// What a listener receives. Elixir's {:register, reg, key, pid, value} and
// {:unregister, reg, key, pid}; `value` is empty for unregister.
struct RegistryEvent {
  enum class Kind : std::uint8_t { register_key, unregister };
  Kind kind;
  std::string registry;
  std::string key;
  Pid pid;
  std::any value{};
};

// One registration: what lookup and entries return.
using RegistryEntries = std::vector<std::pair<Pid, std::any>>;
struct RegistryEntry {
  std::string key;
  Pid pid;
  std::any value;
};

// The Registry's functions. Writes (register_key, unregister, update_value) act for the
// running process and fail with not_in_process elsewhere. Reads work from any thread: inside
// a process they find the runtime by themselves, elsewhere they take the Runtime as their
// first argument. Every function fails with not_found when no registry has that name.
//
// Like Elixir, the table is written by the registering process itself and read directly by
// everyone; the registry's partition processes (GenServers, serving coppice::sys) only clean up after registrants that die.
// That cleanup is asynchronous: lookup may still return a dead pid for a moment (as in
// Elixir), whereis_name never does, and a unique key whose holder is dead can be registered
// again at once.
class Registry {
 public:
  Registry() = delete;

  // ---- Starting and stopping ----

  // Starts a registry linked to the calling process (its parent): it exits when the parent
  // does, stopping its partitions first. As a supervisor does, it ignores exit signals from
  // anyone else. A name in use: already_started with the pid of the registry that has it.
  // Bad options: invalid_argument. Usable as a ChildSpec's start.
  static Async<Result<Pid>> start_link(RegistryOptions options);
  // From a plain thread: starts an unlinked registry and blocks until it is ready.
  static Result<Pid> start(Runtime& rt, RegistryOptions options);
  // From a plain thread: stops the registry and waits until it and its partitions are gone.
  static Status stop(Runtime& rt, std::string_view registry);

  // ---- Writing (the running process only) ----

  // Registers the running process under `key` with `value` (Elixir's register/3), and links
  // it to the partition that owns the entry, which removes it when the process dies. Returns
  // that partition's pid. Unique registry, key held by a live process (the caller included):
  // already_started with the holder's pid, message "already_registered ...". Held by a dead
  // process not yet cleaned up: the stale entry is replaced.
  static Result<Pid> register_key(std::string_view registry, std::string key, std::any value = {});
  // Removes every entry of the running process under `key` (ok when there is none), and
  // unlinks from the partition once the process has no key left there.
  static Status unregister(std::string_view registry, std::string_view key);
  // Unique registries: replaces the value of the caller's entry under `key` with
  // fn(old value); returns {new, old}. not_found when the caller does not hold the key;
  // invalid_argument on a duplicate registry. `fn` runs outside every lock.
  static Result<std::pair<std::any, std::any>> update_value(std::string_view registry, std::string_view key,
                                                            const std::function<std::any(const std::any&)>& fn);

  // ---- Reading (any process; any thread with the Runtime) ----

  // Every {pid, value} under `key`; may include a pid that just died (see above).
  static Result<RegistryEntries> lookup(std::string_view registry, std::string_view key);
  static Result<RegistryEntries> lookup(Runtime& rt, std::string_view registry, std::string_view key);
  // The same with the values as V: invalid_argument if one holds another type.
  template <class V>
  static Result<std::vector<std::pair<Pid, V>>> lookup(std::string_view registry, std::string_view key) {
    return typed<V>(lookup(registry, key), registry, key);
  }
  template <class V>
  static Result<std::vector<std::pair<Pid, V>>> lookup(Runtime& rt, std::string_view registry, std::string_view key) {
    return typed<V>(lookup(rt, registry, key), registry, key);
  }

  // Calls fn with every entry under `key`, in the caller, outside every lock; not called
  // when there is none. (Elixir calls it once per partition of a duplicate registry; here it
  // is called once with all of them, since there is no parallel variant to feed.)
  static Status dispatch(std::string_view registry, std::string_view key,
                         const std::function<void(const RegistryEntries&)>& fn);
  static Status dispatch(Runtime& rt, std::string_view registry, std::string_view key,
                         const std::function<void(const RegistryEntries&)>& fn);

  // The live process under a unique key, or Pid{} (never a dead one). Elixir's whereis_name,
  // what {:via, Registry, ...} resolves with. Pid{} for a duplicate or unknown registry, and
  // on a plain thread for the form without the Runtime.
  static Pid whereis_name(std::string_view registry, std::string_view key);
  static Pid whereis_name(Runtime& rt, std::string_view registry, std::string_view key);

  // The keys `pid` is registered under (a key registered twice appears twice).
  static Result<std::vector<std::string>> keys(std::string_view registry, Pid pid);
  static Result<std::vector<std::string>> keys(Runtime& rt, std::string_view registry, Pid pid);
  // The values `pid` registered under `key`.
  static Result<std::vector<std::any>> values(std::string_view registry, std::string_view key, Pid pid);
  static Result<std::vector<std::any>> values(Runtime& rt, std::string_view registry, std::string_view key, Pid pid);
  // How many entries the registry holds.
  static Result<std::size_t> count(std::string_view registry);
  static Result<std::size_t> count(Runtime& rt, std::string_view registry);
  // Every entry (what Elixir's select/2 with a match-all spec gives; C++ has no match specs).
  static Result<std::vector<RegistryEntry>> entries(std::string_view registry);
  static Result<std::vector<RegistryEntry>> entries(Runtime& rt, std::string_view registry);

  // Registry-wide metadata: not_found when `key` was never put.
  static Result<std::any> meta(std::string_view registry, std::string_view key);
  static Result<std::any> meta(Runtime& rt, std::string_view registry, std::string_view key);
  static Status put_meta(std::string_view registry, std::string key, std::any value);
  static Status put_meta(Runtime& rt, std::string_view registry, std::string key, std::any value);

  // The partition processes, in order.
  static Result<std::vector<Pid>> partitions(std::string_view registry);
  static Result<std::vector<Pid>> partitions(Runtime& rt, std::string_view registry);
  // A round trip through every partition: once it returns, each partition has handled
  // every exit signal that reached it before the request did (so the entries of a process
  // whose DOWN the caller has already received are gone).
  static Async<Status> sync(std::string registry);
  static Status sync(Runtime& rt, std::string_view registry);

 private:
  template <class V>
  static Result<std::vector<std::pair<Pid, V>>> typed(Result<RegistryEntries> all, std::string_view registry,
                                                      std::string_view key) {
    if (!all) return all.error();
    std::vector<std::pair<Pid, V>> out;
    out.reserve(all->size());
    for (auto& [pid, value] : *all) {
      V* v = std::any_cast<V>(&value);
      if (v == nullptr) return wrong_type(registry, key, pid, value);
      out.emplace_back(pid, std::move(*v));
    }
    return out;
  }
  static Error wrong_type(std::string_view registry, std::string_view key, Pid pid, const std::any& value);
};

}  // namespace coppice
