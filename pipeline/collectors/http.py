"""The one polite HTTP client every web-polling collector shares (feeds, app-store reviews ...).

Modelled on prawcore's session and rate limiter: one table turns an HTTP outcome into what the
runner needs to know.

============================  ===========================================================
outcome                       what ``HttpClient.get`` does
============================  ===========================================================
2xx                           returns an :class:`HttpResult`
304 (after a conditional GET)  returns ``not_modified=True`` and no content
429                           raises ``TransientError`` with ``retry_after`` at once
408, 5xx, timeouts, resets    retried ``retries`` times with jittered back-off, then
                              ``TransientError`` (``retry_after`` from the last answer)
401, 403, 404, 410, other 4xx  raises ``TerminalError`` naming the status and what to check
too many redirects, too big   raises ``TerminalError``: retrying cannot help
refused redirect              raises ``TerminalError`` (see "Redirects" below)
body slower than the deadline  raises ``TransientError`` at once (a trickling server stays slow)
============================  ===========================================================

Politeness: a ``careradar/<version> (+contact)`` user agent, a minimum interval between two
requests to the same host shared by every client in the process (two sources polling one site
do not double its load), connect/read timeouts, a redirect limit and a size cap.

Deadline and size: the body is read with ``iter_raw()`` (bytes as they come off the socket) and
decoded here (gzip, deflate) with a cap on the *decoded* size, so a huge or decompression-bomb
body is refused before it is in memory, and a total-time ``deadline`` is checked on every chunk,
so a server trickling one byte per read timeout cannot hold a worker for days. (The overrun is
at most one read timeout: a read that is still waiting is bounded by ``timeout``.)

Redirects are followed here, not by httpx, so each hop is checked before it is requested
(:func:`redirect_refusal`): a public feed must not be able to send careradar to loopback,
private, link-local (cloud metadata at 169.254.169.254), multicast or reserved addresses, nor
from https to http. A source whose configured URL is itself on a private/loopback address may
redirect within such addresses (an intranet feed); ``allow_private_redirects: true`` allows
them for any source. Names are resolved for the check and again by the connection, so a DNS
rebinding attacker with a 0-second TTL could still slip through; the check stops the plain
redirect, which is the attack a feed URL invites.

Secrets: URLs are only ever shown through :func:`safe_url`, which drops the query string,
any user:password, and path segments that look like tokens (private feed URLs such as
``/feeds/<random token>.xml``). A filter on the ``httpx`` logger does the same to httpx's own
request log.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import re
import socket
import threading
import time
import types
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urljoin

import httpx
from pydantic import BeforeValidator, Field, field_validator

from pipeline import __version__
from pipeline.config import Duration, SourceConfig
from pipeline.errors import CareradarError, TerminalError, TransientError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 1.0
DEFAULT_MIN_INTERVAL = 1.0
MAX_RETRY_WAIT = 30.0
"""Longest wait worth spending inside one fetch; a longer Retry-After goes back to the caller."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate"
"""What we decode ourselves (no br/zstd: their decoders are optional packages)."""
# Retried inside one fetch; other 5xx (501 Not Implemented, 505 ...) are still transient but a
# second try a second later cannot change the answer.
_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_TERMINAL_REASONS: dict[int, tuple[str, str]] = {
    401: (
        "needs credentials (401 Unauthorized)",
        "the URL wants a login or token; check the URL and its credentials",
    ),
    403: (
        "refused access (403 Forbidden)",
        "the resource is private, blocked for this user agent, or needs credentials; "
        "check the URL and set 'contact' so the site can reach you",
    ),
    404: ("has nothing at this address (404 Not Found)", "check the URL; it may have moved"),
    410: (
        "says this resource is gone for good (410 Gone)",
        "remove the source or point it at the new address",
    ),
}


# --- helpers ------------------------------------------------------------------------------------


_TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{20,}")
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")


def _redact_tokens(path: str) -> str:
    """Runs of 20+ URL-safe characters mixing letters and digits (API keys, private feed
    tokens, UUIDs) become ``…``; words such as ``customer-reviews-and-ratings`` stay."""

    def one(m: re.Match[str]) -> str:
        run = m.group(0)
        mixed = any(c.isalpha() for c in run) and any(c.isdigit() for c in run)
        return "…" if mixed else run

    return _TOKEN_RUN.sub(one, path)


