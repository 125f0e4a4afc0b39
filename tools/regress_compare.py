# Compares a run of coppice's benchmarks against the baseline with Google Benchmark's own
# comparison tool, and says whether the run passes the regression gate.
#
# Usage: /usr/bin/python3 tools/regress_compare.py [--margin PCT] [--alpha A] [--expect NAMES]
#                                                  [--also-failed CAUSES] BASELINE_JSON RUN_JSON
#        /usr/bin/python3 tools/regress_compare.py [--alpha A] --check-repetitions N [BASELINE_JSON]
#
# Both files are Google Benchmark JSON as tools/bench_results.py merges it (results/latest.json,
# results/baseline/baseline.json): every repetition under the benchmark's canonical name, the
# ones that failed their check kept with "error_occurred" and "error_message".
#
# The run fails the gate, with one "regress: FAILED: " line per cause, when
#   - a repetition of a benchmark failed (its own check, a driver that never reported): the
#     benchmark, the repetition and the reason, even if the other repetitions went well;
#   - a figure, or a whole benchmark, of the baseline is missing from the run (a benchmark that
#     --expect does not list was filtered out and is not missing); a benchmark removed on
#     purpose needs a refreshed baseline;
#   - the run is too small to decide: with n1 and n2 repetitions the U test can never give a p
#     below alpha (see smallest_p), so a figure twice as slow would pass;
#   - a figure is significantly worse than the baseline by more than the margin (the verdict);
#     a maximum (counter max_*, one sample a run) and a scheduling count (steals_*, parks_*) are
#     shown but not judged: see unjudged;
#   - a line of --also-failed CAUSES (tools/regress: a program that crashed or timed out
#     without a JSON to say so).
# --check-repetitions N checks only that a run of N repetitions can decide against BASELINE (or,
# without it, against a baseline of N, which --update-baseline would take) and says the least
# that can: tools/regress refuses a smaller run before building anything.
#
# Exit status: 0 the run passes, 1 it fails the gate (causes above), 2 nothing to compare, a
# refused --check-repetitions, or the tool could not run.
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
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_results import STANDARD_FIELDS, canonical_name

COMPARE = Path("/usr/share/benchmark/compare.py")  # Debian's libbenchmark-tools
PYTHON = "/usr/bin/python3"  # Debian's, with python3-numpy and python3-scipy
TO_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}
REFRESH = "if it was removed on purpose, refresh the baseline (tools/regress --update-baseline) and commit it"
MOST_REPETITIONS = 1000  # how far smallest_repetitions looks


@functools.lru_cache(maxsize=None)
def smallest_p(n_base, n_run):
    """The smallest p compare.py's U test can give with n_base and n_run repetitions: its own
    calc_utest (scipy's two-sided Mann-Whitney: exact when a side has 8 or fewer and no value
    repeats, else the normal approximation) on the most extreme samples, every run repetition
    worse than every baseline one: 2 / C(n_base + n_run, n_base) when exact. 1 when compare.py
    runs no U test (fewer than 2 repetitions a side). (Samples full of repeated values, such as
    a bytes figure that repeats exactly, go to the normal approximation with a tie correction,
    which can go lower; a run that can decide only those cannot decide the others.)"""
    sys.path.insert(0, str(COMPARE.parent))
    from gbench.report import calc_utest
    base, run = list(range(n_base)), list(range(n_base, n_base + n_run))
    _, _, p = calc_utest([base, run], [base, run])
    return 1.0 if p is None else float(p)


def smallest_repetitions(n_base, alpha):
    """The least number of run repetitions whose U test against n_base can give p < alpha, or
    None if none up to MOST_REPETITIONS can (smallest_p falls as the run grows)."""
    return next((n for n in range(1, MOST_REPETITIONS + 1) if smallest_p(n_base, n) < alpha), None)


