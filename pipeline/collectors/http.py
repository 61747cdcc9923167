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
============================  ===========================================================

Politeness: a ``careradar/<version> (+contact)`` user agent, a minimum interval between two
requests to the same host shared by every client in the process (two sources polling one site
do not double its load), connect/read timeouts plus an overall deadline, a redirect limit and a
size cap enforced while the body streams in, so a huge (or decompression-bomb) body is refused
before it is in memory. httpx decodes gzip and deflate.

Secrets: URLs are only ever shown through :func:`safe_url`, which drops the query string and
any user:password. A filter on the ``httpx`` logger does the same to httpx's own request log.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

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

_CHUNK = 65_536
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


def safe_url(url: str | httpx.URL) -> str:
    """``url`` fit for logs and errors: no query string, no fragment, no user:password.

    Feed and API URLs often carry tokens in the query (``?key=...``); the presence of a query
    is kept visible as ``?…`` so two URLs that differ only there are still told apart.
    """
    try:
        u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        text = str(url)
        return re.sub(r"[?#].*$", "?…", re.sub(r"//[^/@]*@", "//", text))
    host = u.host
    port = f":{u.port}" if u.port else ""
    base = f"{u.scheme}://{host}{port}{u.path}" if host else u.path
    return base + ("?…" if u.query else "")


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL; a ValueError (shown safely) otherwise."""
    try:
        u = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        raise ValueError(f"'{safe_url(value)}' is not a URL") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise ValueError(f"'{safe_url(value)}' must be an http:// or https:// URL")
    return value


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
        elif isinstance(record.msg, str) and "?" in record.msg and "://" in record.msg:
            record.msg = re.sub(r"(https?://[^\s?\"']+)\?[^\s\"']*", r"\1?…", record.msg)
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
        default=DEFAULT_TIMEOUT, description="read timeout; the whole fetch may take 3x this"
    )
    connect_timeout: Duration = Field(default=DEFAULT_CONNECT_TIMEOUT)
    max_bytes: Size = Field(
        default=DEFAULT_MAX_BYTES, description="largest response body (after decompression)"
    )
    max_redirects: int = Field(default=DEFAULT_MAX_REDIRECTS, ge=0, le=30)
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

    @field_validator("timeout", "connect_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
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
        self.retries = retries
        self.backoff = backoff
        self.min_interval = min_interval
        self.deadline = 3 * timeout + connect_timeout
        self.limiter = limiter or SHARED_LIMITER
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            headers={"User-Agent": self.user_agent},
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
            with self._client.stream("GET", url, headers=headers) as resp:
                final = safe_url(resp.url)
                status = resp.status_code
                out_headers = types.MappingProxyType(dict(resp.headers.items()))
                if status == 304:
                    log.debug("GET %s -> 304 not modified", where)
                    return HttpResult(status, out_headers, b"", str(resp.url), not_modified=True)
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
        except httpx.TooManyRedirects:
            raise TerminalError(
                f"{prefix}{where} redirected more than {self.max_redirects} times",
                hint="a redirect loop, or the resource moved; open the URL in a browser and "
                "configure where it ends up (or raise max_redirects)",
            ) from None
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
                    f"{prefix}{where}: connection failed ({type(e).__name__}: "
                    f"{_scrub(str(e), url)})",
                    hint="the server is down or the network is; it is retried on the next run",
                )
            ) from None
        except httpx.DecodingError as e:
            raise TransientError(
                f"{prefix}{where}: the response body could not be decompressed "
                f"({_scrub(str(e), url)})",
                hint="a broken or truncated gzip/deflate body; it is retried on the next run",
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise TerminalError(
                f"{prefix}{where}: not a fetchable URL ({_scrub(str(e), url)})",
                hint="use an http:// or https:// URL",
            ) from None
        except httpx.HTTPError as e:
            raise TransientError(
                f"{prefix}{where}: request failed ({type(e).__name__}: {_scrub(str(e), url)})",
                hint="it is retried on the next run",
            ) from None

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
        """The (decoded) body, refused as soon as it passes ``max_bytes`` or the deadline."""
        too_big = TerminalError(
            f"{prefix}{where}: the response is larger than max_bytes ({self.max_bytes:,} bytes); "
            "refused without reading it all",
            hint="if this source really is that large, raise max_bytes for it",
        )
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_bytes(_CHUNK):
            total += len(chunk)
            if total > self.max_bytes:
                raise too_big
            chunks.append(chunk)
            if self.clock() - started > self.deadline:
                raise _Retry(
                    TransientError(
                        f"{prefix}{where}: the body took longer than {self.deadline:.0f}s "
                        "to arrive",
                        hint="the server is trickling data; it is retried on the next run",
                    )
                )
        return b"".join(chunks)


def _scrub(message: str, url: str) -> str:
    """An httpx message with the full URL (and its query) replaced by its safe form."""
    return message.replace(url, safe_url(url)) if url else message


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
