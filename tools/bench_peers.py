# tools/bench --peers: coppice and its peers (bench/peers/) measured in one invocation, one
# program at a time, in rounds; writes results/peers.json.
#
# Usage: bench_peers.py --bench BINARY --runs DIR --out PEERS_JSON --samples DIR
#                       [--peers erlang,elixir,go,caf,tokio] [--rounds N] [--filter REGEX]
#                       [--commit C] [--peer-timeout S] [--peers-dir DIR]
#
# Order. Each round runs every workload once on every participant, workload by workload (the
# light ones first, then W4, W1 and W2, as tools/bench orders coppice's), so that the figures
# compared in a row were taken minutes apart, not half an hour apart: on this shared host the
# speed drifts for minutes at a time, and a ratio taken across such a drift says nothing. Who
# goes first turns with every round (among the runtimes that run the workload) and the order
# runs backwards every other round, so that no runtime always follows the same one (the one
# that just freed three gigabytes, say). Never two programs at once.
#
# coppice's runs are Google Benchmark JSON files in DIR (named as tools/bench names its own, so
# tools/bench_results.py merges them into results/latest.json); each peer's run is its `run`
# script (bench/peers/README.md's contract), one workload per call, each in a fresh program.
# A peer's setup or run that fails is recorded with its reason and shown as failed; a workload a
# peer does not have is recorded as skipped, with the peer's reason, and not asked again.
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_results as br  # noqa: E402  (the counters of a Google Benchmark run)

ROOT = Path(__file__).resolve().parent.parent

# The workloads in the order a round runs them, with the figures each reports (BENCHMARKS.md's
# counters): (workload, counter, title, unit, better).
WORKLOADS = [
    "W3_restart_latency", "W3b_restart_one_for_all_100", "W5_ping_pong/workers:1", "W5_ping_pong/workers:2",
    "W6_fan_in", "W7_pairs_throughput", "W4_skynet_1m", "W1_spawn_idle_1m", "W2_dynsup_1m",
]
FIGURES = [
    ("W1_spawn_idle_1m", "spawn_ms", "W1 spawn 1M, until all acknowledged", "ms", "lower"),
    ("W1_spawn_idle_1m", "bytes_per_process", "W1 bytes per idle process (RSS)", "B", "lower"),
    ("W1_spawn_idle_1m", "stop_ms", "W1 stop 1M, until all are gone", "ms", "lower"),
    ("W2_dynsup_1m", "start_ms", "W2 start 1M children, each start awaited", "ms", "lower"),
    ("W2_dynsup_1m", "bytes_per_child", "W2 bytes per child (RSS)", "B", "lower"),
    ("W2_dynsup_1m", "shutdown_ms", "W2 shut down with 1M children", "ms", "lower"),
    ("W3_restart_latency", "p50_us", "W3 restart p50", "µs", "lower"),
    ("W3_restart_latency", "p90_us", "W3 restart p90", "µs", "lower"),
    ("W3_restart_latency", "p99_us", "W3 restart p99", "µs", "lower"),
    ("W3_restart_latency", "p999_us", "W3 restart p99.9", "µs", "lower"),
    ("W3_restart_latency", "max_us", "W3 restart max", "µs", "lower"),
    ("W3b_restart_one_for_all_100", "p50_us", "W3b one_for_all 100, p50", "µs", "lower"),
    ("W3b_restart_one_for_all_100", "p99_us", "W3b one_for_all 100, p99", "µs", "lower"),
    ("W4_skynet_1m", "wall_ms", "W4 skynet 1M", "ms", "lower"),
    ("W5_ping_pong/workers:1", "ns_per_round_trip", "W5 ping-pong, 1 worker", "ns/round trip", "lower"),
    ("W5_ping_pong/workers:2", "ns_per_round_trip", "W5 ping-pong, 2 workers", "ns/round trip", "lower"),
    ("W6_fan_in", "msgs_per_s", "W6 fan-in 10M messages", "M msg/s", "higher"),
    ("W7_pairs_throughput", "round_trips_per_s", "W7 1,000 pairs", "M round trips/s", "higher"),
]

