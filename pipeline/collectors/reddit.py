"""``kind: reddit``: new posts and comments in subreddits, keyword search, brand mentions, and
the brand's replies made on Reddit itself (so response times count replies careradar never sent).

Built on praw, with three choices that keep one run short and honest:

- **Fail fast, let the scheduler retry.** prawcore retries 5xx and timeouts itself with sleeps,
  and its rate limiter sleeps until the window resets (up to ten minutes) when the budget is
  spent. A run holds a scheduler slot, so instead a small ``prawcore.Requestor`` subclass (praw's
  documented ``requestor_class`` hook) turns a 5xx, a timeout, or a spent budget whose reset is
  further away than ``max_rate_limit_wait`` into ``TransientError(retry_after=...)``. A 429 is
  never retried by prawcore; it becomes ``TransientError`` with Reddit's ``Retry-After``.
- **One cursor per listing** (``new:r/foo``, ``comments:r/foo``, ``search:...``, ``mentions``):
  the newest ``created_utc`` seen plus the fullnames seen within ``overlap`` of it. Each run
  re-reads that overlap (search indexes lag) and skips the fullnames it already has, so a rerun
  yields nothing twice. A listing's items are yielded oldest first, so every batch's cursor is
  safe to commit: a crash after batch k never skips an older item.
- **One bad subreddit does not stop the others.** A 403 (private, quarantined) or 404 (banned,
  nonexistent) on one listing is recorded as a bad input naming the subreddit and the reason,
  and the run ends ``partial``; only when every listing fails does the run fail with
  ``TerminalError``. Login failures stop the run at once.

Deleted and removed content (``[deleted]`` / ``[removed]`` bodies, posts removed by moderators)
is skipped: nobody can answer it, and it is not malformed input either. Its fullname still moves
the cursor on.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import praw
import praw.exceptions
import praw.models
import prawcore
import requests
from praw.config import Config as PrawConfig
from pydantic import Field, SecretStr, field_validator, model_validator

import pipeline
from pipeline.collectors.base import CollectContext, parse_timestamp
from pipeline.config import Duration, SourceConfig, account_key
from pipeline.errors import BadInput, CareradarError, NotConfigured, TerminalError, TransientError
from pipeline.items import AwaitingItem, BadInputRecord, Batch, Channel, Cursor, Item
from pipeline.registry import register_collector

log = logging.getLogger(__name__)

_SUBREDDIT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
_ACCOUNT_RE = re.compile(r"[A-Za-z0-9_-]{3,20}")
_THREAD_IN_PATH = re.compile(r"/comments/([a-z0-9]+)")
_GONE = frozenset({"[deleted]", "[removed]"})
_MAX_SEEN = 1_000
"""Most fullnames one listing's cursor remembers (the overlap window rarely holds more)."""
_DEFAULT_RETRY = 60.0


def account_name(value: str) -> str:
    """``u/LumoCare``, ``/u/LumoCare``, ``@LumoCare`` -> ``lumocare`` (Reddit names ignore case)."""
    return account_key(value)


def user_agent(account: str) -> str:
    """Reddit's required format: ``<platform>:<app id>:<version> (by u/<username>)``."""
    return f"{sys.platform}:careradar:{pipeline.__version__} (by u/{account})"


ListingName = Literal["submissions", "comments"]


def _default_listings() -> list[ListingName]:
    return ["submissions", "comments"]


