// Compiled, never run, by ctest (tests/CMakeLists.txt, api.compile.*): the typed client's checks
// at compile time. As it stands it must compile; with COPPICE_UNDECLARED_CALL or
// COPPICE_UNDECLARED_CAST it must not, and the diagnostic must say which list lacks the type.
#include <coppice/coppice.hpp>

#include <chrono>
#include <type_traits>

namespace {

using coppice::Async;
using coppice::ExitReason;
using coppice::NoReply;
using coppice::Result;

struct Get {};
struct Add {
  long n;
};
struct Finish {};
struct Quit {};
struct Typo {};  // declared nowhere: a request or cast by mistake

class Counter : public coppice::GenServer<Counter> {
 public:
  using calls = coppice::Protocol<Get, Quit>;
  using casts = coppice::Protocol<Add, Finish>;
  long handle_call(Get) { return n_; }
  // stop_with builds the result; the free coppice::stop is not hidden by it.
  coppice::CallReturn<bool> handle_call(Quit) { return stop_with(ExitReason::normal(), true); }
  void handle_cast(Add a) { n_ += a.n; }
  NoReply handle_cast(Finish) {
    if (n_ < 0) return stop_with(ExitReason::normal());
    return noreply(std::chrono::seconds(1));  // a timeout in any std::chrono unit
  }
  Async<void> stop_another(coppice::Pid other) {
    auto stopping = stop(other, ExitReason::shutdown(), std::chrono::seconds(1));
    coppice::Status s = co_await stopping;
    (void)s;
  }

 private:
  long n_ = 0;
};

[[maybe_unused]] Async<void> from_a_process(coppice::Pid server) {
  auto get = Counter::call(server, Get{}, std::chrono::microseconds(1500));
  Result<long> n = co_await get;
  static_assert(std::is_same_v<decltype(n), Result<long>>);
  static_assert(std::is_void_v<decltype(Counter::cast(server, Add{1}))>);
  Counter::cast(server, Add{n.value_or(0)});
  auto untyped = coppice::call<long>(server, Get{}, std::chrono::seconds(2));
  (void)co_await untyped;
  auto any = coppice::receive_any(std::chrono::milliseconds(5));
  (void)co_await any;
#ifdef COPPICE_UNDECLARED_CALL
  auto typo = Counter::call(server, Typo{});
  (void)co_await typo;
#endif
#ifdef COPPICE_UNDECLARED_CAST
  Counter::cast(server, Typo{});
#endif
}

[[maybe_unused]] void from_a_thread(coppice::Runtime& rt, coppice::Inbox& inbox, coppice::Pid server) {
  Result<long> a = Counter::call(rt, server, Get{}, std::chrono::seconds(1));
  Result<long> b = Counter::call(inbox, server, Get{}, coppice::infinity);
  Result<long> c = inbox.call<long>(server, Get{}, std::chrono::microseconds(10));
  Counter::cast(rt, server, Add{a.value_or(0) + b.value_or(0) + c.value_or(0)});
  coppice::cast(rt, server, Add{1});
  (void)rt.process_info(server, std::chrono::seconds(1));
  (void)coppice::stop(rt, server, ExitReason::normal(), std::chrono::minutes(1));
}

}  // namespace
