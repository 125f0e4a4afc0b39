#!/usr/bin/python3
"""D1 node_ping_pong (../shared/BENCHMARKS.md), run by `tools/bench --cluster`.

Starts its own epmd on a free loopback port and one Erlang node running d1:server/0
(bench/cluster/d1.erl, compiled here with erlc). Then, round after round, one after the other
(who goes first turning): coppice_node_bench (a coppice node against that server) and a second
Erlang node running d1:client/3 against it (the BEAM pair). Each prints round trips (ns each) and
one-way messages/s both ways. Writes results/cluster.json (every run) and results/cluster.md (the
medians with min and max, and the ratio), and stops what it started.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = [("rt_ns", "round trip, ns (lower is better)", False),
           ("out_msgs_per_s", "one way out, messages/s (higher is better)", True),
           ("in_msgs_per_s", "one way in, messages/s (higher is better)", True)]


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_epmd(port, env):
    """epmd in the foreground with -d, which says "epmd running" once it listens: waited for on its
    stderr (bounded), then the rest of that stream is read to its end by a thread."""
    p = subprocess.Popen(["epmd", "-d", "-port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def read():
        for line in p.stderr:
            if "epmd running" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(10)
    return p


def loadavg():
    return os.getloadavg()


def run_json(cmd, env, timeout, logfile):
    start = time.monotonic()
    with open(logfile, "w") as err:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
    for line in reversed(p.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line), time.monotonic() - start
            except json.JSONDecodeError:
                break
    raise RuntimeError(f"{cmd[0]} printed no figures (exit {p.returncode}; log {logfile})")


def otp_release():
    p = subprocess.run(["erl", "-noshell", "-eval", 'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
                       capture_output=True, text=True)
    return p.stdout.strip() or "?"


def cell(values, higher_better):
    if not values:
        return "-"
    fmt = (lambda v: f"{v:,.0f}")
    return f"{fmt(statistics.median(values))} ({fmt(min(values))} – {fmt(max(values))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node-bench", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-trips", type=int, default=20000)
    ap.add_argument("--one-way", type=int, default=200000)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--logs", required=True)
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()
    for tool in ("erl", "erlc", "epmd"):
        if shutil.which(tool) is None:
            log(f"tools/bench_cluster.py: {tool} is not installed (tools/setup installs erlang-nox)")
            return 1
    logs = Path(args.logs)
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    ebin = Path(tempfile.mkdtemp(prefix="d1-"))
    subprocess.run(["erlc", "-o", str(ebin), str(ROOT / "bench/cluster/d1.erl")], check=True)
    port = free_port()
    env = dict(os.environ, ERL_EPMD_PORT=str(port))
    cookie = f"d1cookie{os.getpid()}"
    host = socket.gethostname().split(".")[0]
    server = f"d1srv{os.getpid()}"
    procs = []
    started = time.monotonic()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = loadavg()
    runs = []
    failed = False
    try:
        procs.append(start_epmd(port, env))
        procs.append(subprocess.Popen(["erl", "-sname", server, "-setcookie", cookie, "-noshell", "-noinput",
                                       "-pa", str(ebin), "-eval", "d1:server()"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(logs / "server.log", "w")))
        target = f"{server}@{host}"
        for r in range(args.rounds):
            order = ["coppice", "erlang"] if r % 2 == 0 else ["erlang", "coppice"]
            for who in order:
                if who == "coppice":
                    cmd = [args.node_bench, "--name", f"d1c{os.getpid()}r{r}", "--cookie", cookie, "--beam", target,
                           "--round-trips", str(args.round_trips), "--one-way", str(args.one_way)]
                else:
                    cmd = ["erl", "-sname", f"d1e{os.getpid()}r{r}", "-setcookie", cookie, "-noshell", "-noinput",
                           "-pa", str(ebin), "-eval",
                           f"d1:client('{target}', {args.round_trips}, {args.one_way})"]
                try:
                    figures, took = run_json(cmd, env, args.timeout, logs / f"{who}-{r}.log")
                    runs.append({"round": r, "who": who, "status": "ok", "seconds": round(took, 2),
                                 "load": loadavg()[0], **figures})
                    log(f"  round {r + 1} {who:8s} round trip {figures['rt_ns'] / 1000:8.1f} µs, "
                        f"out {figures['out_msgs_per_s']:>12,.0f}/s, in {figures['in_msgs_per_s']:>12,.0f}/s")
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    runs.append({"round": r, "who": who, "status": "failed", "error": str(e)})
                    log(f"  round {r + 1} {who}: failed: {e}")
                    failed = True
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(ebin, ignore_errors=True)
    load_after = loadavg()
    took = time.monotonic() - started
    data = {"workload": "D1 node_ping_pong", "commit": args.commit, "when": when,
            "round_trips": args.round_trips, "one_way": args.one_way, "rounds": args.rounds,
            "load_before": load_before, "load_after": load_after, "runs": runs}
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    (results / "cluster.json").write_text(json.dumps(data, indent=1) + "\n")
    ok = [r for r in runs if r["status"] == "ok"]
    rows = []
    for key, title, higher in FIGURES:
        c = [r[key] for r in ok if r["who"] == "coppice"]
        e = [r[key] for r in ok if r["who"] == "erlang"]
        ratio = f"×{statistics.median(c) / statistics.median(e):.2f}" if c and e else "-"
        rows.append(f"| {title} | {cell(c, higher)} | {cell(e, higher)} | {ratio} |")
    md = ["# D1 node_ping_pong: a coppice node beside an Erlang node", "",
          "Written by `tools/bench --cluster` (tools/bench_cluster.py); results/cluster.json holds every run.", "",
          f"At commit {args.commit}, {when}, in {took:.0f} s: {args.rounds} rounds on loopback, each running, one "
          f"after the other (who goes first turning), a coppice node (coppice_node_bench, release build) and an "
          f"Erlang node (d1:client/3) against the same Erlang node's `d1_echo` (bench/cluster/d1.erl): "
          f"{args.round_trips:,} round trips `{{Pid, N}}` → `{{pong, N}}`, then {args.one_way:,} messages out "
          f"(`{{m, N}}`, then one reply) and {args.one_way:,} in. The coppice side holds the Erlang process as a "
          f"local pid (`Node::remote`) and sends from a process. Each cell: the median of the rounds (min – max); "
          f"the ratio is coppice's median over the Erlang pair's.", "",
          f"- Load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after.",
          f"- Erlang/OTP {otp_release()} (Debian's erlang-nox), default schedulers; coppice with its default workers.", "",
          "| figure | coppice ↔ Erlang | Erlang ↔ Erlang | ratio |", "| --- | --- | --- | --- |"] + rows
    (results / "cluster.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if failed or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
