# Merges the runs of tools/bench into one Google Benchmark JSON and writes the summary table.
#
# Usage: bench_results.py RUNS_DIR LATEST_JSON SUMMARY_MD
#
# RUNS_DIR holds one Google Benchmark JSON file per program run (a workload runs once per
# fresh program; the micro-benchmarks run together, with repetitions). The merged file keeps
# every repetition under the benchmark's canonical name (BENCHMARKS.md's: Google Benchmark's
# "/iterations:1" and "/manual_time" suffixes dropped) and adds median, min and max
# aggregates. The summary puts each figure's median beside the peers' figures and the target,
# and the Parent's (P1, P2) beside W3b's and W2's from the same run.
import json
import re
import statistics
import sys
from pathlib import Path

# Fields of a Google Benchmark run that are not counters.
STANDARD_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
}

# BENCHMARKS.md, "Figures to reach": (benchmark, counter, figure, unit, Erlang/OTP 25, Go 1.19,
# CAF 0.17, Tokio 1.24, must reach, aims for). Targets are (direction, value): "le" means the
# figure must be at most the value, "ge" at least.
FIGURES = [
    ("W1_spawn_idle_1m", "spawn_ms", "W1 spawn 1M, until all acknowledged", "ms",
     "5549", "4348 cold", "2785", "887 cold", ("le", 400), ("le", 150)),
    ("W1_spawn_idle_1m", "bytes_per_process", "W1 bytes per idle process (RSS)", "B",
     "2739", "2818", "1225", "362", ("le", 300), ("le", 150)),
    ("W1_spawn_idle_1m", "stop_ms", "W1 stop 1M, until all are gone", "ms",
     "1081", "367", "7489", "437", ("le", 250), ("le", 100)),
    ("W4_skynet_1m", "wall_ms", "W4 skynet 1M", "ms",
     "3666", "911", "2386", "524", ("le", 250), ("le", 100)),
    ("W5_ping_pong/workers:1", "ns_per_round_trip", "W5 ping-pong, 1 worker", "ns/round trip",
     "576", "284", "1132", "144", ("le", 120), ("le", 60)),
    ("W5_ping_pong/workers:2", "ns_per_round_trip", "W5 ping-pong, 2 workers", "ns/round trip",
     "566", "449", "1715", "184", ("le", 150), ("le", 100)),
    ("W6_fan_in", "msgs_per_s", "W6 fan-in 10M messages", "M msg/s",
     "4.6", "13.9", "5.2", "7.9", ("ge", 25e6), ("ge", 50e6)),
    ("W6_fan_in", "wall_ms", "W6 fan-in, wall time", "ms", "", "", "", "", None, None),
    ("W7_pairs_throughput", "round_trips_per_s", "W7 1,000 pairs", "M round trips/s",
     "0.86", "4.7", "1.2", "10.0", ("ge", 15e6), ("ge", 40e6)),
    ("W7_pairs_throughput", "wall_ms", "W7 1,000 pairs, wall time", "ms", "", "", "", "", None, None),
]

# The supervision workloads, whose peers differ: (benchmark, counter, figure, unit, Erlang/OTP 25,
# Elixir 1.14, Go 1.19, CAF 0.17, Tokio 1.24, must reach, aims for). Go, CAF and Tokio have no
# supervisors: BENCHMARKS.md's figures for them are hand-rolled equivalents.
SUPERVISOR_FIGURES = [
    ("W2_dynsup_1m", "start_ms", "W2 start 1M children, each start awaited", "ms",
     "12214", "22027", "7609 (hand-rolled)", "", "", ("le", 1500), ("le", 500)),
    ("W2_dynsup_1m", "bytes_per_child", "W2 bytes per child (RSS)", "B",
     "3089", "3298", "2996", "", "", ("le", 500), ("le", 300)),
    ("W2_dynsup_1m", "shutdown_ms", "W2 shut down with 1M children", "ms",
     "29173", "> 60 s", "3748", "", "", ("le", 1000), ("le", 200)),
    ("W3_restart_latency", "p50_us", "W3 restart, p50", "µs",
     "117", "119", "", "5.8 (hand-rolled)", "0.55 (hand-rolled)", ("le", 2), ("le", 0.5)),
    ("W3_restart_latency", "p90_us", "W3 restart, p90", "µs", "", "", "", "", "", None, None),
    ("W3_restart_latency", "p99_us", "W3 restart, p99", "µs",
     "612", "530", "", "88", "1.2", None, ("le", 2)),
    ("W3_restart_latency", "p999_us", "W3 restart, p99.9", "µs",
     "891", "796", "", "123", "21", ("le", 50), ("le", 10)),
    ("W3_restart_latency", "max_us", "W3 restart, max", "µs",
     "3515", "967", "", "1210", "129", None, ("le", 100)),
    ("W3b_restart_one_for_all_100", "p50_us", "W3b one_for_all 100, p50", "µs",
     "999", "850", "", "699 (hand-rolled)", "", ("le", 200), ("le", 30)),
    ("W3b_restart_one_for_all_100", "p99_us", "W3b one_for_all 100, p99", "µs",
     "2041", "1549", "", "2217", "", None, ("le", 100)),
]
SUPERVISOR_HEADER = ["figure", "unit", "coppice median", "min – max", "Erlang/OTP 25", "Elixir 1.14", "Go 1.19",
                     "CAF 0.17", "Tokio 1.24", "must reach", "met"]

