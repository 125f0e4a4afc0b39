# Writes results/summary.md from what tools/bench keeps under results/: coppice's own run
# (latest.json), the side-by-side run with the peers (peers.json, tools/bench --peers) and the
# scaling sweep (sweep.json, tools/bench --sweep), each with the commit and date it was taken
# at. With --readme, also rewrites README.md's figures table (between its "figures" markers)
# from peers.json: the README shows the table of one run, not figures gathered by hand.
#
# Usage: bench_summary.py --summary SUMMARY_MD [--latest LATEST_JSON] [--peers PEERS_JSON]
#                         [--sweep SWEEP_JSON] [--readme README_MD]
import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_results as br  # noqa: E402  (the tables of coppice's own run)

README_BEGIN = "<!-- figures: begin (tools/bench --peers writes this table from results/peers.json) -->"
README_END = "<!-- figures: end -->"


def load(path):
    if not path:
        return None
    p = Path(path)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"bench_summary: ignoring {path}: {e}", file=sys.stderr)
        return None


def groups_of(merged):
    """A merged Google Benchmark file (tools/bench_results.py's) back into name -> runs."""
    groups = {}
    for run in merged.get("benchmarks", []):
        if run.get("run_type") == "aggregate":
            continue
        groups.setdefault(run["name"], []).append(run)
    return groups


def fmt(value, unit):
    return br.show(value, unit)


def ratio_text(r):
    if r >= 10:
        return f"×{r:.0f}"
    if r >= 1:
        return f"×{r:.1f}"
    return f"×{r:.2f}"


def short(reasons):
    """The reasons of failed runs, without their details (kept for the list under the table)."""
    out = []
    for r in reasons:
        r = r.split(" (last progress")[0].split(": ")[0] if len(r) > 60 else r
        if r not in out:
            out.append(r)
    return "; ".join(out)


def cell(entry, unit, full):
    """One participant's figure: median (min – max) ×ratio, or why there is none."""
    if entry is None:
        return "not run"
    status = entry.get("status")
    if status == "skipped":
        return "–"
    if "median" not in entry:
        return "**failed**: " + short(entry.get("failures", ["no result"]))
    text = fmt(entry["median"], unit)
    if full and entry["n"] > 1:
        text += f" ({fmt(entry['min'], unit)} – {fmt(entry['max'], unit)})"
    if "ratio" in entry:
        text += f" {ratio_text(entry['ratio'])}"
    if entry.get("failures"):
        text += f" (**{len(entry['failures'])} failed**: {short(entry['failures'])})"
    return text


def peers_table(peers, full):
    parts = peers["participants"]
    header = ["figure", "unit"] + [p["name"] for p in parts]
    rows = []
    for f in peers["figures"]:
        if not f["results"]:
            continue  # a workload the run's filter left out
        unit = f["unit"] + (" (higher is better)" if f["better"] == "higher" else "")
        row = [f["title"], unit]
        for p in parts:
            entry = f["results"].get(p["id"])
            text = cell(entry, f["unit"], full)
            if p["id"] == "coppice" and entry and "median" in entry:
                text = f"**{text}**"
            row.append(text)
        rows.append(row)
    return header, rows


def labels_of(peers):
    """How each peer did each workload (hand-rolled, simple_one_for_one, ...), once per label."""
    seen = {}
    for f in peers["figures"]:
        for who, entry in f["results"].items():
            label = entry.get("label")
            if who != "coppice" and label:
                seen.setdefault((who, label), []).append(f["workload"])
    names = {p["id"]: p["name"] for p in peers["participants"]}
    lines = []
    for (who, label), workloads in seen.items():
        ws = sorted(set(workloads))
        lines.append(f"- {names.get(who, who)}, {', '.join(ws)}: {label}")
    return lines


def skipped_of(peers):
    names = {p["id"]: p["name"] for p in peers["participants"]}
    seen = {}
    for f in peers["figures"]:
        for who, entry in f["results"].items():
            if entry.get("status") == "skipped":
                seen.setdefault((who, entry["reason"]), set()).add(f["workload"])
    return [f"- {names.get(who, who)}, {', '.join(sorted(ws))}: {reason}" for (who, reason), ws in seen.items()]


