// Registry: starting and stopping, duplicate keys, partitions, update_value, meta, and the
// errors every function returns instead of crashing.
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "otp/registry/registry_support.hpp"

namespace coppice_test {
namespace {

using coppice::Async;
using coppice::ErrorKind;
using coppice::ExitReason;
using coppice::Pid;
using coppice::Registry;
using coppice::RegistryKeys;
using coppice::Result;

bool has(const std::vector<Pid>& pids, Pid p) { return std::find(pids.begin(), pids.end(), p) != pids.end(); }

// ---- Starting and stopping ----

TEST(Registry, StartTwiceWithOneNameIsAlreadyStartedWithTheRunningRegistry) {
  coppice::Runtime rt(workers(2));
  Result<Pid> first = Registry::start(rt, registry_options("once"));
  ASSERT_TRUE(first.has_value());
  Result<Pid> second = Registry::start(rt, registry_options("once", RegistryKeys::duplicate));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(second.error().pid(), *first);
  EXPECT_TRUE(rt.alive(*first));
}

TEST(Registry, StopEndsTheRegistryAndItsPartitionsAndFreesTheName) {
  coppice::Runtime rt(workers(2));
  Result<Pid> top = Registry::start(rt, registry_options("again", RegistryKeys::unique, 3));
  ASSERT_TRUE(top.has_value());
  std::vector<Pid> partitions = Registry::partitions(rt, "again").value();
  ASSERT_EQ(partitions.size(), 3u);
  ASSERT_TRUE(Registry::stop(rt, "again").has_value());
  EXPECT_FALSE(rt.alive(*top));
  for (Pid p : partitions) EXPECT_FALSE(rt.alive(p)) << "partitions stop before the registry does";
  EXPECT_EQ(Registry::count(rt, "again").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::stop(rt, "again").error().kind(), ErrorKind::not_found);
  Result<Pid> restarted = Registry::start(rt, registry_options("again"));
  ASSERT_TRUE(restarted.has_value());
  EXPECT_NE(*restarted, *top);
  EXPECT_EQ(Registry::count(rt, "again").value(), 0u);
}

// Like any supervisor, the registry obeys its start_link parent's exit: when the parent ends,
// so do the registry and its partitions, and the name is free again.
TEST(Registry, StartLinkEndsWithItsParent) {
  coppice::Runtime rt(workers(2));
  coppice::Inbox inbox(rt);
  const Pid observer = inbox.pid();
  ExitReason r = run_process(rt, [observer]() -> Async<void> {
    auto start = Registry::start_link(registry_options("owned", RegistryKeys::duplicate, 2));
    Result<Pid> top = co_await start;
    CO_ASSERT_TRUE(top.has_value());
    EXPECT_TRUE(has(coppice::self_info().links, *top));
    std::vector<Pid> all = Registry::partitions("owned").value();
    all.push_back(*top);
    coppice::send(observer, std::move(all));
  });
  EXPECT_EQ(r, ExitReason::normal());
  std::optional<std::vector<Pid>> pids = inbox.receive<std::vector<Pid>>(wait_time);
  ASSERT_TRUE(pids.has_value());
  for (Pid p : *pids) {
    // A pid already gone gives its DOWN (noproc) at once: either way, it ends.
    EXPECT_TRUE(down_for(inbox, inbox.monitor(p)).has_value());
  }
  EXPECT_EQ(Registry::count(rt, "owned").error().kind(), ErrorKind::not_found);
  EXPECT_TRUE(Registry::start(rt, registry_options("owned")).has_value());
}

// A stopping registry takes its registrants' links with it, as in Elixir: a trapping
// registrant gets its partition's EXIT with shutdown (a non-trapping one would die of it).
TEST(Registry, ATrappingRegistrantHearsItsPartitionStop) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("going")).has_value());
  coppice::Inbox inbox(rt);
  const Pid registrant = rt.spawn([](Pid observer) -> Async<void> {
    coppice::trap_exit(true);
    Result<Pid> owner = Registry::register_key("going", "k");
    CO_ASSERT_TRUE(owner.has_value());
    coppice::send(observer, *owner);
    coppice::Exit e = co_await coppice::receive<coppice::Exit>();
    EXPECT_EQ(e.from, *owner);
    EXPECT_EQ(e.reason, ExitReason::shutdown());
  }, inbox.pid());
  const coppice::Ref watch = inbox.monitor(registrant);
  ASSERT_TRUE(inbox.receive<Pid>(wait_time).has_value());
  ASSERT_TRUE(Registry::stop(rt, "going").has_value());
  std::optional<coppice::Down> d = down_for(inbox, watch);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->reason, ExitReason::normal());
}

