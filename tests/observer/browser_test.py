#!/usr/bin/python3
"""The observer page in a real browser: starts examples/observer, checks its endpoints with
urllib and a raw socket, loads the page in headless Chromium (--dump-dom) and checks the DOM
structurally (the tree, the sorted table, the charts, the selected process's state), then
takes a screenshot and checks it is a real picture (a PNG decoded here with zlib).

usage: browser_test.py EXAMPLE_OBSERVER SCREENSHOT.png
"""
import html.parser
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zlib

CHROMIUM = "/usr/bin/chromium"


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")


def raw(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data.decode("utf-8", "replace")
            data += chunk


SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? '
                    r'(-?[0-9.]+(e[-+]?[0-9]+)?|[-+]Inf|NaN)$')


def check_endpoints(port):
    status, ctype, text = get(port, "/metrics")
    if status != 200 or not ctype.startswith("text/plain; version=0.0.4"):
        fail(f"/metrics: {status} {ctype}")
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        if not SAMPLE.match(line):
            fail(f"/metrics: not a sample: {line!r}")
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    for name in ["coppice_processes", "coppice_spawns_total", 'coppice_exits_total{reason="normal"}',
                 "coppice_messages_sent_total", 'coppice_worker_turns_total{worker="0"}',
                 'coppice_worker_utilisation{worker="1"}', 'coppice_mailbox_depth_bucket{le="+Inf"}']:
        if name not in samples:
            fail(f"/metrics: no {name}")
    if samples["coppice_processes"] < 10:
        fail(f"/metrics: only {samples['coppice_processes']} processes")
    # The supervisors' counts: app and tickers at least (and the observer's own), each labelled.
    restarts = [n for n in samples if n.startswith("coppice_supervisor_restarts_total{")]
    if len(restarts) < 2 or samples.get("coppice_supervisors", 0) < 2:
        fail(f"/metrics: supervisors {samples.get('coppice_supervisors')}, restart series {restarts}")
    if not any('behaviour="DynamicSupervisor"' in n for n in restarts):
        fail(f"/metrics: no DynamicSupervisor among {restarts}")
    for name in ["coppice_restarts_total", "coppice_reports_dropped_total", "coppice_start_failures_total"]:
        if name not in samples:
            fail(f"/metrics: no {name}")
    metrics = json.loads(get(port, "/api/metrics")[2])
    if len(metrics.get("supervisors", [])) < 2 or "restarts" not in metrics.get("supervisor_totals", {}):
        fail(f"/api/metrics: supervisors {metrics.get('supervisors')} totals {metrics.get('supervisor_totals')}")

    for path in ["/api/tree", "/api/processes", "/api/metrics"]:
        status, ctype, text = get(port, path)
        if status != 200 or ctype != "application/json":
            fail(f"{path}: {status} {ctype}")
        json.loads(text)
    processes = json.loads(get(port, "/api/processes")[2])["processes"]
    counter = [p for p in processes if p["registered_name"] == "counter"]
    if not counter:
        fail("/api/processes: no counter")
    one = json.loads(get(port, "/api/process?id=" + counter[0]["pid_id_text"])[2])
    if not one["state"].startswith("total=") or one["label"] != "counter of puts" or not one["detailed"]:
        fail(f"/api/process: {one}")

    for request, expected in [(b"GET / HTTP/1.1\r\nBroken header\r\n\r\n", "400"),
                              (b"NOT HTTP AT ALL\r\n\r\n", "400"),
                              (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n", "400"),
                              (b"DELETE / HTTP/1.1\r\n\r\n", "405"),
                              (b"GET /no/such/path HTTP/1.1\r\nConnection: close\r\n\r\n", "404")]:
        answer = raw(port, request)
        if not answer.startswith("HTTP/1.1 " + expected):
            fail(f"{request[:40]!r}: {answer[:80]!r}")
    try:
        get(port, "/nowhere")
        fail("/nowhere answered 200")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            fail(f"/nowhere: {e.code}")


class Dom(html.parser.HTMLParser):
    """Every element as (tag, attributes, ancestors' ids and classes), and the text of a few."""

    def __init__(self):
        super().__init__()
        self.elements = []
        self.stack = []
        self.texts = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a, list(self.stack)))
        if tag not in ("meta", "link", "br", "img", "input"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, a in self.stack:
            if a.get("id"):
                self.texts[a["id"]] = self.texts.get(a["id"], "") + data


def inside(ancestors, id_):
    return any(a.get("id") == id_ for _, a in ancestors)


def chromium(args, url, home):
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-dev-shm-usage", f"--user-data-dir={home}/profile", *args, url]
    env = dict(os.environ, HOME=home)
    r = subprocess.run(command, capture_output=True, timeout=180, env=env)
    if r.returncode != 0:
        fail(f"chromium exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return r.stdout.decode("utf-8", "replace")


def check_dom(port, home):
    text = chromium(["--virtual-time-budget=8000", "--dump-dom"],
                    f"http://127.0.0.1:{port}/?sort=memory&select=counter", home)
    dom = Dom()
    dom.feed(text)
    nodes = [(a, anc) for tag, a, anc in dom.elements if "node" in a.get("class", "").split() and inside(anc, "tree")]
    if not nodes:
        fail("no tree drawn:\n" + text[:3000])
    by_name = {a.get("data-name"): (a, anc) for a, anc in nodes if a.get("data-name")}
    for name in ["app", "counter", "cache"]:
        if name not in by_name:
            fail(f"the tree has no {name}: {sorted(by_name)}")
    app = by_name["app"][0]
    if "supervisor" not in app["class"].split() or app["data-behaviour"] != "Supervisor":
        fail(f"app is not drawn as a supervisor: {app}")
    for name in ["counter", "cache"]:
        if not any(a.get("data-name") == "app" for _, a in by_name[name][1]):
            fail(f"{name} is not drawn inside app")
    tickers = [a for a, _ in nodes if a.get("data-child-id") == "tickers"]
    if len(tickers) != 1 or tickers[0]["data-behaviour"] != "DynamicSupervisor":
        fail(f"no DynamicSupervisor tickers in the tree: {tickers}")
    labels = sorted(a["data-label"] for a, anc in nodes
                    if a.get("data-label", "").startswith("ticker ") and
                    any(x.get("data-child-id") == "tickers" for _, x in anc))
    if labels != ["ticker 1", "ticker 2", "ticker 3", "ticker 4"]:
        fail(f"the tickers under tickers: {labels}")
    if any("observer" in (a.get("data-child-id") or "") for a, _ in nodes):
        fail("the observer's own tree is drawn")

    rows = [a for tag, a, anc in dom.elements if tag == "tr" and a.get("data-pid") and inside(anc, "processes")]
    if len(rows) < 12:
        fail(f"the table has {len(rows)} rows")
    names = {r.get("data-name") or r.get("data-label") for r in rows}
    for name in ["app", "counter", "cache", "ticker 1", "ticker 4", "backlog", "observer connection"]:
        if name not in names:
            fail(f"the table has no {name}: {sorted(n for n in names if n)}")
    table = [a for tag, a, _ in dom.elements if a.get("id") == "processes"][0]
    if table.get("data-sort") != "memory":
        fail(f"?sort=memory not honoured: {table}")
    memory = [int(r["data-memory"]) for r in rows]
    if memory != sorted(memory, reverse=True):
        fail(f"the rows are not sorted by memory: {memory}")
    sorted_header = [a for tag, a, anc in dom.elements if tag == "th" and "sorted" in a.get("class", "")]
    if [h.get("data-sort") for h in sorted_header] != ["memory"]:
        fail(f"the sorted header: {sorted_header}")

    canvases = [a.get("id") for tag, a, anc in dom.elements if tag == "canvas" and inside(anc, "charts")]
    if canvases != ["chart-processes", "chart-messages", "chart-utilisation"]:
        fail(f"the charts: {canvases}")
    if "turns" not in dom.texts.get("workers", ""):
        fail("no worker figures under the charts")
    supervisors = [a for tag, a, anc in dom.elements if tag == "tr" and a.get("data-pid") and inside(anc, "supervisors")]
    if len(supervisors) < 2:
        fail(f"the supervisors' table has {len(supervisors)} rows")

    details = [a for tag, a, _ in dom.elements if a.get("id") == "details"][0]
    state = dom.texts.get("details-state", "")
    if not details.get("data-pid") or not state.startswith("total="):
        fail(f"?select=counter: the panel shows {details} with state {state!r}")
    print(f"DOM: {len(nodes)} tree nodes, {len(rows)} rows sorted by memory, 3 charts, counter's state {state!r}")


def check_default_sort(port, home):
    """Without ?sort, by queue length: the backlog process (40 messages it does not take) first."""
    dom = Dom()
    dom.feed(chromium(["--virtual-time-budget=5000", "--dump-dom"], f"http://127.0.0.1:{port}/", home))
    table = [a for tag, a, _ in dom.elements if a.get("id") == "processes"][0]
    rows = [a for tag, a, anc in dom.elements if tag == "tr" and a.get("data-pid") and inside(anc, "processes")]
    queues = [int(r["data-queue"]) for r in rows]
    if table.get("data-sort") != "message_queue_len" or queues != sorted(queues, reverse=True):
        fail(f"the default order is not by queue length: {table.get('data-sort')} {queues}")
    if not rows or rows[0].get("data-name") != "backlog" or queues[0] < 1:
        fail(f"the first row is not the backlog: {rows[:1]}")
    print(f"DOM: by queue length, backlog first with {queues[0]} queued")


def png_colours(path):
    """The number of distinct RGB(A) colours of an 8-bit RGB or RGBA PNG, decoded here."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("the screenshot is not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace != 0:
                fail(f"unexpected PNG format: depth {depth} colour {colour} interlace {interlace}")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw_rows = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    colours = set()
    for y in range(height):
        f = raw_rows[y * (stride + 1)]
        line = bytearray(raw_rows[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        if y % 4 == 0:  # every fourth row is plenty to count colours
            for x in range(0, stride, bpp):
                colours.add(bytes(line[x:x + 3]))
        previous = line
    return width, height, len(colours)


def check_screenshot(port, home, out):
    chromium(["--virtual-time-budget=8000", "--hide-scrollbars", f"--screenshot={out}", "--window-size=1400,1000"],
             f"http://127.0.0.1:{port}/?select=counter", home)
    if not os.path.exists(out) or os.path.getsize(out) < 20000:
        fail(f"the screenshot is missing or tiny: {out}")
    width, height, colours = png_colours(out)
    if (width, height) != (1400, 1000) or colours < 50:
        fail(f"the screenshot is {width}x{height} with {colours} colours")
    print(f"screenshot: {out}, {os.path.getsize(out)} bytes, {width}x{height}, {colours} colours")


def check_terminal(port):
    """tools/observe, the terminal view, against the same example."""
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "observe")
    run = subprocess.run(["/usr/bin/python3", tool, f"http://127.0.0.1:{port}", "--top", "8", "--sort", "queue"],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        fail(f"tools/observe exited {run.returncode}: {run.stderr}")
    out = run.stdout
    for needed in ["supervision trees:", "'counter'", "'tickers'", 'label "ticker 1"', "utilisation",
                   "top 8 of", "backlog"]:
        if needed not in out:
            fail(f"tools/observe printed no {needed!r}:\n{out}")
    lines = out.splitlines()
    top = lines.index(next(l for l in lines if l.startswith("top 8 of")))
    if "backlog" not in lines[top + 2]:
        fail(f"tools/observe --sort queue: the backlog process is not first:\n{out}")
    bad = subprocess.run(["/usr/bin/python3", tool, "http://127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    if bad.returncode != 1 or "tools/observe:" not in bad.stderr:
        fail(f"tools/observe against nothing: {bad.returncode} {bad.stderr!r}")
    print(f"tools/observe: {len(lines)} lines, the backlog first by queue")


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    example, screenshot = sys.argv[1], sys.argv[2]
    process = subprocess.Popen([example], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        m = re.match(r"observer listening on http://127\.0\.0\.1:(\d+)/$", first.strip())
        if not m:
            fail(f"the example's first line: {first!r}")
        port = int(m.group(1))
        check_endpoints(port)
        check_terminal(port)
        with tempfile.TemporaryDirectory() as home:
            check_dom(port, home)
            check_default_sort(port, home)
            check_screenshot(port, home, screenshot)
        process.stdin.close()  # the example stops when its stdin closes
        code = process.wait(timeout=60)
        rest = process.stdout.read()
        if code != 0 or "observer stopped" not in rest:
            fail(f"the example exited {code}: {rest!r}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print("observer browser test: ok")


if __name__ == "__main__":
    main()