def machine_lines(peers):
    m = peers["machine"]
    lines = [f"- Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory')} memory, "
             f"{m.get('kernel')}; coppice built with {m.get('compiler')} ({m.get('build_type')})."]
    for p in peers["participants"]:
        line = f"- {p['name']}: {p['version']}. Runs with {p['defaults']}."
        if p.get("setup_error"):
            line += f" **Setup failed**: {p['setup_error']}"
        lines.append(line)
    return lines


def peers_section(peers):
    header, rows = peers_table(peers, full=True)
    md = ["## Side by side with the peers", "",
          f"`tools/bench --peers` at commit {peers['commit']}, {peers['generated']}, in {peers['duration_s'] // 60} min: "
          f"{peers['rounds']} rounds, each running every workload once on every runtime, one program at a "
          "time, workload by workload (see tools/bench_peers.py). Each cell: the median of the rounds "
          "(min – max), then the ratio of the peer's median to coppice's (×12 = twelve times coppice's "
          "figure: for times, coppice is faster; for rates marked higher is better, ×0.1 means coppice does "
          "ten times as much). Every runtime runs with its defaults on this machine:", ""]
    md += machine_lines(peers)
    md += ["", br.markdown_table(header, rows), ""]
    labels = labels_of(peers)
    if labels:
        md += ["How each peer did it (the programs are in bench/peers/):", ""] + labels + [""]
    skipped = skipped_of(peers)
    if skipped:
        md += ["Not run (–), and why:", ""] + skipped + [""]
    failed = [r for r in peers["runs"] if r["status"] == "failed"]
    if failed:
        names = {p["id"]: p["name"] for p in peers["participants"]}
        md += ["Failed runs, with the reason each gave (figures measured before the failure are in the "
               "table):", ""]
        md += [f"- {r['workload']}, {names.get(r['participant'], r['participant'])}, round {r['round']}: {r['error']}"
               + (f" (measured before it: {', '.join(sorted(r['counters']))})" if r.get("counters") else "")
               for r in failed] + [""]
    md += ["Plots (`tools/plot`): `results/peers.png` (every figure, every runtime), "
           "`results/w3_latency.png` (W3's and W3b's restart latencies: coppice beside the BEAM, and every "
           "runtime's tail).", ""]
    return md


def sweep_section(sweep):
    groups = groups_of(sweep)
    ctx = sweep.get("context", {})
    md = ["## Scaling (tools/bench --sweep)", "",
          f"Commit {ctx.get('commit', 'unknown')}, {ctx.get('date', '')}. Medians of "
          f"{max((len(v) for v in groups.values()), default=0)} runs, each in a fresh program. "
          "Plot: `results/spawn_curve.png`.", ""]
    rows = []
    for name, runs in groups.items():
        if not name.startswith("sweep_spawn_idle"):
            continue
        n = int(name.split(":")[-1])
        ok = [r for r in runs if not r.get("error_occurred")]
        if not ok:
            rows.append([f"{n:,}", "failed: " + "; ".join(br.errors_of(groups, name)), "", "", ""])
            continue
        med = lambda k: statistics.median(r[k] for r in ok)
        rows.append([f"{n:,}", f"{med('spawn_ms'):.2f}", f"{med('spawn_ms') * 1e6 / n:.0f}",
                     f"{med('bytes_per_process'):.0f}", f"{med('stop_ms'):.2f}"])
    if rows:
        md += ["Spawn (W1's work at each size):", "",
               br.markdown_table(["processes", "spawn ms", "ns per spawn", "bytes per process (RSS)", "stop ms"],
                                 rows), ""]
    rows = []
    for label, base, key, unit in (("W4_skynet_1m", "W4_skynet_1m", "wall_ms", "ms"),
                                   ("W6_fan_in", "W6_fan_in", "msgs_per_s", "M msg/s"),
                                   ("W7_pairs_throughput", "W7_pairs_throughput", "round_trips_per_s", "M round trips/s"),
                                   ("W3 restart p50", "W3_restart_latency", "p50_us", "µs"),
                                   ("W3 restart p99", "W3_restart_latency", "p99_us", "µs"),
                                   ("W3b one_for_all 100, p50", "W3b_restart_one_for_all_100", "p50_us", "µs"),
                                   ("W3b one_for_all 100, p99", "W3b_restart_one_for_all_100", "p99_us", "µs")):
        row = [label, unit]
        for workers in (1, 2, 16, 64):
            stats = br.figure_stats(groups, f"sweep_{base}/workers:{workers}", key)
            row.append("not run" if stats is None else
                       f"{fmt(stats[0], unit)} ({fmt(stats[1], unit)} – {fmt(stats[2], unit)})")
        rows.append(row)
    md += ["Workers (16 and 64 oversubscribe this host's cores: they show that nothing collapses, not how a "
           "larger host scales):", "",
           br.markdown_table(["workload", "unit", "1 worker", "2 workers", "16 workers", "64 workers"], rows), ""]
    return md


