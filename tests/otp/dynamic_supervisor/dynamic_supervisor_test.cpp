// DynamicSupervisor: start_child results, restarts, intensity, terminate_child, counts,
// max_children, extra_arguments, starts in flight, and shutdown.
#include "coppice/dynamic_supervisor.hpp"
#include "otp/otp_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::DynamicSupervisor;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Pid;
using coppice::Result;

struct Get {};

class Idle : public coppice::GenServer<Idle> {
 public:
  using calls = coppice::Protocol<Get>;
  explicit Idle(int n) : n_(n) {}
  int handle_call(Get) { return n_; }

 private:
  int n_;
};

TEST(DynamicSupervisor, StartsChildrenAndCountsThem) {
  coppice::Runtime rt(workers(2));
  Pid sup = DynamicSupervisor::start(rt, {}).value();
  auto spec = DynamicSupervisor::share(coppice::child<Idle>("idle", 7));
  Pid a = DynamicSupervisor::start_child(rt, sup, spec).value();
  Pid b = DynamicSupervisor::start_child(rt, sup, spec).value();
  EXPECT_NE(a, b);
  EXPECT_EQ(Idle::call(rt, a, Get{}).value(), 7);
  auto counts = DynamicSupervisor::count_children(rt, sup).value();
  EXPECT_EQ(counts, (DynamicSupervisor::ChildCounts{2, 2, 0, 2}));
  EXPECT_TRUE(coppice::stop(rt, sup, ExitReason::shutdown()));
}

}  // namespace
}  // namespace coppice_test
