# tools/plot: draws the figures tools/bench keeps under results/ as PNG images beside them.
#
#   results/peers.png        every figure of results/peers.json: each runtime's median, min and max
#   results/w3_latency.png   W3's (and W3b's) restart latencies, every sample, coppice beside the
#                            BEAM and whichever peers left samples (results/samples/<runtime>/)
#   results/spawn_curve.png  results/sweep.json: spawn and stop time and bytes per process from 1k
#                            to 1M processes, W4, W6, W7 and W3, W3b on 1 and 2 workers
#
# An image whose data is missing is not drawn (and is named, with the command that makes it).
# Run with Debian's /usr/bin/python3 and python3-matplotlib (tools/plot installs it).
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(sys.argv[1] if len(sys.argv) > 1 else "results")

COLORS = {"coppice": "#1b7837", "erlang": "#a6218e", "elixir": "#5e3c99", "go": "#2c7fb8", "caf": "#e66101",
          "tokio": "#b35806"}
NAMES = {"coppice": "coppice", "erlang": "Erlang/OTP", "elixir": "Elixir", "go": "Go", "caf": "CAF",
         "tokio": "Tokio"}


def load(name):
    p = RESULTS / name
    if not p.exists():
        return None
    return json.loads(p.read_text())


def peers_plot(peers, out):
    figures = [f for f in peers["figures"] if f["results"]]  # a filtered run leaves some out
    parts = [p["id"] for p in peers["participants"]]
    names = {p["id"]: p["name"] for p in peers["participants"]}
    cols = 3
    rows = (len(figures) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 2.2 * rows + 1.2))
    axes = axes.flatten()
    for ax, f in zip(axes, figures):
        scale = 1e6 if f["unit"].startswith("M ") else 1
        labels, medians, lows, highs, colors, notes = [], [], [], [], [], []
        for who in parts:
            e = f["results"].get(who)
            labels.append(names[who])
            colors.append(COLORS.get(who, "gray"))
            if e and "median" in e:
                medians.append(e["median"] / scale)
                lows.append((e["median"] - e["min"]) / scale)
                highs.append((e["max"] - e["median"]) / scale)
                notes.append("" if who == "coppice" else f"×{e['ratio']:.2g}" if "ratio" in e else "")
            else:
                medians.append(0)
                lows.append(0)
                highs.append(0)
                notes.append("– (not this peer's)" if e and e.get("status") == "skipped" else "failed" if e else "not run")
        y = range(len(parts))
        ax.barh(y, medians, xerr=[lows, highs], color=colors, alpha=0.85, error_kw={"elinewidth": 1})
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        positive = [m for m in medians if m > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_xscale("log")
        for i, (m, hi, note) in enumerate(zip(medians, highs, notes)):
            x = m + hi if m > 0 else (min(positive) if positive and ax.get_xscale() == "log" else 0)
            ax.text(x, i, f" {note}", va="center", fontsize=7, color="black" if m > 0 else "gray")
        if positive:  # room for the ratios right of the longest bar
            top = max(m + h for m, h in zip(medians, highs))
            ax.set_xlim(right=top * (3 if ax.get_xscale() == "log" else 1.18))
        better = "higher is better" if f["better"] == "higher" else "lower is better"
        ax.set_title(f"{f['title']} ({f['unit']}, {better})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(figures):]:
        ax.axis("off")
    m = peers["machine"]
    fig.suptitle(f"coppice and its peers, one tools/bench --peers run at {peers['commit']} ({peers['generated']}): "
                 f"medians of {peers['rounds']} rounds, bars min–max, ×ratio to coppice\n"
                 f"{m.get('cpu_model')}, {m.get('cores')} cores, every runtime with its defaults", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=90)
    plt.close(fig)


def read_samples(path):
    try:
        return sorted(float(line) for line in path.read_text().split() if line)
    except (OSError, ValueError):
        return []


def ccdf(ax, samples, color, label):
    n = len(samples)
    ys = [1 - i / n for i in range(n)]
    ax.step(samples, ys, where="post", color=color, label=label)


def latency_plot(out):
    runtimes = [who for who in COLORS if (RESULTS / "samples" / who / "W3_restart_latency.txt").exists()]
    if "coppice" not in runtimes:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    hist, tail, wide = axes
    for who in runtimes:
        s = read_samples(RESULTS / "samples" / who / "W3_restart_latency.txt")
        if not s:
            continue
        q = lambda p: s[min(len(s) - 1, int(p * len(s)))]
        label = f"{NAMES[who]}: p50 {q(0.5):.3g}, p99 {q(0.99):.3g}, p99.9 {q(0.999):.3g}, max {s[-1]:.3g} µs"
        if who in ("coppice", "erlang"):  # the histogram: coppice beside the BEAM; the tails: everyone
            lo, hi = max(min(s), 0.05), max(s)
            bins = [lo * (hi / lo) ** (i / 80) for i in range(81)]
            hist.hist(s, bins=bins, color=COLORS[who], alpha=0.55, label=label)
        ccdf(tail, s, COLORS[who], f"{NAMES[who]}: p99 {q(0.99):.3g} µs" + ("" if who in ("coppice", "erlang", "elixir")
                                                                              else " (hand-rolled)"))
    hist.set_xscale("log")
    hist.set_xlabel("restart latency, µs (log)")
    hist.set_ylabel("rounds")
    hist.set_title("W3: kill the child, until its replacement reports (10,000 rounds): coppice and the BEAM",
                   fontsize=9)
    hist.legend(fontsize=7)
    log_axes(tail, "restart latency, µs (log)", "fraction of rounds slower (log)",
             "W3: the tail (1 − CDF), every runtime that wrote its samples", 8)
    for who in COLORS:
        s = read_samples(RESULTS / "samples" / who / "W3b_restart_one_for_all_100.txt")
        if s:
            ccdf(wide, s, COLORS[who], f"{NAMES[who]}: p50 {s[len(s) // 2]:.3g}, p99 {s[int(0.99 * len(s))]:.3g} µs")
    log_axes(wide, "restart latency, µs (log)", "fraction of rounds slower (log)",
             "W3b: one_for_all, 100 children (1,000 rounds), 1 − CDF", 8)
    peers = load("peers.json")
    when = f" (tools/bench --peers at {peers['commit']}, {peers['generated']}, its last round)" if peers else ""
    fig.suptitle("Restart latency: every sample of one run per runtime" + when, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return True


def log_axes(ax, xlabel, ylabel, title, legend_size):
    """Both axes logarithmic, with a grid and a legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=legend_size)


def bar_panel(ax, bars, title, ylabel=None, rotation=0):
    """Bars of (label, median, min, max, workers) on a log scale, 2 workers darker, medians written on."""
    if not bars:
        return
    x = range(len(bars))
    med = [b[1] for b in bars]
    ax.bar(x, med, yerr=[[m - b[2] for m, b in zip(med, bars)], [b[3] - m for m, b in zip(med, bars)]],
           color=[COLORS["coppice"] if b[4] == 2 else "#7fbf7b" for b in bars], capsize=3)
    ax.set_xticks(list(x), [b[0] for b in bars], fontsize=7, rotation=rotation)
    for i, m in enumerate(med):
        ax.text(i, m, f"{m:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3, which="both")


def sweep_plot(sweep, out):
    groups = {}
    for b in sweep["benchmarks"]:
        if b.get("run_type") != "aggregate" and not b.get("error_occurred"):
            groups.setdefault(b["name"], []).append(b)
    points = sorted((int(n.split(":")[-1]), runs) for n, runs in groups.items() if n.startswith("sweep_spawn_idle/"))
    if not points:
        return False
    fig, (time_ax, mem_ax, workers_ax, restart_ax) = plt.subplots(1, 4, figsize=(21, 4.8))
    xs = [n for n, _ in points]

    def series(key):
        med = [statistics.median(r[key] for r in runs) for _, runs in points]
        lo = [m - min(r[key] for r in runs) for m, (_, runs) in zip(med, points)]
        hi = [max(r[key] for r in runs) - m for m, (_, runs) in zip(med, points)]
        return med, [lo, hi]

    for key, label, marker in (("spawn_ms", "spawn, until all acknowledged", "o"),
                               ("stop_ms", "stop, until all are gone", "s")):
        med, err = series(key)
        time_ax.errorbar(xs, med, yerr=err, marker=marker, capsize=3, label=f"coppice {label}",
                         color=COLORS["coppice"], linestyle="-" if key == "spawn_ms" else "--")
    med, err = series("bytes_per_process")
    mem_ax.errorbar(xs, med, yerr=err, marker="o", capsize=3, color=COLORS["coppice"], label="coppice")
    peers = load("peers.json")
    if peers:
        for f in peers["figures"]:
            if f["workload"] != "W1_spawn_idle_1m" or f["counter"] not in ("spawn_ms", "bytes_per_process"):
                continue
            ax = time_ax if f["counter"] == "spawn_ms" else mem_ax
            for who, e in f["results"].items():
                if who != "coppice" and "median" in e:
                    ax.plot([1_000_000], [e["median"]], marker="D", linestyle="none", color=COLORS.get(who, "gray"),
                            label=f"{NAMES.get(who, who)} at 1M (--peers)")
    log_axes(time_ax, "processes (log)", "ms (log)", "W1's work at 1k to 1M processes: time", 7)
    log_axes(mem_ax, "processes (log)", "bytes per idle process, RSS delta (log)",
             "Memory: RSS delta / processes (coarse below 100k: page granularity)", 7)

    def worker_bars(points):
        """(label, benchmark, counter, scale) -> (label, median, min, max, workers) at 1 and 2 workers."""
        bars = []
        for label, base, key, scale in points:
            for workers in (1, 2):
                runs = groups.get(f"sweep_{base}/workers:{workers}", [])
                if runs:
                    vals = [r[key] / scale for r in runs]
                    bars.append((f"{label}, {workers}w", statistics.median(vals), min(vals), max(vals), workers))
        return bars

    bar_panel(workers_ax, worker_bars([("W4", "W4_skynet_1m", "wall_ms", 1), ("W6", "W6_fan_in", "msgs_per_s", 1e6),
                                       ("W7", "W7_pairs_throughput", "round_trips_per_s", 1e6)]),
              "1 and 2 workers (1w, 2w): W4 in ms (lower is better),\n"
              "W6 in M msg/s and W7 in M round trips/s (higher is better)")
    bar_panel(restart_ax, worker_bars([(f"{short} {key[:3]}", base, key, 1)
                                       for base, short in (("W3_restart_latency", "W3"),
                                                           ("W3b_restart_one_for_all_100", "W3b"))
                                       for key in ("p50_us", "p99_us")]),
              "Restart latency on 1 and 2 workers (1w, 2w), µs", ylabel="µs (log)", rotation=30)
    ctx = sweep.get("context", {})
    fig.suptitle(f"coppice scaling (tools/bench --sweep at {ctx.get('commit', '?')}, {ctx.get('date', '')}): "
                 "medians, bars min–max", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return True


def main():
    drawn, missing = [], []
    peers = load("peers.json")
    if peers:
        peers_plot(peers, RESULTS / "peers.png")
        drawn.append("peers.png")
    else:
        missing.append("peers.png (no results/peers.json: run tools/bench --peers)")
    if latency_plot(RESULTS / "w3_latency.png"):
        drawn.append("w3_latency.png")
    else:
        missing.append("w3_latency.png (no results/samples/coppice/W3_restart_latency.txt: run tools/bench --peers)")
    sweep = load("sweep.json")
    if sweep and sweep_plot(sweep, RESULTS / "spawn_curve.png"):
        drawn.append("spawn_curve.png")
    else:
        missing.append("spawn_curve.png (no results/sweep.json: run tools/bench --sweep)")
    for name in drawn:
        print(f"tools/plot: wrote {RESULTS / name}")
    for name in missing:
        print(f"tools/plot: not drawn: {name}", file=sys.stderr)
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
