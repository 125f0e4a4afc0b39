// supervision_tree: which_children all the way down, as data, with each running child's
// behaviour, label and name; from a plain thread and from a process.
#include <functional>

#include "otp/otp_support.hpp"

using namespace coppice;
using namespace coppice_test;

namespace {
struct Get {};
class Worker : public GenServer<Worker> {
 public:
  using calls = coppice::Protocol<Get>;
  explicit Worker(std::string label) : label_(std::move(label)) {}
  Init init() {
    set_label(label_);
    return ok();
  }
  int handle_call(Get) { return 1; }

 private:
  std::string label_;
};

const TreeNode* child(const TreeNode& n, std::string_view id) {
  for (const TreeNode& c : n.children)
    if (c.id == id) return &c;
  return nullptr;
}
}  // namespace

TEST(SupervisionTree, WalksNestedSupervisorsWithTheirChildren) {
  Runtime rt(workers(2));
  Pid top = Supervisor::start(rt,
                              {child<Worker>("w1", std::string("first")).name("w1"),
                               Supervisor::child_spec("mid", {child<Worker>("w2", std::string("second")),
                                                              DynamicSupervisor::child_spec("dyn", {})})},
                              SupervisorFlags{})
                .value();
  Pid mid = Supervisor::which_child(rt, top, "mid").value().pid;
  Pid dyn = Supervisor::which_child(rt, mid, "dyn").value().pid;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(DynamicSupervisor::start_child(rt, dyn, child<Worker>("", "dynamic " + std::to_string(i))));

  Result<TreeNode> tree = supervision_tree(rt, top);
  ASSERT_TRUE(tree) << tree.error();
  EXPECT_EQ(tree->pid, top);
  EXPECT_EQ(tree->behaviour, "Supervisor");
  ASSERT_EQ(tree->children.size(), 2u);
  const TreeNode* w1 = child(*tree, "w1");
  const TreeNode* m = child(*tree, "mid");
  ASSERT_TRUE(w1 && m);
  EXPECT_EQ(w1->label, "first");
  EXPECT_EQ(w1->registered_name, "w1");
  EXPECT_EQ(w1->behaviour, "GenServer");
  EXPECT_EQ(w1->type, ChildType::worker);
  EXPECT_EQ(m->pid, mid);
  EXPECT_EQ(m->type, ChildType::supervisor);
  const TreeNode* d = child(*m, "dyn");
  ASSERT_TRUE(d && child(*m, "w2"));
  EXPECT_EQ(d->behaviour, "DynamicSupervisor");
  ASSERT_EQ(d->children.size(), 3u);
  for (const TreeNode& c : d->children) {
    EXPECT_TRUE(c.pid);
    EXPECT_EQ(c.label.rfind("dynamic ", 0), 0u) << c.label;
    EXPECT_TRUE(c.error.empty());
  }

  // The same from inside a process.
  Inbox inbox(rt);
  rt.spawn([](Pid top, Pid to) -> Async<void> {
    Result<TreeNode> t = co_await supervision_tree(ServerRef(top));
    send(to, t ? t->children.size() : std::size_t{0});
  }, top, inbox.pid());
  auto n = inbox.receive<std::size_t>(wait_time);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
}

TEST(SupervisionTree, ADeadRootIsNoprocAndAWorkerIsNotASupervisor) {
  Runtime rt(workers(1));
  Result<TreeNode> none = supervision_tree(rt, ServerRef("nobody"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind(), ErrorKind::noproc);
  Pid w = Worker::start(rt, StartOptions{}, std::string("lonely")).value();
  Result<TreeNode> not_sup = supervision_tree(rt, w, std::chrono::milliseconds{500});
  ASSERT_FALSE(not_sup) << "a GenServer does not answer which_children";
}
