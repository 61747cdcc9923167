"""A fake Reddit on 127.0.0.1: the OAuth token endpoint plus Reddit-API-shaped JSON from
fixture files, so praw runs unmodified against it over real HTTP.

    with RedditServer(client_secret=..., password=...) as server:
        server.route("/r/lumo/new", fixture("new_submissions_1.json"))
        server.route("/r/all/search", fixture("search.json"), q="lumo app")
        server.route("/r/lumo/comments", too_many_requests(retry_after=42))
        reddit = praw.Reddit(oauth_url=server.url, reddit_url=server.url, ...)

What it does like Reddit: ``POST /api/v1/access_token`` checks HTTP Basic client credentials
(401 when wrong) and the password grant (200 ``{"error": "invalid_grant"}`` when wrong, as
Reddit does); every other request needs ``Authorization: bearer <issued token>`` or gets 401
with ``www-authenticate: ... error="invalid_token"``. Paths are matched without a trailing
slash or ``.json``. A route (the token endpoint's too) plays its replies in order and then
repeats the last one. An unrouted ``/comments/<id>`` answers an empty thread for that id (so
reply polling always has something to read); any other unrouted path is Reddit's 404 body.
Every request is recorded (method, path, query, headers, body), so tests can assert the user
agent and that no secret ever travelled in a URL.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "reddit"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"
    delay: float = 0.0  # seconds before answering (a slow server, for timeouts)


def json_reply(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode("utf-8"), dict(headers or {}))


def fixture(name: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    path = FIXTURES / name
    kind = "text/html; charset=UTF-8" if path.suffix == ".html" else "application/json"
    return Reply(status, path.read_bytes(), dict(headers or {}), kind)


def too_many_requests(retry_after: int = 30, **extra: str) -> Reply:
    return fixture("error_429.json", 429, {"retry-after": str(retry_after), **extra})


def server_error(status: int = 500) -> Reply:
    return fixture("error_503.html" if status == 503 else "error_500.json", status)


def forbidden(reason: str = "private") -> Reply:
    return fixture(f"error_403_{reason}.json", 403)


def not_found(banned: bool = False) -> Reply:
    return fixture("error_404_banned.json" if banned else "error_404.json", 404)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def url(self) -> str:
        return self.path + ("?" + "&".join(f"{k}={v}" for k, v in self.query.items()))


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def next(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


def _norm(path: str) -> str:
    return path.removesuffix(".json").rstrip("/") or "/"


class RedditServer:
    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        username: str = "LumoCare",
        password: str = "test-password",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.token = "fake-access-token-1"
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self.recorded: list[Recorded] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RedditServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- scripting -----------------------------------------------------------------------------

    def route(self, path: str, *replies: Reply, **query: str) -> None:
        """Answer ``path`` (and, if given, only requests whose query has these values).

        No replies: forget the route (the token endpoint then issues tokens again).
        """
        with self._lock:
            self._routes = [
                r for r in self._routes if not (r.path == _norm(path) and r.query == query)
            ]
            if replies:
                self._routes.append(_Route(_norm(path), dict(query), list(replies)))

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.recorded if path is None or r.path == _norm(path)]

    def _routed(self, path: str, query: Mapping[str, str]) -> Reply | None:
        with self._lock:
            matches = [
                r
                for r in self._routes
                if r.path == path and all(query.get(k) == v for k, v in r.query.items())
            ]
            if not matches:
                return None
            # The most specific route wins (a query-matched one over a bare path).
            return max(matches, key=lambda r: len(r.query)).next()

    def _pick(self, path: str, query: Mapping[str, str]) -> Reply:
        routed = self._routed(path, query)
        if routed is not None:
            return routed
        found = re.fullmatch(r"/comments/([a-z0-9]+)", path)
        if found:
            return json_reply(empty_thread(found.group(1)))
        return not_found()

    # -- HTTP ----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                path = _norm(parts.path)
                rec = Recorded(
                    self.command,
                    path,
                    query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with server._lock:
                    server.recorded.append(rec)
                if path == "/api/v1/access_token":
                    reply = server._routed(path, query) or server._token(rec)
                elif rec.headers.get("authorization") != f"bearer {server.token}":
                    reply = json_reply(
                        {"message": "Unauthorized", "error": 401},
                        401,
                        {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
                    )
                else:
                    reply = server._pick(path, query)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(reply.body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = _handle
            do_POST = _handle

        return Handler

    def _token(self, rec: Recorded) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if rec.headers.get("authorization") != f"Basic {expected}":
            return json_reply({"message": "Unauthorized", "error": 401}, 401)
        form = dict(parse_qsl(rec.body.decode("utf-8")))
        grant = form.get("grant_type")
        if grant == "password" and (
            form.get("username") != self.username or form.get("password") != self.password
        ):
            return json_reply({"error": "invalid_grant"})
        if grant not in ("password", "client_credentials", "refresh_token"):
            return json_reply({"error": "unsupported_grant_type"})
        return json_reply(
            {"access_token": self.token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
        )


def empty_thread(ident: str) -> list[dict[str, Any]]:
    """``/comments/<id>`` for a post nobody has answered: the post stub and no comments."""
    post = {
        "kind": "t3",
        "data": {
            "id": ident,
            "name": f"t3_{ident}",
            "title": "(thread)",
            "selftext": "",
            "author": "someone",
            "subreddit": "lumo",
            "created_utc": 1772442000.0,
            "permalink": f"/r/lumo/comments/{ident}/thread/",
            "num_comments": 0,
        },
    }
    return [
        {"kind": "Listing", "data": {"after": None, "before": None, "children": [post]}},
        {"kind": "Listing", "data": {"after": None, "before": None, "children": []}},
    ]
