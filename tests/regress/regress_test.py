# The regression gate's comparison (tools/regress --compare), fed synthetic runs: it must fail
# on a run that is slower than the baseline, on a run in which a benchmark failed, lacks a
# figure or is too small to decide, and pass on one that is none of these. With --bench, also
# checks that coppice_bench exits non-zero when a benchmark fails its check.
#
# usage: /usr/bin/python3 tests/regress/regress_test.py [SOURCE_DIR] [--bench COPPICE_BENCH]
#
# Each case writes a baseline and a run in tools/bench_results.py's format (every repetition of
# a benchmark under its name, with median aggregates beside, which the gate must ignore) and
# checks tools/regress's exit status (0 passes, 1 a regression, 2 an error), its verdicts, and
# its "regress: FAILED: ..." lines: one per cause, each naming what failed and why.
import json
import os
import random
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

args = sys.argv[1:]
BENCH = None
if "--bench" in args:
    i = args.index("--bench")
    BENCH = Path(args[i + 1])
    del args[i:i + 2]
SOURCE = Path(args[0] if args else Path(__file__).resolve().parents[2])
REGRESS = SOURCE / "tools" / "regress"
REPETITIONS = 9

# A workload's typical figures: (benchmark, manual-time counter, {counter: value}), and a
# micro-benchmark's real_time.
WORKLOADS = [
    ("W1_spawn_idle_1m", "spawn_ms", {"spawn_ms": 113.0, "stop_ms": 90.6, "bytes_per_process": 218.0}),
    ("W3_restart_latency", "p50_us", {"p50_us": 1.3, "p90_us": 1.8, "p99_us": 2.3, "p999_us": 21.5,
                                      "max_us": 110.0, "steals_per_restart": 0.002, "parks_per_restart": 0.001}),
    ("W4_skynet_1m", "wall_ms", {"wall_ms": 163.0}),
    ("W6_fan_in", "wall_ms", {"msgs_per_s": 29.35e6, "wall_ms": 341.0}),
]
MICRO = [("micro_call_round_trip", 477.0), ("micro_table_lookup", 3.2)]
NOISELESS = {"bytes_per_process"}  # memory figures repeat exactly


