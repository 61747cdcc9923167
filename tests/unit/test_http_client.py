"""The shared HTTP client against a real server on loopback: the status -> outcome table,
retries, Retry-After, redirects and the redirect policy, the size cap, the total-time deadline
against a trickling server, conditional GET, gzip, the per-host rate limit, and URLs with tokens
that never reach a log line or an error."""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline import __version__
from pipeline.collectors.http import (
    HostRateLimiter,
    HttpClient,
    HttpSource,
    address_class,
    parse_retry_after,
    parse_size,
    redirect_refusal,
    safe_url,
    user_agent,
    web_url,
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


# --- redirect policy ------------------------------------------------------------------------------

# What names resolve to, for the policy checks below (IP literals are never looked up).
DNS = {
    "feeds.example": ["93.184.216.34"],
    "cdn.example": ["93.184.216.35", "2606:2800:220:1::1"],
    "intranet.example": ["10.1.2.3"],
    "sneaky.example": ["93.184.216.36", "192.168.1.10"],  # one private answer is enough
    "intranet2.example": ["192.168.7.7"],
}


def fake_dns(host: str) -> list[str]:
    from pipeline.collectors.http import resolve_host

    return DNS.get(host) or resolve_host(host)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://127.0.0.1/admin", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.0.0.5/", "private"),
        ("http://intranet.example/feed", "private"),
        ("http://sneaky.example/feed", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:9000/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-public"),
        ("file:///etc/passwd", "non-http(s)"),
        ("gopher://feeds.example/", "non-http(s)"),
    ],
)
def test_a_public_feed_may_not_redirect_inward(target, words):
    reason = redirect_refusal(
        "http://feeds.example/rss", target, configured="http://feeds.example/rss", resolve=fake_dns
    )
    assert reason is not None and words in reason


def test_public_redirects_and_upgrades_are_followed():
    def check(src: str, dst: str) -> str | None:
        return redirect_refusal(src, dst, configured=src, resolve=fake_dns)

    assert check("http://feeds.example/rss", "https://cdn.example/rss.xml") is None
    assert check("https://feeds.example/rss", "https://cdn.example/rss.xml") is None
    assert check("https://93.184.216.34/rss", "https://feeds.example/x") is None


def test_https_to_http_is_refused_even_between_public_hosts():
    reason = redirect_refusal(
        "https://feeds.example/rss",
        "http://cdn.example/rss.xml",
        configured="https://feeds.example/rss",
        allow_private=True,
        resolve=fake_dns,
    )
    assert reason == "redirect from https to plain http"


def test_a_private_configured_url_may_redirect_within_private_addresses():
    def check(configured: str, dst: str, allow: bool = False) -> str | None:
        return redirect_refusal(
            configured, dst, configured=configured, allow_private=allow, resolve=fake_dns
        )

    assert check("http://127.0.0.1:8000/feed", "http://127.0.0.1:8000/feed2") is None
    assert check("http://intranet.example/feed", "http://intranet2.example/feed") is None
    assert check("http://intranet.example/feed", "http://feeds.example/rss") is None
    # The metadata service stays out of reach unless the source itself is link-local.
    assert "link-local" in (check("http://10.0.0.2/f", "http://169.254.169.254/") or "")
    assert check("http://169.254.10.10/f", "http://169.254.169.254/") is None
    # allow_private_redirects opens every non-public address to a public source.
    assert check("http://feeds.example/rss", "http://169.254.169.254/", allow=True) is None
    assert check("http://feeds.example/rss", "http://10.0.0.5/", allow=True) is None


def test_address_classes():
    assert address_class("8.8.8.8") is None and address_class("2606:4700::1111") is None
    assert address_class("172.16.0.1") == "private" and address_class("fd00::1") == "private"
    assert address_class("240.0.0.1") is not None  # reserved (Python counts it private)
    assert address_class("not-an-ip") == "reserved"


def test_configured_loopback_redirecting_to_loopback_by_name_works(server):
    server.route(
        "/start", Reply(status=302, headers={"Location": f"http://localhost:{server.port}/end"})
    )
    server.route("/end", Reply(body=b"arrived"))
    with client() as c:
        r = c.get(server.url("/start"))
    assert r.content == b"arrived" and r.url == f"http://localhost:{server.port}/end"


def test_a_redirect_inward_is_refused_before_it_is_requested(server, caplog):
    # The configured host "localhost" is taken for a public site (the resolver the policy asks
    # says so); it redirects to 127.0.0.1, which must not be requested.
    secret = "/internal/aZ3kP9qR7sT1uV5wX8yB2c.json"
    server.route("/start", Reply(status=302, headers={"Location": server.url(secret)}))
    server.route(secret, Reply(body=b"metadata credentials"))
    start = f"http://localhost:{server.port}/start"
    public = {"localhost": ["93.184.216.34"]}
    with client(resolve=lambda h: public.get(h, [h])) as c, pytest.raises(TerminalError) as e:
        c.get(start, what="source 'news'")
    assert server.requests(secret) == [] and len(server.requests("/start")) == 1
    assert "refused a redirect to a loopback address" in e.value.message
    assert "aZ3kP9qR7sT1uV5wX8yB2c" not in e.value.message + caplog.text
    assert "allow_private_redirects" in (e.value.hint or "")
    # Allowed explicitly, the same redirect is followed.
    with client(resolve=lambda h: public.get(h, [h]), allow_private_redirects=True) as c:
        assert c.get(start).content == b"metadata credentials"