TEST(Registry, BadOptionsAreInvalidArgument) {
  coppice::Runtime rt(workers(1));
  EXPECT_EQ(Registry::start(rt, registry_options("")).error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(Registry::start(rt, registry_options("zero", RegistryKeys::unique, 0)).error().kind(), ErrorKind::invalid_argument);
  coppice::RegistryOptions o = registry_options("listeners");
  o.listeners = {""};
  EXPECT_EQ(Registry::start(rt, o).error().kind(), ErrorKind::invalid_argument);
}

// ---- Duplicate keys ----

TEST(Registry, DuplicateKeysHoldEveryRegistrationAndDispatchSeesThemAll) {
  for (RegistryKeys kind : {RegistryKeys::duplicate, RegistryKeys::duplicate_by_key}) {
    SCOPED_TRACE(std::string(coppice::to_string(kind)));
    coppice::Runtime rt(workers(2));
    ASSERT_TRUE(Registry::start(rt, registry_options("topics", kind, 4)).has_value());
    coppice::Inbox inbox(rt);
    const Pid other = rt.spawn<Registrant>();
    ASSERT_TRUE(register_from(inbox, other, "topics", "news", 3).has_value());
    ExitReason r = run_process(rt, [other]() -> Async<void> {
      const Pid me = coppice::self();
      CO_ASSERT_TRUE(Registry::register_key("topics", "news", 1).has_value());
      CO_ASSERT_TRUE(Registry::register_key("topics", "news", 2).has_value());
      EXPECT_EQ(Registry::keys("topics", me).value(), (std::vector<std::string>{"news", "news"}));
      std::vector<std::any> mine = Registry::values("topics", "news", me).value();
      std::multiset<int> got;
      for (const std::any& v : mine) got.insert(std::any_cast<int>(v));
      EXPECT_EQ(got, (std::multiset<int>{1, 2}));

      std::multiset<std::pair<Pid, int>> seen;
      int calls = 0;
      CO_ASSERT_TRUE(Registry::dispatch("topics", "news", [&](const coppice::RegistryEntries& entries) {
                       ++calls;
                       for (const auto& [pid, value] : entries) seen.emplace(pid, std::any_cast<int>(value));
                     }).has_value());
      EXPECT_EQ(calls, 1);
      EXPECT_EQ(seen, (std::multiset<std::pair<Pid, int>>{{me, 1}, {me, 2}, {other, 3}}));
      CO_ASSERT_TRUE(Registry::dispatch("topics", "nobody", [&](const coppice::RegistryEntries&) { ++calls; }).has_value());
      EXPECT_EQ(calls, 1) << "dispatch does not call back for a key nobody holds";
      EXPECT_EQ(Registry::count("topics").value(), 3u);

      // unregister removes all of ours under the key, and none of the other's.
      CO_ASSERT_TRUE(Registry::unregister("topics", "news").has_value());
      auto left = Registry::lookup<int>("topics", "news").value();
      CO_ASSERT_TRUE(left.size() == 1);
      EXPECT_EQ(left[0], std::make_pair(other, 3));
      EXPECT_TRUE(Registry::keys("topics", me).value().empty());
    });
    EXPECT_EQ(r, ExitReason::normal());
  }
}

// The cleanup after a dead registrant deletes its entries only: the others under the same
// key stay.
TEST(Registry, ADeadRegistrantTakesOnlyItsOwnEntriesWithIt) {
  for (RegistryKeys kind : {RegistryKeys::duplicate, RegistryKeys::duplicate_by_key}) {
    SCOPED_TRACE(std::string(coppice::to_string(kind)));
    coppice::Runtime rt(quiet(workers(2)));
    ASSERT_TRUE(Registry::start(rt, registry_options("shared", kind, 2)).has_value());
    coppice::Inbox inbox(rt);
    const Pid dies = rt.spawn<Registrant>();
    const Pid stays = rt.spawn<Registrant>();
    ASSERT_TRUE(register_from(inbox, dies, "shared", "topic", 1).has_value());
    ASSERT_TRUE(register_from(inbox, stays, "shared", "topic", 2).has_value());
    ASSERT_TRUE(register_from(inbox, dies, "shared", "topic", 3).has_value());
    kill_and_wait(inbox, dies);
    ASSERT_TRUE(Registry::sync(rt, "shared").has_value());
    auto left = Registry::lookup<int>(rt, "shared", "topic").value();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0], std::make_pair(stays, 2));
  }
}