def make_run(seed, scale=None, noise=0.02, override=None, errors=(), repetitions=REPETITIONS, drop=()):
    """A run of every benchmark, `repetitions` times, each figure with +-noise around its value.
    scale: {(benchmark, counter or "real_time"): factor}; override: {(benchmark, counter): [values]};
    errors: benchmarks that failed every repetition, or {(benchmark, repetition index): message};
    drop: benchmarks, or (benchmark, counter) figures, left out of the run."""
    scale, override = scale or {}, override or {}
    rng = random.Random(seed)
    benchmarks = []
    for name, manual, counters in WORKLOADS:
        if name in drop:
            continue
        runs = []
        for i in range(repetitions):
            run = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": repetitions,
                   "repetition_index": i, "threads": 1, "iterations": 1, "time_unit": "ms"}
            error = errors.get((name, i)) if isinstance(errors, dict) else ("synthetic failure" if name in errors else None)
            if error is not None:
                run.update(error_occurred=True, error_message=error)
                runs.append(run)
                continue
            for counter, value in counters.items():
                if (name, counter) in drop:
                    continue
                jitter = 1.0 if counter in NOISELESS else 1 + rng.uniform(-noise, noise)
                run[counter] = value * scale.get((name, counter), 1.0) * jitter
                if (name, counter) in override:
                    run[counter] = override[(name, counter)][i]
            run["real_time"] = run.get(manual, counters[manual])
            run["cpu_time"] = 0.5 + rng.random()  # the benchmark thread's: meaningless, must be ignored
            runs.append(run)
        benchmarks += runs
        ok = [r for r in runs if not r.get("error_occurred")]
        if ok:  # an aggregate as bench_results.py writes it; the gate recomputes its own
            median = dict(ok[len(ok) // 2], name=f"{name}_median", run_type="aggregate", aggregate_name="median")
            benchmarks.append(median)
    for name, value in MICRO:
        if name in drop:
            continue
        for i in range(repetitions):
            real = value * scale.get((name, "real_time"), 1.0) * (1 + rng.uniform(-noise, noise))
            benchmarks.append({"name": name, "run_name": name, "run_type": "iteration", "repetitions": repetitions,
                               "repetition_index": i, "threads": 1, "iterations": 1000, "time_unit": "ns",
                               "real_time": real, "cpu_time": 1.0 + rng.random()})
    return {"context": {"commit": f"synthetic-{seed}"}, "benchmarks": benchmarks}


failures = []


def cause_lines(lines):
    return [line for line in lines if line.startswith("regress: FAILED: ")]


def case(title, baseline, run, expect, margin=None, worse=(), not_worse=(), verdicts=None, causes=None):
    """Runs the gate on baseline and run; checks its exit status, which figures it calls WORSE
    and, when `causes` is given, its "regress: FAILED: " lines: one per cause, the i-th
    matching the i-th regular expression (in any order), and no other."""
    with tempfile.TemporaryDirectory(prefix="coppice-regress-test-") as tmp:
        paths = []
        for label, data in (("baseline", baseline), ("run", run)):
            path = Path(tmp) / f"{label}.json"
            path.write_text(json.dumps(data))
            paths.append(str(path))
        command = [str(REGRESS), "--compare", *paths] + (["--margin", str(margin)] if margin is not None else [])
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    lines = output.splitlines()
    verdict_of = {}
    for line in lines:
        parts = line.split()
        if parts and ":" in parts[0] or (parts and parts[0].startswith("micro_")):
            for v in ("WORSE", "worse, within margin", "not significant", "better", "same", "not gated (a maximum)",
                        "not gated (a scheduling count)"):
                if line.rstrip().endswith(v):
                    verdict_of[parts[0]] = v
    problems = []
    if done.returncode != expect:
        problems.append(f"exit status {done.returncode}, expected {expect}")
    for figure in worse:
        if verdict_of.get(figure) != "WORSE":
            problems.append(f"{figure}: verdict {verdict_of.get(figure)!r}, expected 'WORSE'")
    for figure in not_worse:
        if verdict_of.get(figure) == "WORSE":
            problems.append(f"{figure}: called WORSE")
    for figure, v in (verdicts or {}).items():
        if verdict_of.get(figure) != v:
            problems.append(f"{figure}: verdict {verdict_of.get(figure)!r}, expected {v!r}")
    if expect == 0:
        stray = [f for f, v in verdict_of.items() if v == "WORSE"]
        if stray:
            problems.append(f"figures called WORSE in a passing case: {stray}")
    if causes is not None:
        said = cause_lines(lines)
        for pattern in causes:
            matching = [line for line in said if re.search(pattern, line)]
            if len(matching) != 1:
                problems.append(f"{len(matching)} FAILED line(s) match {pattern!r}, expected 1")
        if len(said) != len(causes):
            problems.append(f"{len(said)} FAILED line(s), expected {len(causes)} (one per cause)")
    status = "ok" if not problems else "FAILED"
    print(f"[{status}] {title} (exit {done.returncode})")
    if problems:
        failures.append(title)
        for p in problems:
            print(f"    {p}")
        print("    --- tools/regress's output:")
        print("\n".join("    " + line for line in lines))


base = make_run(seed=1)

# Two equal runs pass: the same file, and a second run drawn from the same figures (other noise).
case("equal runs pass", base, base, expect=0)
case("a run with the same figures and other noise passes", base, make_run(seed=2), expect=0)

# A slower run fails, on the figure that got slower and on no other.
case("skynet 30% slower fails", base, make_run(seed=3, scale={("W4_skynet_1m", "wall_ms"): 1.3}), expect=1,
     worse=["W4_skynet_1m:wall_ms"], not_worse=["W6_fan_in:wall_ms", "W1_spawn_idle_1m:spawn_ms"])
case("restart p50 twice as slow fails", base, make_run(seed=4, scale={("W3_restart_latency", "p50_us"): 2.0}),
     expect=1, worse=["W3_restart_latency:p50_us"])
case("a micro-benchmark 30% slower fails", base, make_run(seed=5, scale={("micro_call_round_trip", "real_time"): 1.3}),
     expect=1, worse=["micro_call_round_trip"])
case("more bytes per process (a figure that repeats exactly) fails", base,
     make_run(seed=6, scale={("W1_spawn_idle_1m", "bytes_per_process"): 1.15}), expect=1,
     worse=["W1_spawn_idle_1m:bytes_per_process"])

# A maximum is one sample a run (the worst restart of W3's), so it follows the host's spells: it
# is shown with its change but never gated. The same run's p99 twice as slow still fails.
case("a maximum twice as slow is shown, not gated", base,
     make_run(seed=30, scale={("W3_restart_latency", "max_us"): 2.0}), expect=0,
     verdicts={"W3_restart_latency:max_us": "not gated (a maximum)"})
case("the p99 beside it twice as slow fails", base,
     make_run(seed=31, scale={("W3_restart_latency", "max_us"): 2.0, ("W3_restart_latency", "p99_us"): 2.0}),
     expect=1, worse=["W3_restart_latency:p99_us"], causes=[r"W3_restart_latency:p99_us is \+"])

# A scheduling count says where a restart ran, near 0 when all is well: a percentage of it means
# nothing, so it is shown and never gated; the latency it would explain is.
case("steals and parks ten times as many are shown, not gated", base,
     make_run(seed=32, scale={("W3_restart_latency", "steals_per_restart"): 10.0,
                              ("W3_restart_latency", "parks_per_restart"): 10.0}), expect=0,
     verdicts={"W3_restart_latency:steals_per_restart": "not gated (a scheduling count)",
               "W3_restart_latency:parks_per_restart": "not gated (a scheduling count)"})

# Throughput: higher is better. Fewer messages per second fails; more passes.
case("fan-in throughput 30% lower fails", base, make_run(seed=7, scale={("W6_fan_in", "msgs_per_s"): 0.7}),
     expect=1, worse=["W6_fan_in:1/msgs_per_s"])
case("fan-in throughput 30% higher passes (better)", base, make_run(seed=8, scale={("W6_fan_in", "msgs_per_s"): 1.3}),
     expect=0, verdicts={"W6_fan_in:1/msgs_per_s": "better"})
case("skynet 30% faster passes (better)", base, make_run(seed=9, scale={("W4_skynet_1m", "wall_ms"): 0.7}),
     expect=0, verdicts={"W4_skynet_1m:wall_ms": "better"})

# The margin: 6% slower, clearly (noise 1%), is within 10% but not within 3%.
quiet = make_run(seed=10, noise=0.01)
six = make_run(seed=11, noise=0.01, scale={("W4_skynet_1m", "wall_ms"): 1.06})
case("6% slower passes within the default 10% margin", quiet, six, expect=0,
     verdicts={"W4_skynet_1m:wall_ms": "worse, within margin"})
case("6% slower fails with --margin 3", quiet, six, expect=1, margin=3, worse=["W4_skynet_1m:wall_ms"])

# The U test: a median 20% worse on samples that overlap is noise, not a regression.
noisy_base = [60, 80, 100, 120, 140, 160, 180, 200, 220]
noisy_run = [40, 60, 80, 170, 175, 180, 190, 260, 280]  # median 175 against 140: +25%
case("a worse median that the U test finds not significant passes", make_run(seed=12, override={("W4_skynet_1m", "wall_ms"): noisy_base}),
     make_run(seed=12, override={("W4_skynet_1m", "wall_ms"): noisy_run}), expect=0,
     verdicts={"W4_skynet_1m:wall_ms": "not significant"})

# A benchmark that failed in the run fails the gate; nothing in common is an error, not a pass.
case("a benchmark that failed in the run fails", base, make_run(seed=13, errors=("W4_skynet_1m",)), expect=1)
case("nothing in common is an error (2)", base, {"context": {}, "benchmarks": []}, expect=2)

# A benchmark that fails its own check in some repetitions only (a wrong skynet sum, lost
# acknowledgements, a driver that never reported) fails the gate: one line per failed
# repetition, naming the benchmark, the repetition and the reason; the other figures are still
# compared, and a repetition that failed is not reported again as a figure missing.
sum_error = "skynet: the root got 499999499999, not 499999500000"
ack_error = "spawn_idle: 999999 acknowledgements, not 1000000"
hang_error = "no report from the workload's driver process within 120 s"
case("failed checks in some repetitions fail, each named with its repetition and reason", base,
     make_run(seed=14, errors={("W4_skynet_1m", 2): sum_error, ("W1_spawn_idle_1m", 8): ack_error,
                               ("W6_fan_in", 0): hang_error}), expect=1,
     causes=[r"W4_skynet_1m, repetition 3 of 9: " + re.escape(sum_error),
             r"W1_spawn_idle_1m, repetition 9 of 9: " + re.escape(ack_error),
             r"W6_fan_in, repetition 1 of 9: " + re.escape(hang_error)])
case("a benchmark that failed in every repetition fails, once per repetition", base,
     make_run(seed=15, errors={("W3_restart_latency", i): "restart_latency: stopping the supervisor: timeout"
                               for i in range(REPETITIONS)}), expect=1,
     causes=[rf"W3_restart_latency, repetition {i + 1} of 9: restart_latency: stopping the supervisor: timeout"
             for i in range(REPETITIONS)])

# A figure or a whole benchmark of the baseline that the run lacks is a failure, not a warning:
# the gate cannot vouch for what it did not measure. The message says how to remove one on
# purpose (refresh the baseline).
refresh = r".*tools/regress --update-baseline"
case("a figure of the baseline missing from the run fails", base,
     make_run(seed=16, drop={("W1_spawn_idle_1m", "stop_ms")}), expect=1,
     causes=[r"W1_spawn_idle_1m:stop_ms is in the baseline but not in the run" + refresh])
case("a benchmark of the baseline missing from the run fails, once for the benchmark", base,
     make_run(seed=17, drop={"W6_fan_in", "micro_table_lookup"}), expect=1,
     causes=[r"W6_fan_in is in the baseline but not in the run \(2 figures\)" + refresh,
             r"micro_table_lookup is in the baseline but not in the run \(1 figure\)" + refresh])
case("a figure in the run but not in the baseline is only a warning", make_run(seed=18, drop={"W6_fan_in"}),
     make_run(seed=19), expect=0)

# A run too small to decide fails. compare.py's U test (scipy's two-sided Mann-Whitney, exact
# for small samples) gives at least p = 2 / C(n1 + n2, n1), reached when every repetition of the
# run is worse than every one of the baseline: 2 against 9 gives 2/55 = 0.036, never below the
# gate's alpha 0.01, so a W4 twice as slow would pass; 3 against 9 gives 2/220 = 0.0091, which
# can. Likewise 4 against 4 (2/70 = 0.029) cannot decide and 5 against 5 (2/252 = 0.0079) can;
# against a baseline of 4 a run needs 6 (4 against 5: 2/126 = 0.016; against 6: 2/210 = 0.0095).
twice = {("W4_skynet_1m", "wall_ms"): 2.0}
too_small = r"too few repetitions to decide: {} in the run against {} in the baseline.*run at least {}"
case("2 repetitions against the baseline's 9 cannot decide: fails, asking for 3", base,
     make_run(seed=20, scale=twice, repetitions=2), expect=1, causes=[too_small.format(2, 9, 3)])
case("3 repetitions against 9, the least that can decide: W4 twice as slow fails as WORSE", base,
     make_run(seed=21, scale=twice, repetitions=3), expect=1, worse=["W4_skynet_1m:wall_ms"],
     causes=[r"W4_skynet_1m:wall_ms is \+\d+\.\d% worse than the baseline"])
case("3 repetitions against 9 of unchanged figures pass", base, make_run(seed=22, repetitions=3), expect=0)
four, five = make_run(seed=23, repetitions=4), make_run(seed=24, repetitions=5)
case("4 repetitions against 4 cannot decide: fails, asking for 6 against this baseline", four,
     make_run(seed=25, scale=twice, repetitions=4), expect=1, causes=[too_small.format(4, 4, 6)])
case("5 repetitions against 5: W4 twice as slow fails as WORSE", five,
     make_run(seed=26, scale=twice, repetitions=5), expect=1, worse=["W4_skynet_1m:wall_ms"],
     causes=[r"W4_skynet_1m:wall_ms is \+\d+\.\d% worse than the baseline"])

# Every cause at once: each on its own line, then a non-zero exit.
case("a slower figure, a failed repetition and a missing figure: three lines", base,
     make_run(seed=27, scale={("W3_restart_latency", "p50_us"): 2.0}, errors={("W4_skynet_1m", 4): sum_error},
              drop={("W6_fan_in", "wall_ms")}), expect=1, worse=["W3_restart_latency:p50_us"],
     causes=[r"W3_restart_latency:p50_us is \+\d+\.\d% worse",
             r"W4_skynet_1m, repetition 5 of 9: " + re.escape(sum_error),
             r"W6_fan_in:wall_ms is in the baseline but not in the run"])


def report(title, status, problems, output):
    """One line for a tool run's case, and its problems with the end of its output if it failed."""
    print(f"[{'ok' if not problems else 'FAILED'}] {title} (exit {status})")
    if problems:
        failures.append(title)
        for p in problems:
            print(f"    {p}")
        print("\n".join("    " + line for line in output.splitlines()[-8:]))


def refused(title, command, needs):
    """tools/regress must refuse a run too small to decide before it builds anything: a cmake
    that fails at once stands first on PATH, so reaching the build shows up as its message."""
    with tempfile.TemporaryDirectory(prefix="coppice-regress-test-") as tmp:
        fake = Path(tmp) / "cmake"
        fake.write_text("#!/bin/sh\necho 'regress test: tools/regress reached the build' >&2\nexit 97\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        env = dict(os.environ, PATH=f"{tmp}:{os.environ['PATH']}")
        done = subprocess.run([str(REGRESS), *command], capture_output=True, text=True, timeout=120, env=env)
    output = done.stdout + done.stderr
    problems = []
    if done.returncode == 0:
        problems.append("exit status 0, expected a refusal")
    if "reached the build" in output:
        problems.append("it went on to build")
    if not re.search(rf"at least {needs}\b", output):
        problems.append(f"does not say that at least {needs} repetitions are needed")
    report(title, done.returncode, problems, output)


# The committed baseline has 9 repetitions of each benchmark (results/baseline/README.md).
refused("tools/regress --repetitions 2 is refused before building, asking for 3", ["--repetitions", "2"], 3)
refused("tools/regress --update-baseline --repetitions 4 is refused (4 against 4 cannot decide), asking for 5",
        ["--update-baseline", "--repetitions", "4"], 5)
refused("tools/regress --against HEAD --repetitions 4 is refused (4 a side cannot decide), asking for 5",
        ["--against", "HEAD", "--repetitions", "4"], 5)


def against_unknown_revision():
    """--against a name git does not know is a usage error (2), said before anything is built."""
    title = "tools/regress --against an unknown revision exits 2 before building, naming it"
    revision = "no-such-revision-of-coppice"
    done = subprocess.run([str(REGRESS), "--against", revision], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    problems = []
    if done.returncode != 2:
        problems.append(f"exit status {done.returncode}, expected 2")
    if f"--against {revision}: not a git revision" not in output:
        problems.append("does not name the revision")
    if "Building" in output or "ninja" in output:
        problems.append("it went on to build")
    report(title, done.returncode, problems, output)


if (SOURCE / ".git").exists():
    against_unknown_revision()
else:
    print("[skipped] tools/regress --against an unknown revision (not a git checkout)")


def bench_exit_status():
    """coppice_bench exits non-zero when a benchmark fails its check (SkipWithError), and says
    which and why; COPPICE_BENCH_FAIL is the workloads' test hook that fails every check of the
    program with its text as the reason; the filter picks the benchmark."""
    title = "coppice_bench exits non-zero after a benchmark's failed check, naming it"
    with tempfile.TemporaryDirectory(prefix="coppice-regress-test-") as tmp:
        out = Path(tmp) / "run.json"
        command = [str(BENCH), "--benchmark_filter=^W5_ping_pong/workers:1/", f"--benchmark_out={out}",
                   "--benchmark_out_format=json"]
        env = dict(os.environ, COPPICE_BENCH_FAIL="forced by the regress test")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        runs = json.loads(out.read_text())["benchmarks"] if out.exists() else []
        clean = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    problems = []
    if done.returncode == 0:
        problems.append("exit status 0 after a failed check")
    if not any(r.get("error_occurred") and "forced by the regress test" in r.get("error_message", "") for r in runs):
        problems.append("the JSON does not mark the benchmark as failed with the hook's reason")
    if not re.search(r"W5_ping_pong/workers:1.*forced by the regress test", done.stderr):
        problems.append("stderr does not name the failed benchmark and its reason")
    if clean.returncode != 0:
        problems.append(f"without the hook it exits {clean.returncode}, expected 0")
    report(title, done.returncode, problems, output)


if BENCH is not None:
    bench_exit_status()
else:
    print("[skipped] coppice_bench's exit status (no --bench COPPICE_BENCH given)")

if failures:
    print(f"{len(failures)} case(s) failed: {failures}")
    sys.exit(1)
print("all cases passed")