class RedditSource(SourceConfig):
    kind: Literal["reddit"] = "reddit"
    channel: Literal["chat", "social", "email", "review", "forum"] | None = "social"
    account: str | None = Field(
        default=None,
        description="the brand's Reddit username: user agent, mentions, and whose replies count "
        "(default: username)",
    )
    subreddits: list[str] = Field(default_factory=list, description="e.g. [lumo, r/phones]")
    listings: list[ListingName] = Field(
        default_factory=_default_listings,
        description="what to read from each subreddit",
    )
    search: list[str] = Field(default_factory=list, description="search queries (Reddit syntax)")
    search_subreddits: list[str] = Field(
        default_factory=list, description="restrict search to these (empty: all of Reddit)"
    )
    mentions: Literal["auto", "inbox", "search", "off"] = Field(
        default="auto",
        description="auto: the inbox when logged in as the account, else a search for u/<account>",
    )
    site: str | None = Field(default=None, description="praw.ini section holding credentials")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    refresh_token: SecretStr | None = None
    limit: int = Field(default=100, ge=1, le=1_000, description="newest items read per listing")
    overlap: Duration = Field(default=600, description="re-read window behind each cursor")
    reply_window: Duration = Field(
        default=7 * 86_400, description="how long an unanswered item's thread is polled"
    )
    max_reply_threads: int = Field(default=20, ge=0, le=500, description="threads polled per run")
    reply_more_limit: int = Field(default=2, ge=0, le=32, description="'more comments' expanded")
    reply_comment_limit: int = Field(default=200, ge=1, le=500)
    timeout: Duration = Field(default=16, description="per-request timeout")
    max_rate_limit_wait: Duration = Field(
        default=10, description="longest in-run wait for the rate limit to reset"
    )
    oauth_url: str | None = Field(default=None, description="API base (tests, compatible sites)")
    reddit_url: str | None = Field(default=None, description="token and permalink base")
    short_url: str | None = None

    @field_validator("subreddits", "search_subreddits")
    @classmethod
    def _subreddit_names(cls, v: list[str]) -> list[str]:
        out = []
        for raw in v:
            name = raw.strip().removeprefix("/").removeprefix("r/").removesuffix("/")
            if not _SUBREDDIT_RE.fullmatch(name):
                raise ValueError(f"'{raw}' is not a subreddit name (like 'lumo' or 'r/lumo')")
            out.append(name)
        return out

    @field_validator("account")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is None:
            return None
        name = v.strip().lstrip("@").removeprefix("/").removeprefix("u/")
        if not _ACCOUNT_RE.fullmatch(name):
            raise ValueError(f"'{v}' is not a Reddit username (like 'LumoCare' or 'u/LumoCare')")
        return name

    @field_validator("search")
    @classmethod
    def _queries(cls, v: list[str]) -> list[str]:
        if any(not q.strip() for q in v):
            raise ValueError("a search query is empty")
        return [q.strip() for q in v]

    @model_validator(mode="after")
    def _something_to_read(self) -> RedditSource:
        if not self.subreddits and not self.search and self.mentions == "off":
            raise ValueError("nothing to collect: set subreddits, search, or mentions")
        return self


# -- praw plumbing --------------------------------------------------------------------------