// ---- Partitions ----

// Keys spread over the partitions of a unique registry; the caller is linked to each owner it
// registered with, and to none once every key is gone.
TEST(Registry, UniqueKeysSpreadOverPartitionsAndLinkToEachOwner) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("spread", RegistryKeys::unique, 8)).has_value());
  ExitReason r = run_process(rt, []() -> Async<void> {
    const std::vector<Pid> partitions = Registry::partitions("spread").value();
    EXPECT_EQ(std::set<Pid>(partitions.begin(), partitions.end()).size(), 8u);
    std::set<Pid> owners;
    for (int i = 0; i < 100; ++i) {
      Result<Pid> owner = Registry::register_key("spread", "key" + std::to_string(i), i);
      CO_ASSERT_TRUE(owner.has_value());
      EXPECT_TRUE(has(partitions, *owner));
      owners.insert(*owner);
    }
    EXPECT_GT(owners.size(), 1u);
    const std::vector<Pid> links = coppice::self_info().links;
    for (Pid owner : owners) EXPECT_TRUE(has(links, owner));
    for (int i = 0; i < 100; ++i) {
      auto found = Registry::lookup<int>("spread", "key" + std::to_string(i)).value();
      CO_ASSERT_TRUE(found.size() == 1);
      EXPECT_EQ(found[0], std::make_pair(coppice::self(), i));
    }
    EXPECT_EQ(Registry::count("spread").value(), 100u);
    EXPECT_EQ(Registry::entries("spread").value().size(), 100u);
    for (int i = 0; i < 100; ++i) CO_ASSERT_TRUE(Registry::unregister("spread", "key" + std::to_string(i)).has_value());
    for (Pid p : coppice::self_info().links) EXPECT_FALSE(has(partitions, p)) << "still linked to partition " << p;
    EXPECT_EQ(Registry::count("spread").value(), 0u);
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// A duplicate registry is partitioned by pid: one process's keys all live in one partition,
// and a lookup gathers a key's entries from every partition.
TEST(Registry, DuplicateRegistriesKeepAProcessInOnePartition) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("bypid", RegistryKeys::duplicate, 4)).has_value());
  coppice::Inbox inbox(rt);
  std::vector<Pid> registrants;
  for (int i = 0; i < 16; ++i) {
    const Pid p = rt.spawn<Registrant>();
    registrants.push_back(p);
    Result<Pid> a = register_from(inbox, p, "bypid", "all", i);
    Result<Pid> b = register_from(inbox, p, "bypid", "own" + std::to_string(i), i);
    ASSERT_TRUE(a.has_value() && b.has_value());
    EXPECT_EQ(*a, *b) << "one partition per process";
  }
  EXPECT_EQ(Registry::lookup(rt, "bypid", "all").value().size(), 16u);
  EXPECT_EQ(Registry::keys(rt, "bypid", registrants[5]).value(), (std::vector<std::string>{"all", "own5"}));
  EXPECT_EQ(Registry::count(rt, "bypid").value(), 32u);
}

// ---- update_value, meta, typed lookup ----