# The Parent's workloads (no peer figures, no targets), each beside a figure of the same kind
# from the same run: (benchmark, counter, figure, unit, beside it: benchmark, counter, label).
PARENT_FIGURES = [
    ("P1_parent_bound_pair_restart", "p50_us", "P1 bound pair restart, p50", "µs",
     "W3b_restart_one_for_all_100", "p50_us", "W3b one_for_all 100, p50"),
    ("P1_parent_bound_pair_restart", "p90_us", "P1 bound pair restart, p90", "µs",
     "W3b_restart_one_for_all_100", "p90_us", "W3b one_for_all 100, p90"),
    ("P1_parent_bound_pair_restart", "p99_us", "P1 bound pair restart, p99", "µs",
     "W3b_restart_one_for_all_100", "p99_us", "W3b one_for_all 100, p99"),
    ("P1_parent_bound_pair_restart", "p999_us", "P1 bound pair restart, p99.9", "µs",
     "W3b_restart_one_for_all_100", "p999_us", "W3b one_for_all 100, p99.9"),
    ("P1_parent_bound_pair_restart", "max_us", "P1 bound pair restart, max", "µs",
     "W3b_restart_one_for_all_100", "max_us", "W3b one_for_all 100, max"),
    ("P2_parent_ephemeral_100k", "start_ms", "P2 start 100k ephemeral children", "ms", None, None, ""),
    ("P2_parent_ephemeral_100k", "stop_ms", "P2 100k ephemeral children stop on their own", "ms", None, None, ""),
    ("P2_parent_ephemeral_100k", "bytes_per_child", "P2 bytes per child (RSS)", "B",
     "W2_dynsup_1m", "bytes_per_child", "W2 bytes per child"),
]

# The listing's costs (coppice/observe.hpp), in the Parent table's shape: each beside a figure
# of the same scale from the same run.
OBSERVE_FIGURES = [
    ("O1_list_processes_1m", "list_ms", "O1 list 1M processes", "ms",
     "W1_spawn_idle_1m", "spawn_ms", "W1 spawn 1M"),
    ("O1_list_processes_1m", "visit_ms", "O1 for_each_process over 1M (no snapshot)", "ms",
     "W1_spawn_idle_1m", "spawn_ms", "W1 spawn 1M"),
    ("O1_list_processes_1m", "details_ms", "O1 list 1M processes with details", "ms",
     "W1_spawn_idle_1m", "stop_ms", "W1 stop 1M"),
    ("O1_list_processes_1m", "bytes_per_entry", "O1 listing bytes per entry (RSS)", "B",
     "W1_spawn_idle_1m", "bytes_per_process", "W1 bytes per idle process"),
    ("O1_list_processes_1m", "metrics_us", "O1 metrics() with 1M processes", "µs", None, None, ""),
]


def canonical_name(name):
    name = re.sub(r"/iterations:\d+", "", name)
    name = re.sub(r"/repeats:\d+", "", name)
    name = re.sub(r"/(manual_time|real_time)$", "", name)
    return name


def load_runs(runs_dir):
    context = None
    loads = []  # each program's one-minute load average as it started: how noisy the runs were
    groups = {}  # canonical name -> list of iteration runs, in the order they ran
    # Workloads first, in the order they ran, then the micro-benchmarks.
    paths = sorted(Path(runs_dir).glob("*.json"), key=lambda p: (p.name.startswith("micro"), p.name))
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"bench_results: skipping {path.name}: {e}", file=sys.stderr)
            continue
        if context is None:
            context = data.get("context", {})
        if data.get("context", {}).get("load_avg"):
            loads.append(data["context"]["load_avg"][0])
        for run in data.get("benchmarks", []):
            if run.get("run_type") == "aggregate":
                continue  # recomputed below over all repetitions, whichever program ran them
            name = canonical_name(run["name"])
            run["name"] = name
            run["run_name"] = name
            groups.setdefault(name, []).append(run)
    context = context or {}
    if loads:
        context["load_avg_1min_range"] = [min(loads), max(loads)]
    return context, groups


