# Compares a run of coppice's benchmarks against the baseline with Google Benchmark's own
# comparison tool, and says whether any figure got significantly worse by more than a margin.
#
# Usage: /usr/bin/python3 tools/regress_compare.py [--margin PCT] [--alpha A] [--filtered] BASELINE_JSON RUN_JSON
#
# Both files are Google Benchmark JSON as tools/bench_results.py merges it (results/latest.json,
# results/baseline/baseline.json): every repetition under the benchmark's canonical name.
# Exit status: 0 no regression, 1 a regression (or a benchmark that failed in the run),
# 2 nothing to compare or the tool could not run.
#
# Why the runs are converted first. compare.py compares real_time and cpu_time, lower being
# better. coppice's workloads report their figures as user counters (spawn_ms, p50_us,
# bytes_per_process, msgs_per_s, ...), with a manual time that is only one of them (W1's is
# spawn_ms: stop_ms and bytes_per_process would go unchecked) and a cpu_time that is the
# benchmark thread's, not the workers' (meaningless here). So each (benchmark, counter) becomes
# a benchmark of its own, named "W1_spawn_idle_1m:stop_ms", whose real_time and cpu_time are the
# counter's value in each repetition: compare.py then computes its change and its U test on the
# figure itself. Lower must mean better, so throughputs (counters ending in "_per_s":
# msgs_per_s, round_trips_per_s) are inverted into time per item, "W6_fan_in:1/msgs_per_s" in ns
# per message: a time like the others, positive (negating them instead would feed compare.py
# negative times, whose geometric mean is undefined), and what a slowdown makes grow. A drop of
# d in throughput shows as a growth of d / (1 - d) in time per item (10% fewer messages per
# second: 11.1% more time per message). Each figure is given to compare.py in the time unit
# that keeps four digits in its table, which prints whole numbers (a 1.3 µs p50 as 1302 ns);
# bytes stay bytes (compare.py needs a time unit, "ns" is only a label there). Micro-benchmarks,
# which have no counters, are judged on their real_time (wall time per operation; their
# cpu_time is the benchmark thread's too).
#
# The verdict. A figure regresses when compare.py's U test on its repetitions finds the two
# samples different (p < alpha, the tool's two-sided Mann-Whitney test, run with --alpha) AND
# the run's median is worse than the baseline's median by more than the margin (compare.py's
# change between the two "_median" entries: (new - old) / old, on the lower-is-better value).
# The U test keeps noise from failing the gate; the margin keeps a real but small change (a
# few percent, within what this 2-core machine drifts by) from failing it.
#
# alpha defaults to 0.01, not compare.py's 0.05: the gate tests some 40 figures at once, so at
# 0.05 two of them look significant in an average run of unchanged code, and repetitions on a
# shared host are not quite independent (slow spells last seconds). With 9 repetitions a side,
# p < 0.01 still holds whenever at most about 10 of the 81 (baseline, run) pairs are in the
# other order, which a shift beyond the margin gives on every figure but the noisiest. Seen
# here: two back-to-back runs of the same commit against its baseline; one passed, the other
# at 0.05 failed on micro_call_round_trip (+18%, p = 0.02: a call round trip between the two
# cores spreads from 320 to 540 ns within one run), at 0.01 both pass.
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMPARE = Path("/usr/share/benchmark/compare.py")  # Debian's libbenchmark-tools
PYTHON = "/usr/bin/python3"  # Debian's, with python3-numpy and python3-scipy

# Fields of a Google Benchmark run that are not counters (as in tools/bench_results.py).
STANDARD_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
}
TO_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}


def higher_is_better(counter):
    return counter.endswith("_per_s")


def counter_figure(name, counter, value):
    """(figure name, lower-is-better value for compare.py, unit shown) of one counter value."""
    if higher_is_better(counter):
        return f"{name}:1/{counter}", (1e9 / value if value > 0 else float("inf")), "/s, gated as 1/x"
    for suffix, scale, unit in (("_ms", 1e6, "ms"), ("_us", 1e3, "µs"), ("_ns", 1.0, "ns")):
        if counter.endswith(suffix):
            return f"{name}:{counter}", value * scale, unit
    if counter.startswith("ns_"):
        return f"{name}:{counter}", value, "ns"
    if counter.startswith("bytes_"):
        return f"{name}:{counter}", value, "B"
    return f"{name}:{counter}", value, ""


