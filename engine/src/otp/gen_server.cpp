// GenServer's non-template parts: the starter's side of a synchronous start, reports,
// stop, casts, and the bridges that let a plain thread start, call and stop servers.
#include "coppice/gen_server.hpp"

#include <memory>

#include "otp/reports.hpp"
#include "otp/supervision.hpp"
#include "runtime/demangle.hpp"

namespace coppice::detail {

bool is_answer_to(const Message& m, Ref ref) {
  return m.envelope() != nullptr && m.envelope()->addressing() == Addressing::alias && m.envelope()->ref == ref.bits();
}

Status init_prologue(const StartContext& context) { return context.name().register_self(); }

void acknowledge(const StartContext& context, InitAck ack) {
  if (ack.kind == InitAck::Kind::stop) {
    // The starter waits for our DOWN after this one (the exit signal must act first): the
    // monitor stays, and the acknowledgement goes as a plain reply to the alias.
    Envelope* e = Message::of(std::move(ack)).release();
    e->set_type(e->type(), Addressing::alias);
    e->ref = context.ack.ref.bits();
    send_envelope(current_core(), context.ack.pid, e);
    return;
  }
  send_reply(context.ack, Message::of(std::move(ack)));
}

std::string describe_exception(std::exception_ptr e, ExitReason& reason) {
  try {
    std::rethrow_exception(e);
  } catch (ProcessExit& x) {
    reason = x.reason;  // exit(reason) from a callback: that is the reason
  } catch (const BadResultAccess& x) {
    reason = ExitReason::error(demangle(typeid(x).name()), x.what());
  } catch (const std::exception& x) {
    reason = ExitReason::error(demangle(typeid(x).name()), x.what());
  } catch (...) {
    reason = ExitReason::error("unknown", "an exception not derived from std::exception");
  }
  return reason.to_string();
}

void report_crash(std::string_view behaviour, const ServerRef& name, const ExitReason& reason, std::string_view where) {
  if (reason.is_clean()) return;
  RuntimeCore& core = current_core();
  std::optional<Report> r = open_report(core, ReportKind::crash);
  if (!r) return;
  identify(*r, behaviour, name);
  r->reason = reason;
  r->context = std::string(where);
  send_report(core, *r);
}

void report_unexpected(std::string_view behaviour, Pid server, const Message& m) {
  RuntimeCore& core = current_core();
  std::optional<Report> r = open_report(core, ReportKind::unexpected_message);
  if (!r) return;
  r->pid = server;
  r->behaviour = std::string(behaviour);
  r->context = m.type_name();
  send_report(core, *r);
}

Async<Result<Pid>> await_start(Pid pid, Ref monitor_ref, From ack, bool linked, std::chrono::nanoseconds timeout) {
  auto answer = [&](const Message& m) {
    return (m.is<InitAck>() && is_answer_to(m, ack.ref)) || (m.is<Down>() && m.get<Down>().ref == monitor_ref);
  };
  auto down = [&](const Message& m) { return m.is<Down>() && m.get<Down>().ref == monitor_ref; };
  auto exit_from = [&](const Message& m) { return m.is<Exit>() && m.get<Exit>().from == pid; };
  // After the starting server died: its EXIT came before its DOWN, so a trapping, linked
  // starter finds it queued (OTP 26: the starter consumes it; no stray EXIT is left).
  auto consume_exit = [&]() -> Async<void> {
    if (linked && trapping_exits()) {
      std::optional<Message> e = co_await receive_if(exit_from, std::chrono::nanoseconds(0));
      (void)e;
    }
  };

  std::optional<Message> got;
  if (timeout >= infinity) {
    got.emplace(co_await receive_if(answer));
  } else {
    got = co_await receive_if(answer, timeout);
  }
  if (!got) {
    // init took too long: the server is killed, and the start fails with timeout. Its death
    // is awaited on a fresh monitor: an acknowledgement that crossed the timeout took the
    // start's monitor away with it (send_reply_envelope), and no DOWN of that one would come.
    demonitor(monitor_ref, {.flush = true});
    const Ref watch = monitor(pid);
    exit(pid, ExitReason::kill());
    if (linked) unlink(pid);
    auto killed = [&](const Message& m) { return m.is<Down>() && m.get<Down>().ref == watch; };
    Message d = co_await receive_if(killed);
    (void)d;
    auto flush = consume_exit();
    co_await flush;
    unalias(ack.ref);
    // An acknowledgement taken in before the alias went is dropped too: nothing waits for it.
    auto late_ack = [&](const Message& m) { return m.is<InitAck>() && is_answer_to(m, ack.ref); };
    std::optional<Message> late = co_await receive_if(late_ack, std::chrono::nanoseconds(0));
    (void)late;
    co_return Error(ErrorKind::timeout, "start: init of " + pid.to_string() + " did not return in time", pid,
                    ExitReason::timeout());
  }
  if (got->is<Down>()) {
    ExitReason reason = got->get<Down>().reason;
    auto flush = consume_exit();
    co_await flush;
    unalias(ack.ref);
    co_return Error(ErrorKind::start_error, "start: " + pid.to_string() + " exited during init: " + reason.to_string(), pid,
                    reason);
  }
  if (got->get<InitAck>().kind != InitAck::Kind::stop) end_monitor(*got, monitor_ref);
  InitAck a = got->take<InitAck>();
  switch (a.kind) {
    case InitAck::Kind::ok:
      unalias(ack.ref);
      co_return pid;
    case InitAck::Kind::ignore:
      unalias(ack.ref);
      co_return Error(ErrorKind::ignore, "start: init returned ignore", pid);
    case InitAck::Kind::error:
      unalias(ack.ref);
      co_return a.error;
    case InitAck::Kind::stop: {
      // The server exits with the reason. Waiting for its DOWN (which follows its exit
      // signal) lets that signal act first: a linked starter that does not trap exits dies of
      // it, so start never returns to it, as in OTP.
      Message d = co_await receive_if(down);
      (void)d;
      auto flush = consume_exit();
      co_await flush;
      unalias(ack.ref);
      co_return Error(ErrorKind::start_error, "start: init failed: " + a.reason.to_string(), pid, a.reason);
    }
  }
  co_return Error(ErrorKind::start_error, "start: unknown acknowledgement", pid);
}

namespace {
struct BlockingResult {
  Message value;
};
}  // namespace

Result<Message> run_blocking(Runtime& rt, std::function<Async<Message>()> work) {
  if (current_core_or_null() != nullptr && self())
    return Error(ErrorKind::blocking_in_process, "a blocking call from inside a process; co_await the coroutine form instead");
  Inbox inbox(rt);
  auto body = [](std::function<Async<Message>()> w, Pid to) -> Async<void> {
    Async<Message> a = w();
    Message m = co_await a;
    send(to, BlockingResult{std::move(m)});
  };
  Pid helper = rt.spawn(body, std::move(work), inbox.pid());
  Ref mon = inbox.monitor(helper);
  auto wanted = [mon](const Message& m) {
    return m.is<BlockingResult>() || (m.is<Down>() && m.get<Down>().ref == mon);
  };
  std::optional<Message> got = inbox.receive_if(wanted, std::chrono::hours(24 * 365));
  if (!got) return Error(ErrorKind::timeout, "no answer");
  if (got->is<Down>()) {
    const ExitReason reason = got->get<Down>().reason;
    if (reason.kind() == ExitReason::Kind::killed)
      return Error(ErrorKind::runtime_stopped, "the runtime stopped before the answer came", helper, reason);
    return Error(ErrorKind::exited, "the helper process exited: " + reason.to_string(), helper, reason);
  }
  // The helper exits right after sending: wait for that too, so that a blocking call leaves
  // no process behind (a process_count() read after it sees none of ours).
  auto gone = [mon](const Message& m) { return m.is<Down>() && m.get<Down>().ref == mon; };
  (void)inbox.receive_if(gone, std::chrono::hours(24 * 365));
  return std::move(got->get<BlockingResult>().value);
}

Result<Message> call_blocking(Runtime& rt, const ServerRef& server, Message request, std::chrono::nanoseconds timeout) {
  if (current_core_or_null() != nullptr && self())
    return Error(ErrorKind::blocking_in_process, "a blocking call from inside a process; co_await call(...) instead");
  Inbox inbox(rt);
  return call_through(inbox, server, std::move(request), timeout);
}

Result<Message> call_through(Inbox& inbox, const ServerRef& server, Message request, std::chrono::nanoseconds timeout) {
  if (current_core_or_null() != nullptr && self())
    return Error(ErrorKind::blocking_in_process, "a blocking call from inside a process; co_await call(...) instead");
  const std::chrono::milliseconds wait = whole_milliseconds(timeout);
  if (server.is_local_name()) return inbox.call_message(Pid{}, server.local_name(), std::move(request), wait);
  Pid to = server.is_pid() ? server.pid() : server.whereis(inbox.runtime());
  if (!to) return Error(ErrorKind::noproc, "call: no process is registered as " + server.to_string());
  return inbox.call_message(to, {}, std::move(request), wait);
}

namespace {
void cast_to(RuntimeCore& core, const ServerRef& server, Message m) {
  // As OTP: a cast to a name nobody holds (or to no server at all) is dropped, not an error.
  Pid to = server.is_pid() ? server.pid() : server.empty() ? Pid{} : whereis_server(core, server);
  if (!to) return;
  Envelope* e = m.release();
  e->set_type(e->type(), Addressing::cast);
  send_envelope(core, to, e);
}
}  // namespace

void cast_message(const ServerRef& server, Message m) { cast_to(current_core(), server, std::move(m)); }
void cast_message(Runtime& rt, const ServerRef& server, Message m) { cast_to(core_of(rt), server, std::move(m)); }

Async<Status> stop_server(ServerRef server, ExitReason reason, std::chrono::nanoseconds timeout) {
  Pid pid = server.whereis();
  if (!pid) co_return Error(ErrorKind::noproc, "stop: no process is running as " + server.to_string());
  if (pid == self()) co_return Error(ErrorKind::calling_self, "stop: a server cannot stop itself this way (return stop from a callback)");
  Ref mon = monitor(pid);
  send(pid, SystemRequest{SystemRequest::Op::stop, nullptr, {}, reason});
  auto down = [mon](const Message& m) { return m.is<Down>() && m.get<Down>().ref == mon; };
  std::optional<Message> got;
  if (timeout >= infinity) {
    got.emplace(co_await receive_if(down));
  } else {
    got = co_await receive_if(down, timeout);
  }
  if (!got) {
    demonitor(mon, {.flush = true});
    co_return Error(ErrorKind::timeout, "stop: " + pid.to_string() + " did not exit in time", pid, ExitReason::timeout());
  }
  const ExitReason& why = got->get<Down>().reason;
  if (why == reason) co_return Status{};
  if (why.kind() == ExitReason::Kind::noproc) co_return Error(ErrorKind::noproc, "stop: " + pid.to_string() + " was not running", pid);
  co_return Error(ErrorKind::exited, "stop: " + pid.to_string() + " exited with " + why.to_string(), pid, why);
}

}  // namespace coppice::detail

