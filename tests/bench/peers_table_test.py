# tools/bench --peers' orchestration and table (tools/bench_peers.py, tools/bench_summary.py)
# with stand-ins for coppice_bench and the peers: runs nothing real, in about two seconds.
#
# usage: /usr/bin/python3 tests/bench/peers_table_test.py [SOURCE_DIR]
#
# The stand-ins record when each program starts and ends; the test checks that no two ever ran
# at once, that every round ran every workload on every runtime (the first runtime turning),
# that a workload a peer skips is asked once, that medians, min, max and ratios are right, and
# that a failed peer (a timeout, a setup that failed, a program that died without a result) is
# in the table as failed with its reason while the figures measured before a failure are kept.
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
PEERS_PY = SOURCE / "tools" / "bench_peers.py"
SUMMARY_PY = SOURCE / "tools" / "bench_summary.py"
ROUNDS = 3
FILTER = "W3_restart_latency$|W5_ping_pong/workers:1|W2_dynsup"

failures = []


def check(what, ok):
    print(f"[{'ok' if ok else 'FAILED'}] {what}")
    if not ok:
        failures.append(what)


def script(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


# The stand-in for coppice_bench: W3 p50 is 2.0, 1.0, 3.0 µs over the rounds, W5 100 ns, W2 1000 ms.
# Every stand-in holds MARK (created exclusively) while it runs: a second program started before
# the first ended finds it there and logs "overlap". No sleep widens the window: a program's
# interpreter start-up alone outlasts any launch made beside it.
HOLD = r'''
import os
MARK = LOG + ".running"
def hold(who):
    try:
        os.close(os.open(MARK, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        open(LOG, "a").write(f"overlap {who}\n")
def release():
    try:
        os.remove(MARK)
    except FileNotFoundError:
        pass
'''

FAKE_BENCH = r'''#!/usr/bin/python3
import json, sys, time
LOG = "@LOG@"
@HOLD@
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
hold("coppice")
log = open(LOG, "a")
log.write(f"start coppice {time.monotonic()}\n"); log.flush()
name = args["--benchmark_filter"].lstrip("^").split("/iterations")[0].replace("\\", "")
count = sum(1 for l in open(LOG) if l.startswith("start coppice"))
counters = {
    "W3_restart_latency": {"p50_us": [2.0, 1.0, 3.0][(count - 1) // 3 % 3], "p90_us": 4.0, "p99_us": 5.0,
                           "p999_us": 6.0, "max_us": 7.0},
    "W5_ping_pong/workers:1": {"ns_per_round_trip": 100.0},
    "W2_dynsup_1m": {"start_ms": 1000.0, "shutdown_ms": 500.0, "bytes_per_child": 300.0},
}[name]
run = {"name": name + "/iterations:1/manual_time", "run_type": "iteration", "iterations": 1,
       "real_time": 1.0, "cpu_time": 1.0, "time_unit": "ms", **counters}
ctx = {"cpu_model": "Test CPU", "cores": "2", "memory": "1 GiB", "kernel": "Linux test", "compiler": "gcc 0",
       "build_type": "Release", "date": "2026-01-01"}
json.dump({"context": ctx, "benchmarks": [run]}, open(args["--benchmark_out"], "w"))
log.write(f"end coppice {time.monotonic()}\n"); log.flush()
release()
'''

# A peer's run script: KIND says how it answers each workload.
PEER_RUN = r'''#!/usr/bin/python3
import json, sys, time
PEER, LOG = {peer!r}, {log!r}
@HOLD@
w = sys.argv[1]
hold(PEER)
log = open(LOG, "a")
log.write(f"start {{PEER}} {{time.monotonic()}} {{w}}\n"); log.flush()
answers = {answers}
a = answers.get(w, {{"error": "unknown workload"}})
log.write(f"end {{PEER}} {{time.monotonic()}} {{w}}\n"); log.flush()
release()
if a == "die":
    print("segfault, no result", file=sys.stderr)
    sys.exit(3)
print(json.dumps(dict(peer=PEER, workload=w, **a)))
sys.exit(1 if "error" in a else 0)
'''

ANSWERS = {
    # Five times coppice's W3 p50 median (2.0), twice its W5.
    "erlang": {"W3_restart_latency": {"counters": {"p50_us": 10.0, "p90_us": 20.0, "p99_us": 30.0, "p999_us": 40.0,
                                                   "max_us": 50.0}, "label": "supervisor one_for_one"},
               "W5_ping_pong/workers:1": {"counters": {"ns_per_round_trip": 200.0}, "label": "+S 1:1"},
               "W2_dynsup_1m": {"counters": {"start_ms": 8000.0, "shutdown_ms": 30000.0, "bytes_per_child": 3000.0}}},
    # A timeout in W3; W2's shutdown times out after its start was measured.
    "go": {"W3_restart_latency": {"error": "timeout after 1 s"},
           "W5_ping_pong/workers:1": {"counters": {"ns_per_round_trip": 300.0}},
           "W2_dynsup_1m": {"error": "timeout after 1 s (last progress: started)",
                            "counters": {"start_ms": 7000.0, "bytes_per_child": 2900.0}}},
    # Skips W3 and W2; dies without a result in W5.
    "tokio": {"W3_restart_latency": {"skipped": "no supervisors in this stand-in"},
              "W5_ping_pong/workers:1": "die",
              "W2_dynsup_1m": {"skipped": "no supervisors in this stand-in"}},
}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = tmp / "log"
        log.touch()
        bench = tmp / "coppice_bench"
        script(bench, FAKE_BENCH.replace("@LOG@", str(log)).replace("@HOLD@", HOLD))
        peers_dir = tmp / "peers"
        for peer, answers in ANSWERS.items():
            script(peers_dir / peer / "setup", "#!/bin/sh\nexit 0\n")
            script(peers_dir / peer / "version", f"#!/bin/sh\necho 'Stand-in {peer} 1.0'\n")
            script(peers_dir / peer / "run",
                   PEER_RUN.format(peer=peer, log=str(log), answers=repr(answers)).replace("@HOLD@", HOLD))
        # CAF's setup fails: every one of its runs is failed with the setup's reason. Elixir has
        # no scripts at all.
        script(peers_dir / "caf" / "setup", "#!/bin/sh\necho 'E: Unable to locate package libcaf-dev' >&2\nexit 100\n")
        script(peers_dir / "caf" / "version", "#!/bin/sh\nexit 1\n")
        script(peers_dir / "caf" / "run", "#!/bin/sh\necho never >>'%s'\nexit 1\n" % log)

        out = tmp / "peers.json"
        p = subprocess.run(
            ["/usr/bin/python3", str(PEERS_PY), "--bench", str(bench), "--runs", str(tmp / "runs"), "--out", str(out),
             "--samples", str(tmp / "samples"), "--peers", "erlang,elixir,go,caf,tokio", "--rounds", str(ROUNDS),
             "--filter", FILTER, "--commit", "abc1234", "--peer-timeout", "1", "--peers-dir", str(peers_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        print(p.stdout)
        check("bench_peers exits 0 when only peers failed", p.returncode == 0)
        data = json.loads(out.read_text())

        # One program at a time, and every round ran everything.
        events = [l.split() for l in log.read_text().splitlines()]
        check("CAF's run is never called after its setup failed", not any(e[0] == "never" for e in events))
        running, overlapped = None, False
        for e in events:
            if e[0] == "start":
                overlapped |= running is not None
                running = e[1]
            elif e[0] == "end":
                overlapped |= running != e[1]
                running = None
        check("no two programs ran at once (each ends before the next starts)", not overlapped)
        check("no program found another one running", not any(e[0] == "overlap" for e in events))
        workloads = 3
        asked = {who: sum(1 for e in events if e[0] == "start" and e[1] == who) for who in ("coppice", "erlang", "go",
                                                                                       "tokio")}
        check(f"coppice, erlang and go ran every workload every round: {asked}",
              asked["coppice"] == asked["erlang"] == asked["go"] == ROUNDS * workloads)
        tokio_w3 = sum(1 for e in events if e[0] == "start" and e[1] == "tokio" and e[3] == "W3_restart_latency")
        check(f"a skipped workload is asked once ({tokio_w3})", tokio_w3 == 1)
        firsts = []
        for r in range(1, ROUNDS + 1):
            mine = [x for x in data["runs"] if x["round"] == r]
            firsts.append(mine[0]["participant"])
        check(f"the first runtime turns each round: {firsts}", len(set(firsts)) == ROUNDS)
        before = []
        for r in range(1, ROUNDS + 1):
            mine = [x["participant"] for x in data["runs"] if x["round"] == r and x["workload"] == "W3_restart_latency"]
            i = mine.index("coppice")
            before.append(mine[i - 1] if i > 0 else None)
        after = [b for b in before if b is not None]
        check(f"coppice follows a different runtime in every round it does not go first: {before}",
              len(after) >= 2 and len(set(after)) == len(after))

        fig = {(f["workload"], f["counter"]): f["results"] for f in data["figures"]}
        w3 = fig[("W3_restart_latency", "p50_us")]
        check("coppice W3 p50: median 2.0, min 1.0, max 3.0 over 3 rounds",
              (w3["coppice"]["median"], w3["coppice"]["min"], w3["coppice"]["max"], w3["coppice"]["n"]) == (2.0, 1.0, 3.0, 3))
        check("erlang's ratio is its median over coppice's (10 / 2 = 5)", abs(w3["erlang"]["ratio"] - 5.0) < 1e-9)
        check("go's W3 is failed with its reason",
              w3["go"]["status"] == "failed" and w3["go"]["failures"] == ["timeout after 1 s"])
        check("caf is failed with its setup's reason",
              w3["caf"]["status"] == "failed" and "setup failed" in w3["caf"]["failures"][0]
              and "Unable to locate package" in w3["caf"]["failures"][0])
        check("tokio's W3 is skipped with its reason", w3["tokio"] == {"label": "", "status": "skipped",
                                                                      "reason": "no supervisors in this stand-in"})
        w5 = fig[("W5_ping_pong/workers:1", "ns_per_round_trip")]
        check("a peer that died without a result is failed with its exit status and last words",
              w5["tokio"]["status"] == "failed" and "status 3" in w5["tokio"]["failures"][0]
              and "segfault" in w5["tokio"]["failures"][0])
        start, shutdown = fig[("W2_dynsup_1m", "start_ms")], fig[("W2_dynsup_1m", "shutdown_ms")]
        check("figures measured before a failure are kept (go's W2 start, ratio 7)",
              start["go"]["median"] == 7000.0 and abs(start["go"]["ratio"] - 7.0) < 1e-9)
        check("the figure the failure cost is failed (go's W2 shutdown)",
              shutdown["go"]["status"] == "failed" and "timeout after 1 s" in shutdown["go"]["failures"][0])
        check("the machine and every version are recorded",
              data["machine"]["cpu_model"] == "Test CPU"
              and [p["version"] for p in data["participants"][1:]] ==
              ["Stand-in erlang 1.0", "unknown (No such file or directory)", "Stand-in go 1.0", "unknown",
               "Stand-in tokio 1.0"])
        check("a peer with no scripts at all is failed, saying so",
              w3["elixir"]["status"] == "failed" and "cannot run" in w3["elixir"]["failures"][0])

        # The table and the README's block.
        readme = tmp / "README.md"
        readme.write_text("# x\n\n<!-- figures: begin (tools/bench --peers writes this table from results/peers.json) -->\n"
                          "old table\n<!-- figures: end -->\n\nrest\n")
        summary = tmp / "summary.md"
        p = subprocess.run(["/usr/bin/python3", str(SUMMARY_PY), "--summary", str(summary), "--peers", str(out),
                            "--readme", str(readme)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        print(p.stdout)
        check("bench_summary exits 0", p.returncode == 0)
        md = summary.read_text()
        row = next((l for l in md.splitlines() if l.startswith("| W3 restart p50 ")), "")
        print(row)
        check("the W3 p50 row: coppice's median with min–max, erlang's ratio, go failed with its reason, "
              "caf failed (setup), tokio –",
              "**2.0 (1.0 – 3.0)**" in row and "10.0 (10.0 – 10.0) ×5.0" in row and "**failed**: timeout after 1 s" in row
              and "**failed**: setup failed" in row and row.rstrip().endswith("| – |"))
        check("the summary lists failed runs with their reasons", "Failed runs, with the reason each gave" in md
              and "exited with status 3" in md)
        check("the summary says every runtime runs with its defaults, with versions",
              "Every runtime runs with its defaults" in md and "Stand-in erlang 1.0" in md)
        text = readme.read_text()
        check("README's block is rewritten from peers.json, the rest kept",
              "old table" not in text and "| W3 restart p50 " in text and text.startswith("# x\n")
              and text.rstrip().endswith("rest"))
    print("all cases passed" if not failures else f"{len(failures)} check(s) failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