def unjudged(figure):
    """Why the gate shows a figure without judging it, or None. A maximum
    ("W3b_restart_one_for_all_100:max_us") is one sample a run, the worst of thousands: it
    follows the host's slow spells (P1's went +68% and -15% in two same-run gates of unchanged
    code); its p99 and p999 are judged. A scheduling count ("W3_restart_latency:steals_per_restart")
    says where the work ran, to explain a latency, and is near 0 when all is well, so a percentage
    of it means nothing; the latency it explains is judged."""
    counter = figure.rpartition(":")[2]
    if counter.startswith("max_"):
        return "a maximum"
    if counter.startswith(("steals_", "parks_")):
        return "a scheduling count"
    return None


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
    """({figure: {"benchmark": b, "values": [...], "shown": [...], "unit": u, "higher": bool}},
    failed repetitions [(benchmark, repetition, of, reason)], {benchmark: figures it has}).
    "values" are compare.py's (lower is better, ns); "shown" the figure as the benchmark
    reported it. Repetitions are counted from 1, as bench_results.py numbered them."""
    data = json.loads(Path(path).read_text())
    figures, failed, benchmarks = {}, [], {}
    for run in data.get("benchmarks", []):
        if run.get("run_type") == "aggregate":
            continue  # medians are recomputed from the repetitions
        name = canonical_name(run["name"])
        benchmarks.setdefault(name, set())
        if run.get("error_occurred"):
            index = run.get("repetition_index")
            repetition = index + 1 if isinstance(index, int) else "?"
            failed.append((name, repetition, run.get("repetitions", "?"), run.get("error_message") or "no reason given"))
            continue
        counters = {k: v for k, v in run.items()
                    if k not in STANDARD_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if counters:
            items = [(counter_figure(name, c, v), v, higher_is_better(c)) for c, v in sorted(counters.items())]
        else:
            unit = run.get("time_unit", "ns")
            items = [((name, run["real_time"] * TO_NS.get(unit, 1.0), unit), run["real_time"], False)]
        for (figure, value, unit), shown, higher in items:
            f = figures.setdefault(figure, {"benchmark": name, "values": [], "shown": [], "unit": unit,
                                            "higher": higher})
            f["values"].append(value)
            f["shown"].append(shown)
            benchmarks[name].add(figure)
    return figures, failed, benchmarks


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def check_repetitions(args):
    """--check-repetitions: 0 when a run of N repetitions can decide, else the reason and 2."""
    n = args.check_repetitions
    if args.baseline:
        base, _, _ = figures_of(args.baseline)
        counts = [len(f["values"]) for f in base.values()]
        if not counts:
            print(f"regress: {args.baseline} holds no figure", file=sys.stderr)
            return 2
        n_base, against = min(counts), f"against the baseline's {min(counts)}"
    else:
        n_base, against = n, "for a baseline, compared with runs of as many"
    p = smallest_p(n_base, n)
    if p < args.alpha:
        return 0
    least = smallest_repetitions(n_base, args.alpha) if args.baseline else \
        next((m for m in range(2, MOST_REPETITIONS + 1) if smallest_p(m, m) < args.alpha), None)
    need = (f"use at least {least} (--repetitions {least})" if least is not None else
            f"no run of up to {MOST_REPETITIONS} can: refresh the baseline with more repetitions")
    print(f"regress: too few repetitions to decide: {n} {against}: the U test's p cannot go below {p:.4f}, "
          f"never below alpha {args.alpha:g}, so even a figure twice as slow would pass; {need}", file=sys.stderr)
    return 2


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
    parser.add_argument("--expect", metavar="NAMES",
                        help="file of the benchmarks the run was meant to hold, one a line (tools/regress's "
                             "list): the baseline's others were filtered out, not lost")
    parser.add_argument("--also-failed", metavar="CAUSES",
                        help="file of causes found while running, one a line, listed with the gate's own")
    parser.add_argument("--check-repetitions", type=int, metavar="N",
                        help="only check that a run of N repetitions can decide against BASELINE")
    parser.add_argument("baseline", nargs="?")
    parser.add_argument("run", nargs="?")
    args = parser.parse_args()
    if args.margin < 0 or not 0 < args.alpha < 1:
        parser.error("--margin must be >= 0 and --alpha between 0 and 1")
    if not COMPARE.is_file():
        print(f"regress: {COMPARE} is missing: install libbenchmark-tools (tools/setup)", file=sys.stderr)
        return 2
    if args.check_repetitions is not None:
        if args.run or args.check_repetitions < 1:
            parser.error("--check-repetitions takes N >= 1 and at most the baseline")
        return check_repetitions(args)
    if not args.run:
        parser.error("give the baseline and the run")

    base, _, base_benchmarks = figures_of(args.baseline)
    run, failed_runs, run_benchmarks = figures_of(args.run)
    also_failed = []
    if args.also_failed and Path(args.also_failed).exists():
        also_failed = [line.strip() for line in Path(args.also_failed).read_text().splitlines() if line.strip()]
    expected = None
    if args.expect:
        expected = {canonical_name(line.strip()) for line in Path(args.expect).read_text().splitlines() if line.strip()}
    if not run_benchmarks and not also_failed:
        print(f"regress: {args.run} holds no benchmark: nothing to compare", file=sys.stderr)
        return 2

    causes = []  # one line each, in the order: failed repetitions, missing, too small, worse, while running
    failed_benchmarks = set()
    for name, repetition, of, reason in failed_runs:
        causes.append(f"{name}, repetition {repetition} of {of}: {reason}")
        failed_benchmarks.add(name)

    common = [f for f in base if f in run]
    filtered_out = []
    for name, figures in base_benchmarks.items():
        if name not in run_benchmarks:
            if expected is not None and name not in expected:
                filtered_out.append(name)
            else:
                causes.append(f"{name} is in the baseline but not in the run ({plural(len(figures), 'figure')}): "
                              f"{REFRESH}")
            continue
        if not run_benchmarks[name] and name in failed_benchmarks:
            continue  # every repetition failed: named above, its figures are not lost besides
        for figure in sorted(figures - run_benchmarks[name]):
            causes.append(f"{figure} is in the baseline but not in the run: {REFRESH}")

    # Too small to decide: grouped by (baseline, run) repetitions, as they come from one cause.
    # A benchmark with a failed repetition has fewer left, for a cause already named.
    undecidable = {}
    for figure in common:
        if base[figure]["benchmark"] in failed_benchmarks or unjudged(figure):
            continue
        sizes = (len(base[figure]["values"]), len(run[figure]["values"]))
        if smallest_p(*sizes) >= args.alpha:
            undecidable.setdefault(sizes, []).append(figure)
    for (n_base, n_run), figures in sorted(undecidable.items()):
        least = smallest_repetitions(n_base, args.alpha)
        need = (f"run at least {least} (tools/regress --repetitions {least})" if least is not None else
                f"no run of up to {MOST_REPETITIONS} can: refresh the baseline with more repetitions")
        which = "every figure" if len(figures) == len(common) else \
            ", ".join(figures[:4]) + (f" and {len(figures) - 4} more" if len(figures) > 4 else "")
        causes.append(f"too few repetitions to decide: {n_run} in the run against {n_base} in the baseline, "
                      f"whose U test's p cannot go below {smallest_p(n_base, n_run):.4f}, never below alpha "
                      f"{args.alpha:g}, so even a figure twice as slow would pass ({which}); {need}")

    rows, regressions = [], []
    if common:
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

        for figure in common:
            entry, median = diff.get(figure), diff.get(f"{figure}_median")
            if entry is None or median is None:
                print(f"regress: compare.py did not report {figure}", file=sys.stderr)
                return 2
            change = median["measurements"][0]["time"]  # (new - old) / old of the medians, lower is better
            utest = entry.get("utest") or {}
            p = utest.get("time_pvalue")
            significant = p is not None and p < args.alpha  # a NaN p (all values equal) is not significant
            b, r = base[figure], run[figure]
            b_median, r_median = statistics.median(b["shown"]), statistics.median(r["shown"])
            if unjudged(figure):
                verdict = f"not gated ({unjudged(figure)})"
            elif change * 100 > args.margin and significant:
                verdict = "WORSE"
                regressions.append(figure)
                causes.append(f"{figure} is {change * 100:+.1f}% worse than the baseline (median {show(r_median)} "
                              f"against {show(b_median)} {b['unit']}; U test p = {p:.4f} < alpha {args.alpha:g}; "
                              f"margin {args.margin:g}%)")
            elif change > 0 and significant:
                verdict = "worse, within margin"
            elif change > 0:
                verdict = "not significant" if p is not None else "no U test (too few repetitions)"
            elif change < 0 and significant:
                verdict = "better"
            else:
                verdict = "same"
            rows.append([figure, b["unit"], show(b_median), show(r_median), f"{change * 100:+.1f}%",
                         "–" if p is None else f"{p:.4f}", f"{len(b['values'])} vs {len(r['values'])}", verdict])

        header = ["figure", "unit", "baseline median", "run median", "change", "U test p", "repetitions", "verdict"]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
        print(f"Verdict (margin {args.margin:g}%, alpha {args.alpha:g}; change is of the lower-is-better value, "
              "time per item for 1/x throughputs):")
        print(line(header))
        print(line(["-" * w for w in widths]))
        for row in rows:
            print(line(row))

    if filtered_out:
        print(f"regress: {plural(len(filtered_out), 'benchmark')} of the baseline not run (filtered out)")
    for figure in run:
        if figure not in base:
            print(f"regress: warning: {figure} is not in the baseline, so not gated "
                  "(refresh it: tools/regress --update-baseline)")
    causes += also_failed

    print()
    for cause in causes:
        print(f"regress: FAILED: {cause}")
    if causes:
        print(f"regress: the run fails the gate: {plural(len(causes), 'cause')} above")
        return 1
    maxima = sum(1 for f in common if unjudged(f))
    shown = f" ({plural(maxima, 'figure')} shown, not judged: maximums and scheduling counts)" if maxima else ""
    print(f"regress: ok: {len(common)} figure(s) compared{shown}, none significantly worse by more than "
          f"{args.margin:g}%, no benchmark failed or missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