def figures_of(path):
    """{figure: {"values": [...], "shown": [...], "unit": u, "higher": bool}}, and the names of
    benchmarks that failed. "values" are compare.py's (lower is better, ns); "shown" the
    figure as the benchmark reported it."""
    data = json.loads(Path(path).read_text())
    figures, failed = {}, set()
    for run in data.get("benchmarks", []):
        if run.get("run_type") == "aggregate":
            continue  # medians are recomputed from the repetitions
        name = run["name"]
        if run.get("error_occurred"):
            failed.add(name)
            continue
        counters = {k: v for k, v in run.items()
                    if k not in STANDARD_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if counters:
            items = [(counter_figure(name, c, v), v, higher_is_better(c)) for c, v in sorted(counters.items())]
        else:
            unit = run.get("time_unit", "ns")
            items = [((name, run["real_time"] * TO_NS.get(unit, 1.0), unit), run["real_time"], False)]
        for (figure, value, unit), shown, higher in items:
            f = figures.setdefault(figure, {"values": [], "shown": [], "unit": unit, "higher": higher})
            f["values"].append(value)
            f["shown"].append(shown)
    return figures, failed


def display_units(base, names):
    """Per figure, the time unit compare.py shows it in: the largest in which the baseline's
    median is at least 1000 (compare.py prints whole numbers), the same for both sides."""
    units = {}
    for figure in names:
        median = statistics.median(base[figure]["values"])
        units[figure] = next((u for u in ("s", "ms", "us") if median / TO_NS[u] >= 1000), "ns")
    return units


def gbench_json(figures, names, units):
    """Google Benchmark JSON with one benchmark per figure: its repetitions, then its median."""
    benchmarks = []
    for family, figure in enumerate(names):
        unit = units[figure]
        values = [v / TO_NS[unit] for v in figures[figure]["values"]]
        common = {"family_index": family, "per_family_instance_index": 0, "run_name": figure,
                  "repetitions": len(values), "threads": 1, "iterations": 1, "time_unit": unit}
        for i, v in enumerate(values):
            benchmarks.append(dict(common, name=figure, run_type="iteration", repetition_index=i,
                                   real_time=v, cpu_time=v))
        median = statistics.median(values)
        benchmarks.append(dict(common, name=f"{figure}_median", run_type="aggregate", aggregate_name="median",
                               aggregate_unit="time", real_time=median, cpu_time=median))
    return {"context": {}, "benchmarks": benchmarks}


def show(value):
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.2f} M"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser(description="compare a run of coppice's benchmarks against the baseline")
    parser.add_argument("--margin", type=float, default=10.0,
                        help="percent by which a figure's median may get worse before it fails (default 10)")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="significance level of compare.py's U test (default 0.01)")
    parser.add_argument("--filtered", action="store_true",
                        help="the run is of some benchmarks only: do not warn of each baseline figure it lacks")
    parser.add_argument("baseline")
    parser.add_argument("run")
    args = parser.parse_args()
    if args.margin < 0 or not 0 < args.alpha < 1:
        parser.error("--margin must be >= 0 and --alpha between 0 and 1")
    if not COMPARE.is_file():
        print(f"regress: {COMPARE} is missing: install libbenchmark-tools (tools/setup)", file=sys.stderr)
        return 2

    base, _ = figures_of(args.baseline)
    run, failed = figures_of(args.run)
    common = [f for f in base if f in run]
    only_base = [f for f in base if f not in run]
    only_run = [f for f in run if f not in base]
    # A benchmark of the baseline that failed in the run is a failure of the gate, not a figure
    # gone missing.
    failed_figures = [f for f in only_base if f.split(":")[0] in failed]
    only_base = [f for f in only_base if f not in failed_figures]

    if not common:
        print("regress: no figure in common between the baseline and the run", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="coppice-regress-") as tmp:
        paths = {}
        units = display_units(base, common)
        for side, figures in (("baseline", base), ("run", run)):
            paths[side] = os.path.join(tmp, f"{side}.json")
            Path(paths[side]).write_text(json.dumps(gbench_json(figures, common, units)))
        diff_path = os.path.join(tmp, "diff.json")
        command = [PYTHON, str(COMPARE), "--no-color", "-a", "--alpha", str(args.alpha), "-d", diff_path,
                   "benchmarks", paths["baseline"], paths["run"]]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(diff_path):
            print("regress: compare.py failed:", file=sys.stderr)
            print(done.stdout + done.stderr, file=sys.stderr)
            return 2
        print("Google Benchmark's compare.py (Time = change of the median, lower is better; "
              "throughputs as 1/x; _pvalue = U test):")
        print(done.stdout.replace(paths["baseline"], args.baseline).replace(paths["run"], args.run))
        diff = {entry["name"]: entry for entry in json.loads(Path(diff_path).read_text())}

    rows, regressions = [], []
    for figure in common:
        entry, median = diff.get(figure), diff.get(f"{figure}_median")
        if entry is None or median is None:
            print(f"regress: compare.py did not report {figure}", file=sys.stderr)
            return 2
        change = median["measurements"][0]["time"]  # (new - old) / old of the medians, lower is better
        utest = entry.get("utest") or {}
        p = utest.get("time_pvalue")
        significant = p is not None and p < args.alpha  # a NaN p (all values equal) is not significant
        if change * 100 > args.margin and significant:
            verdict = "WORSE"
            regressions.append(figure)
        elif change > 0 and significant:
            verdict = "worse, within margin"
        elif change > 0:
            verdict = "not significant" if p is not None else "no U test (too few repetitions)"
        elif change < 0 and significant:
            verdict = "better"
        else:
            verdict = "same"
        b, r = base[figure], run[figure]
        rows.append([figure, b["unit"], show(statistics.median(b["shown"])), show(statistics.median(r["shown"])),
                     f"{change * 100:+.1f}%", "–" if p is None else f"{p:.4f}",
                     f"{len(b['values'])} vs {len(r['values'])}", verdict])

    header = ["figure", "unit", "baseline median", "run median", "change", "U test p", "repetitions", "verdict"]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
    print(f"Verdict (margin {args.margin:g}%, alpha {args.alpha:g}; change is of the lower-is-better value, "
          "time per item for 1/x throughputs):")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    if args.filtered and only_base:
        print(f"regress: {len(only_base)} figure(s) of the baseline not run (filtered out)")
    else:
        for figure in only_base:
            print(f"regress: warning: {figure} is in the baseline but not in the run")
    for figure in only_run:
        print(f"regress: warning: {figure} is not in the baseline (refresh it: tools/regress --update-baseline)")
    for figure in failed_figures:
        print(f"regress: FAILED: {figure}: its benchmark failed in the run")

    print()
    if regressions or failed_figures:
        what = ", ".join(regressions + failed_figures)
        print(f"regress: FAILED: {len(regressions)} figure(s) significantly worse than the baseline by more "
              f"than {args.margin:g}%{', benchmarks failed' if failed_figures else ''}: {what}")
        return 1
    print(f"regress: ok: {len(common)} figure(s) compared, none significantly worse by more than {args.margin:g}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
