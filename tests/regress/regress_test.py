# The regression gate's comparison (tools/regress --compare), fed synthetic runs: it must fail
# on a run that is slower than the baseline and pass on one that is not. Runs no benchmark.
#
# usage: /usr/bin/python3 tests/regress/regress_test.py [SOURCE_DIR]
#
# Each case writes a baseline and a run in tools/bench_results.py's format (every repetition of
# a benchmark under its name, with median aggregates beside, which the gate must ignore) and
# checks tools/regress's exit status (0 passes, 1 a regression, 2 an error) and its verdicts.
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
REGRESS = SOURCE / "tools" / "regress"
REPETITIONS = 9

# A workload's typical figures: (benchmark, manual-time counter, {counter: value}), and a
# micro-benchmark's real_time.
WORKLOADS = [
    ("W1_spawn_idle_1m", "spawn_ms", {"spawn_ms": 113.0, "stop_ms": 90.6, "bytes_per_process": 218.0}),
    ("W3_restart_latency", "p50_us", {"p50_us": 1.3, "p90_us": 1.8, "p99_us": 2.3, "p999_us": 21.5,
                                      "max_us": 110.0}),
    ("W4_skynet_1m", "wall_ms", {"wall_ms": 163.0}),
    ("W6_fan_in", "wall_ms", {"msgs_per_s": 29.35e6, "wall_ms": 341.0}),
]
MICRO = [("micro_call_round_trip", 477.0), ("micro_table_lookup", 3.2)]
NOISELESS = {"bytes_per_process"}  # memory figures repeat exactly


def make_run(seed, scale=None, noise=0.02, override=None, errors=()):
    """A run of every benchmark, REPETITIONS times, each figure with +-noise around its value.
    scale: {(benchmark, counter or "real_time"): factor}; override: {(benchmark, counter): [values]}."""
    scale, override = scale or {}, override or {}
    rng = random.Random(seed)
    benchmarks = []
    for name, manual, counters in WORKLOADS:
        runs = []
        for i in range(REPETITIONS):
            run = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": REPETITIONS,
                   "repetition_index": i, "threads": 1, "iterations": 1, "time_unit": "ms"}
            if name in errors:
                run.update(error_occurred=True, error_message="synthetic failure")
                runs.append(run)
                continue
            for counter, value in counters.items():
                jitter = 1.0 if counter in NOISELESS else 1 + rng.uniform(-noise, noise)
                run[counter] = value * scale.get((name, counter), 1.0) * jitter
                if (name, counter) in override:
                    run[counter] = override[(name, counter)][i]
            run["real_time"] = run[manual]
            run["cpu_time"] = 0.5 + rng.random()  # the benchmark thread's: meaningless, must be ignored
            runs.append(run)
        benchmarks += runs
        ok = [r for r in runs if not r.get("error_occurred")]
        if ok:  # an aggregate as bench_results.py writes it; the gate recomputes its own
            median = dict(ok[len(ok) // 2], name=f"{name}_median", run_type="aggregate", aggregate_name="median")
            benchmarks.append(median)
    for name, value in MICRO:
        for i in range(REPETITIONS):
            real = value * scale.get((name, "real_time"), 1.0) * (1 + rng.uniform(-noise, noise))
            benchmarks.append({"name": name, "run_name": name, "run_type": "iteration", "repetitions": REPETITIONS,
                               "repetition_index": i, "threads": 1, "iterations": 1000, "time_unit": "ns",
                               "real_time": real, "cpu_time": 1.0 + rng.random()})
    return {"context": {"commit": f"synthetic-{seed}"}, "benchmarks": benchmarks}


failures = []


def case(title, baseline, run, expect, margin=None, worse=(), not_worse=(), verdicts=None):
    """Runs the gate on baseline and run; checks its exit status and which figures it calls WORSE."""
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
            for v in ("WORSE", "worse, within margin", "not significant", "better", "same"):
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

if failures:
    print(f"{len(failures)} case(s) failed: {failures}")
    sys.exit(1)
print("all cases passed")
