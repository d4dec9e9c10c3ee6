#!/usr/bin/env python3
"""N concurrent slow readers of one URL on loopback, for a bounded time.

usage: slow_readers.py URL N SECONDS
Each client has a small receive buffer and reads 16 KiB every 100 ms. Prints one line
`SLOWJSON {...}` with how many connected, got a 2xx status line, and the bytes read.
"""
import asyncio, json, socket, sys, time
from urllib.parse import urlsplit

URL, N, SECS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
u = urlsplit(URL)
assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
ADDR = (u.hostname, u.port)
PATH = u.path + ("?" + u.query if u.query else "")
REQ = f"GET {PATH} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n".encode()
stats = {"clients": N, "connected": 0, "ok": 0, "bytes": 0}


async def reader(deadline):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(s, ADDR), 10)
        stats["connected"] += 1
        await loop.sock_sendall(s, REQ)
        first = True
        while time.monotonic() < deadline:
            b = await asyncio.wait_for(loop.sock_recv(s, 16384), max(0.1, deadline - time.monotonic()))
            if not b:
                break
            if first:
                first = False
                if b[:12] in (b"HTTP/1.1 200", b"HTTP/1.1 206"):
                    stats["ok"] += 1
            stats["bytes"] += len(b)
            await asyncio.sleep(0.1)
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        s.close()


async def main():
    deadline = time.monotonic() + SECS
    await asyncio.gather(*(reader(deadline) for _ in range(N)))


asyncio.run(main())
print("SLOWJSON " + json.dumps(stats), flush=True)