class _Stop(Exception):  # noqa: N818 - internal signal, never leaves this module
    """Raised inside praw's call stack so prawcore does not retry or sleep; mapped later."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def _header_seconds(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class FailFastRequestor(prawcore.Requestor):
    """prawcore's requestor, minus every in-run wait longer than ``max_wait``.

    Passed to praw as ``requestor_class``; it sees every HTTP exchange, including token requests.
    """

    def __init__(self, *, max_wait: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_wait = max_wait

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        # prawcore always passes its own default timeout; the configured one wins.
        try:
            try:
                response = super().request(*args, timeout=self.timeout, **kwargs)
            except prawcore.RequestException as e:
                # A pooled keep-alive connection the server already closed (the token endpoint
                # answers "Connection: close") fails on first use: one immediate retry, no sleep.
                stale = isinstance(e.original_exception, requests.ConnectionError)
                if not stale or isinstance(e.original_exception, requests.Timeout):
                    raise
                response = super().request(*args, timeout=self.timeout, **kwargs)
        except prawcore.RequestException as e:
            original = e.original_exception
            what = (
                f"no answer within {self.timeout:g} s"
                if isinstance(original, requests.Timeout)
                else f"cannot connect ({type(original).__name__})"
            )
            raise _Stop(f"Reddit unreachable: {what}", None) from None
        status = response.status_code
        headers = response.headers
        if status >= 500:
            raise _Stop(
                f"Reddit server error (HTTP {status})", _header_seconds(headers, "retry-after")
            )
        remaining = _header_seconds(headers, "x-ratelimit-remaining")
        reset = _header_seconds(headers, "x-ratelimit-reset")
        spent = remaining is not None and remaining < 1
        if status < 400 and spent and reset is not None and reset > self.max_wait:
            used = headers.get("x-ratelimit-used", "?")
            raise _Stop(
                f"Reddit rate limit used up ({used} requests used, resets in {reset:g} s)", reset
            )
        return response


def _error_body(response: requests.Response | None) -> tuple[dict[str, Any], bytes]:
    if response is None:
        return {}, b""
    data = response.content or b""
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}, data
    return (parsed if isinstance(parsed, dict) else {}), data


@dataclass(frozen=True)
class _Failure:
    """A failure scoped to one listing or thread: the rest of the run goes on."""

    where: str
    error: TerminalError
    body: bytes


def _scoped_failure(exc: Exception, where: str, subreddit: str | None) -> _Failure | None:
    """403/404/redirect on one listing or thread: that place only. Else None (whole source)."""
    if isinstance(exc, prawcore.InsufficientScope):
        return None
    body, data = _error_body(getattr(exc, "response", None))
    reason = str(body.get("reason") or "")
    place = f"r/{subreddit}" if subreddit else where
    if isinstance(exc, prawcore.Forbidden):
        if reason == "private":
            msg = f"{place} is private: the account needs to be an approved user"
        elif reason == "quarantined":
            msg = f"{place} is quarantined: the account must opt in to it on reddit.com first"
        elif reason == "gold_only":
            msg = f"{place} is for Reddit Premium members only"
        else:
            msg = f"{place}: access forbidden (HTTP 403{', ' + reason if reason else ''})"
        return _Failure(where, TerminalError(msg, hint="fix access, or remove it"), data)
    if isinstance(exc, prawcore.NotFound):
        if reason == "banned":
            msg = f"{place} is banned by Reddit"
        elif subreddit:
            msg = f"{place} does not exist (HTTP 404)"
        else:
            msg = f"{where} not found (HTTP 404; deleted?)"
        return _Failure(where, TerminalError(msg, hint="remove it from the source"), data)
    if isinstance(exc, prawcore.Redirect) and subreddit:
        msg = f"{place} does not exist (Reddit redirects to its subreddit search)"
        return _Failure(where, TerminalError(msg, hint="check the spelling"), data)
    return None


def _source_error(exc: Exception, name: str, where: str) -> CareradarError:
    """Map what praw/prawcore raised to the one error tree careradar reports."""
    prefix = f"source '{name}': {where}: "
    if isinstance(exc, _Stop):
        return TransientError(
            prefix + exc.message,
            retry_after=exc.retry_after,
            hint="the next scheduled run retries; nothing was lost",
        )
    response: requests.Response | None = getattr(exc, "response", None)
    # prawcore raises TooManyRequests for the API; the token endpoint's 429 is a plain one.
    if isinstance(exc, prawcore.ResponseException) and getattr(response, "status_code", 0) == 429:
        assert response is not None
        retry = _header_seconds(response.headers, "retry-after")
        if retry is None:
            retry = _header_seconds(response.headers, "x-ratelimit-reset")
        retry = retry if retry is not None else _DEFAULT_RETRY
        return TransientError(
            prefix + f"Reddit rate limit hit (HTTP 429); Reddit asks to wait {retry:g} s",
            retry_after=retry,
            hint="the next run retries after that; poll less often or read fewer listings",
        )
    if isinstance(exc, prawcore.ServerError | prawcore.RequestException | prawcore.BadJSON):
        return TransientError(prefix + f"Reddit is not answering properly ({exc})")
    if isinstance(exc, prawcore.OAuthException):
        # e.g. invalid_grant: wrong username/password, or a 2FA account.
        return TerminalError(
            prefix + f"Reddit refused the login ({exc.error})",
            hint="check username/password (accounts with 2FA need a refresh_token)",
        )
    if isinstance(exc, prawcore.InvalidToken):
        return TerminalError(
            prefix + "Reddit rejected the access token (HTTP 401)",
            hint="check client_id, client_secret and refresh_token",
        )
    if isinstance(exc, prawcore.InsufficientScope):
        return TerminalError(
            prefix + "the login lacks the OAuth scope this needs (HTTP 403)",
            hint="use a script app logged in as the account, or set mentions: search",
        )
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status == 401:
            return TerminalError(
                prefix + "Reddit refused the app credentials (HTTP 401)",
                hint="check client_id and client_secret (a 'script' app at reddit.com/prefs/apps)",
            )
        return TerminalError(prefix + f"Reddit answered HTTP {status}")
    if isinstance(exc, praw.exceptions.PRAWException):
        return TerminalError(prefix + f"Reddit API error: {exc}")
    raise exc


# -- the collector --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    key: str  # cursor key, also the bad-input location
    subreddit: str | None  # the one subreddit a 403/404 would be about
    fetch: Callable[[], Iterable[Any]]


@register_collector("reddit", config=RedditSource)
class RedditCollector:
    def __init__(self, cfg: RedditSource, ctx: CollectContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name = cfg.name
        self.channel = Channel(cfg.channel or "social")
        self.platform = cfg.platform or "reddit"
        self.account: str | None = None
        self._brand_accounts = set(ctx.app.brand_accounts(self.platform))
        self._reddit_url = ""
        self._logged_in_as: str | None = None

    # -- credentials ----------------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        """Only keys the source sets, so praw's own precedence (kwarg > env > praw.ini) holds."""
        cfg = self.cfg
        values: dict[str, str | None] = {
            "client_id": cfg.client_id,
            "client_secret": cfg.client_secret.get_secret_value() if cfg.client_secret else None,
            "username": cfg.username,
            "password": cfg.password.get_secret_value() if cfg.password else None,
            "refresh_token": cfg.refresh_token.get_secret_value() if cfg.refresh_token else None,
            "oauth_url": cfg.oauth_url,
            "reddit_url": cfg.reddit_url,
            "short_url": cfg.short_url,
        }
        return {k: v for k, v in values.items() if v}

    def _missing(self, key: str, site: str) -> NotConfigured:
        return NotConfigured(
            f"source '{self.name}': no Reddit {key}: looked in the source's '{key}' key, the "
            f"praw_{key} environment variable and praw.ini section [{site}]",
            hint=f"set {key}: ${{REDDIT_{key.upper()}}} in the source (and export it), "
            f"or export praw_{key}, or add it to praw.ini",
        )

    def connect(self, session: requests.Session) -> praw.Reddit:
        """A praw instance for this run, or NotConfigured naming what is missing and where."""
        settings = self._settings()
        site = self.cfg.site or _env_site() or "DEFAULT"
        try:
            resolved = PrawConfig(site, **settings)
        except configparser.NoSectionError:
            raise NotConfigured(
                f"source '{self.name}': praw.ini has no section [{site}]",
                hint="add it to ~/.config/praw.ini (or ./praw.ini), or fix 'site'",
            ) from None
        for key in ("client_id", "client_secret"):
            if not getattr(resolved, key):
                raise self._missing(key, site)
        username, password = resolved.username, resolved.password
        if bool(username) != bool(password):
            raise self._missing("password" if username else "username", site)
        account = self.cfg.account or (str(username) if username else None)
        if not account:
            raise NotConfigured(
                f"source '{self.name}': no Reddit account for the user agent and mentions",
                hint="set account: <the brand's Reddit username> in the source",
            )
        self.account = account
        if username and password:
            self._logged_in_as = account_name(str(username))
        self._brand_accounts.add(account_name(account))
        reddit = praw.Reddit(
            site_name=site,
            requestor_class=FailFastRequestor,
            requestor_kwargs={
                "session": session,
                "timeout": self.cfg.timeout,
                "max_wait": self.cfg.max_rate_limit_wait,
            },
            user_agent=user_agent(account),
            check_for_updates=False,
            check_for_async=False,
            **settings,
        )
        self._reddit_url = str(reddit.config.reddit_url).rstrip("/")
        return reddit

    # -- the run --------------------------------------------------------------------------------

    def collect(self, cursor: Cursor | None) -> Iterator[Batch]:
        state: dict[str, Any] = {
            "listings": {k: dict(v) for k, v in dict((cursor or {}).get("listings", {})).items()},
            "reply_polls": dict((cursor or {}).get("reply_polls", {})),
        }
        with requests.Session() as session:
            reddit = self.connect(session)
            listings = self._listings(reddit)
            failures: list[_Failure] = []
            for listing in listings:
                try:
                    yield from self._read_listing(listing, state)
                except Exception as e:
                    failure = _scoped_failure(e, listing.key, listing.subreddit)
                    if failure is None:
                        raise _source_error(e, self.name, listing.key) from None
                    log.info("%s: %s", self.name, failure.error.message)
                    failures.append(failure)
            if listings and len(failures) == len(listings):
                raise TerminalError(
                    f"source '{self.name}': " + "; ".join(f.error.message for f in failures),
                    hint=failures[0].error.hint,
                )
            yield from self._poll_replies(reddit, state)
            if failures:
                # What could be read is stored; the run still fails so the source shows as
                # unhealthy (and alerts after health.failures runs) until someone acts, the
                # same way a feed source with one dead URL does.
                raise TerminalError(
                    f"source '{self.name}': {len(failures)} of {len(listings)} listings failed: "
                    + "; ".join(f.error.message for f in failures),
                    hint=failures[0].error.hint,
                )

    def _bad(self, f: _Failure) -> BadInputRecord:
        return BadInputRecord.from_raw(self.name, f.error.message, f.where, f.body or f.where)

    def _listings(self, reddit: praw.Reddit) -> list[_Listing]:
        cfg, limit = self.cfg, self.cfg.limit
        out: list[_Listing] = []
        for sub in cfg.subreddits:
            subreddit = reddit.subreddit(sub)
            if "submissions" in cfg.listings:
                out.append(_Listing(f"new:r/{sub}", sub, _bind(subreddit.new, limit=limit)))
            if "comments" in cfg.listings:
                out.append(
                    _Listing(f"comments:r/{sub}", sub, _bind(subreddit.comments, limit=limit))
                )
        scope = "+".join(cfg.search_subreddits) or "all"
        only = cfg.search_subreddits[0] if len(cfg.search_subreddits) == 1 else None
        for query in cfg.search:
            where = f"search:{query}" + (f" in r/{scope}" if scope != "all" else "")
            search = _bind(reddit.subreddit(scope).search, query, sort="new", limit=limit)
            out.append(_Listing(where, only, search))
        mode = cfg.mentions
        if mode == "auto":
            same = self._logged_in_as is not None and self._logged_in_as == account_name(
                self.account or ""
            )
            mode = "inbox" if same else "search"
        if mode == "inbox":
            out.append(_Listing("mentions:inbox", None, _bind(reddit.inbox.mentions, limit=limit)))
        elif mode == "search":
            query = f'"u/{self.account}"'
            search = _bind(reddit.subreddit("all").search, query, sort="new", limit=limit)
            out.append(_Listing("mentions:search", None, search))
        return out

    def _read_listing(self, listing: _Listing, state: dict[str, Any]) -> Iterator[Batch]:
        """Read newest-first down to the cursor (minus overlap), yield oldest-first."""
        prev = state["listings"].get(listing.key) or {}
        seen: dict[str, float] = {str(k): float(v) for k, v in dict(prev.get("seen", {})).items()}
        newest = float(prev.get("utc", 0.0))
        floor = newest - self.cfg.overlap if prev else None
        fresh: list[tuple[float, str, Any]] = []
        taken: set[str] = set()
        fetched, reached = 0, False
        for obj in listing.fetch():
            fetched += 1
            created = _created_utc(obj)
            if floor is not None and created is not None and created < floor:
                reached = True
                break
            fullname = _fullname(obj)
            if fullname in seen or fullname in taken:
                continue
            taken.add(fullname)
            fresh.append((created or 0.0, fullname, obj))
        fresh.sort(key=lambda t: (t[0], t[1]))
        if floor is not None and not reached and fresh and fetched >= self.cfg.limit:
            # The listing ended before it reached last run's newest item: whatever came in
            # between is beyond what Reddit lists, and lost unless someone looks.
            oldest = datetime.fromtimestamp(fresh[0][0], UTC).isoformat(timespec="seconds")
            since = datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds")
            reason = (
                f"{listing.key}: more than {self.cfg.limit} new items since the last run; items "
                f"between {since} and {oldest} were not collected (poll more often or raise limit)"
            )
            log.warning("%s: %s", self.name, reason)
            yield Batch(
                bad=[BadInputRecord.from_raw(self.name, reason, listing.key, reason)],
                cursor=_copy(state),
            )
        size = self.cfg.batch_size
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            items: list[Item] = []
            bad: list[BadInputRecord] = []
            for created, fullname, obj in chunk:
                try:
                    item = self.to_item(obj, listing.key)
                except BadInput as e:
                    raw = json.dumps(_plain(obj), default=str, ensure_ascii=False)
                    where = f"{listing.key} {fullname}"
                    bad.append(BadInputRecord.from_raw(self.name, e.reason, where, raw))
                else:
                    if item is not None:
                        items.append(item)
                seen[fullname] = created
                newest = max(newest, created)
            keep = sorted(
                ((f, t) for f, t in seen.items() if t >= newest - self.cfg.overlap),
                key=lambda ft: ft[1],
            )[-_MAX_SEEN:]
            state["listings"][listing.key] = {"utc": newest, "seen": dict(keep)}
            yield Batch(items=items, bad=bad, cursor=_copy(state))

    # -- replies made on Reddit -----------------------------------------------------------------

    def _poll_replies(self, reddit: praw.Reddit, state: dict[str, Any]) -> Iterator[Batch]:
        """Fetch the threads of unanswered items; yield the brand's comments found there.

        The store links a brand comment to the customer items of its thread (and its parent)
        and sets ``first_response_at``. Threads polled least recently go first, so more waiting
        threads than ``max_reply_threads`` are all polled over a few runs.
        """
        if self.cfg.max_reply_threads == 0:
            return
        now = self.ctx.clock()
        waiting = self.ctx.awaiting_response(now - _seconds(self.cfg.reply_window))
        threads: dict[str, list[AwaitingItem]] = {}
        for a in waiting:
            thread = a.thread_id or (a.external_id if a.external_id.startswith("t3_") else None)
            if thread and thread.startswith("t3_"):
                threads.setdefault(thread, []).append(a)
        polls: dict[str, float] = {
            k: float(v) for k, v in state["reply_polls"].items() if k in threads
        }
        order = sorted(
            threads, key=lambda t: (polls.get(t, 0.0), min(a.due_at for a in threads[t]))
        )
        state["reply_polls"] = polls
        for thread in order[: self.cfg.max_reply_threads]:
            where = f"replies:{thread}"
            items: list[Item] = []
            bad: list[BadInputRecord] = []
            try:
                comments = self._thread_comments(reddit, thread)
            except Exception as e:
                failure = _scoped_failure(e, where, None)
                if failure is None:
                    raise _source_error(e, self.name, where) from None
                bad.append(self._bad(failure))
                comments = []
            for c in comments:
                author = _author(c)
                if author is None or account_name(author) not in self._brand_accounts:
                    continue
                try:
                    item = self.to_item(c, where, thread=thread)
                except BadInput as e:
                    raw = json.dumps(_plain(c), default=str, ensure_ascii=False)
                    bad.append(BadInputRecord.from_raw(self.name, e.reason, where, raw))
                    continue
                if item is not None:
                    items.append(item)
            polls[thread] = now.timestamp()
            yield Batch(items=items, bad=bad, cursor=_copy(state))

    def _thread_comments(self, reddit: praw.Reddit, thread: str) -> list[Any]:
        submission = reddit.submission(id=thread.removeprefix("t3_"))
        submission.comment_sort = "new"
        submission.comment_limit = self.cfg.reply_comment_limit
        forest = submission.comments
        forest.replace_more(limit=self.cfg.reply_more_limit)
        return list(forest.list())

    # -- one thing -> one item ------------------------------------------------------------------

    def to_item(self, obj: Any, listing: str, *, thread: str | None = None) -> Item | None:
        """An Item from a praw Submission or Comment; None for deleted/removed content."""
        d = _plain(obj)
        is_submission = isinstance(obj, praw.models.Submission)
        if not is_submission and not isinstance(obj, praw.models.Comment):
            raise BadInput(f"unexpected Reddit object {type(obj).__name__}")
        ident = d.get("id")
        if not isinstance(ident, str) or not re.fullmatch(r"[a-z0-9]+", ident):
            raise BadInput(f"missing or malformed id {str(ident)[:40]!r}")
        fullname = ("t3_" if is_submission else "t1_") + ident
        created = parse_timestamp(d.get("created_utc"), what="created_utc")
        author = _author(obj)
        path = d.get("permalink") or d.get("context") or ""
        if not isinstance(path, str):
            path = ""
        title: str | None = None
        thread_id: str | None
        parent_id: str | None
        if is_submission:
            title = d.get("title")
            if not isinstance(title, str) or not title.strip():
                raise BadInput("submission without a title")
            text = d.get("selftext") or ""
            if not isinstance(text, str):
                raise BadInput("selftext is not text")
            if text.strip() in _GONE or d.get("removed_by_category"):
                return None
            thread_id, parent_id = fullname, None
        else:
            body = d.get("body")
            if not isinstance(body, str):
                raise BadInput("comment without a body")
            if body.strip() in _GONE:
                return None
            text = body
            link = d.get("link_id")
            found = _THREAD_IN_PATH.search(path)
            if isinstance(link, str) and link.startswith("t3_"):
                thread_id = link
            else:  # inbox mentions carry no link_id, only a context path
                thread_id = f"t3_{found.group(1)}" if found else thread
            parent = d.get("parent_id")
            parent_id = parent if isinstance(parent, str) and parent else thread_id
        if not text.strip() and not title:
            raise BadInput("no text")
        subreddit = d.get("subreddit")
        raw: dict[str, Any] = {
            "kind": fullname[:2],
            "listing": listing,
            "subreddit": str(subreddit) if subreddit else None,
        }
        for key in (
            "score",
            "num_comments",
            "link_flair_text",
            "over_18",
            "is_self",
            "domain",
            "distinguished",
            "edited",
            "locked",
            "stickied",
            "link_title",
        ):
            value = d.get(key)
            if isinstance(value, str | int | float | bool):
                raw[key] = value
        return Item(
            source=self.name,
            channel=self.channel,
            external_id=fullname,
            text=text,
            title=title,
            created_at=created,
            platform=self.platform,
            brand=self.cfg.brand,
            thread_id=thread_id,
            parent_id=parent_id,
            author=author,
            author_is_brand=author is not None and account_name(author) in self._brand_accounts,
            url=(self._reddit_url + path) if path.startswith("/") else (path or None),
            collected_at=self.ctx.clock(),
            raw=raw,
        )


# -- small helpers --------------------------------------------------------------------------


def _env_site() -> str | None:
    return os.getenv("praw_site")  # noqa: SIM112 - praw's own variable for the praw.ini section


def _bind(fn: Callable[..., Iterable[Any]], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: fn(*args, **kwargs)


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(state))
    return copied


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _plain(obj: Any) -> dict[str, Any]:
    """The attributes praw parsed from the JSON (its private helpers start with '_')."""
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _fullname(obj: Any) -> str:
    ident = vars(obj).get("id")
    prefix = "t3_" if isinstance(obj, praw.models.Submission) else "t1_"
    return f"{prefix}{ident}"


def _created_utc(obj: Any) -> float | None:
    value = vars(obj).get("created_utc")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _author(obj: Any) -> str | None:
    author = vars(obj).get("author")
    if author is None:
        return None
    name = str(getattr(author, "name", author))
    return None if name in _GONE or not name else name