# Who runs, and how each runs "with its defaults" on this machine (bench/peers/*/run say the same).
PARTICIPANTS = {
    "coppice": ("coppice", "Runtime's defaults: a worker per core (2); W5 workers:1 sets one worker"),
    "erlang": ("Erlang/OTP", "erl's defaults (a scheduler per core: 2) with +P 2000000 so a million processes "
                             "fit; W5 workers:1 with +S 1:1; W3 with the logger off"),
    "elixir": ("Elixir", "the VM's defaults with +P 2000000; DynamicSupervisor (W2) and Supervisor (W3); "
                         "logger off in W3"),
    "go": ("Go", "GOMAXPROCS unset (Go's default: 2); W5 workers:1 with GOMAXPROCS=1; "
                 "W2, W3, W3b hand-rolled (Go has no supervisors)"),
    "caf": ("CAF", "the default actor system (work-stealing scheduler, its default thread count); "
                   "W5 workers:1 with scheduler.max-threads=1; W1, W3, W3b hand-rolled; no W2"),
    "tokio": ("Tokio", "#[tokio::main]'s multi-thread runtime (a worker per core: 2); W5 workers:1 on the "
                       "current_thread runtime; W3 a hand-rolled respawn; no W2, W3b"),
}
PEER_ORDER = ["erlang", "elixir", "go", "caf", "tokio"]

COPPICE_TIMEOUT = 600  # a coppice workload reports within 120 s or fails itself; this is the backstop


def log(text):
    print(text, flush=True)


class Progress:
    def __init__(self, total):
        self.total = total
        self.done = 0
        self.start = time.monotonic()

    def elapsed(self):
        s = int(time.monotonic() - self.start)
        return f"{s // 60}:{s % 60:02d}"

    def step(self, round_no, rounds, workload, who, text):
        self.done += 1
        log(f"  [{self.done:3d}/{self.total} {self.elapsed():>6}] round {round_no}/{rounds}  "
            f"{workload:<28} {who:<8} {text}")


def brief(workload, counters):
    """The run's headline counters, in BENCHMARKS.md's order, for the progress line."""
    keys = [c for w, c, *_ in FIGURES if w == workload and c in counters][:3] or list(counters)[:3]
    parts = []
    for k in keys:
        v = counters[k]
        parts.append(f"{k} {v / 1e6:.2f}M" if v >= 1e6 else f"{k} {v:.1f}" if v < 1000 else f"{k} {v:.0f}")
    return ", ".join(parts)


def last_lines(text, n=3):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:])


def escape(name):
    return re.sub(r"([\[\]\\.*^$+?(){}|])", r"\\\1", name)


def run_coppice(args, workload, index, round_no):
    """One coppice workload in a fresh program; returns a run record."""
    out = Path(args.runs) / f"p{index:02d}-{round_no}.json"
    logfile = Path(args.runs) / f"p{index:02d}-{round_no}.log"
    env = dict(os.environ, COPPICE_LATENCY_SAMPLES_DIR=str(Path(args.samples) / "coppice"))
    cmd = [args.bench, f"--benchmark_filter=^{escape(workload)}/iterations:", f"--benchmark_out={out}",
           "--benchmark_out_format=json", f"--benchmark_context=commit={args.commit}"]
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=COPPICE_TIMEOUT)
        logfile.write_text(p.stdout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"no result within {COPPICE_TIMEOUT} s"}
    try:
        data = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return {"status": "failed", "error": f"exit status {p.returncode}, no JSON ({e}): {last_lines(p.stdout)}"}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        if b.get("error_occurred"):
            return {"status": "failed", "error": b.get("error_message", "error")}
        return {"status": "ok", "counters": br.counters_of(b), "label": "", "context": data.get("context", {})}
    return {"status": "failed", "error": f"exit status {p.returncode}, no result: {last_lines(p.stdout)}"}


