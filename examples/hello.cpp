// The README's example: a counter process, a plain thread that casts to it and calls it.
#include <coppice/coppice.hpp>
#include <cstdio>

struct Add { long n; };
struct Get {};

struct Counter : coppice::Process {
  long n = 0;
  void handle(coppice::Message m) override {
    if (auto* a = m.get_if<Add>()) n += a->n;
    if (m.is<Get>()) coppice::reply(*m.reply_to(), n);
  }
};

int main() {
  coppice::Runtime rt;                                   // one worker per core
  coppice::Pid counter = rt.spawn<Counter>();
  rt.register_name("counter", counter).value();
  (void)rt.send("counter", Add{2});
  coppice::Inbox me(rt);                                 // how a plain thread talks
  long v = me.call<long>("counter", Get{}).value();     // blocking, with a 5 s timeout
  std::printf("counter = %ld\n", v);
  return v == 2 ? 0 : 1;
}
