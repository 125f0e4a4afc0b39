// The Registry scenarios of SEMANTICS.md section 8 (83, 85, 86, 87, 88 and the Registry half of 113).
#include <algorithm>
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
using coppice::RegistryEvent;
using coppice::Result;

bool has(const std::vector<Pid>& pids, Pid p) { return std::find(pids.begin(), pids.end(), p) != pids.end(); }

// [EX registry unique_test "has unique registrations"] register => {ok, owner}; again with the
// same key => {error, {already_registered, self()}}; keys and values show one entry.
TEST(Scenario, registry_unique_test_has_unique_registrations) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("unique")).has_value());
  ExitReason r = run_process(rt, []() -> Async<void> {
    const Pid me = coppice::self();
    Result<Pid> owner = Registry::register_key("unique", "hello", std::string("value"));
    CO_ASSERT_TRUE(owner.has_value());
    EXPECT_EQ(Registry::partitions("unique").value(), std::vector<Pid>{*owner});
    EXPECT_EQ(Registry::keys("unique", me).value(), std::vector<std::string>{"hello"});
    std::vector<std::any> values = Registry::values("unique", "hello", me).value();
    CO_ASSERT_TRUE(values.size() == 1);
    EXPECT_EQ(std::any_cast<std::string>(values[0]), "value");

    Result<Pid> again = Registry::register_key("unique", "hello", std::string("other"));
    CO_ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().kind(), ErrorKind::already_started);
    EXPECT_EQ(again.error().pid(), me);
    EXPECT_NE(again.error().message().find("already_registered"), std::string::npos) << again.error();
    EXPECT_EQ(Registry::keys("unique", me).value(), std::vector<std::string>{"hello"});
    EXPECT_EQ(Registry::values("unique", "hello", me).value().size(), 1u);

    Result<Pid> world = Registry::register_key("unique", "world", 1);
    EXPECT_TRUE(world.has_value());
    std::vector<std::string> keys = Registry::keys("unique", me).value();
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"hello", "world"}));
    co_return;
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [EX registry_test "clean up registry on process crash"] registrants killed, partitions
// synced => the key and pid tables are empty.
TEST(Scenario, registry_test_clean_up_registry_on_process_crash) {
  for (coppice::RegistryKeys kind :
       {coppice::RegistryKeys::unique, coppice::RegistryKeys::duplicate, coppice::RegistryKeys::duplicate_by_key}) {
    SCOPED_TRACE(std::string(coppice::to_string(kind)));
    coppice::Runtime rt(quiet(workers(2)));
    ASSERT_TRUE(Registry::start(rt, registry_options("crash", kind, 4)).has_value());
    coppice::Inbox inbox(rt);
    std::vector<Pid> registrants;
    for (int i = 0; i < 8; ++i) {
      Pid p = rt.spawn<Registrant>();
      registrants.push_back(p);
      ASSERT_TRUE(register_from(inbox, p, "crash", "key" + std::to_string(i), i).has_value());
      ASSERT_TRUE(register_from(inbox, p, "crash", "shared" + std::to_string(i % 2), i).has_value() ||
                  kind == coppice::RegistryKeys::unique);
    }
    ASSERT_GE(Registry::count(rt, "crash").value(), 8u);
    for (Pid p : registrants) kill_and_wait(inbox, p);
    ASSERT_TRUE(Registry::sync(rt, "crash").has_value());
    EXPECT_EQ(Registry::count(rt, "crash").value(), 0u);
    EXPECT_TRUE(Registry::entries(rt, "crash").value().empty());
    for (Pid p : registrants) EXPECT_TRUE(Registry::keys(rt, "crash", p).value().empty()) << "pid table of " << p;
  }
}