def safe_url(url: str | httpx.URL) -> str:
    """``url`` fit for logs, errors, cursors and raw payloads: no query string, no fragment,
    no user:password, and no path segment that looks like a secret token.

    Feed and API URLs often carry tokens in the query (``?key=...``) or the path
    (``/feeds/3f9aK2...x7.xml``); the presence of a query is kept visible as ``?…`` so two URLs
    that differ only there are still told apart.
    """
    try:
        u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        text = re.sub(r"//[^/@]*@", "//", str(url))
        return _redact_tokens(re.sub(r"[?#].*$", "?…", text))
    host = u.host
    port = f":{u.port}" if u.port else ""
    path = _redact_tokens(u.path)
    base = f"{u.scheme}://{host}{port}{path}" if host else path
    return base + ("?…" if u.query else "")


def web_url(value: object, base: str | None = None) -> str | None:
    """An item's link as an absolute http(s) URL (resolved against ``base``), else None.

    Links in feeds and reviews are shown to people in the triage UI: ``javascript:``,
    ``data:``, ``file:`` and other schemes are dropped (the item is kept without a link).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        joined = urljoin(base, text) if base else text
        u = httpx.URL(joined)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if u.scheme not in ("http", "https") or not u.host:
        return None
    return joined


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL; a ValueError (shown safely) otherwise."""
    try:
        u = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        raise ValueError(f"'{safe_url(value)}' is not a URL") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise ValueError(f"'{safe_url(value)}' must be an http:// or https:// URL")
    return value


# --- redirect policy ---------------------------------------------------------------------------

Resolver = Callable[[str], Sequence[str]]
"""host -> its IP addresses (``[]`` when it does not resolve)."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (an IP literal is its own address); [] on failure."""
    bare = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(bare.split("%", 1)[0]))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # the connection will fail on its own, with a clearer error
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def address_class(address: str) -> str | None:
    """None for a public address; else what it is (``loopback``, ``private``, ``link-local``,
    ``multicast``, ``unspecified``, ``reserved``, ``non-public``)."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return "reserved"  # not an address we understand: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"  # 0.0.0.0 reaches this host on Linux
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"  # e.g. 100.64.0.0/10, carrier-grade NAT
    return None


def _classes(url: httpx.URL, resolve: Resolver) -> set[str | None]:
    return {address_class(a) for a in resolve(url.host)} if url.host else set()


def redirect_refusal(
    source: str | httpx.URL,
    target: str | httpx.URL,
    *,
    configured: str | httpx.URL,
    allow_private: bool = False,
    resolve: Resolver = resolve_host,
) -> str | None:
    """Why a redirect from ``source`` to ``target`` must not be followed; None to follow it.

    Refused: a scheme other than http(s); https -> http (the rest of the fetch would be
    readable and forgeable on the wire); a target with any non-public address, unless
    ``allow_private`` or the ``configured`` URL is itself non-public (then non-public targets
    are fine, except link-local ones such as the 169.254.169.254 metadata service, which need
    a link-local configured URL or ``allow_private``).
    """
    src = source if isinstance(source, httpx.URL) else httpx.URL(str(source))
    dst = target if isinstance(target, httpx.URL) else httpx.URL(str(target))
    if dst.scheme not in ("http", "https") or not dst.host:
        return f"redirect to a non-http(s) location ({dst.scheme or 'no scheme'})"
    if src.scheme == "https" and dst.scheme == "http":
        return "redirect from https to plain http"
    if allow_private:
        return None
    bad = sorted(c for c in _classes(dst, resolve) if c is not None)
    if not bad:
        return None
    home = configured if isinstance(configured, httpx.URL) else httpx.URL(str(configured))
    own = _classes(home, resolve) - {None}
    if own and all(c != "link-local" or c in own for c in bad):
        return None  # an intranet source redirecting within the intranet
    return f"redirect to a {'/'.join(bad)} address"


def host_key(url: str | httpx.URL) -> str:
    """The rate-limit key for ``url``: ``host[:port]``, lower case."""
    try:
        u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""
    return f"{u.host.lower()}:{u.port}" if u.port else u.host.lower()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad.

    A date in the past means "now" (0 s). Absurd values are capped at a day so one broken
    header cannot park a source for a year.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return min(float(text), 86_400.0)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), 86_400.0)


_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmg])(i)?)?b?", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"500kB"``, ``"10MB"`` or ``"10MiB"``. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 500kB or 10MB")
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str):
        m = _SIZE_RE.fullmatch(value.strip())
        if not m:
            raise ValueError(f"'{value}' is not a size; write it like 500kB, 10MB or 10MiB")
        power = "kmg".index(m.group(2).lower()) + 1 if m.group(2) else 0
        size = float(m.group(1)) * (1024 if m.group(3) else 1000) ** power
    else:
        raise ValueError("expected a size such as 500kB or 10MB")
    if size < 1:
        raise ValueError("a size must be at least 1 byte")
    return int(size)


Size = Annotated[int, BeforeValidator(parse_size)]


def user_agent(contact: str | None = None, override: str | None = None) -> str:
    """``careradar/<version> (+<contact>)``: who we are and how a site owner reaches us."""
    if override:
        return override
    base = f"careradar/{__version__}"
    return f"{base} (+{contact})" if contact else base


# --- rate limit ---------------------------------------------------------------------------------


class HostRateLimiter:
    """A minimum interval between two requests to the same host, shared by threads and clients.

    Each request reserves the next free slot for its host under a lock and then sleeps outside
    it, so concurrent sources queue up politely instead of bursting together.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, interval: float) -> float:
        """Book a slot for ``host``; returns how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(host, 0.0))
            self._next[host] = start + max(0.0, interval)
            return start - now


SHARED_LIMITER = HostRateLimiter()
"""The process-wide limiter every client uses unless a test hands it its own."""


# --- log redaction -------------------------------------------------------------------------------


class _RedactUrls(logging.Filter):
    """Rewrites httpx's ``HTTP Request: GET <url> ...`` log lines to carry :func:`safe_url`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(safe_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        elif isinstance(record.msg, str) and "://" in record.msg:
            record.msg = _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), record.msg)
        return True


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrls) for f in logger.filters):
            logger.addFilter(_RedactUrls())