def coppice_sections(latest):
    groups = groups_of(latest)
    ctx = latest.get("context", {})
    md = ["## coppice alone (tools/bench)", "",
          f"Commit {ctx.get('commit', 'unknown')}, {ctx.get('date', '')}. Medians over repetitions; each "
          "workload repetition ran in a fresh program (W1's figure is the first round on untouched memory). "
          "The peers' columns here are BENCHMARKS.md's figures; the side-by-side table above measured them "
          "in one run.", ""]
    load = ctx.get("load_avg_1min_range")
    if load:
        md += [f"One-minute load average as each run started: {load[0]:.2f} to {load[1]:.2f} (the runs' own "
               "threads count: 1 to 2 is a quiet host).", ""]
    for title, header, rows in (("### Workloads", br.WORKLOAD_HEADER, br.workload_rows(groups)),
                                ("### Supervision", br.SUPERVISOR_HEADER, br.supervisor_rows(groups)),
                                ("### Parent", br.PARENT_HEADER, br.parent_rows(groups)),
                                ("### Micro-benchmarks", br.MICRO_HEADER, br.micro_rows(groups))):
        if rows:
            md += [title, "", br.markdown_table(header, rows), ""]
    return md


def readme_block(peers):
    header, rows = peers_table(peers, full=False)
    m = peers["machine"]
    return "\n".join([
        README_BEGIN,
        "",
        f"One `tools/bench --peers` run at commit {peers['commit']} ({peers['generated']}), on "
        f"{m.get('cpu_model')} ({m.get('cores')} cores, {str(m.get('memory')).split(' (')[0]}): medians of "
        f"{peers['rounds']} rounds, every runtime with its defaults, one program at a time. Beside each peer's "
        "median, its ratio to coppice's: for times, latencies and bytes, ×20 means twenty times coppice's figure "
        "(coppice ahead), ×0.5 half of it (the peer ahead); for the rates marked higher is better, the other way "
        "round. Minima, maxima, versions, flags, how each peer was written and why a cell is empty or failed: "
        "`results/summary.md`.",
        "",
        br.markdown_table(header, rows),
        "",
        "![Every figure, every runtime](results/peers.png)",
        "",
        README_END,
    ])


def update_readme(path, peers):
    p = Path(path)
    text = p.read_text()
    if README_BEGIN not in text or README_END not in text:
        print(f"bench_summary: {path} has no figures markers; not rewritten", file=sys.stderr)
        return
    before = text[:text.index(README_BEGIN)]
    after = text[text.index(README_END) + len(README_END):]
    p.write_text(before + readme_block(peers) + after)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary", required=True)
    ap.add_argument("--latest")
    ap.add_argument("--peers")
    ap.add_argument("--sweep")
    ap.add_argument("--readme")
    args = ap.parse_args()
    latest, peers, sweep = load(args.latest), load(args.peers), load(args.sweep)

    md = ["# coppice benchmark figures", "",
          "Written by tools/bench from results/latest.json (coppice alone), results/peers.json "
          "(tools/bench --peers) and results/sweep.json (tools/bench --sweep); each section says when "
          "its figures were taken.", ""]
    if peers:
        md += peers_section(peers)
    if latest:
        md += coppice_sections(latest)
    if sweep:
        md += sweep_section(sweep)
    md += ["Plots: `tools/plot` draws `results/peers.png`, `results/w3_latency.png` and "
           "`results/spawn_curve.png` from these files.", ""]
    Path(args.summary).write_text("\n".join(md))
    if args.readme and peers:
        update_readme(args.readme, peers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
