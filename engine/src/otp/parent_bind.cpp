// Parent's binding and groups: whether a new child may join (its binds_to and shutdown group),
// and which siblings go down with a child.
#include <algorithm>
#include <unordered_set>

#include "otp/parent_core.hpp"

namespace coppice {
namespace detail {

Status ParentCore::check_new(const ParentChildSpec& spec) {
  if (Status s = validate(spec); !s) return s;
  if (!spec.id.empty()) {
    if (Pos c = children_.find(spec.id); c != children_.end())
      return Error(ErrorKind::already_started, "child '" + spec.id + "' is already there", c->pid);
  }
  std::string missing;
  for (const ChildRef& ref : spec.binds_to) {
    if (find(ref) != children_.end()) continue;
    if (!missing.empty()) missing += ", ";
    missing += ref.to_string();
  }
  if (!missing.empty())
    return Error(ErrorKind::missing_deps, "invalid child spec: binds_to: no such sibling: " + missing);
  if (spec.shutdown_group) {
    // The members agree with each other: one of them speaks for the group.
    if (auto g = groups_.find(*spec.shutdown_group); g != groups_.end() && !g->second.empty()) {
      const Child& member = *by_order_.at(g->second.front());
      if (member.spec.restart != spec.restart || member.spec.ephemeral != spec.ephemeral)
        return Error(ErrorKind::non_uniform_shutdown_group,
                     "invalid child spec: shutdown_group: '" + *spec.shutdown_group +
                         "' has members with another restart or ephemeral setting");
    }
  }
  return {};
}

// The child and every sibling that goes down with it, in start order: those bound to it
// (transitively) and the members of its shutdown group (and theirs).
// A walk out from `c` over the dependents and group indexes: as long as the answer, not
// the table.
std::vector<ParentCore::Pos> ParentCore::closure(Pos c) {
  if (bound_ == 0 || (!dependents_.contains(c->order) && !c->spec.shutdown_group)) return {c};
  std::vector<Pos> out{c};
  std::unordered_set<std::uint64_t> in{c->order};
  auto join = [&](std::uint64_t order) {
    auto it = by_order_.find(order);
    if (it == by_order_.end() || !in.insert(order).second) return;
    out.push_back(it->second);
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Child& x = *out[i];
    if (auto d = dependents_.find(x.order); d != dependents_.end())
      for (std::uint64_t o : d->second) join(o);
    if (x.spec.shutdown_group)
      for (std::uint64_t o : groups_.at(*x.spec.shutdown_group)) join(o);
  }
  std::sort(out.begin(), out.end(), [](Pos a, Pos b) { return a->order < b->order; });
  return out;
}

}  // namespace detail
}  // namespace coppice