_install_log_filter()


# --- config keys shared by every HTTP source ------------------------------------------------------


class HttpSource(SourceConfig):
    """Source keys for anything fetched over HTTP (a collector's config model extends this)."""

    timeout: Duration = Field(
        default=DEFAULT_TIMEOUT, description="read timeout (per read, not for the whole body)"
    )
    deadline: Duration | None = Field(
        default=None,
        description="most time one fetch may take, body included (default 3 x timeout + "
        "connect_timeout)",
    )
    connect_timeout: Duration = Field(default=DEFAULT_CONNECT_TIMEOUT)
    max_bytes: Size = Field(
        default=DEFAULT_MAX_BYTES, description="largest response body (after decompression)"
    )
    max_redirects: int = Field(default=DEFAULT_MAX_REDIRECTS, ge=0, le=30)
    allow_private_redirects: bool = Field(
        default=False,
        description="follow redirects to loopback/private/link-local addresses even when the "
        "configured URL is public (off: a public feed cannot point careradar inward)",
    )
    retries: int = Field(
        default=DEFAULT_RETRIES, ge=0, le=10, description="extra tries for 5xx and timeouts"
    )
    backoff: Duration = Field(default=DEFAULT_BACKOFF, description="first retry wait, doubled")
    min_interval: Duration = Field(
        default=DEFAULT_MIN_INTERVAL,
        description="least time between two requests to one host (all sources together)",
    )
    user_agent: str | None = Field(default=None, description="replaces the whole user agent")
    contact: str | None = Field(
        default=None, description="URL or mailto: put in the user agent for site owners"
    )

    @field_validator("timeout", "connect_timeout", "deadline")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("a timeout must be more than 0s")
        return v


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResult:
    """One successful fetch. ``headers`` keys are lower case; ``url`` is after redirects."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str
    not_modified: bool = False

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def media_type(self) -> str:
        """``application/rss+xml`` from ``application/rss+xml; charset=utf-8`` (lower case)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", self.headers.get("content-type", ""), re.I)
        return m.group(1).lower() if m else None


