# tools/bench --servers: S1 (coppice's Redis-protocol example server beside Debian's redis-server,
# both driven by redis-benchmark) and S2 (the example server while one shard is crashed every
# 100 ms, driven by coppice_crash_client); writes results/servers.json, servers_crash.json and
# servers.md.
#
# Usage: bench_servers.py --kv-cmd CMD | --kv-standin   [--crash-client BIN] [--rounds N]
#                         [--requests N] [--requests-pipelined N] [--clients N] [--tests LIST]
#                         [--crash-seconds S] [--crash-deadline-ms MS] [--commit C] [--results DIR]
#                         [--only s1|s2] [--logs DIR]
#
#   --kv-cmd CMD     the example server's command line, {port} where its port goes
#   --kv-standin     a second redis-server stands in for the example server (developing the tool
#                    before the server exists; the crash run is then skipped: Redis has no shards)
#
# Order, as tools/bench --peers runs its rounds: one server at a time, never two programs
# measured at once; in each round every server runs -P 1 then -P 16, and who goes first turns
# with the round, so that neither always follows the other. Each server is started afresh for
# its turn on a port the kernel picked, and stopped after it (also when this script fails).
import argparse
import atexit
import csv
import io
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

# redis-benchmark's default -t set is larger; these are what BENCHMARKS.md's S1 names.
TESTS = "ping,set,get,incr,lpush,lpop,mset"
PIPELINES = [1, 16]
BENCH_TIMEOUT = 300  # one redis-benchmark run; a server that stops answering must not hang the tool
READY_TIMEOUT = 20

SERVERS = {
    "redis": "Redis",
    "coppice": "coppice_kv",
}


def log(text):
    print(text, flush=True)


def parse_csv(text):
    """redis-benchmark --csv's output -> {test: {"rps", "p50_ms", "p99_ms", ...}}.

    Redis 7 prints a header ("test","rps","avg_latency_ms",...,"p50_latency_ms",...); Redis 6 and
    earlier print only "test","rps" rows without one. Lines that are not CSV rows (warnings,
    progress) are skipped."""
    rows = [r for r in csv.reader(io.StringIO("\n".join(
        line for line in text.splitlines() if line.startswith('"')))) if r]
    header = None
    out = {}
    for row in rows:
        if row[0] == "test":
            header = row
            continue
        fields = header if header and len(header) == len(row) else ["test", "rps"]
        rec = {}
        for key, value in zip(fields[1:], row[1:]):
            try:
                number = float(value)
            except ValueError:
                continue
            name = {"rps": "rps", "avg_latency_ms": "avg_ms", "min_latency_ms": "min_ms",
                    "p50_latency_ms": "p50_ms", "p95_latency_ms": "p95_ms", "p99_latency_ms": "p99_ms",
                    "max_latency_ms": "max_ms"}.get(key, key)
            rec[name] = number
        if "rps" in rec:
            out[row[0]] = rec
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ["?", "?", "?"]


