"""A threaded HTTP server that can stop promptly with keep-alive connections open (stdlib only).

Shared by the local SageMaker endpoint and the AWS emulators: botocore keeps connections alive, and a
handler thread blocked reading an idle one would otherwise hold ``stop()`` up or outlive it.
"""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any


class TrackingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive handlers must not block close()

    def __init__(self, address: tuple[str, int], handler_class: Any) -> None:
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, handler_class)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        """Stop serving, close the listener, and wake handler threads blocked on idle keep-alive reads."""
        self.shutdown()
        self.server_close()
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