class _Retry(Exception):  # noqa: N818 - internal control flow, never escapes get()
    def __init__(self, error: TransientError) -> None:
        self.error = error


class HttpClient:
    """A synchronous httpx client with careradar's manners. Use as a context manager."""

    def __init__(
        self,
        *,
        contact: str | None = None,
        user_agent_override: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        allow_private_redirects: bool = False,
        deadline: float | None = None,
        resolve: Resolver = resolve_host,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        limiter: HostRateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.user_agent = user_agent(contact, user_agent_override)
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private_redirects = allow_private_redirects
        self.resolve = resolve
        self.retries = retries
        self.backoff = backoff
        self.min_interval = min_interval
        self.deadline = deadline if deadline is not None else 3 * timeout + connect_timeout
        self.limiter = limiter or SHARED_LIMITER
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,  # followed in _once, each hop checked by redirect_refusal
            headers={"User-Agent": self.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            transport=transport,
            trust_env=False,  # no surprise proxies or .netrc credentials
        )

    @classmethod
    def for_source(cls, cfg: HttpSource, **overrides: Any) -> HttpClient:
        """A client configured from an :class:`HttpSource`'s keys (tests override sleep etc.)."""
        kwargs: dict[str, Any] = {
            "contact": cfg.contact,
            "user_agent_override": cfg.user_agent,
            "timeout": cfg.timeout,
            "connect_timeout": cfg.connect_timeout,
            "max_bytes": cfg.max_bytes,
            "max_redirects": cfg.max_redirects,
            "allow_private_redirects": cfg.allow_private_redirects,
            "deadline": cfg.deadline,
            "retries": cfg.retries,
            "backoff": cfg.backoff,
            "min_interval": cfg.min_interval,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one public call ---------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        what: str = "",
    ) -> HttpResult:
        """Fetch ``url``; conditional when ``etag``/``last_modified`` are given.

        ``what`` prefixes every error (e.g. ``source 'acme-news'``) so the message says where.
        """
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        prefix = f"{what}: " if what else ""
        where = safe_url(url)
        for attempt in range(self.retries + 1):
            wait = self.limiter.reserve(host_key(url), self.min_interval)
            if wait > 0:
                self.sleep(wait)
            try:
                return self._once(url, headers, prefix, where)
            except _Retry as r:
                if attempt == self.retries:
                    raise TransientError(
                        f"{r.error.message} (after {attempt + 1} attempts)",
                        hint=r.error.hint,
                        retry_after=r.error.retry_after,
                    ) from None
                delay = self.backoff * (2**attempt) * (0.5 + random.random())  # jitter, not crypto
                if r.error.retry_after is not None:
                    if r.error.retry_after > MAX_RETRY_WAIT:
                        raise r.error from None
                    delay = max(delay, r.error.retry_after)
                log.info(
                    "%s; retry %d/%d in %.1fs", r.error.message, attempt + 1, self.retries, delay
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, url: str, headers: dict[str, str], prefix: str, where: str) -> HttpResult:
        started = self.clock()
        try:
            current = httpx.URL(url)
            for _hop in range(self.max_redirects + 1):
                self._check_deadline(started, prefix, where)
                with self._client.stream("GET", current, headers=headers) as resp:
                    final = safe_url(resp.url)
                    status = resp.status_code
                    out_headers = types.MappingProxyType(dict(resp.headers.items()))
                    location = resp.headers.get("location")
                    if status in _REDIRECTS and location:
                        current = self._redirect(current, location, url, prefix, where)
                        continue
                    if status == 304:
                        log.debug("GET %s -> 304 not modified", where)
                        return HttpResult(
                            status, out_headers, b"", str(resp.url), not_modified=True
                        )
                    if not 200 <= status < 300:
                        raise self._failure(status, out_headers, prefix, final)
                    content = self._read_capped(resp, prefix, final, started)
                    log.debug(
                        "GET %s -> %d, %d bytes in %.2fs",
                        final,
                        status,
                        len(content),
                        self.clock() - started,
                    )
                    return HttpResult(status, out_headers, content, str(resp.url))
            raise TerminalError(
                f"{prefix}{where} redirected more than {self.max_redirects} times",
                hint="a redirect loop, or the resource moved; open the URL in a browser and "
                "configure where it ends up (or raise max_redirects)",
            )
        except httpx.TimeoutException as e:
            kind = type(e).__name__.replace("Timeout", " timeout").lower()
            raise _Retry(
                TransientError(
                    f"{prefix}{where}: {kind}",
                    hint="the server is slow or unreachable; it is retried on the next run "
                    "(raise 'timeout' if it is always this slow)",
                )
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise _Retry(
                TransientError(
                    f"{prefix}{where}: connection failed ({type(e).__name__}: {_scrub(str(e))})",
                    hint="the server is down or the network is; it is retried on the next run",
                )
            ) from None
        except httpx.DecodingError as e:
            raise TransientError(
                f"{prefix}{where}: the response body could not be decompressed ({_scrub(str(e))})",
                hint="a broken or truncated gzip/deflate body; it is retried on the next run",
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise TerminalError(
                f"{prefix}{where}: not a fetchable URL ({_scrub(str(e))})",
                hint="use an http:// or https:// URL",
            ) from None
        except httpx.HTTPError as e:
            raise TransientError(
                f"{prefix}{where}: request failed ({type(e).__name__}: {_scrub(str(e))})",
                hint="it is retried on the next run",
            ) from None

    def _redirect(
        self, current: httpx.URL, location: str, configured: str, prefix: str, where: str
    ) -> httpx.URL:
        """The next hop after a redirect to ``location``, or TerminalError when it is refused."""
        try:
            target = current.join(location.strip())
        except (httpx.InvalidURL, TypeError, ValueError):
            raise TerminalError(
                f"{prefix}{where}: redirected to an unusable location",
                hint="open the URL in a browser and configure where it ends up",
            ) from None
        refusal = redirect_refusal(
            current,
            target,
            configured=configured,
            allow_private=self.allow_private_redirects,
            resolve=self.resolve,
        )
        if refusal is not None:
            log.warning("%s%s: refused %s (%s)", prefix, where, refusal, safe_url(target))
            raise TerminalError(
                f"{prefix}{where}: refused a {refusal} ({safe_url(target)})",
                hint="a feed must not send careradar to internal addresses or off https; if "
                "this redirect is intended, configure the final URL directly, or set "
                "allow_private_redirects: true for an internal target",
            )
        if host_key(target) != host_key(current):
            wait = self.limiter.reserve(host_key(target), self.min_interval)
            if wait > 0:
                self.sleep(wait)
        return target

    def _check_deadline(self, started: float, prefix: str, where: str) -> None:
        elapsed = self.clock() - started
        if elapsed > self.deadline:
            # Not retried inside the fetch: a server that trickles now trickles a second later.
            raise TransientError(
                f"{prefix}{where}: the fetch took longer than its {self.deadline:g}s deadline "
                f"({elapsed:.1f}s)",
                hint="the server is trickling data; it is retried on the next run (raise "
                "'deadline' if this source is always this slow)",
            )

    def _failure(
        self, status: int, headers: Mapping[str, str], prefix: str, where: str
    ) -> Exception:
        """The outcome table for a non-2xx, non-304 answer (see the module docstring)."""
        retry_after = parse_retry_after(headers.get("retry-after"), now=self.wall_clock())
        if status == 429:
            return TransientError(
                f"{prefix}{where}: rate limited (429 Too Many Requests)",
                hint="careradar waits for Retry-After before the next try; poll less often "
                "or raise min_interval",
                retry_after=retry_after,
            )
        if status >= 500 or status == 408:
            error = TransientError(
                f"{prefix}{where}: server error (HTTP {status})",
                hint="the site has a problem; it is retried on the next run",
                retry_after=retry_after,
            )
            return _Retry(error) if status in _RETRY_STATUSES else error
        if status in _TERMINAL_REASONS:
            reason, hint = _TERMINAL_REASONS[status]
            return TerminalError(f"{prefix}{where} {reason}", hint=hint)
        if 300 <= status < 400:
            return TerminalError(
                f"{prefix}{where}: HTTP {status} without a usable redirect",
                hint="open the URL in a browser and configure where it ends up",
            )
        return TerminalError(
            f"{prefix}{where}: the server refused the request (HTTP {status})",
            hint="check the URL; retrying will not change this answer",
        )

    def _read_capped(self, resp: httpx.Response, prefix: str, where: str, started: float) -> bytes:
        """The decoded body, refused as soon as it passes ``max_bytes`` or the deadline.

        Read with ``iter_raw()``, which hands over whatever the socket delivered (``iter_bytes``
        with a chunk size would wait for that many bytes first), and decoded here with a cap
        on each decompression step, so neither a trickle nor a bomb gets past the checks.
        """
        too_big = TerminalError(
            f"{prefix}{where}: the response is larger than max_bytes ({self.max_bytes:,} bytes); "
            "refused without reading it all",
            hint="if this source really is that large, raise max_bytes for it",
        )
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        decoder = _decoder(resp.headers.get("content-encoding", ""), prefix, where)
        chunks: list[bytes] = []
        total = 0
        try:
            for raw in resp.iter_raw():
                self._check_deadline(started, prefix, where)
                piece = decoder.decode(raw, self.max_bytes - total + 1)
                total += len(piece)
                if total > self.max_bytes:
                    raise too_big
                chunks.append(piece)
            piece = decoder.flush(self.max_bytes - total + 1)
        except zlib.error as e:
            raise TransientError(
                f"{prefix}{where}: the response body could not be decompressed ({e})",
                hint="a broken or truncated gzip/deflate body; it is retried on the next run",
            ) from None
        if total + len(piece) > self.max_bytes:
            raise too_big
        chunks.append(piece)
        return b"".join(chunks)


class _Identity:
    def decode(self, data: bytes, limit: int) -> bytes:
        return data

    def flush(self, limit: int) -> bytes:
        return b""


class _Inflate:
    """gzip or deflate with bounded output: ``decode`` never returns more than ``limit`` bytes."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._zlib: zlib._Decompress | None = None
        self._head = b""

    def _start(self, data: bytes) -> zlib._Decompress | None:
        if self._gzip:
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        # "deflate" is meant to be zlib-wrapped, but servers send raw deflate too (as browsers
        # and httpx accept): the first two bytes tell which.
        self._head += data
        if len(self._head) < 2:
            return None
        cmf, flg = self._head[0], self._head[1]
        wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def decode(self, data: bytes, limit: int) -> bytes:
        if self._zlib is None:
            self._zlib = self._start(data)
            if self._zlib is None:
                return b""
            data, self._head = (self._head or data), b""
        # Output stops at ``limit``; a caller whose limit is max_bytes + 1 sees the overflow.
        return self._zlib.decompress(data, limit)

    def flush(self, limit: int) -> bytes:
        if self._zlib is None:
            if not self._head:
                return b""
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(self._head, limit)
        return self._zlib.flush()  # what is left is small; the caller checks the cap


def _decoder(content_encoding: str, prefix: str, where: str) -> _Identity | _Inflate:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflate(gzip=codings[0] != "deflate")
    raise TerminalError(
        f"{prefix}{where}: the server sent Content-Encoding '{content_encoding[:40]}', which "
        f"careradar did not ask for (it accepts {ACCEPT_ENCODING})",
        hint="the server ignores Accept-Encoding; ask its owner, or fetch it through a proxy",
    )


def _scrub(message: str) -> str:
    """An httpx message with every URL in it (query, tokens) replaced by its safe form."""
    return _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), message)


def combine_failures(
    failures: Sequence[CareradarError], total: int, *, what: str
) -> CareradarError:
    """One error for a run whose parts (feeds, countries) failed separately.

    Terminal if any part is terminal (someone must act), else transient with the longest
    Retry-After, so the scheduler waits for the slowest part rather than hammering it.
    """
    first = next((f for f in failures if isinstance(f, TerminalError)), failures[0])
    prefix = f"{len(failures)} of {total} {what} failed; first: " if total > 1 else ""
    message = prefix + first.message
    if isinstance(first, TerminalError):
        return TerminalError(message, hint=first.hint)
    waits = [f.retry_after for f in failures if isinstance(f, TransientError) and f.retry_after]
    return TransientError(message, hint=first.hint, retry_after=max(waits, default=None))