def run_peer(args, peer, workload, round_no):
    """One workload on one peer through its run script; returns a run record."""
    logdir = Path(args.runs) / "peers"
    logdir.mkdir(parents=True, exist_ok=True)
    samples = Path(args.samples) / peer
    samples.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PEER_TIMEOUT=str(args.peer_timeout), PEER_LATENCY_SAMPLES_DIR=str(samples))
    script = Path(args.peers_dir) / peer / "run"
    # The script applies PEER_TIMEOUT to the program; a first call also builds the peer.
    backstop = args.peer_timeout + 900
    try:
        p = subprocess.run([str(script), workload], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=backstop, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"the run script did not return within {backstop} s"}
    except OSError as e:  # missing, or not executable
        return {"status": "failed", "error": f"cannot run {script}: {e.strerror}"}
    (logdir / f"{peer}-{workload.replace('/', '_')}-{round_no}.log").write_text(p.stderr)
    for line in p.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("workload") != workload:
            continue
        label = rec.get("label", "")
        if "skipped" in rec:
            return {"status": "skipped", "reason": rec["skipped"], "label": label}
        if "error" in rec:
            return {"status": "failed", "error": rec["error"], "counters": rec.get("counters", {}), "label": label}
        return {"status": "ok", "counters": rec.get("counters", {}), "label": label}
    return {"status": "failed",
            "error": f"the run script exited with status {p.returncode} without a result: {last_lines(p.stderr)}"}