TEST(Registry, UpdateValueReplacesTheCallersValueOnly) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("counter")).has_value());
  ASSERT_TRUE(Registry::start(rt, registry_options("many", RegistryKeys::duplicate)).has_value());
  coppice::Inbox inbox(rt);
  const Pid other = rt.spawn<Registrant>();
  ASSERT_TRUE(register_from(inbox, other, "counter", "theirs", 100).has_value());
  ExitReason r = run_process(rt, []() -> Async<void> {
    CO_ASSERT_TRUE(Registry::register_key("counter", "mine", 1).has_value());
    auto add_one = [](const std::any& v) -> std::any { return std::any_cast<int>(v) + 1; };
    auto updated = Registry::update_value("counter", "mine", add_one);
    CO_ASSERT_TRUE(updated.has_value());
    EXPECT_EQ(std::any_cast<int>(updated->first), 2);
    EXPECT_EQ(std::any_cast<int>(updated->second), 1);
    EXPECT_EQ(Registry::lookup<int>("counter", "mine").value().at(0).second, 2);

    auto theirs = Registry::update_value("counter", "theirs", add_one);
    CO_ASSERT_FALSE(theirs.has_value());
    EXPECT_EQ(theirs.error().kind(), ErrorKind::not_found);
    EXPECT_EQ(Registry::lookup<int>("counter", "theirs").value().at(0).second, 100);
    EXPECT_EQ(Registry::update_value("counter", "nobody", add_one).error().kind(), ErrorKind::not_found);

    CO_ASSERT_TRUE(Registry::register_key("many", "k", 1).has_value());
    EXPECT_EQ(Registry::update_value("many", "k", add_one).error().kind(), ErrorKind::invalid_argument);
  });
  EXPECT_EQ(r, ExitReason::normal());
}

TEST(Registry, MetaHoldsWhatWasPut) {
  coppice::Runtime rt(workers(1));
  coppice::RegistryOptions o = registry_options("meta");
  o.meta = {{"custom_key", std::string("custom_value")}};
  ASSERT_TRUE(Registry::start(rt, o).has_value());
  EXPECT_EQ(std::any_cast<std::string>(Registry::meta(rt, "meta", "custom_key").value()), "custom_value");
  EXPECT_EQ(Registry::meta(rt, "meta", "unknown").error().kind(), ErrorKind::not_found);
  ASSERT_TRUE(Registry::put_meta(rt, "meta", "custom_key", 7).has_value());
  EXPECT_EQ(std::any_cast<int>(Registry::meta(rt, "meta", "custom_key").value()), 7);
  ExitReason r = run_process(rt, []() -> Async<void> {
    CO_ASSERT_TRUE(Registry::put_meta("meta", "from_process", true).has_value());
    EXPECT_TRUE(std::any_cast<bool>(Registry::meta("meta", "from_process").value()));
    co_return;
  });
  EXPECT_EQ(r, ExitReason::normal());
}

TEST(Registry, ATypedLookupOfTheWrongTypeIsInvalidArgument) {
  coppice::Runtime rt(workers(1));
  ASSERT_TRUE(Registry::start(rt, registry_options("typed")).has_value());
  coppice::Inbox inbox(rt);
  const Pid p = rt.spawn<Registrant>();
  ASSERT_TRUE(register_from(inbox, p, "typed", "k", 42).has_value());
  EXPECT_EQ(Registry::lookup<int>(rt, "typed", "k").value().at(0).second, 42);
  Result<std::vector<std::pair<Pid, std::string>>> wrong = Registry::lookup<std::string>(rt, "typed", "k");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().kind(), ErrorKind::invalid_argument);
  EXPECT_EQ(wrong.error().pid(), p);
}

// ---- Errors ----

TEST(Registry, AnUnknownRegistryIsNotFoundEverywhere) {
  coppice::Runtime rt(workers(2));
  EXPECT_EQ(Registry::lookup(rt, "none", "k").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::keys(rt, "none", Pid{}).error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::values(rt, "none", "k", Pid{}).error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::count(rt, "none").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::entries(rt, "none").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::meta(rt, "none", "k").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::put_meta(rt, "none", "k", 1).error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::sync(rt, "none").error().kind(), ErrorKind::not_found);
  EXPECT_EQ(Registry::dispatch(rt, "none", "k", [](const coppice::RegistryEntries&) {}).error().kind(), ErrorKind::not_found);
  EXPECT_FALSE(Registry::whereis_name(rt, "none", "k"));
  ExitReason r = run_process(rt, []() -> Async<void> {
    Result<Pid> reg = Registry::register_key("none", "k", 1);
    CO_ASSERT_FALSE(reg.has_value());
    EXPECT_EQ(reg.error().kind(), ErrorKind::not_found);
    EXPECT_NE(reg.error().message().find("'none'"), std::string::npos) << reg.error();
    EXPECT_EQ(Registry::unregister("none", "k").error().kind(), ErrorKind::not_found);
    EXPECT_EQ(Registry::update_value("none", "k", [](const std::any& v) { return v; }).error().kind(), ErrorKind::not_found);
    EXPECT_EQ(Registry::lookup("none", "k").error().kind(), ErrorKind::not_found);
    auto synced = Registry::sync("none");
    EXPECT_EQ((co_await synced).error().kind(), ErrorKind::not_found);
  });
  EXPECT_EQ(r, ExitReason::normal());
}

