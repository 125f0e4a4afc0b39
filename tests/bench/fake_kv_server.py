# A stand-in for coppice_kv in tools' tests: a small Redis-protocol server with shards, the
# `DEBUG SHARD key` and `DEBUG CRASH shard` commands, and faults on request, so that
# coppice_crash_client's accounting can be checked against known answers.
#
# usage: /usr/bin/python3 tests/bench/fake_kv_server.py --port N | --port-file FILE | --print-port
#            [--shards 4]
#            [--restart-ms 30] [--fault none|outside|hang]
#
#   outside   every 50th request to shard 1 answers an error although only shard 0 is crashed
#   hang      a connection that asks anything of shard 2 after the first crash never answers again
# Binds 127.0.0.1: on port N (tools/bench_servers.py probes a free one), or on a port the kernel
# picks, written to FILE once listening.
import argparse
import asyncio
import os
import time
import zlib

ap = argparse.ArgumentParser()
where = ap.add_mutually_exclusive_group(required=True)
where.add_argument("--port", type=int)
where.add_argument("--port-file")
where.add_argument("--print-port", action="store_true")  # one line on stdout once it listens
ap.add_argument("--shards", type=int, default=4)
ap.add_argument("--restart-ms", type=float, default=30)
ap.add_argument("--fault", choices=["none", "outside", "hang"], default="none")
args = ap.parse_args()

data = [dict() for _ in range(args.shards)]
down_until = [0.0] * args.shards
crashed_once = False
count = 0


def shard_of(key):
    return zlib.crc32(key) % args.shards


def bulk(v):
    return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)


def execute(cmd):
    """One command -> its reply, or None for a connection that hangs from now on."""
    global crashed_once, count
    name = cmd[0].upper()
    if name == b"PING":
        return b"+PONG\r\n"
    if name == b"DEBUG" and len(cmd) == 3 and cmd[1].upper() == b"SHARD":
        return b":%d\r\n" % shard_of(cmd[2])
    if name == b"DEBUG" and len(cmd) == 3 and cmd[1].upper() == b"CRASH":
        s = int(cmd[2])
        data[s].clear()
        down_until[s] = time.monotonic() + args.restart_ms / 1000
        crashed_once = True
        return b"+OK\r\n"
    s = shard_of(cmd[1])
    count += 1
    if args.fault == "hang" and crashed_once and s == 2:
        return None
    if time.monotonic() < down_until[s] or (args.fault == "outside" and s == 1 and count % 50 == 0):
        return b"-ERR shard %d is restarting\r\n" % s
    d = data[s]
    key = cmd[1]
    if name == b"SET":
        d[key] = cmd[2]
        return b"+OK\r\n"
    if name == b"GET":
        return bulk(d.get(key))
    if name == b"INCR":
        d[key] = b"%d" % (int(d.get(key, b"0")) + 1)
        return b":" + d[key] + b"\r\n"
    if name == b"LPUSH":
        d.setdefault(key, []).insert(0, cmd[2])
        return b":%d\r\n" % len(d[key])
    if name == b"LPOP":
        lst = d.get(key) or []
        return bulk(lst.pop(0) if lst else None)
    return b"-ERR unknown command\r\n"


async def serve(reader, writer):
    hung = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            n = int(line[1:])
            cmd = []
            for _ in range(n):
                size = int((await reader.readline())[1:])
                cmd.append((await reader.readexactly(size + 2))[:-2])
            reply = None if hung else execute(cmd)
            if reply is None:
                hung = True
                continue
            writer.write(reply)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", args.port or 0)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    if args.print_port:
        print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
