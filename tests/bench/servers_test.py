# tools/bench --servers (tools/bench_servers.py) and coppice_crash_client, on small runs:
# redis-benchmark's CSV read from captured output; medians and ratios; S1 against two
# redis-servers (the stand-in mode) with every server stopped after; and, given the crash
# client, its counts against tests/bench/fake_kv_server.py with known faults (none, errors
# outside the crashed shard, a connection that stops answering).
#
# usage: /usr/bin/python3 tests/bench/servers_test.py [SOURCE_DIR] [--crash-client BINARY]
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

argv = sys.argv[1:]
crash_client = None
if "--crash-client" in argv:
    i = argv.index("--crash-client")
    crash_client = argv[i + 1]
    del argv[i:i + 2]
SOURCE = Path(argv[0] if argv else Path(__file__).resolve().parents[2])
sys.path.insert(0, str(SOURCE / "tools"))
import bench_servers as bs  # noqa: E402

FAKE = SOURCE / "tests" / "bench" / "fake_kv_server.py"
failures = []


def check(what, ok):
    print(f"[{'ok' if ok else 'FAILED'}] {what}")
    if not ok:
        failures.append(what)


# ---- redis-benchmark's output ------------------------------------------------------------

# redis-benchmark 7.0.15 --csv -P 16 (captured), with a warning line as it prints one when the
# server does not answer CONFIG GET.
REDIS7 = '''WARNING: Could not fetch server CONFIG
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"PING_INLINE","625000.00","0.666","0.272","0.575","1.415","2.607","3.143"
"PING_MBULK","740740.75","0.542","0.224","0.543","0.599","0.663","1.039"
"SET","740740.75","0.569","0.216","0.551","0.671","1.087","1.263"
"LPOP","400000.00","1.494","0.336","1.311","2.895","4.159","4.463"
"MSET (10 keys)","285714.28","2.350","0.520","2.111","4.191","5.247","5.951"
'''
# Redis 6's redis-benchmark: no header, requests/s only.
REDIS6 = '''"PING_INLINE","98039.22"
"SET","99009.90"
'''

t = bs.parse_csv(REDIS7)
check("the CSV gives every test, the warning skipped", list(t) == ["PING_INLINE", "PING_MBULK", "SET", "LPOP",
                                                                   "MSET (10 keys)"])
check("requests/s, p50 and p99 by the header's columns",
      t["LPOP"]["rps"] == 400000.0 and t["LPOP"]["p50_ms"] == 1.311 and t["LPOP"]["p99_ms"] == 4.159)
check("a test name with spaces and parentheses", t["MSET (10 keys)"]["p99_ms"] == 5.247)
t6 = bs.parse_csv(REDIS6)
check("without a header (Redis 6), requests/s only", t6 == {"PING_INLINE": {"rps": 98039.22},
                                                            "SET": {"rps": 99009.90}})
check("no CSV at all gives nothing", bs.parse_csv("Could not connect to Redis at 127.0.0.1:1\n") == {})

# ---- medians, min, max and the ratio to Redis ---------------------------------------------


def run(who, rnd, pipeline, rps, p99):
    return {"status": "ok", "server": who, "round": rnd, "pipeline": pipeline,
            "tests": {"SET": {"rps": rps, "p50_ms": 0.5, "p99_ms": p99}}}


runs = [run("redis", 1, 16, 100.0, 2.0), run("redis", 2, 16, 300.0, 1.0), run("redis", 3, 16, 200.0, 3.0),
        run("coppice", 1, 16, 250.0, 1.0), run("coppice", 2, 16, 150.0, 1.0), run("coppice", 3, 16, 400.0, 5.0),
        {"status": "failed", "server": "coppice", "round": 4, "pipeline": 16, "error": "x"}]
figs = {(f["pipeline"], f["test"], f["figure"]): f for f in bs.figures_of(runs, ["redis", "coppice"])}
rps = figs[(16, "SET", "rps")]
check("the median of the rounds with min and max, a failed run left out",
      rps["results"]["redis"] == {"median": 200.0, "min": 100.0, "max": 300.0, "n": 3} and
      rps["results"]["coppice"]["median"] == 250.0 and rps["results"]["coppice"]["n"] == 3)
check("the ratio is coppice's median over Redis's", abs(rps["ratio"] - 1.25) < 1e-9)
check("p99's ratio the same way", abs(figs[(16, "SET", "p99_ms")]["ratio"] - 0.5) < 1e-9)
check("no figures for a pipeline nobody ran", not figs[(1, "SET", "rps")]["results"])


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