namespace coppice {

std::optional<Result<Pid>> start_outcome(const PendingStart& start, Message& m) {
  using detail::InitAck;
  if (m.is<InitAck>() && detail::is_answer_to(m, start.ack.ref)) {
    detail::end_monitor(m, start.monitor);
    InitAck a = m.take<InitAck>();
    unalias(start.ack.ref);
    switch (a.kind) {
      case InitAck::Kind::ok:
        return Result<Pid>(start.pid);
      case InitAck::Kind::ignore:
        return Result<Pid>(Error(ErrorKind::ignore, "start: init returned ignore", start.pid));
      case InitAck::Kind::error:
        return Result<Pid>(a.error);
      case InitAck::Kind::stop:
        return Result<Pid>(Error(ErrorKind::start_error, "start: init failed: " + a.reason.to_string(), start.pid, a.reason));
    }
  }
  if (const Down* d = m.get_if<Down>(); d != nullptr && d->ref == start.monitor) {
    unalias(start.ack.ref);
    return Result<Pid>(Error(ErrorKind::start_error, "start: " + start.pid.to_string() + " exited during init: " + d->reason.to_string(),
                             start.pid, d->reason));
  }
  return std::nullopt;
}

Status stop(Runtime& rt, ServerRef server, ExitReason reason, std::chrono::nanoseconds timeout) {
  auto work = [server = std::move(server), reason = std::move(reason), timeout]() -> Async<Message> {
    return [](ServerRef s, ExitReason r, std::chrono::nanoseconds t) -> Async<Message> {
      Async<Status> w = detail::stop_server(std::move(s), std::move(r), t);
      Status st = co_await w;
      if (!st) co_return Message::of(st.error());
      co_return Message::of(SystemOk{});
    }(server, reason, timeout);
  };
  Result<Message> r = detail::run_blocking(rt, std::move(work));
  if (!r) return r.error();
  if (auto* e = r->get_if<Error>()) return *e;
  return {};
}

namespace sys {

using detail::SystemRequest;

CallAwaiter<ServerStatus> get_status(const ServerRef& server, std::chrono::nanoseconds timeout) {
  return detail::call_ref<ServerStatus>(server, Message::of(SystemRequest{SystemRequest::Op::get_status, nullptr, {}, {}}), timeout);
}
CallAwaiter<SystemOk> suspend(const ServerRef& server, std::chrono::nanoseconds timeout) {
  return detail::call_ref<SystemOk>(server, Message::of(SystemRequest{SystemRequest::Op::suspend, nullptr, {}, {}}), timeout);
}
CallAwaiter<SystemOk> resume(const ServerRef& server, std::chrono::nanoseconds timeout) {
  return detail::call_ref<SystemOk>(server, Message::of(SystemRequest{SystemRequest::Op::resume, nullptr, {}, {}}), timeout);
}

Result<ServerStatus> get_status(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout) {
  return detail::reply_as<ServerStatus>(
      detail::call_blocking(rt, server, Message::of(SystemRequest{SystemRequest::Op::get_status, nullptr, {}, {}}), timeout), Pid{});
}
Status suspend(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout) {
  auto r = detail::reply_as<SystemOk>(
      detail::call_blocking(rt, server, Message::of(SystemRequest{SystemRequest::Op::suspend, nullptr, {}, {}}), timeout), Pid{});
  if (!r) return r.error();
  return {};
}
Status resume(Runtime& rt, const ServerRef& server, std::chrono::nanoseconds timeout) {
  auto r = detail::reply_as<SystemOk>(
      detail::call_blocking(rt, server, Message::of(SystemRequest{SystemRequest::Op::resume, nullptr, {}, {}}), timeout), Pid{});
  if (!r) return r.error();
  return {};
}

}  // namespace sys
}  // namespace coppice
