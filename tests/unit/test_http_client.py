"""The shared HTTP client against a real server on loopback: the status -> outcome table,
retries, Retry-After, redirects, the size cap, conditional GET, gzip, the per-host rate limit,
and URLs with tokens that never reach a log line or an error."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline import __version__
from pipeline.collectors.http import (
    HostRateLimiter,
    HttpClient,
    parse_retry_after,
    parse_size,
    safe_url,
    user_agent,
)
from pipeline.errors import TerminalError, TransientError
from tests.support.httpserver import Reply, ScriptedServer, serve


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve() as s:
        yield s


class Sleeps:
    """An injected sleep: records waits instead of taking them."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(sleeps: Sleeps | None = None, **kw: object) -> HttpClient:
    options: dict[str, object] = {
        "min_interval": 0.0,
        "limiter": HostRateLimiter(),
        "sleep": sleeps if sleeps is not None else Sleeps(),
    }
    options.update(kw)
    return HttpClient(**options)  # type: ignore[arg-type]


def test_200_returns_bytes_headers_and_sends_a_polite_user_agent(server):
    url = server.route("/a", Reply(body=b"hello", content_type="text/plain; charset=utf-8"))
    with client(contact="https://ops.example/careradar") as c:
        r = c.get(url, accept="text/plain")
    assert (r.status, r.content, r.not_modified, r.url) == (200, b"hello", False, url)
    assert r.media_type == "text/plain" and r.charset == "utf-8"
    sent = server.requests("/a")[0].headers
    assert sent["user-agent"] == f"careradar/{__version__} (+https://ops.example/careradar)"
    assert sent["accept"] == "text/plain"
    assert "gzip" in sent["accept-encoding"]


def test_user_agent_without_contact_and_override():
    assert user_agent() == f"careradar/{__version__}"
    assert user_agent("mailto:ops@example.com", "MyBot/2") == "MyBot/2"


def test_conditional_get_with_etag_reports_not_modified(server):
    url = server.route("/e", Reply(body=b"v1", etag='"abc"'))
    with client() as c:
        first = c.get(url)
        assert first.etag == '"abc"' and first.content == b"v1"
        second = c.get(url, etag=first.etag)
    assert second.not_modified and second.status == 304 and second.content == b""
    assert "if-none-match" not in server.requests("/e")[0].headers
    assert server.requests("/e")[1].headers["if-none-match"] == '"abc"'


def test_conditional_get_with_last_modified_reports_not_modified(server):
    stamp = "Wed, 01 May 2024 12:00:00 GMT"
    url = server.route("/lm", Reply(body=b"v1", last_modified=stamp))
    with client() as c:
        first = c.get(url)
        second = c.get(url, last_modified=first.last_modified)
    assert first.last_modified == stamp and second.not_modified
    assert server.requests("/lm")[1].headers["if-modified-since"] == stamp


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_decoded(server, encoding):
    text = "Grüße 你好 " * 500
    url = server.route("/z", Reply(body=text, encoding=encoding))
    with client() as c:
        assert c.get(url).content.decode("utf-8") == text


def test_redirects_are_followed_up_to_the_limit(server):
    server.route("/r1", Reply(status=301, headers={"Location": "/r2"}))
    server.route("/r2", Reply(status=302, headers={"Location": "/end"}))
    server.route("/end", Reply(body=b"arrived"))
    with client(max_redirects=2) as c:
        r = c.get(server.url("/r1"))
    assert r.content == b"arrived" and r.url == server.url("/end")


def test_redirects_over_the_limit_are_terminal(server):
    server.route("/loop", Reply(status=302, headers={"Location": "/loop"}))
    with client(max_redirects=3) as c, pytest.raises(TerminalError) as e:
        c.get(server.url("/loop"), what="source 'news'")
    assert "source 'news'" in e.value.message and "more than 3 times" in e.value.message
    assert len(server.requests("/loop")) == 4  # the first request plus three redirects


def test_body_over_max_bytes_with_content_length_is_refused(server):
    url = server.route("/big", Reply(body=b"x" * 65_536, repeat=32))  # 2 MiB
    with client(max_bytes=1_000_000) as c, pytest.raises(TerminalError) as e:
        c.get(url)
    assert "larger than max_bytes (1,000,000 bytes)" in e.value.message
    assert "max_bytes" in (e.value.hint or "")


def test_streamed_body_over_max_bytes_is_cut_off_while_reading(server):
    # No Content-Length: the cap has to be enforced chunk by chunk, 64 MiB never arrive.
    url = server.route("/stream", Reply(body=b"y" * 65_536, repeat=1_024, send_length=False))
    with client(max_bytes=500_000) as c, pytest.raises(TerminalError, match="max_bytes"):
        c.get(url)


def test_gzip_bomb_is_refused_by_its_decoded_size(server):
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    url = server.route(
        "/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}, content_type="text/xml")
    )
    with client(max_bytes=1_000_000) as c, pytest.raises(TerminalError, match="max_bytes"):
        c.get(url)


def test_429_raises_transient_at_once_with_retry_after_seconds(server):
    url = server.route("/rl", Reply(status=429, headers={"Retry-After": "120"}))
    sleeps = Sleeps()
    with client(sleeps, retries=3) as c, pytest.raises(TransientError) as e:
        c.get(url)
    assert e.value.retry_after == 120
    assert "429" in e.value.message
    assert len(server.requests("/rl")) == 1 and sleeps.calls == []