def test_redirect_config_key_reaches_the_client():
    cfg = HttpSource.model_validate({"name": "n", "kind": "feed", "allow_private_redirects": True})
    assert HttpClient.for_source(cfg).allow_private_redirects is True
    assert HttpSource.model_validate({"name": "n", "kind": "feed"}).allow_private_redirects is False


# --- deadline, decoding ---------------------------------------------------------------------------


def test_a_trickling_body_is_cut_off_at_the_deadline(server):
    # 1 byte every 50 ms: each read is quick (no read timeout), the whole body would take 10 s.
    url = server.route("/drip", Reply(body=b"<rss>" + b" " * 195, trickle=0.05))
    started = time.monotonic()
    with client(timeout=1.0, deadline=0.5, retries=2) as c, pytest.raises(TransientError) as e:
        c.get(url, what="source 'news'")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"held for {elapsed:.1f}s"
    assert "0.5s deadline" in e.value.message and e.value.message.startswith("source 'news'")
    assert len(server.requests("/drip")) == 1  # not retried within the fetch: still slow


def test_a_slow_small_body_within_the_deadline_arrives_whole(server):
    url = server.route("/drip", Reply(body=b"abc", trickle=0.05))
    with client(timeout=1.0, deadline=2.0) as c:
        assert c.get(url).content == b"abc"


def test_deadline_defaults_to_three_read_timeouts_plus_connect():
    assert client(timeout=10, connect_timeout=5).deadline == 35
    cfg = HttpSource.model_validate({"name": "n", "kind": "feed", "deadline": "2m"})
    assert HttpClient.for_source(cfg).deadline == 120


def test_raw_deflate_without_zlib_header_is_decoded(server):
    text = "Grüße " * 300
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = squeezer.compress(text.encode()) + squeezer.flush()
    url = server.route("/raw", Reply(body=raw, headers={"Content-Encoding": "deflate"}))
    with client() as c:
        assert c.get(url).content.decode() == text
    assert server.requests("/raw")[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_broken_gzip_body_is_transient(server):
    url = server.route(
        "/bad", Reply(body=b"\x1f\x8bnot gzip at all", headers={"Content-Encoding": "gzip"})
    )
    with client() as c, pytest.raises(TransientError, match="could not be decompressed"):
        c.get(url)


def test_an_encoding_we_did_not_ask_for_is_terminal(server):
    url = server.route("/br", Reply(body=b"\x0b\x02\x80", headers={"Content-Encoding": "br"}))
    with client() as c, pytest.raises(TerminalError, match="did not ask for"):
        c.get(url)


# --- secrets in URLs ----------------------------------------------------------------------------


def test_safe_url_redacts_token_like_path_segments():
    token = "a8F3kLm29xQpR7tZ0wYv5Bn"
    assert safe_url(f"https://u:pw@feeds.example/feeds/{token}.xml?x=1") == (
        "https://feeds.example/feeds/….xml?…"
    )
    assert safe_url(f"https://h.example/p/{token}/rss") == "https://h.example/p/…/rss"
    uuid = "3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f"
    assert safe_url(f"https://h.example/f/{uuid}") == "https://h.example/f/…"
    # Words, numbers and short ids stay readable.
    for kept in (
        "https://h.example/customer-reviews-and-ratings/feed.xml",
        "https://itunes.example/us/rss/customerreviews/page=1/id=1234567890123456789012/json",
        "https://h.example/t/101",
    ):
        assert safe_url(kept) == kept
    assert safe_url(f"not a url/{token}?k=v") == "not a url/…?…"


def test_tokens_in_paths_never_reach_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    token = "Zx81Qw72Er63Ty54Ui45Op"
    server.route(f"/feeds/{token}.xml", Reply(status=410))
    with client() as c, pytest.raises(TerminalError) as e:
        c.get(server.url(f"/feeds/{token}.xml"))
    assert token not in e.value.message + (e.value.hint or "") + caplog.text
    assert "/feeds/….xml" in e.value.message and "/feeds/….xml" in caplog.text


def test_web_url_keeps_only_http_links():
    base = "https://forum.example/feed.xml"
    assert web_url("/t/1", base) == "https://forum.example/t/1"
    assert web_url("https://x.example/a") == "https://x.example/a"
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "mailto:a@b.example",
        "file:///etc/passwd",
        "",
        None,
    ):
        assert web_url(bad, base) is None, bad
        assert web_url(bad) is None, bad
