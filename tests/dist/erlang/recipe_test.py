#!/usr/bin/python3
"""The recipe examples/recipes/erlang_calls run whole: its own epmd on a free loopback port, the
coppice program (pricer) as a node, and an Erlang node running pricer_client:main/1 against it
(with engine/erlang/coppice_child.erl loaded). Passes when the Erlang side halts with 0 and the
coppice program stops when told; stops what it started in any case.

  recipe_test.py PRICER_BINARY SOURCE_DIR
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_epmd(port, env):
    """epmd in the foreground with -d, which says "epmd running" once it listens: waited for on its
    stderr (bounded), then the rest of that stream is read to its end by a thread."""
    p = subprocess.Popen(["epmd", "-d", "-port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def read():
        for line in p.stderr:
            if "epmd running" in line:
                ready.set()
        ready.set()  # it ended: the wait below returns, and the node's start says what went wrong

    threading.Thread(target=read, daemon=True).start()
    ready.wait(10)
    return p


def main():
    pricer_bin, src = sys.argv[1], sys.argv[2]
    port = free_port()
    env = dict(os.environ, ERL_EPMD_PORT=str(port))
    host = socket.gethostname().split(".")[0]
    name, cookie = f"pricer{os.getpid()}", f"recipe{os.getpid()}"
    ebin = tempfile.mkdtemp(prefix="recipe-")
    procs = []
    try:
        subprocess.run(["erlc", "-o", ebin, f"{src}/engine/erlang/coppice_child.erl",
                        f"{src}/examples/recipes/erlang_calls/pricer_client.erl"], check=True)
        procs.append(start_epmd(port, env))
        pricer = subprocess.Popen([pricer_bin, "--name", name, "--cookie", cookie], env=env,
                                  stdout=subprocess.PIPE, text=True)
        procs.append(pricer)
        line = pricer.stdout.readline()
        if "is up" not in line:
            print(f"recipe_test: the pricer node did not come up: {line.strip()}")
            return 1
        procs.append(pricer)
        print(line.strip())
        client = subprocess.run(["erl", "-sname", f"client{os.getpid()}", "-setcookie", cookie, "-noshell",
                                 "-noinput", "-pa", ebin, "-eval", f"pricer_client:main('{name}@{host}')"],
                                env=env, capture_output=True, text=True, timeout=120)
        print(client.stdout.strip())
        if client.returncode != 0 or "pricer_client: ok" not in client.stdout:
            print(client.stderr.strip()[-3000:])
            print(f"recipe_test: the Erlang side failed (exit {client.returncode})")
            return 1
        out, _ = pricer.communicate(timeout=30)
        print(out.strip())
        if pricer.returncode != 0 or "stopping" not in out:
            print(f"recipe_test: the coppice side did not stop as told (exit {pricer.returncode})")
            return 1
        print("recipe_test: ok")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        subprocess.run(["rm", "-rf", ebin])


if __name__ == "__main__":
    sys.exit(main())