// [EX unique_test "allows listeners"] register => {register, reg, key, pid, value};
// unregister => {unregister, reg, key, pid}; a registrant's death => no message.
TEST(Scenario, registry_unique_test_allows_listeners) {
  coppice::Runtime rt(quiet(workers(2)));
  coppice::RegistryOptions o = registry_options("heard");
  o.listeners = {"listener"};
  ASSERT_TRUE(Registry::start(rt, o).has_value());
  ExitReason r = run_process(rt, [&rt]() -> Async<void> {
    const Pid me = coppice::self();
    CO_ASSERT_TRUE(coppice::register_name("listener").has_value());
    const Pid task = rt.spawn<Registrant>();
    auto reg = coppice::call<Result<Pid>>(task, Register{"heard", "hello", std::string("world")});
    Result<Result<Pid>> registered = co_await reg;
    CO_ASSERT_TRUE(registered.has_value() && registered->has_value());
    RegistryEvent e = co_await coppice::receive<RegistryEvent>();
    EXPECT_EQ(e.kind, RegistryEvent::Kind::register_key);
    EXPECT_EQ(e.registry, "heard");
    EXPECT_EQ(e.key, "hello");
    EXPECT_EQ(e.pid, task);
    EXPECT_EQ(std::any_cast<std::string>(e.value), "world");

    CO_ASSERT_TRUE(Registry::register_key("heard", "world", std::string("value")).has_value());
    RegistryEvent mine = co_await coppice::receive<RegistryEvent>();
    EXPECT_EQ(mine.kind, RegistryEvent::Kind::register_key);
    EXPECT_EQ(mine.key, "world");
    EXPECT_EQ(mine.pid, me);
    CO_ASSERT_TRUE(Registry::unregister("heard", "world").has_value());
    RegistryEvent gone = co_await coppice::receive<RegistryEvent>();
    EXPECT_EQ(gone.kind, RegistryEvent::Kind::unregister);
    EXPECT_EQ(gone.registry, "heard");
    EXPECT_EQ(gone.key, "world");
    EXPECT_EQ(gone.pid, me);
    EXPECT_FALSE(gone.value.has_value());

    // The registrant dies: its entry goes, and no listener hears of it.
    const coppice::Ref watch = coppice::monitor(task);
    coppice::exit(task, ExitReason::kill());
    auto is_down = [watch](const coppice::Message& m) { return m.is<coppice::Down>() && m.get<coppice::Down>().ref == watch; };
    coppice::Message down = co_await coppice::receive_if(is_down);
    (void)down;
    auto synced = Registry::sync("heard");
    CO_ASSERT_TRUE((co_await synced).has_value());
    EXPECT_TRUE(Registry::lookup("heard", "hello").value().empty());
    std::optional<RegistryEvent> after_death = co_await coppice::receive<RegistryEvent>(std::chrono::milliseconds(0));
    EXPECT_FALSE(after_death.has_value()) << "a death is not an unregister";
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [EX unique_test "links and unlinks on register/unregister"] the link to the owner stays
// while any key remains, and goes with the last unregister.
TEST(Scenario, registry_unique_test_links_and_unlinks_on_register_unregister) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("links")).has_value());
  ExitReason r = run_process(rt, []() -> Async<void> {
    Result<Pid> owner = Registry::register_key("links", "hello", 1);
    CO_ASSERT_TRUE(owner.has_value());
    EXPECT_TRUE(has(coppice::self_info().links, *owner));
    Result<Pid> again = Registry::register_key("links", "world", 2);
    CO_ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, *owner);
    EXPECT_TRUE(has(coppice::self_info().links, *owner));
    CO_ASSERT_TRUE(Registry::unregister("links", "hello").has_value());
    EXPECT_TRUE(has(coppice::self_info().links, *owner)) << "'world' is still registered";
    CO_ASSERT_TRUE(Registry::unregister("links", "world").has_value());
    EXPECT_FALSE(has(coppice::self_info().links, *owner)) << "no key left: unlinked";
    // And the partition's side of the link is gone too.
    auto info = coppice::process_info(*owner);
    Result<coppice::ProcessInfo> partition = co_await info;
    CO_ASSERT_TRUE(partition.has_value());
    EXPECT_FALSE(has(partition->links, coppice::self()));
  });
  EXPECT_EQ(r, ExitReason::normal());
}