class Server:
    """One server process on a free loopback port; stopped by stop() or at exit."""
    live = set()

    def __init__(self, who, argv_template, logdir):
        self.who = who
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv_template]
        self.log = open(logdir / f"{who}-{self.port}.log", "w")
        # Its own process group: stop() ends it and anything it started, and nothing else.
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        Server.live.add(self)

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.who} exited with status {self.proc.returncode} before answering")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.who} did not answer PING on port {self.port} within {READY_TIMEOUT} s")

    def stop(self):
        if self not in Server.live:
            return
        Server.live.discard(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def stop_all(*_):
    for s in list(Server.live):
        s.stop()


def run_benchmark(args, server, pipeline):
    n = args.requests if pipeline == 1 else args.requests_pipelined
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-c", str(args.clients), "-n", str(n),
           "-P", str(pipeline), "-t", args.tests, "--csv"]
    before = load()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=BENCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"redis-benchmark did not finish within {BENCH_TIMEOUT} s",
                "load_before": before, "load_after": load()}
    rec = {"load_before": before, "load_after": load(), "requests": n}
    tests = parse_csv(p.stdout)
    if p.returncode != 0 or not tests:
        tail = " | ".join((p.stderr or p.stdout).strip().splitlines()[-3:])
        rec.update(status="failed", error=f"redis-benchmark exit status {p.returncode}: {tail}", tests=tests)
        return rec
    if server.proc.poll() is not None:
        rec.update(status="failed", error=f"the server exited (status {server.proc.returncode})", tests=tests)
        return rec
    rec.update(status="ok", tests=tests)
    return rec


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def figures_of(runs, servers):
    """Per pipeline, test and figure: each server's median (min, max) and coppice's ratio to Redis."""
    figures = []
    tests = []
    for r in runs:
        for t in r.get("tests", {}):
            if t not in tests:
                tests.append(t)
    for pipeline in PIPELINES:
        for test in tests:
            for key, better in (("rps", "higher"), ("p50_ms", "lower"), ("p99_ms", "lower")):
                results = {}
                for who in servers:
                    values = [r["tests"][test][key] for r in runs if r["server"] == who and
                              r["pipeline"] == pipeline and key in r.get("tests", {}).get(test, {})]
                    if values:
                        results[who] = summarize(values)
                entry = {"pipeline": pipeline, "test": test, "figure": key, "better": better, "results": results}
                if "redis" in results and "coppice" in results and results["redis"]["median"] > 0:
                    entry["ratio"] = results["coppice"]["median"] / results["redis"]["median"]
                figures.append(entry)
    return figures


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}".rstrip("0").rstrip(".") if v < 1 else f"{v:.2f}"


def cell(r):
    if not r:
        return "–"
    if r["n"] == 1:
        return fmt(r["median"])
    return f"{fmt(r['median'])} ({fmt(r['min'])} – {fmt(r['max'])})"


