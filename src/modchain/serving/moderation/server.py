"""Run the moderation service's app on a socket: in a background thread for tests, examples and benchmarks.

``modchain serve moderation`` (the command, :mod:`modchain.cli.moderation_service`) runs it in the foreground.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn's ``sockets=`` (no race for a free port with ``port=0``)."""
    # proto=IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP; with
    # proto 0 every small response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *,
                    timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL and stops it on exit.

    For tests, examples and benchmarks. The socket is bound here, so ``port=0`` has no race for a free port.
    """
    import uvicorn

    sock = listening_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5,
                                           server_header=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="modchain-moderation-service")
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the moderation service did not start")
            time.sleep(0.01)
        bound_port = sock.getsockname()[1]
        yield f"http://{'[' + host + ']' if ':' in host else host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