TEST(Registry, WritesFromAPlainThreadAreNotInProcess) {
  coppice::Runtime rt(workers(1));
  ASSERT_TRUE(Registry::start(rt, registry_options("plain")).has_value());
  EXPECT_EQ(Registry::register_key("plain", "k", 1).error().kind(), ErrorKind::not_in_process);
  EXPECT_EQ(Registry::unregister("plain", "k").error().kind(), ErrorKind::not_in_process);
  EXPECT_EQ(Registry::update_value("plain", "k", [](const std::any& v) { return v; }).error().kind(),
            ErrorKind::not_in_process);
  // Reads without the Runtime need a process to find the runtime by.
  EXPECT_EQ(Registry::lookup("plain", "k").error().kind(), ErrorKind::not_in_process);
  EXPECT_EQ(Registry::count("plain").error().kind(), ErrorKind::not_in_process);
  EXPECT_TRUE(Registry::lookup(rt, "plain", "k").value().empty());
}

TEST(Registry, BlockingFormsRefuseToRunInsideAProcess) {
  coppice::Runtime rt(workers(1));
  ASSERT_TRUE(Registry::start(rt, registry_options("blocking")).has_value());
  ExitReason r = run_process(rt, [&rt]() -> Async<void> {
    EXPECT_EQ(Registry::start(rt, registry_options("inner")).error().kind(), ErrorKind::blocking_in_process);
    EXPECT_EQ(Registry::stop(rt, "blocking").error().kind(), ErrorKind::blocking_in_process);
    EXPECT_EQ(Registry::sync(rt, "blocking").error().kind(), ErrorKind::blocking_in_process);
    co_return;
  });
  EXPECT_EQ(r, ExitReason::normal());
}

}  // namespace
}  // namespace coppice_test

namespace coppice_test {
namespace {

// SEMANTICS.md 0: every behaviour serves the system messages between callbacks, a Registry's
// partitions included. Suspended, a partition leaves a dead registrant's EXIT queued (its
// entry stays); resumed, it handles it.
TEST(Registry, APartitionServesTheSystemMessages) {
  coppice::Runtime rt(quiet(workers(2)));
  ASSERT_TRUE(coppice::Registry::start(rt, registry_options("sys", coppice::RegistryKeys::duplicate, 2)).has_value());
  coppice::Inbox inbox(rt);
  const Pid dies = rt.spawn<Registrant>();
  Result<Pid> owner = register_from(inbox, dies, "sys", "topic", 1);
  ASSERT_TRUE(owner.has_value());
  const Pid partition = *owner;
  ASSERT_TRUE(coppice::sys::suspend(rt, partition, std::chrono::milliseconds(5000)).has_value());
  Result<coppice::ServerStatus> status = coppice::sys::get_status(rt, partition);
  ASSERT_TRUE(status.has_value()) << status.error();
  EXPECT_EQ(status->pid, partition);
  EXPECT_TRUE(status->suspended);
  kill_and_wait(inbox, dies);
  EXPECT_EQ(coppice::Registry::lookup(rt, "sys", "topic").value().size(), 1u) << "cleaned while suspended";
  ASSERT_TRUE(coppice::sys::resume(rt, partition).has_value());
  ASSERT_TRUE(coppice::Registry::sync(rt, "sys").has_value());
  EXPECT_TRUE(coppice::Registry::lookup(rt, "sys", "topic").value().empty());
  EXPECT_FALSE(coppice::sys::get_status(rt, partition).value().suspended);
  EXPECT_TRUE(coppice::Registry::stop(rt, "sys").has_value());
  EXPECT_FALSE(rt.alive(partition));
}

}  // namespace
}  // namespace coppice_test