def s1_markdown(data):
    lines = ["## S1 kv_server: coppice_kv beside redis-server", ""]
    lines.append(
        f"`tools/bench --servers` at commit {data['commit']}, {data['generated']}, in {data['duration_s'] // 60} min "
        f"{data['duration_s'] % 60} s: {data['rounds']} round{'s' if data['rounds'] != 1 else ''}, each running {data['version']} "
        f"against every server in turn (one at a time, who goes first turning) with {data['clients']} clients, "
        f"`-t {data['tests']}`, -n {data['requests']:,} at -P 1 and {data['requests_pipelined']:,} at -P 16, on "
        f"loopback. Each cell: the median of the rounds (min – max); the ratio is coppice_kv's median over "
        f"Redis's (requests/s: higher is better; latency: lower is better).")
    lines.append("")
    m = data["machine"]
    lines.append(f"- Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory']} memory, Linux {m['kernel']}; "
                 f"load average (1, 5, 15 min) from {data['load_first']} to {data['load_last']} "
                 f"(highest 1-min figure during the runs: {data['load_max_1min']}).")
    for s in data["servers"]:
        lines.append(f"- {s['name']}: `{s['command']}`" + (f" ({s['note']})" if s.get("note") else ""))
    failed = [r for r in data["runs"] if r["status"] != "ok"]
    for r in failed:
        lines.append(f"- **failed**: {SERVERS[r['server']]} -P {r['pipeline']} round {r['round']}: {r['error']}")
    lines.append("")
    by = {}
    for f in data["figures"]:
        by.setdefault((f["pipeline"], f["test"]), {})[f["figure"]] = f
    lines.append("| -P | command | Redis requests/s | coppice_kv requests/s | ratio | Redis p50 / p99 ms "
                 "| coppice_kv p50 / p99 ms | p99 ratio |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (pipeline, test), f in by.items():
        rps = f.get("rps", {"results": {}})
        p50 = f.get("p50_ms", {"results": {}})["results"]
        p99 = f.get("p99_ms", {"results": {}})
        lat = {who: (f"{cell(p50.get(who))} / {cell(p99['results'].get(who))}" if who in p99["results"] else "–")
               for who in ("redis", "coppice")}
        ratio = f"×{rps['ratio']:.2f}" if "ratio" in rps else "–"
        p99_ratio = f"×{p99['ratio']:.2f}" if "ratio" in p99 else "–"
        lines.append(f"| {pipeline} | {test} | {cell(rps['results'].get('redis'))} | "
                     f"{cell(rps['results'].get('coppice'))} | {ratio} | {lat['redis']} | {lat['coppice']} | "
                     f"{p99_ratio} |")
    lines.append("")
    lines += goal_lines(data)
    return lines


def goal_lines(data):
    """Issue 14's goal at -P 16: coppice_kv's requests/s at least Redis's, with a p99 no worse."""
    by = {}
    for f in data["figures"]:
        if f["pipeline"] == 16 and "ratio" in f:
            by.setdefault(f["test"], {})[f["figure"]] = f["ratio"]
    met = [t for t, r in by.items() if r.get("rps", 0) >= 1 and r.get("p99_ms", float("inf")) <= 1]
    missed = [f"{t} (×{r.get('rps', 0):.2f} requests/s, ×{r.get('p99_ms', float('nan')):.2f} p99)"
              for t, r in by.items() if t not in met]
    if not by:
        return []
    text = f"Goal at -P 16 (requests/s at least Redis's, p99 no worse; medians): met for {len(met)} of {len(by)} commands"
    return [text + (f"; not for {', '.join(missed)}." if missed else "."), ""]


def s2_markdown(crash):
    lines = ["## S2 kv_server_crash: a shard crashed every 100 ms under load", ""]
    if crash.get("status") != "ok":
        lines += [f"Not run: {crash.get('reason', crash.get('error', 'unknown'))}", ""]
        return lines
    c = crash["result"]
    lines.append(
        f"`tools/bench --servers` at commit {crash['commit']}, {crash['generated']}: coppice_crash_client "
        f"(bench/servers/crash_client.cpp) against coppice_kv for {c['seconds']:.1f} s, {c['connections']} "
        f"connections of {c['pipeline']} pipelined requests (SET, GET, INCR, LPUSH, LPOP, PING), "
        f"`DEBUG CRASH {','.join(map(str, c['crashed_shards']))}` every {c['crash_every_ms']} ms; a request with no "
        f"reply within {c['deadline_ms']} ms is hung; an error counts as the crashed shard's when its key's shard "
        f"(`DEBUG SHARD`) was crashed within {c['window_ms']} ms before it was sent. Load average "
        f"{' '.join(crash['load_before'])} before, {' '.join(crash['load_after'])} after.")
    lines.append("")
    outside = c["errors_outside_crashed_shard"]
    lines += [
        "| figure | count |", "| --- | --- |",
        f"| requests | {c['requests']:,} |",
        f"| OK replies | {c['ok']:,} |",
        f"| error replies (and requests lost with a connection) | {c['errors']:,} |",
        f"| errors, by shard | {', '.join(f'{k}: {v:,}' for k, v in c['errors_by_shard'].items()) or '–'} |",
        f"| errors for the crashed shard | {c['errors_in_crashed_shard'] if c['errors_in_crashed_shard'] is not None else 'not known'} |",
        f"| **errors outside the crashed shard** (must be 0) | **{outside if outside is not None else 'not checked: ' + c['shard_map']}** |",
        f"| **hung requests** (must be 0) | **{c['hung']:,}** |",
        f"| connections lost (requests lost with them) | {c['connection_losses']:,} ({c['lost_requests']:,}) |",
        f"| crashes sent (answered OK) | {c['crashes_sent']:,} ({c['crash_replies_ok']:,}) |",
        f"| requests/s during the run | {c['requests_per_s']:,.0f} |",
        f"| OK latency p50 / p99 / max | {c['ok_p50_us']:,} / {c['ok_p99_us']:,} / {c['ok_max_us']:,} µs |",
        f"| the server after the run | {crash.get('after', 'not checked')} |",
        ""]
    if c.get("error_samples"):
        lines += ["Error replies seen: " + "; ".join(f"`{e}`" for e in c["error_samples"]), ""]
    return lines


def show(argv):
    """A command line as one would type it, {port} left as the placeholder it is."""
    return " ".join(a if a == "{port}" else shlex.quote(a) for a in argv)


def machine():
    def read(path, key):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"
    return {"cpu_model": read("/proc/cpuinfo", "model name"), "cores": str(os.cpu_count()),
            "memory": read("/proc/meminfo", "MemTotal"), "kernel": platform.release(), "host_name": platform.node()}


def run_s1(args, commands, logdir):
    started = time.time()
    version = subprocess.run(["redis-benchmark", "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    servers = list(commands)
    runs = []
    loads = []
    total = args.rounds * len(servers) * len(PIPELINES)
    done = 0
    for round_no in range(1, args.rounds + 1):
        turn = (round_no - 1) % len(servers)
        order = servers[turn:] + servers[:turn]
        for who in order:
            server = Server(who, commands[who], logdir)
            try:
                server.wait_ready()
                ready_error = None
            except RuntimeError as e:
                ready_error = str(e)
            for pipeline in PIPELINES:
                t0 = time.monotonic()
                if ready_error:
                    rec = {"status": "failed", "error": ready_error, "load_before": load(), "load_after": load()}
                else:
                    rec = run_benchmark(args, server, pipeline)
                rec.update(round=round_no, server=who, pipeline=pipeline, seconds=round(time.monotonic() - t0, 1))
                runs.append(rec)
                loads += [rec["load_before"], rec["load_after"]]
                done += 1
                if rec["status"] == "ok":
                    t = rec["tests"]
                    text = ", ".join(f"{k} {v['rps']:,.0f}/s" for k, v in t.items() if k in ("SET", "GET", "LPOP"))
                else:
                    text = "FAILED: " + rec["error"][:160]
                log(f"  [{done:2d}/{total}] round {round_no}/{args.rounds} {SERVERS[who]:<10} -P {pipeline:<2} "
                    f"{text} ({rec['seconds']} s, load {rec['load_after'][0]})")
            server.stop()
    notes = {"redis": "Debian's redis-server, no persistence (--save '' --appendonly no)",
             "coppice": "a second redis-server standing in for coppice_kv (--kv-standin)" if args.kv_standin else
             "the example server (examples/kv/), release build; one worker fewer than the cores, as "
             "redis-benchmark keeps one busy on this host (Redis runs its commands on one thread)"}
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "commit": args.commit,
        "rounds": args.rounds,
        "duration_s": round(time.time() - started),
        "version": version,
        "clients": args.clients,
        "tests": args.tests,
        "requests": args.requests,
        "requests_pipelined": args.requests_pipelined,
        "machine": machine(),
        "load_first": " ".join(loads[0]) if loads else "?",
        "load_last": " ".join(loads[-1]) if loads else "?",
        "load_max_1min": max((float(l[0]) for l in loads if l[0] != "?"), default=0.0),
        "servers": [{"id": who, "name": SERVERS[who], "command": show(commands[who]), "note": notes[who]}
                    for who in servers],
        "figures": figures_of(runs, servers),
        "runs": runs,
    }


def after_check(server):
    """Whether the server still serves once the crashing stopped: its tree may have given up."""
    if server.proc.poll() is not None:
        return f"exited (status {server.proc.returncode})"
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            keys = [f"after:{i}" for i in range(16)]
            s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n" % (len(k), k.encode())
                               for k in keys))
            data = b""
            while data.count(b"\r\n") < len(keys):
                chunk = s.recv(65536)
                if not chunk:
                    return "closed the connection"
                data += chunk
    except OSError as e:
        return f"does not answer ({e})"
    errors = [l for l in data.split(b"\r\n") if l.startswith(b"-")]
    if errors:
        return f"{len(errors)} of {len(keys)} SETs answered an error: {errors[0][1:].decode(errors='replace')}"
    return f"answers: {len(keys)} SETs over the shards, all OK"


