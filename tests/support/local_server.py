"""What the local protocol servers of the tests share: a threaded HTTP server on 127.0.0.1,
started and stopped around a test, and a queue of scripted faults."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _HTTPServer(ThreadingHTTPServer):
    app: LocalServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait

    def do_GET(self) -> None:
        self.server.app._handle(self)

    def do_POST(self) -> None:
        self.server.app._handle(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; the server's `requests` is the log."""


class LocalServer:
    """Subclasses answer in `_handle(handler)` and pop faults from `_faults` under `_lock`."""

    name = "local-server"

    def __init__(self) -> None:
        self._faults: list[Any] = []
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self, port: int = 0) -> Self:
        """Bind 127.0.0.1 (`port` 0: any free port) and serve in a background thread."""
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_until_interrupted(self) -> None:
        """Block until Ctrl-C, then stop (for running a server by hand)."""
        try:
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        finally:
            self.stop()

    def inject(self, *faults: Any) -> None:
        """Queue faults; each is consumed, in order, by exactly one subsequent (matching)
        request."""
        with self._lock:
            self._faults.extend(faults)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, response: Any) -> None:
        """Send a response (`status`, `content_type`, `headers` pairs, `body` bytes); a client
        that already hung up (e.g. after its timeout) is not an error."""
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