work = Path(tempfile.mkdtemp(prefix="servers_test."))
try:
    # ---- S1 end to end: two redis-servers (the stand-in mode), two rounds ------------------
    if shutil.which("redis-server") and shutil.which("redis-benchmark"):
        p = subprocess.run([sys.executable, str(SOURCE / "tools" / "bench_servers.py"), "--kv-standin", "--only",
                            "s1", "--rounds", "2", "--requests", "2000", "--requests-pipelined", "4000",
                            "--clients", "10", "--tests", "set,get", "--results", str(work / "r"),
                            "--logs", str(work / "logs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=240)
        print(p.stdout[-3000:])
        check("S1 with the stand-in exits 0", p.returncode == 0)
        data = json.loads((work / "r" / "servers.json").read_text())
        ok = [r for r in data["runs"] if r["status"] == "ok"]
        check("every round ran both servers at -P 1 and -P 16", len(ok) == 8 and
              {(r["round"], r["server"], r["pipeline"]) for r in ok} ==
              {(n, w, pp) for n in (1, 2) for w in ("redis", "coppice") for pp in (1, 16)})
        firsts = [next(r["server"] for r in data["runs"] if r["round"] == n) for n in (1, 2)]
        check("who goes first turns with the round", firsts == ["redis", "coppice"])
        check("every run noted the host's load", all(len(r["load_before"]) == 3 for r in data["runs"]))
        check("SET and GET at both pipelines have a ratio",
              all("ratio" in f for f in data["figures"] if f["figure"] == "rps"))
        ports = [int(f.stem.split("-")[-1]) for f in (work / "logs").glob("*.log")]
        check("four servers were started, every one stopped after", len(ports) == 4 and all(map(port_closed, ports)))
        md = (work / "r" / "servers.md").read_text()
        check("servers.md has the table", "| 16 | SET |" in md and "| 1 | GET |" in md)
    else:
        print("[skipped] S1 end to end: no redis-server or redis-benchmark (tools/setup installs them)")

    # ---- the crash client against the fake server with known faults -----------------------
    if crash_client:
        # A deadline far beyond any reply's time for the runs that must see no hung request (this
        # checks the counting, not the speed of a Python server on a busy host); a short one where
        # hangs are expected, to keep the run short.
        def crash_run(fault, extra=()):
            server = subprocess.Popen([sys.executable, str(FAKE), "--print-port", "--fault", fault],
                                      stdout=subprocess.PIPE, text=True)
            try:
                # Its one line once it listens (or nothing, should it exit first).
                port = server.stdout.readline().strip()
                if not port:
                    raise RuntimeError(f"the fake server exited (status {server.wait()}) before listening")
                p = subprocess.run([crash_client, "--port", port, "--connections", "4", "--pipeline", "8",
                                    "--seconds", "0.6", "--deadline-ms", "300" if fault == "hang" else "10000",
                                    "--keys", "100", *extra],
                                   stdout=subprocess.PIPE, text=True, timeout=60)
                print(f"  {fault}: {p.stdout.strip()[:600]}")
                return p.returncode, json.loads(p.stdout)
            finally:
                server.kill()
                server.wait()

        rc, c = crash_run("none")
        check("a good server: the run completes", rc == 0 and c["requests"] > 0 and c["ok"] > 0)
        check("the shards are the server's (DEBUG SHARD)", c["shard_map"] == "server" and c["shards"] == 4)
        check("crashes were sent every 100 ms and answered", c["crashes_sent"] >= 4 and c["crash_errors"] == 0)
        check("errors, all for the crashed shard", c["errors"] > 0 and c["errors_by_shard"].keys() == {"0"} and
              c["errors_in_crashed_shard"] == c["errors"] and c["errors_outside_crashed_shard"] == 0)
        check("no hung request, every request answered", c["hung"] == 0 and c["replies"] == c["requests"] and
              c["ok"] + c["errors"] == c["replies"])
        rc, c = crash_run("outside")
        check("errors on a shard never crashed are counted outside",
              c["errors_outside_crashed_shard"] > 0 and c["errors_by_shard"].get("1", 0) ==
              c["errors_outside_crashed_shard"] and c["hung"] == 0)
        rc, c = crash_run("hang")
        check("a connection that stops answering: its requests are hung, the run still ends",
              rc == 0 and c["hung"] > 0 and c["replies"] + c["hung"] == c["requests"])
        rc, c = crash_run("none", ["--crash-shard", "none"])
        check("without crashes, no errors", c["crashes_sent"] == 0 and c["errors"] == 0 and c["hung"] == 0)

        # ---- S2 end to end through the tool: a good server passes, a hanging one fails ----
        def s2(fault, out, deadline_ms):
            return subprocess.run([sys.executable, str(SOURCE / "tools" / "bench_servers.py"), "--only", "s2",
                                   "--kv-cmd", f"{sys.executable} {FAKE} --port {{port}} --fault {fault}",
                                   "--crash-client", crash_client, "--crash-seconds", "0.5", "--clients", "4",
                                   "--crash-deadline-ms", str(deadline_ms),
                                   "--results", str(work / out), "--logs", str(work / f"logs-{out}")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        p = s2("none", "s2-good", 10000)
        crash = json.loads((work / "s2-good" / "servers_crash.json").read_text())
        check("S2 through the tool: exit 0, the counts in servers_crash.json",
              p.returncode == 0 and crash["status"] == "ok" and crash["result"]["hung"] == 0)
        md = (work / "s2-good" / "servers.md").read_text()
        check("S2's table in servers.md", "**hung requests** (must be 0) | **0**" in md)
        check("the server still serves after the crashes", "| the server after the run | answers: 16 SETs" in md)
        p = s2("hang", "s2-hang", 300)
        crash = json.loads((work / "s2-hang" / "servers_crash.json").read_text())
        check("S2 through the tool: hung requests make it exit non-zero",
              p.returncode == 1 and crash["result"]["hung"] > 0)
        ports = [int(f.stem.split("-")[-1]) for d in ("logs-s2-good", "logs-s2-hang") for f in (work / d).glob("*.log")]
        check("the crash run's servers were stopped after", len(ports) == 2 and all(map(port_closed, ports)))
    else:
        print("[skipped] the crash client: no --crash-client (built with the benchmarks)")
finally:
    shutil.rmtree(work, ignore_errors=True)

if failures:
    print(f"{len(failures)} check(s) failed: " + "; ".join(failures))
    sys.exit(1)
print("all checks passed")