def counters_of(run):
    return {k: v for k, v in run.items() if k not in STANDARD_FIELDS and isinstance(v, (int, float))}


def aggregate(runs, how, label):
    ok = [r for r in runs if not r.get("error_occurred")]
    if not ok:
        return None
    out = {k: ok[0][k] for k in ("name", "family_index", "per_family_instance_index", "threads", "time_unit")
           if k in ok[0]}
    out.update(run_name=ok[0]["name"], run_type="aggregate", repetitions=len(runs), aggregate_name=label,
               aggregate_unit="time", iterations=len(ok))
    out["name"] = f"{ok[0]['name']}_{label}"
    for field in ("real_time", "cpu_time"):
        out[field] = how([r[field] for r in ok])
    for key in counters_of(ok[0]):
        out[key] = how([r[key] for r in ok if key in r])
    return out


def merge(context, groups):
    # Each program numbered its benchmarks from 0; number them again across the merged file.
    families = {}
    instances = {}
    benchmarks = []
    for name, runs in groups.items():
        family = families.setdefault(name.split("/")[0], len(families))
        instance = instances.setdefault(name, sum(1 for n in instances if n.split("/")[0] == name.split("/")[0]))
        for i, run in enumerate(runs):
            run["family_index"] = family
            run["per_family_instance_index"] = instance
            run["repetitions"] = len(runs)
            run["repetition_index"] = i
            benchmarks.append(run)
        for label, how in (("median", statistics.median), ("min", min), ("max", max)):
            agg = aggregate(runs, how, label)
            if agg is not None:
                benchmarks.append(agg)
    return {"context": context, "benchmarks": benchmarks}


def figure_stats(groups, name, key):
    runs = [r for r in groups.get(name, []) if not r.get("error_occurred") and key in r]
    if not runs:
        return None
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values), len(values)


def show(value, unit):
    if unit.startswith("M "):
        return f"{value / 1e6:.2f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def target_text(target, unit):
    if target is None:
        return ""
    direction, value = target
    sign = "≤" if direction == "le" else "≥"
    return f"{sign} {show(value, unit)}"


def met(target, value):
    direction, bound = target
    return value <= bound if direction == "le" else value >= bound


def errors_of(groups, name):
    return sorted({r.get("error_message", "error") for r in groups.get(name, []) if r.get("error_occurred")})


def workload_rows(groups):
    rows = []
    for name, key, label, unit, erlang, go, caf, tokio, must, aim in FIGURES:
        if name not in groups:
            continue
        stats = figure_stats(groups, name, key)
        if stats is None:
            rows.append([label, unit, "error: " + "; ".join(errors_of(groups, name)), "", erlang, go, caf, tokio,
                         target_text(must, unit), "FAILED"])
            continue
        median, low, high, n = stats
        verdict = "" if must is None else ("yes" if met(must, median) else "NO")
        if aim is not None and met(aim, median):
            verdict += " (aim met)"
        rows.append([label, unit, show(median, unit), f"{show(low, unit)} – {show(high, unit)} (n={n})",
                     erlang, go, caf, tokio, target_text(must, unit), verdict])
    return rows


def supervisor_rows(groups):
    rows = []
    for name, key, label, unit, erlang, elixir, go, caf, tokio, must, aim in SUPERVISOR_FIGURES:
        if name not in groups:
            continue
        stats = figure_stats(groups, name, key)
        if stats is None:
            rows.append([label, unit, "error: " + "; ".join(errors_of(groups, name)), "", erlang, elixir, go, caf,
                         tokio, target_text(must, unit), "FAILED"])
            continue
        median, low, high, n = stats
        verdict = "" if must is None else ("yes" if met(must, median) else "NO")
        if aim is not None and met(aim, median):
            verdict += " (aim met)"
        rows.append([label, unit, show(median, unit), f"{show(low, unit)} – {show(high, unit)} (n={n})",
                     erlang, elixir, go, caf, tokio, target_text(must, unit), verdict.strip()])
    return rows