// [EX unique_test "via callbacks"] a server started under {via, Registry, {reg, "hello"}}; a
// second start under the same name => already_started with the first's pid; the
// {reg, key, value} form stores the value. (A plain process registers itself through the
// same hook a GenServer start uses, in place of the Agent.)
TEST(Scenario, registry_unique_test_via_callbacks) {
  coppice::Runtime rt(workers(2));
  ASSERT_TRUE(Registry::start(rt, registry_options("via")).has_value());
  coppice::Inbox inbox(rt);
  const coppice::ServerRef name = coppice::ServerRef::via("via", "hello");
  EXPECT_FALSE(name.whereis(rt));

  const Pid first = rt.spawn<Registrant>();
  ASSERT_TRUE(inbox.call<coppice::Status>(first, RegisterAs{name}, wait_time).value().has_value());
  EXPECT_EQ(name.whereis(rt), first);
  EXPECT_EQ(Registry::whereis_name(rt, "via", "hello"), first);

  const Pid second = rt.spawn<Registrant>();
  coppice::Status taken = inbox.call<coppice::Status>(second, RegisterAs{name}, wait_time).value();
  ASSERT_FALSE(taken.has_value());
  EXPECT_EQ(taken.error().kind(), ErrorKind::already_started);
  EXPECT_EQ(taken.error().pid(), first);

  const coppice::ServerRef with_value = coppice::ServerRef::via("via", "with_value", std::string("the value"));
  ASSERT_TRUE(inbox.call<coppice::Status>(second, RegisterAs{with_value}, wait_time).value().has_value());
  auto entries = Registry::lookup<std::string>(rt, "via", "with_value").value();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].first, second);
  EXPECT_EQ(entries[0].second, "the value");

  // A name in a missing registry, or in a duplicate one, is an error, not a crash.
  EXPECT_EQ(inbox.call<coppice::Status>(second, RegisterAs{coppice::ServerRef::via("none", "x")}, wait_time).value().error().kind(),
            ErrorKind::not_found);
  ASSERT_TRUE(Registry::start(rt, registry_options("dup", coppice::RegistryKeys::duplicate)).has_value());
  EXPECT_EQ(inbox.call<coppice::Status>(second, RegisterAs{coppice::ServerRef::via("dup", "x")}, wait_time).value().error().kind(),
            ErrorKind::invalid_argument);
  EXPECT_FALSE(coppice::ServerRef::via("dup", "x").whereis(rt));
}

// [113, Registry half] The holder of a name dies and its partition has not handled the EXIT
// yet: lookup still shows the dead pid, whereis_name never does, and a new process registers
// the key at once. (The registrant unlinks from its partition before dying, which freezes the
// "EXIT not handled yet" state for as long as the test needs.)
TEST(Scenario, restart_keeping_a_registry_name_before_the_partition_cleans_up) {
  coppice::Runtime rt(quiet(workers(2)));
  ASSERT_TRUE(Registry::start(rt, registry_options("stable")).has_value());
  coppice::Inbox inbox(rt);
  const coppice::ServerRef name = coppice::ServerRef::via("stable", "srv");

  const Pid old = rt.spawn<Registrant>();
  ASSERT_TRUE(inbox.call<coppice::Status>(old, RegisterAs{name}, wait_time).value().has_value());
  ASSERT_TRUE(inbox.call<Done>(old, UnlinkAll{}, wait_time).has_value());
  kill_and_wait(inbox, old);

  auto stale = Registry::lookup(rt, "stable", "srv").value();
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].first, old) << "lookup may show the dead pid";
  EXPECT_FALSE(name.whereis(rt)) << "whereis_name never does";
  EXPECT_FALSE(Registry::whereis_name(rt, "stable", "srv"));

  const Pid restarted = rt.spawn<Registrant>();
  ASSERT_TRUE(inbox.call<coppice::Status>(restarted, RegisterAs{name}, wait_time).value().has_value());
  EXPECT_EQ(name.whereis(rt), restarted);
  auto now = Registry::lookup(rt, "stable", "srv").value();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].first, restarted);
  EXPECT_TRUE(Registry::keys(rt, "stable", old).value().empty());
}

// [113, Registry half, with the race left to the scheduler] kill the holder and re-register
// at once from a new process, many times: whichever of the cleanup and the new registration
// comes first, the registration succeeds, whereis_name never returns the dead pid, and the
// late cleanup never deletes the new entry.
TEST(Scenario, restart_keeping_a_registry_name_while_the_partition_cleans_up) {
  coppice::Runtime rt(quiet(workers(2)));
  ASSERT_TRUE(Registry::start(rt, registry_options("racy")).has_value());
  coppice::Inbox inbox(rt);
  const coppice::ServerRef name = coppice::ServerRef::via("racy", "srv");
  Pid holder = rt.spawn<Registrant>();
  ASSERT_TRUE(inbox.call<coppice::Status>(holder, RegisterAs{name}, wait_time).value().has_value());
  for (int round = 0; round < 200; ++round) {
    kill_and_wait(inbox, holder);
    const Pid seen = name.whereis(rt);
    EXPECT_TRUE(!seen) << "round " << round << ": whereis returned the dead " << seen;
    const Pid next = rt.spawn<Registrant>();
    coppice::Status s = inbox.call<coppice::Status>(next, RegisterAs{name}, wait_time).value();
    ASSERT_TRUE(s.has_value()) << "round " << round << ": " << s.error();
    holder = next;
  }
  ASSERT_TRUE(Registry::sync(rt, "racy").has_value());
  auto entries = Registry::lookup(rt, "racy", "srv").value();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].first, holder);
  EXPECT_EQ(Registry::count(rt, "racy").value(), 1u);
  EXPECT_EQ(name.whereis(rt), holder);
}

}  // namespace
}  // namespace coppice_test
