#!/usr/bin/python3
"""examples/kv's server tests against the running binary, on a port the kernel picks.

usage: server_test.py COPPICE_KV protocol|crash

protocol: Debian's redis-cli (single commands, --pipe), a raw socket (requests split at
          every byte, 1000 pipelined), malformed input (an error, that connection closed,
          the others served), a client that does not read its replies (memory bounded), a short redis-benchmark run, and a clean stop on SIGTERM.
crash:    DEBUG CRASH of one shard, 20 times 100 ms apart, under a small load of four
          clients: the other shards answer every request, the crashed one answers only
          "-ERR shard N restarting" while down and again after its restart; nothing hangs.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = float(os.environ.get("KV_TEST_TIMEOUT", "20"))  # seconds any one reply may take before the test calls it a hang


RUNNING = []  # servers to kill if the test fails, so that none outlives it holding ctest's pipe


def fail(text):
    print("FAIL:", text)
    for proc in RUNNING:
        proc.kill()
    sys.exit(1)


def check(ok, text):
    if not ok:
        fail(text)


class Server:
    def __init__(self, binary, *flags):
        self.proc = subprocess.Popen([binary, "--port", "0", *flags], stdout=subprocess.PIPE, text=True)
        RUNNING.append(self.proc)
        line = self.proc.stdout.readline()
        check(line.startswith("port "), "the server did not print its port: %r" % line)
        self.port = int(line.split()[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the server did not stop on SIGTERM")
        check(code == 0, "the server exited with %d on SIGTERM" % code)


def encode(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        w = w if isinstance(w, bytes) else str(w).encode()
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out


class Client:
    """A raw RESP client: send bytes, read whole replies (as Python values; errors as Err)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return Err(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        fail("unexpected reply line %r" % line)

    def call(self, *words):
        self.send(encode(*words))
        return self.reply()

    def closed_by_peer(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


class Err(str):
    pass


def cli(port, *args, stdin=None):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 0, "redis-cli %s: exit %d: %s" % (args, r.returncode, r.stderr))
    return r.stdout.strip()


def protocol(binary):
    server = Server(binary)
    port = server.port
    # redis-cli, one command at a time.
    expect = [
        (("PING",), "PONG"),
        (("SET", "a", "1"), "OK"),
        (("GET", "a"), "1"),
        (("INCR", "a"), "2"),
        (("INCR", "counter"), "1"),
        (("LPUSH", "list", "x", "y"), "2"),
        (("LPOP", "list"), "y"),
        (("LPOP", "list"), "x"),
        (("LPOP", "list"), ""),
        (("MSET", "k1", "v1", "k2", "v2", "k3", "v3"), "OK"),
        (("GET", "k2"), "v2"),
        (("EXISTS", "k1", "k2", "nope"), "2"),
        (("DEL", "k1", "nope"), "1"),
        (("DBSIZE",), "4"),
        (("CONFIG", "GET", "appendonly"), "appendonly\nno"),
        (("GET", "missing"), ""),
    ]
    for args, want in expect:
        got = cli(port, *args)
        check(got == want, "redis-cli %s: %r, expected %r" % (" ".join(args), got, want))
    got = cli(port, "NOSUCH")
    check(got.startswith("ERR unknown command 'NOSUCH'"), "unknown command: %r" % got)

    # redis-cli --pipe: 10000 requests in RESP, every one answered, none an error.
    n = 10000
    body = b"".join(encode("SET", "pipe:%d" % i, i) for i in range(n // 2))
    body += b"".join(encode("INCR", "pipe:%d" % i) for i in range(n // 2))
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=body, capture_output=True, timeout=60)
    out = r.stdout.decode()
    check(r.returncode == 0 and "errors: 0, replies: %d" % n in out, "redis-cli --pipe: %r %r" % (out, r.stderr))
    check(cli(port, "GET", "pipe:1234") == "1235", "--pipe's INCRs")

    # A raw socket: one request per key in every order of split, 1000 pipelined in one write.
    c = Client(port)
    stream = b"".join(encode("SET", "raw:%d" % i, "v%d" % i) + encode("GET", "raw:%d" % i) + b"PING\r\n" for i in range(1000))
    rng = random.Random(14)
    at = 0
    while at < len(stream):
        step = rng.choice([1, 2, 7, 64, 1500, 9000])
        c.send(stream[at:at + step])
        at += step
    for i in range(1000):
        check(c.reply() == "OK" and c.reply() == "v%d" % i and c.reply() == "PONG", "pipelined replies out of order at %d" % i)
    # Split at every byte of one request: two sends, two segments (TCP_NODELAY). Whether the
    # server reads them apart is the kernel's choice; the parser's side of a split is pinned
    # without sockets by kv.RespParser.ARequestSplitAtEveryByteIsReadOnceWhole.
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for cut in range(1, len(encode("GET", "raw:7"))):
        req = encode("GET", "raw:7")
        c.send(req[:cut])
        c.send(req[cut:])
        check(c.reply() == "v7", "request split at byte %d" % cut)

    # Malformed input: the requests before it answered, then the error, then the close.
    bad = Client(port)
    bad.send(encode("PING") + b"*1\r\n$abc\r\n")
    check(bad.reply() == "PONG", "the request before the malformed one")
    e = bad.reply()
    check(isinstance(e, Err) and e == "ERR Protocol error: invalid bulk length", "malformed input: %r" % e)
    check(bad.closed_by_peer(), "the connection closes after a protocol error")
    check(c.call("GET", "raw:3") == "v3", "another connection is still served")
    for junk in [b"*99999999999\r\n", b"*1\r\n+x\r\n", b"\x00\xff" * 40000 + b"x" * 70000]:
        j = Client(port)
        j.send(junk)
        e = j.reply()
        check(isinstance(e, Err) and "Protocol error" in e, "junk %r...: %r" % (junk[:10], e))
        check(j.closed_by_peer(), "junk closes its connection")
    check(c.call("PING") == "PONG", "the server survives malformed input")

    # A client that sends and never reads: once its replies pass the socket's high watermark
    # the connection stops reading, so the server's memory stays bounded (unbounded, the
    # 50 reads of 100 GETs of 100 kB would queue 500 MB). The client asks for 100 big values,
    # then sends requests with 100 kB keys and small answers (EXISTS) without blocking, until
    # its socket refuses more: the server has stopped reading it, which is the flow control at
    # work (bounded at 64 MB sent: past that it kept reading); then its memory is read.
    c.call("SET", "big", "v" * 100000)
    slow = Client(port)
    slow.send(encode("GET", "big") * 100)
    filler = encode("EXISTS", "k" * 100000)
    slow.sock.setblocking(False)
    fillers, pending = 0, b""
    while True:
        if not pending:
            check(fillers * len(filler) < 64 << 20, "the server kept reading a client that never reads")
            pending = filler
            fillers += 1
        try:
            n = slow.sock.send(pending)
        except BlockingIOError:
            break  # the server stopped reading: its replies are held, and so are our requests
        pending = pending[n:]
    slow.sock.setblocking(True)
    slow.sock.settimeout(TIMEOUT)
    # The rest of the last request goes once the server reads again, which it does when we
    # read below: from another thread, or the two would wait for each other.
    tail = threading.Thread(target=slow.send, args=(pending,))
    tail.start()
    rss_kb = int(next(l for l in open("/proc/%d/status" % server.proc.pid) if l.startswith("VmRSS")).split()[1])
    print("slow reader: server RSS %d kB" % rss_kb)
    check(rss_kb < 200 * 1024, "a reader that does not read grows the server to %d kB" % rss_kb)
    check(c.call("PING") == "PONG", "the others are served meanwhile")
    for got in range(100):  # it reads at last: every reply comes, in order
        check(slow.reply() == "v" * 100000, "the slow reader's reply %d" % got)
    for got in range(fillers):
        check(slow.reply() == 0, "the slow reader's EXISTS %d" % got)
    tail.join(TIMEOUT)
    check(not tail.is_alive(), "the slow reader's last requests were never taken")
    slow.sock.close()

    # redis-benchmark runs to the end (it stops at the first error reply).
    r = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "5", "-n", "2000", "-P", "8", "-q",
                        "-t", "ping,set,get,incr,lpush,lpop,mset"], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "redis-benchmark: %r %r" % (r.stdout, r.stderr))
    for test in ["PING_INLINE:", "PING_MBULK:", "SET:", "GET:", "INCR:", "LPUSH:", "LPOP:", "MSET (10 keys):"]:
        check(test in r.stdout, "redis-benchmark did not finish %s: %r" % (test, r.stdout[-500:]))
    server.stop()
    print("protocol: ok")


def crash(binary):
    shards = 4
    server = Server(binary, "--shards", str(shards))
    port = server.port
    admin = Client(port)
    victim = 1
    crashes = 20  # 2 s of a crash every 100 ms: the default intensity (3 in 5 s) would give up
    # Two keys on every shard.
    keys = {s: [] for s in range(shards)}
    i = 0
    while min(len(v) for v in keys.values()) < 2:
        k = "crash:%d" % i
        s = admin.call("DEBUG", "SHARD", k)
        if len(keys[s]) < 2:
            keys[s].append(k)
        i += 1
    counts = {"ok": 0, "errors": 0, "victim_errors": 0}
    lock = threading.Lock()
    more_ok = threading.Condition(lock)  # notified at each OK reply
    stop = threading.Event()
    problems = []

    def load(seed):
        c = Client(port)
        rng = random.Random(seed)
        while not stop.is_set():
            shard = rng.randrange(shards)
            key = rng.choice(keys[shard])
            # A pipelined pair, so that batches touch several shards at once too.
            other = rng.choice(keys[rng.randrange(shards)])
            c.send(encode("SET", key, "x") + encode("GET", other))
            for k in (key, other):
                try:
                    r = c.reply()
                except socket.timeout:
                    problems.append("a request to %s hung" % k)
                    return
                s = next(s for s in keys if k in keys[s])
                with lock:
                    if isinstance(r, Err):
                        counts["errors"] += 1
                        if s != victim or r != "ERR shard %d restarting" % victim:
                            problems.append("error %r for %s on shard %d" % (r, k, s))
                        else:
                            counts["victim_errors"] += 1
                    else:
                        counts["ok"] += 1
                        more_ok.notify_all()

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for _ in range(crashes):
        time.sleep(0.1)  # the pace of the crashes is what is tested (one every 100 ms)
        r = admin.call("DEBUG", "CRASH", victim)
        check(r == "OK", "DEBUG CRASH: %r" % r)
    # The crashed shard answers again once restarted.
    deadline = time.time() + TIMEOUT
    while True:
        r = admin.call("SET", keys[victim][0], "back")
        if r == "OK":
            break
        check(r == "ERR shard %d restarting" % victim, "while restarting: %r" % r)
        check(time.time() < deadline, "shard %d never came back" % victim)
    # The load goes on after the restart: wait for 200 more answers, then stop it.
    with more_ok:
        after_restart = counts["ok"] + 200
        went_on = more_ok.wait_for(lambda: counts["ok"] >= after_restart, TIMEOUT)
    check(went_on, "no load after the restart")
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
        check(not t.is_alive(), "a client hung")
    check(not problems, "; ".join(problems[:5]))
    check(admin.call("GET", keys[victim][0]) in ("back", "x"), "the restarted shard serves its keys")
    for s in range(shards):
        check(admin.call("SET", keys[s][1], "y") == "OK", "shard %d after the crashes" % s)
    check(counts["ok"] > 0, "no load ran")
    check(admin.call("DBSIZE") >= 2 * (shards - 1), "the other shards kept their keys")
    print("crash: ok", counts)
    server.stop()


def main():
    sys.excepthook = lambda kind, value, trace: (sys.__excepthook__(kind, value, trace), fail("%s: %s" % (kind.__name__, value)))
    if len(sys.argv) != 3 or sys.argv[2] not in ("protocol", "crash"):
        print(__doc__)
        sys.exit(2)
    binary = sys.argv[1]
    {"protocol": protocol, "crash": crash}[sys.argv[2]](binary)


if __name__ == "__main__":
    main()
