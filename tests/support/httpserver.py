"""A real HTTP server on 127.0.0.1 for collector tests: scripted replies per path, every request
recorded.

Tests talk to it with the real client over loopback, so what they check is what happens on
the wire: conditional headers sent, gzip decoded, redirects followed, a slow server timing out,
a huge body refused mid-stream. Nothing is patched.

    with ScriptedServer() as server:
        server.route("/feed.xml", Reply(body=rss, etag='"v1"'))
        server.route("/flaky", Reply(status=500), Reply(status=200, body=b"ok"))
        ...
        assert server.requests("/feed.xml")[1].headers["if-none-match"] == '"v1"'

A route plays its replies in order; the last one repeats. A reply with ``etag`` or
``last_modified`` answers 304 by itself when the request's conditional header matches, like a
real server. ``repeat`` streams the body that many times without building it in memory first;
``trickle`` sends it one byte at a time with a pause between bytes (a server that dribbles data
to hold a client).
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Reply", "Request", "ScriptedServer", "serve"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering (for timeouts)."""
    encoding: str | None = None
    """``gzip`` or ``deflate``: compress the body and say so in Content-Encoding."""
    etag: str | None = None
    last_modified: str | None = None
    repeat: int = 1
    """Send the body this many times (a huge response without a huge fixture)."""
    send_length: bool = True
    """False: no Content-Length, the body ends when the connection closes."""
    trickle: float = 0.0
    """Seconds to wait before each byte of the body (0: send it at once)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]  # lower-case names
    at: float


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(Request("GET", self.path, headers, time.monotonic()))
        reply = owner._next(urlsplit(self.path).path)
        if reply.delay:
            time.sleep(reply.delay)
        if self._not_modified(reply, headers):
            self.send_response(304)
            if reply.etag:
                self.send_header("ETag", reply.etag)
            if reply.last_modified:
                self.send_header("Last-Modified", reply.last_modified)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        if reply.encoding == "gzip":
            body = gzip.compress(body * reply.repeat)
        elif reply.encoding == "deflate":
            body = zlib.compress(body * reply.repeat)
        repeat = 1 if reply.encoding else reply.repeat
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        if reply.encoding:
            self.send_header("Content-Encoding", reply.encoding)
        if reply.etag:
            self.send_header("ETag", reply.etag)
        if reply.last_modified:
            self.send_header("Last-Modified", reply.last_modified)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.send_length:
            self.send_header("Content-Length", str(len(body) * repeat))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            if reply.trickle:
                self._trickle(body * repeat, reply.trickle)
            else:
                for _ in range(repeat):
                    self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (size cap, timeout): expected

    def _trickle(self, body: bytes, pause: float) -> None:
        stopping = self.server.owner.stopping
        for i in range(len(body)):
            if stopping.wait(pause):
                self.close_connection = True
                return  # the server is shutting down: stop dribbling
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()

    @staticmethod
    def _not_modified(reply: Reply, headers: dict[str, str]) -> bool:
        if reply.etag and headers.get("if-none-match") == reply.etag:
            return True
        return bool(reply.last_modified) and headers.get("if-modified-since") == reply.last_modified

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests assert on recorded requests, not on stderr


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() waits for handlers still sleeping on a delay

    def __init__(self, owner: ScriptedServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up mid-reply is part of several tests


class ScriptedServer:
    """The server; start it with ``with`` (or :func:`serve`)."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, *replies: Reply) -> str:
        """Script ``path`` (without query string); returns its full URL."""
        if not replies:
            raise ValueError("route() needs at least one Reply")
        with self._lock:
            self._routes[path] = list(replies)
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or urlsplit(r.path).path == path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self, path: str) -> Reply:
        with self._lock:
            replies = self._routes.get(path)
            if not replies:
                return Reply(status=404, body=b"no such route", content_type="text/plain")
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve() -> Iterator[ScriptedServer]:
    """``with serve() as server:`` - a started server, stopped afterwards."""
    with ScriptedServer() as server:
        yield server
