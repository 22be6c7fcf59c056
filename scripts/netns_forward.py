"""Forward a loopback port of this machine into a network namespace's loopback.

    python scripts/netns_forward.py NETNS LISTEN_PORT TARGET_PORT

scripts/team_stack.sh runs the team stack inside a network namespace (only there does
Ray keep to 127.0.0.1) and uses this to make its MLflow server answer on this machine's
127.0.0.1 too, for a browser, `rnnlab tracking=server` and the tests. Traffic stays on
loopback on both sides. Linux only; needs the right to enter the namespace (root).

One thread is moved into the namespace (``setns`` moves only the calling thread) and
opens the connections to the target there; a socket keeps the namespace it was made in,
so the copying threads can use it from here.
"""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def _opener(netns: str, requests: queue.Queue, ready: queue.Queue) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    except OSError as exc:
        ready.put(f"cannot open namespace {netns}: {exc.strerror}")
        return
    failed = libc.setns(fd, CLONE_NEWNET) != 0
    os.close(fd)
    if failed:
        ready.put(f"cannot enter namespace {netns}: {os.strerror(ctypes.get_errno())}")
        return
    ready.put(None)
    while True:
        port, reply = requests.get()
        try:
            reply.put(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError as exc:
            reply.put(exc)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(client: socket.socket, target: int, requests: queue.Queue) -> None:
    reply: queue.Queue = queue.Queue()
    requests.put((target, reply))
    upstream = reply.get()
    if isinstance(upstream, OSError):
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(argv: list[str]) -> None:
    netns, listen, target = argv[0], int(argv[1]), int(argv[2])
    requests: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    threading.Thread(target=_opener, args=(netns, requests, ready), daemon=True).start()
    if (problem := ready.get()) is not None:
        raise SystemExit(f"netns_forward: {problem}")
    server = socket.create_server(("127.0.0.1", listen))
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve, args=(client, target, requests), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