def setup_peer(args, peer, logdir):
    script = Path(args.peers_dir) / peer / "setup"
    logfile = logdir / f"{peer}-setup.log"
    try:
        p = subprocess.run([str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=1800, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return "setup did not finish within 30 minutes"
    except OSError as e:
        return f"cannot run {script}: {e.strerror}"
    logfile.write_text(p.stdout)
    if p.returncode != 0:
        return f"setup failed (exit status {p.returncode}): {last_lines(p.stdout)}"
    return None


def version_of(args, peer):
    try:
        p = subprocess.run([str(Path(args.peers_dir) / peer / "version")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return "unknown (version timed out)"
    except OSError as e:
        return f"unknown ({e.strerror})"
    return p.stdout.strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else "unknown"


def machine(context):
    """The machine, from coppice's benchmark context when it ran, else read here."""
    def read(path, key):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"
    m = {
        "cpu_model": context.get("cpu_model") or read("/proc/cpuinfo", "model name"),
        "cores": context.get("cores") or str(os.cpu_count()),
        "memory": context.get("memory") or read("/proc/meminfo", "MemTotal"),
        "kernel": context.get("kernel") or platform.release(),
        "compiler": context.get("compiler", "unknown"),
        "build_type": context.get("build_type", "unknown"),
        "host_name": context.get("host_name") or platform.node(),
    }
    return m


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def figures_of(runs, participants):
    figures = []
    for workload, counter, title, unit, better in FIGURES:
        results = {}
        for who in participants:
            mine = [r for r in runs if r["workload"] == workload and r["participant"] == who]
            if not mine:
                continue
            skipped = [r for r in mine if r["status"] == "skipped"]
            values = [r["counters"][counter] for r in mine if counter in r.get("counters", {})]
            failures = [r["error"] for r in mine if r["status"] == "failed" and counter not in r.get("counters", {})]
            labels = [r.get("label", "") for r in mine if r.get("label")]
            entry = {"label": labels[-1] if labels else ""}
            if values:
                entry.update(summarize(values))
                entry["status"] = "ok" if not failures else "partly failed"
            elif skipped and not failures:
                entry.update(status="skipped", reason=skipped[0]["reason"])
            else:
                entry["status"] = "failed"
            if failures:
                entry["failures"] = sorted(set(failures))
            results[who] = entry
        base = results.get("coppice", {}).get("median")
        for who, entry in results.items():
            if who != "coppice" and base and "median" in entry:
                entry["ratio"] = entry["median"] / base
        figures.append({"workload": workload, "counter": counter, "title": title, "unit": unit, "better": better,
                        "results": results})
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--peers", default=",".join(PEER_ORDER))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter", default=".")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--peer-timeout", type=int, default=int(os.environ.get("PEER_TIMEOUT", "180")))
    # Where the peers' programs are (tests/bench puts stand-ins there).
    ap.add_argument("--peers-dir", default=str(ROOT / "bench" / "peers"))
    args = ap.parse_args()

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEER_ORDER]
    if unknown:
        print(f"bench_peers: unknown peer(s) {', '.join(unknown)}; the peers are {', '.join(PEER_ORDER)}",
              file=sys.stderr)
        return 2
    workloads = [w for w in WORKLOADS if re.search(args.filter, w)]
    if not workloads:
        print(f"bench_peers: no workload matches '{args.filter}'", file=sys.stderr)
        return 2
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    logdir = Path(args.runs) / "peers"
    logdir.mkdir(parents=True, exist_ok=True)
    for who in ["coppice"] + peers:
        (Path(args.samples) / who).mkdir(parents=True, exist_ok=True)
    started = time.time()

    # Setup and versions first: installing a peer is not part of any figure.
    setup_errors = {}
    versions = {}
    for peer in peers:
        log(f"== {PARTICIPANTS[peer][0]}: setup (Debian packages; logs in {logdir})")
        err = setup_peer(args, peer, logdir)
        if err:
            log(f"   {err}")
            setup_errors[peer] = err
        versions[peer] = version_of(args, peer)
        log(f"   {versions[peer]}")

    participants = ["coppice"] + peers
    runs = []
    skipped = {}  # (peer, workload) -> record: a workload a peer does not have is asked once
    total = args.rounds * len(workloads) * len(participants)
    progress = Progress(total)
    context = {}
    log(f"== {args.rounds} rounds of {len(workloads)} workloads on {len(participants)} runtimes, one program at a "
        f"time ({total} runs; a peer's first run builds it)")
    for round_no in range(1, args.rounds + 1):
        for workload in workloads:
            # Who goes first turns with the round, among those that run the workload (a peer
            # that skips it takes no turn), and the direction alternates: a turn alone keeps
            # every runtime's predecessor (coppice ran after Go's three-gigabyte W2 in two rounds
            # of three), while going backwards every other round gives each another one.
            active = [who for who in participants if (who, workload) not in skipped]
            n = len(active)
            turn = (round_no - 1) % n
            if round_no % 2 == 1:
                order = [active[(turn + i) % n] for i in range(n)]
            else:
                order = [active[(turn - i) % n] for i in range(n)]
            order += [who for who in participants if who not in active]
            for who in order:
                t0 = time.monotonic()
                if who == "coppice":
                    rec = run_coppice(args, workload, WORKLOADS.index(workload) + 1, round_no)
                    first_context = rec.pop("context", {})
                    context = context or first_context
                elif who in setup_errors:
                    rec = {"status": "failed", "error": setup_errors[who]}
                elif (who, workload) in skipped:
                    rec = dict(skipped[(who, workload)])
                else:
                    rec = run_peer(args, who, workload, round_no)
                    if rec["status"] == "skipped":
                        skipped[(who, workload)] = rec
                rec.update(round=round_no, workload=workload, participant=who,
                           seconds=round(time.monotonic() - t0, 1))
                runs.append(rec)
                if rec["status"] == "ok":
                    text = brief(workload, rec["counters"])
                elif rec["status"] == "skipped":
                    text = "skipped: " + rec["reason"]
                else:
                    text = "FAILED: " + rec["error"][:160]
                progress.step(round_no, args.rounds, workload, who, f"{text} ({rec['seconds']} s)")

    coppice_version = f"coppice {args.commit} ({context.get('compiler', 'unknown compiler')}, " \
                      f"{context.get('build_type', 'Release')} build)"
    result = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "commit": args.commit,
        "rounds": args.rounds,
        "duration_s": round(time.time() - started),
        "machine": machine(context),
        "participants": [
            {"id": who, "name": PARTICIPANTS[who][0],
             "version": coppice_version if who == "coppice" else versions.get(who, "unknown"),
             "defaults": PARTICIPANTS[who][1],
             **({"setup_error": setup_errors[who]} if who in setup_errors else {})}
            for who in participants
        ],
        "figures": figures_of(runs, participants),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    log(f"== peers done in {progress.elapsed()}: wrote {args.out}")
    failed = any(r["status"] == "failed" for r in runs if r["participant"] == "coppice")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
