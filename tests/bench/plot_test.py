# tools/plot draws its three images from the committed results, and says what it cannot draw.
#
# usage: /usr/bin/python3 tests/bench/plot_test.py [SOURCE_DIR]
#
# Copies results/peers.json, sweep.json and samples/ to a scratch directory and runs
# tools/plot.py on it: peers.png, w3_latency.png and spawn_curve.png must come out as PNG
# images of some size. Then on a directory holding nothing: exit 1, each image named as not
# drawn with the command that would make its data. Needs Debian's python3-matplotlib
# (tools/test installs it with tools/setup plot).
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
PLOT = SOURCE / "tools" / "plot.py"
IMAGES = ("peers.png", "w3_latency.png", "spawn_curve.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

failures = []


def check(what, ok):
    print(f"[{'ok' if ok else 'FAILED'}] {what}")
    if not ok:
        failures.append(what)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        results.mkdir()
        for name in ("peers.json", "sweep.json"):
            shutil.copy(SOURCE / "results" / name, results / name)
        shutil.copytree(SOURCE / "results" / "samples", results / "samples")
        p = subprocess.run(["/usr/bin/python3", str(PLOT), str(results)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        print(p.stdout)
        check("tools/plot exits 0 with every input there", p.returncode == 0)
        for name in IMAGES:
            path = results / name
            data = path.read_bytes() if path.exists() else b""
            check(f"{name} is a PNG image of more than 20 KB ({len(data)} B)",
                  data.startswith(PNG_MAGIC) and len(data) > 20_000)

        empty = Path(tmp) / "empty"
        empty.mkdir()
        p = subprocess.run(["/usr/bin/python3", str(PLOT), str(empty)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        print(p.stdout)
        check("with nothing to draw, tools/plot exits 1", p.returncode == 1)
        for name, how in (("peers.png", "tools/bench --peers"), ("w3_latency.png", "tools/bench --peers"),
                          ("spawn_curve.png", "tools/bench --sweep")):
            check(f"it names {name} as not drawn, and how to get its data",
                  f"not drawn: {name}" in p.stdout and how in p.stdout)
        check("and writes no image", not any((empty / name).exists() for name in IMAGES))
    print("all cases passed" if not failures else f"{len(failures)} check(s) failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