def run_s2(args, commands, logdir):
    started = time.time()
    base = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "commit": args.commit,
            "machine": machine()}
    if args.kv_standin:
        return dict(base, status="skipped", reason="coppice_kv not available: redis-server stood in, and it has no "
                                                   "shards to crash")
    if not args.crash_client:
        return dict(base, status="skipped", reason="no --crash-client")
    server = Server("coppice-crash", commands["coppice"], logdir)
    try:
        server.wait_ready()
        before = load()
        cmd = [args.crash_client, "--port", str(server.port), "--connections", str(args.clients), "--pipeline", "16",
               "--seconds", str(args.crash_seconds), "--crash-every-ms", "100",
               "--deadline-ms", str(args.crash_deadline_ms)]
        log(f"== S2: {shlex.join(cmd)}")
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=args.crash_seconds + args.crash_deadline_ms / 1000 + 120)
        after = load()
        try:
            result = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return dict(base, status="failed", error=f"crash client exit status {p.returncode}: {p.stderr.strip()}")
        if p.returncode != 0 or "error" in result:
            return dict(base, status="failed", error=result.get("error", f"exit status {p.returncode}"))
        return dict(base, status="ok", command=shlex.join(cmd), load_before=before, load_after=after,
                    after=after_check(server), result=result)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return dict(base, status="failed", error=str(e))
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    kv = ap.add_mutually_exclusive_group(required=True)
    kv.add_argument("--kv-cmd")
    kv.add_argument("--kv-standin", action="store_true")
    ap.add_argument("--crash-client")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--requests-pipelined", type=int, default=500_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--tests", default=TESTS)
    ap.add_argument("--crash-seconds", type=float, default=10)
    # A reply later than this is a hung request (the "hangs"): far beyond any p99 here.
    ap.add_argument("--crash-deadline-ms", type=int, default=2000)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--results", default="results")
    ap.add_argument("--only", choices=["s1", "s2"])
    ap.add_argument("--logs", default="build/release/server-runs")
    args = ap.parse_args()

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    logdir = Path(args.logs)
    logdir.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)

    redis = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"]
    commands = {"redis": redis, "coppice": redis if args.kv_standin else shlex.split(args.kv_cmd)}

    failed = False
    md_s1 = md_s2 = None
    if args.only in (None, "s1"):
        log(f"== S1: {args.rounds} rounds, redis-benchmark against {', '.join(SERVERS[w] for w in commands)} "
            f"(logs in {logdir})")
        s1 = run_s1(args, commands, logdir)
        (results / "servers.json").write_text(json.dumps(s1, indent=1) + "\n")
        md_s1 = s1_markdown(s1)
        failed |= any(r["status"] != "ok" for r in s1["runs"])
    if args.only in (None, "s2"):
        crash = run_s2(args, commands, logdir)
        (results / "servers_crash.json").write_text(json.dumps(crash, indent=1) + "\n")
        md_s2 = s2_markdown(crash)
        failed |= crash["status"] == "failed"
        if crash["status"] == "ok":
            c = crash["result"]
            failed |= c["hung"] != 0 or (c["errors_outside_crashed_shard"] or 0) != 0
    # A run of one part keeps the other's section from the last full run.
    md = results / "servers.md"
    old = md.read_text().split("\n## ") if md.exists() else []
    keep = {("## " + s if i else s).split("\n", 1)[0]: ("## " + s if i else s) for i, s in enumerate(old)}
    for title in ("## S1", "## S2"):
        kept = [v.rstrip("\n").split("\n") + [""] for k, v in keep.items() if k.startswith(title)][:1]
        if title == "## S1" and md_s1 is None:
            md_s1 = kept[0] if kept else []
        if title == "## S2" and md_s2 is None:
            md_s2 = kept[0] if kept else []
    text = ["# coppice's example server beside Redis", "",
            "Written by `tools/bench --servers` (tools/bench_servers.py); results/servers.json and "
            "results/servers_crash.json hold every run.", ""]
    text += md_s1 + md_s2
    md.write_text("\n".join(text).rstrip("\n") + "\n")
    print(md.read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