def parent_rows(groups, figures=None):
    rows = []
    for name, key, label, unit, other, other_key, other_label in (PARENT_FIGURES if figures is None else figures):
        if name not in groups:
            continue
        stats = figure_stats(groups, name, key)
        if stats is None:
            rows.append([label, unit, "error: " + "; ".join(errors_of(groups, name)), "", "", "", ""])
            continue
        median, low, high, n = stats
        row = [label, unit, show(median, unit), f"{show(low, unit)} – {show(high, unit)} (n={n})"]
        beside = figure_stats(groups, other, other_key) if other else None
        if beside is None:
            row += [f"{other_label} (not run)" if other else "", "", ""]
        else:
            b_median, b_low, b_high, b_n = beside
            row += [other_label, show(b_median, unit), f"{show(b_low, unit)} – {show(b_high, unit)} (n={b_n})"]
        rows.append(row)
    return rows


def micro_rows(groups):
    rows = []
    for name, runs in groups.items():
        if not name.startswith("micro_"):
            continue
        ok = [r for r in runs if not r.get("error_occurred")]
        if not ok:
            rows.append([name, "error: " + "; ".join(errors_of(groups, name)), ""])
            continue
        unit = ok[0].get("time_unit", "ns")
        values = [r["real_time"] for r in ok]
        rows.append([name, f"{statistics.median(values):.1f} {unit}",
                     f"{min(values):.1f} – {max(values):.1f} (n={len(values)})"])
    return rows


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


WORKLOAD_HEADER = ["figure", "unit", "coppice median", "min – max", "Erlang/OTP 25", "Go 1.19", "CAF 0.17",
                   "Tokio 1.24", "must reach", "met"]
PARENT_HEADER = ["figure", "unit", "coppice median", "min – max", "beside it (same run)", "its median", "its min – max"]
MICRO_HEADER = ["micro-benchmark", "median per operation", "min – max"]
MACHINE_KEYS = ["cpu_model", "cores", "memory", "kernel", "compiler", "build_type", "commit", "date"]


def main():
    if len(sys.argv) != 4:
        print("usage: bench_results.py RUNS_DIR LATEST_JSON SUMMARY_MD", file=sys.stderr)
        return 2
    runs_dir, latest, summary = sys.argv[1:]
    context, groups = load_runs(runs_dir)
    if not groups:
        print("bench_results: no benchmark ran", file=sys.stderr)
        return 1
    Path(latest).write_text(json.dumps(merge(context, groups), indent=2) + "\n")

    workloads = workload_rows(groups)
    supervisors = supervisor_rows(groups)
    parents = parent_rows(groups)
    observes = parent_rows(groups, OBSERVE_FIGURES)
    micros = micro_rows(groups)
    machine = ", ".join(f"{k}: {context[k]}" for k in MACHINE_KEYS if k in context)
    load = context.get("load_avg_1min_range")

    md = ["# coppice benchmark figures", "",
          f"Machine: {machine}.", ""]
    if load:
        md += [f"One-minute load average as each run started: {load[0]:.2f} to {load[1]:.2f} "
               f"(above 0.5, something else was running: expect slower, noisier figures).", ""]
    md += ["Medians over repetitions; each workload repetition ran in a fresh program (W1's figure is the "
           "first round on untouched memory). Peers' figures are BENCHMARKS.md's (median of 3 runs on a "
           "2 vCPU AMD EPYC VM); back-to-back runs drift by up to 1.8x there, so compare ratios.", ""]
    if workloads:
        md += ["## Workloads", "", markdown_table(WORKLOAD_HEADER, workloads), ""]
    if supervisors:
        md += ["## Supervision", "", markdown_table(SUPERVISOR_HEADER, supervisors), ""]
    if parents:
        md += ["## Parent", "", markdown_table(PARENT_HEADER, parents), ""]
    if observes:
        md += ["## Observability", "", markdown_table(PARENT_HEADER, observes), ""]
    if micros:
        md += ["## Micro-benchmarks", "", markdown_table(MICRO_HEADER, micros), ""]
    Path(summary).write_text("\n".join(md))

    print()
    print(f"Machine: {machine}")
    if load:
        print(f"One-minute load average as each run started: {load[0]:.2f} to {load[1]:.2f}")
    if workloads:
        print()
        print(text_table(WORKLOAD_HEADER, workloads))
    if supervisors:
        print()
        print(text_table(SUPERVISOR_HEADER, supervisors))
    if parents:
        print()
        print(text_table(PARENT_HEADER, parents))
    if observes:
        print()
        print(text_table(PARENT_HEADER, observes))
    if micros:
        print()
        print(text_table(MICRO_HEADER, micros))
    failed = (any(row[-1] == "FAILED" for row in workloads) or any(row[-1] == "FAILED" for row in supervisors) or any(row[2].startswith("error") for row in parents + observes)
              or any(row[1].startswith("error") for row in micros))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