def test_429_retry_after_as_http_date(server):
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    url = server.route("/rl", Reply(status=429, headers={"Retry-After": later}))
    with client(wall_clock=lambda: now) as c, pytest.raises(TransientError) as e:
        c.get(url)
    assert e.value.retry_after == pytest.approx(90)


def test_500_is_retried_with_jittered_backoff_then_succeeds(server):
    url = server.route("/flaky", Reply(status=500), Reply(status=502), Reply(body=b"fine"))
    sleeps = Sleeps()
    with client(sleeps, retries=2, backoff=1.0) as c:
        assert c.get(url).content == b"fine"
    assert len(server.requests("/flaky")) == 3
    assert len(sleeps.calls) == 2
    assert 0.5 <= sleeps.calls[0] <= 1.5 and 1.0 <= sleeps.calls[1] <= 3.0


def test_500_every_time_becomes_transient_after_the_retries(server):
    url = server.route("/down", Reply(status=500, body=b"oops"))
    sleeps = Sleeps()
    with client(sleeps, retries=2) as c, pytest.raises(TransientError) as e:
        c.get(url, what="source 'news'")
    assert len(server.requests("/down")) == 3 and len(sleeps.calls) == 2
    assert "HTTP 500" in e.value.message and "after 3 attempts" in e.value.message
    assert e.value.message.startswith("source 'news': ")


def test_503_retry_after_is_honoured_inside_the_fetch_when_short(server):
    url = server.route(
        "/busy", Reply(status=503, headers={"Retry-After": "7"}), Reply(body=b"back")
    )
    sleeps = Sleeps()
    with client(sleeps, retries=1, backoff=0.1) as c:
        assert c.get(url).content == b"back"
    assert sleeps.calls == [7.0]


def test_503_with_a_long_retry_after_goes_back_to_the_caller(server):
    url = server.route("/busy", Reply(status=503, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    with client(sleeps, retries=3) as c, pytest.raises(TransientError) as e:
        c.get(url)
    assert e.value.retry_after == 3600 and sleeps.calls == []
    assert len(server.requests("/busy")) == 1


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "needs credentials"),
        (403, "refused access (403 Forbidden)"),
        (404, "404 Not Found"),
        (410, "gone for good"),
        (400, "HTTP 400"),
    ],
)
def test_client_errors_are_terminal_with_a_reason(server, status, words):
    url = server.route("/x", Reply(status=status))
    sleeps = Sleeps()
    with client(sleeps, retries=2) as c, pytest.raises(TerminalError) as e:
        c.get(url)
    assert words in e.value.message and e.value.hint
    assert len(server.requests("/x")) == 1 and sleeps.calls == []


def test_read_timeout_is_retried_then_transient(server):
    url = server.route("/slow", Reply(body=b"late", delay=0.6))
    sleeps = Sleeps()
    with client(sleeps, timeout=0.15, retries=1) as c, pytest.raises(TransientError) as e:
        c.get(url)
    assert "read timeout" in e.value.message
    assert len(server.requests("/slow")) == 2 and len(sleeps.calls) == 1


def test_connection_refused_is_transient():
    with ScriptedServer() as s:
        url = s.url("/gone")
    # The server is stopped: nothing listens on that port any more.
    with client(retries=0) as c, pytest.raises(TransientError, match="connection failed"):
        c.get(url)


def test_per_host_rate_limit_is_shared_between_clients(server):
    url = server.route("/p", Reply(body=b"ok"))
    now = [100.0]
    waits: list[float] = []

    def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = HostRateLimiter(clock=lambda: now[0])
    a = client(limiter=limiter, min_interval=2.0, sleep=fake_sleep)
    b = client(limiter=limiter, min_interval=2.0, sleep=fake_sleep)
    with a, b:
        a.get(url)
        b.get(url)  # another source, same host: waits for the first one's interval
        now[0] += 5.0
        a.get(url)  # enough time passed: no wait
    assert waits == [2.0]
    assert len(server.requests("/p")) == 3


def test_tokens_in_query_strings_never_reach_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx; undo it here
    server.route("/feed", Reply(status=404))
    with client() as c, pytest.raises(TerminalError) as e:
        c.get(server.url("/feed?token=s3cr3t-value&x=1"))
    assert "s3cr3t" not in e.value.message and "s3cr3t" not in (e.value.hint or "")
    assert "/feed?…" in e.value.message
    assert "s3cr3t" not in caplog.text
    assert "127.0.0.1" in caplog.text  # httpx did log the request, redacted


def test_safe_url_drops_query_fragment_and_credentials():
    assert safe_url("https://u:pw@h.example:8443/p/q?key=1#f") == "https://h.example:8443/p/q?…"
    assert safe_url("http://h.example/feed") == "http://h.example/feed"


def test_parse_retry_after_forms():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0  # in the past
    assert parse_retry_after("99999999") == 86_400  # capped at a day
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_parse_size_units():
    assert parse_size(1024) == 1024
    assert parse_size("500kB") == 500_000
    assert parse_size("10MB") == 10_000_000
    assert parse_size("2MiB") == 2 * 1024 * 1024
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
