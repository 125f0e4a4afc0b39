// What the Registry tests share: a Registrant process driven by messages, and starting a
// registry from the test's thread.
#pragma once

#include <any>
#include <string>

#include "otp/otp_support.hpp"

namespace coppice_test {

// Requests a Registrant answers by reply.
struct Register {  // reply: Result<Pid>
  std::string registry;
  std::string key;
  std::any value{};
};
struct Unregister {  // reply: Done
  std::string registry;
  std::string key;
};
struct RegisterAs {  // register_self under a ServerRef; reply: Status
  coppice::ServerRef name;
};
struct UnlinkAll {  // unlinks every link it has (so that no partition hears of its death); reply: Done
};

// A process that registers and unregisters keys when told, answers Ping, and dies on Die.
class Registrant : public coppice::Process {
 public:
  void handle(coppice::Message m) override {
    const std::optional<coppice::From> from = m.reply_to();
    auto answer = [&](auto value) {
      if (from) coppice::reply(*from, std::move(value));
    };
    m.match([&](Register& r) { answer(coppice::Registry::register_key(r.registry, r.key, std::move(r.value))); },
            [&](Unregister& u) {
              (void)coppice::Registry::unregister(u.registry, u.key);
              answer(Done{});
            },
            [&](RegisterAs& r) { answer(r.name.register_self()); },
            [&](UnlinkAll&) {
              for (coppice::Pid p : coppice::self_info().links) coppice::unlink(p);
              answer(Done{});
            },
            [&](Ping&) { answer(Pong{coppice::self()}); },
            [&](Die& d) { coppice::exit(d.reason); });
  }
};

struct Go {};  // starts a stress test's registrant once it is monitored

inline coppice::RegistryOptions registry_options(std::string name, coppice::RegistryKeys keys = coppice::RegistryKeys::unique,
                                                 unsigned partitions = 1) {
  coppice::RegistryOptions o;
  o.name = std::move(name);
  o.keys = keys;
  o.partitions = partitions;
  return o;
}

// Asks `registrant` to register; the registry's answer.
inline coppice::Result<coppice::Pid> register_from(coppice::Inbox& inbox, coppice::Pid registrant, std::string registry,
                                                   std::string key, std::any value = {}) {
  auto r = inbox.call<coppice::Result<coppice::Pid>>(registrant, Register{std::move(registry), std::move(key), std::move(value)},
                                                     wait_time);
  if (!r) return r.error();
  return std::move(*r);
}

// Kills `pid` and waits for its end.
inline void kill_and_wait(coppice::Inbox& inbox, coppice::Pid pid) {
  coppice::Ref ref = inbox.monitor(pid);
  inbox.exit(pid, coppice::ExitReason::kill());
  EXPECT_TRUE(down_for(inbox, ref).has_value()) << "a killed registrant did not die";
}

}  // namespace coppice_test
