"""kind: reddit: praw, unmodified, against a fake Reddit on loopback (tests/support/reddit_server).

Covers collection into the real store through Runner.run_once, cursors (a rerun stores nothing
twice), search and mentions, every failure class (429, budget spent, 5xx, timeout, 403, 404,
bad logins, missing credentials), one bad subreddit among good ones, reply polling that sets
first_response_at, praw.ini credentials, the user agent, and secrets staying out of URLs, logs,
errors and stored payloads.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import pipeline
from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.reddit import RedditCollector, RedditSource, account_name, user_agent
from pipeline.config import AppConfig, load_config
from pipeline.errors import ConfigError, NotConfigured, TerminalError, TransientError
from pipeline.items import AwaitingItem, Batch
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.store import Store
from tests.support.reddit_server import (
    RedditServer,
    Reply,
    fixture,
    forbidden,
    json_reply,
    not_found,
    server_error,
    too_many_requests,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = "test-client-secret"
PASSWORD = "test-password"
SECRETS = (SECRET, PASSWORD)


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_ambient_praw_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """praw reads praw_* variables; a developer's own must not leak into these tests."""
    for key in list(os.environ):
        if key.lower().startswith("praw_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("REDDIT_CLIENT_ID", "test-client-id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("REDDIT_PASSWORD", PASSWORD)


@pytest.fixture
def server() -> Iterator[RedditServer]:
    with RedditServer(client_secret=SECRET, password=PASSWORD) as s:
        s.route("/r/lumo/new", fixture("new_submissions_1.json"))
        s.route("/r/lumo/comments", fixture("new_comments.json"))
        s.route("/message/mentions", fixture("mentions_inbox.json"))
        yield s


def source_yaml(server: RedditServer, **keys: Any) -> dict[str, Any]:
    src: dict[str, Any] = {
        "name": "reddit-lumo",
        "kind": "reddit",
        "brand": "Lumo",
        "subreddits": ["lumo"],
        "client_id": "${REDDIT_CLIENT_ID}",
        "client_secret": "${REDDIT_CLIENT_SECRET}",
        "username": "LumoCare",
        "password": "${REDDIT_PASSWORD}",
        "oauth_url": server.url,
        "reddit_url": server.url,
        "short_url": server.url,
    }
    src.update(keys)
    return {k: v for k, v in src.items() if v is not None}


def app_config(tmp_path: Path, server: RedditServer, **keys: Any) -> AppConfig:
    doc = {
        "brands": [{"name": "Lumo", "accounts": ["u/LumoCare"]}],
        "sources": [source_yaml(server, **keys)],
    }
    path = tmp_path / "careradar.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return load_config(path, registry.source_models())


def runner(cfg: AppConfig, store: Store) -> Runner:
    return Runner(cfg, store, classifier=LexiconClassifier(), clock=lambda: NOW)


def collector(
    tmp_path: Path,
    server: RedditServer,
    awaiting: list[AwaitingItem] | None = None,
    **keys: Any,
) -> RedditCollector:
    cfg = app_config(tmp_path, server, **keys)
    src = cfg.sources[0]
    assert isinstance(src, RedditSource)
    ctx = CollectContext(app=cfg, clock=lambda: NOW, awaiting_response=lambda since: awaiting or [])
    return RedditCollector(src, ctx)


def drain(c: RedditCollector, cursor: Any = None) -> list[Batch]:
    return list(c.collect(cursor))


def ids(batches: list[Batch]) -> list[str]:
    return [i.external_id for b in batches for i in b.items]


# -- collection into the store --------------------------------------------------------------


@pytest.mark.slow  # ~7 s on the first run in a process: language detection warms up
def test_submissions_comments_and_mentions_are_stored_once(store, server, tmp_path):
    cfg = app_config(tmp_path, server)
    r1 = runner(cfg, store).run_once("reddit-lumo")
    # 3 posts + 4 comments + 1 inbox mention; the titleless post is a bad input, the removed
    # post and the [deleted] comment are skipped.
    assert (r1.status, r1.new, r1.bad) == ("partial", 8, 1), r1.error
    [bad] = store.bad_inputs(source="reddit-lumo")
    assert bad["reason"] == "submission without a title"
    assert "t3_lm00zz" in bad["location"]
    assert store.find_item("reddit-lumo", "t3_lm0003") is None
    assert store.find_item("reddit-lumo", "t1_c00003") is None

    post = store.find_item("reddit-lumo", "t3_lm0004", now=NOW)
    assert post.title == "¿Alguien más sin señal desde ayer?"
    assert post.text.startswith("Mi teléfono Lumo no tiene señal")
    assert (post.platform, post.channel.value, post.brand) == ("reddit", "social", "Lumo")
    assert (post.thread_id, post.parent_id, post.author) == ("t3_lm0004", None, "ana_rg")
    assert post.created_at == at(10, 45)
    assert post.url == f"{server.url}/r/lumo/comments/lm0004/alguien_m_s_sin_se_al_desde_ayer/"
    assert post.raw["subreddit"] == "lumo" and post.raw["listing"] == "new:r/lumo"
    link_post = store.find_item("reddit-lumo", "t3_lm0001", now=NOW)
    assert link_post.title.startswith("Lumo Tarifvergleich") and link_post.text == ""

    comment = store.find_item("reddit-lumo", "t1_c00004", now=NOW)
    assert (comment.thread_id, comment.parent_id) == ("t3_lm0004", "t3_lm0004")
    assert comment.text == "同じ症状です。再起動しても直りません。いつ修正されますか？"
    mention = store.find_item("reddit-lumo", "t1_mc0001", now=NOW)
    assert (mention.thread_id, mention.parent_id) == ("t3_ph0009", "t3_ph0009")

    # The brand's reply in the comments listing answers the customer comment it replies to.
    brand = store.find_item("reddit-lumo", "t1_c00005", now=NOW)
    assert brand.author_is_brand and brand.parent_id == "t1_c00002"
    answered = store.find_item("reddit-lumo", "t1_c00002", now=NOW)
    assert answered.status == "responded" and answered.first_response_at == at(11, 20)

    # Same listings again: the cursor stops at what was seen, nothing is yielded twice.
    r2 = runner(cfg, store).run_once("reddit-lumo")
    assert (r2.status, r2.seen, r2.new, r2.bad) == ("ok", 0, 0, 0), r2.error

    # One newer post: only it is new, though the listing still holds all the old ones.
    server.route("/r/lumo/new", fixture("new_submissions_2.json"))
    r3 = runner(cfg, store).run_once("reddit-lumo")
    assert (r3.status, r3.seen, r3.new) == ("ok", 1, 1), r3.error
    assert store.find_item("reddit-lumo", "t3_lm0005").language == "id"

    # Cursor lost: everything is read again and stored nothing twice.
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM cursors"))
    r4 = runner(cfg, store).run_once("reddit-lumo")
    assert (r4.new, r4.unchanged) == (0, 9)
    assert store.count_items(source="reddit-lumo") == 9


def test_cursor_overlap_rereads_boundary_and_yields_only_unseen(tmp_path, server):
    c = collector(tmp_path, server, mentions="off", listings=["submissions"])
    first = drain(c)
    cursor = first[-1].cursor
    state = cursor["listings"]["new:r/lumo"]
    assert state["utc"] == at(10, 45).timestamp()
    # The overlap (10 min) keeps only fullnames at or after 10:35.
    assert sorted(state["seen"]) == ["t3_lm0004"]
    # A post that Reddit's index shows late, older than the newest seen but inside the
    # overlap, is still collected; one older than the overlap is not read at all.
    late = json.loads(fixture("new_submissions_2.json").body)
    child = late["data"]["children"][0]["data"]
    child.update(id="lm0006", name="t3_lm0006", created_utc=at(10, 40).timestamp())
    server.route("/r/lumo/new", json_reply(late))
    assert ids(drain(c, cursor)) == ["t3_lm0006"]


def test_keyword_search_across_reddit_and_within_subreddits(tmp_path, server):
    server.route("/r/all/search", fixture("search_lumo_app.json"), q="lumo app")
    c = collector(tmp_path, server, subreddits=[], search=["lumo app"], mentions="off")
    batches = drain(c)
    assert ids(batches) == ["t3_tv0007", "t3_gd0001"]  # oldest first
    item = batches[0].items[1]
    assert item.title == "Lumo app keeps logging me out" and item.raw["subreddit"] == "gadgets"
    [req] = server.requests("/r/all/search")
    assert req.query["q"] == "lumo app" and req.query["sort"] == "new"
    assert req.query["restrict_sr"] == "False"

    server.route("/r/gadgets+television/search", fixture("search_lumo_app.json"), q="lumo app")
    c = collector(
        tmp_path,
        server,
        subreddits=[],
        search=["lumo app"],
        search_subreddits=["r/gadgets", "television"],
        mentions="off",
    )
    assert len(ids(drain(c))) == 2
    [req] = server.requests("/r/gadgets+television/search")
    assert req.query["restrict_sr"] == "True"


def test_mentions_use_a_search_when_not_logged_in_as_the_account(tmp_path, server):
    server.route("/r/all/search", fixture("search_lumo_app.json"), q='"u/LumoCare"')
    c = collector(tmp_path, server, subreddits=[], username=None, password=None, account="LumoCare")
    assert len(ids(drain(c))) == 2
    assert server.requests("/message/mentions") == []
    grants = [
        dict(x.split("=") for x in r.body.decode().split("&"))
        for r in server.requests("/api/v1/access_token")
    ]
    assert grants[0]["grant_type"] == "client_credentials"


# -- failures -------------------------------------------------------------------------------


def test_429_is_transient_with_retry_after_and_keeps_what_came_before(store, server, tmp_path):
    server.route("/r/lumo/comments", too_many_requests(retry_after=42))
    c = collector(tmp_path, server)
    got: list[Batch] = []
    with pytest.raises(TransientError) as e:
        for b in c.collect(None):
            got.append(b)
    assert e.value.retry_after == 42
    assert "429" in e.value.message and "comments:r/lumo" in e.value.message
    assert ids(got) == ["t3_lm0001", "t3_lm0002", "t3_lm0004"]
    assert len(server.requests("/r/lumo/comments")) == 1  # no in-run retry

    result = runner(app_config(tmp_path, server), store).run_once("reddit-lumo")
    assert result.status == "error"
    assert "Reddit rate limit hit (HTTP 429); Reddit asks to wait 42 s" in result.error
    # The listing read before the 429 was stored with its cursor.
    assert store.count_items(source="reddit-lumo") == 3
    assert "new:r/lumo" in store.get_cursor("reddit-lumo")["listings"]


def test_spent_rate_limit_budget_fails_fast_instead_of_sleeping_until_reset(tmp_path, server):
    spent = {"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "1000", "x-ratelimit-reset": "540"}
    server.route("/r/lumo/new", Reply(200, fixture("new_submissions_1.json").body, spent))
    c = collector(tmp_path, server)
    started = time.monotonic()
    with pytest.raises(TransientError) as e:
        drain(c)
    assert time.monotonic() - started < 30  # prawcore alone would sleep 540 s here
    assert e.value.retry_after == 540
    assert "rate limit used up (1000 requests used, resets in 540 s)" in e.value.message


def test_short_rate_limit_wait_is_taken_in_run(tmp_path, server):
    """Near the window's end prawcore paces requests itself (at most max_rate_limit_wait)."""
    soon = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "1000", "x-ratelimit-reset": "1"}
    server.route("/r/lumo/new", Reply(200, fixture("new_submissions_1.json").body, soon))
    c = collector(tmp_path, server, mentions="off")
    assert len(ids(drain(c))) == 7


def test_429_from_the_token_endpoint_and_html_instead_of_json_are_transient(tmp_path, server):
    server.route("/api/v1/access_token", too_many_requests(retry_after=7))
    with pytest.raises(TransientError) as e:
        drain(collector(tmp_path, server))
    assert e.value.retry_after == 7

    server.route("/api/v1/access_token")  # back to the real token endpoint
    page = b"<html><body>Our servers are busy</body></html>"
    server.route("/r/lumo/new", Reply(200, page, {}, "text/html"))
    with pytest.raises(TransientError) as e:
        drain(collector(tmp_path, server))
    assert "not answering properly" in e.value.message


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_transient_without_in_run_retries(tmp_path, server, status):
    server.route("/r/lumo/new", server_error(status))
    with pytest.raises(TransientError) as e:
        drain(collector(tmp_path, server))
    assert f"Reddit server error (HTTP {status})" in e.value.message
    assert len(server.requests("/r/lumo/new")) == 1


def test_timeout_is_transient(tmp_path, server):
    slow = fixture("new_submissions_1.json")
    server.route("/r/lumo/new", Reply(200, slow.body, {}, slow.content_type, delay=1.0))
    with pytest.raises(TransientError) as e:
        drain(collector(tmp_path, server, timeout="0.2s"))
    assert "no answer within 0.2 s" in e.value.message
    assert len(server.requests("/r/lumo/new")) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (forbidden("private"), "r/lumo is private: the account needs to be an approved user"),
        (forbidden("quarantined"), "r/lumo is quarantined: the account must opt in"),
        (not_found(banned=True), "r/lumo is banned by Reddit"),
        (not_found(), "r/lumo does not exist (HTTP 404)"),
        (
            Reply(302, b"", {"location": "/subreddits/search?q=lumo"}),
            "r/lumo does not exist (Reddit redirects to its subreddit search)",
        ),
    ],
    ids=["403-private", "403-quarantined", "404-banned", "404", "302-search"],
)
def test_403_and_404_are_terminal_and_name_the_subreddit(store, server, tmp_path, reply, message):
    server.route("/r/lumo/new", reply)
    server.route("/r/lumo/comments", reply)
    with pytest.raises(TerminalError) as e:
        drain(collector(tmp_path, server, mentions="off"))
    assert message in e.value.message

    result = runner(app_config(tmp_path, server, mentions="off"), store).run_once("reddit-lumo")
    assert result.status == "error" and message in result.error


def test_one_unreachable_subreddit_does_not_stop_the_others(store, server, tmp_path):
    server.route("/r/closedsub/new", forbidden("private"))
    server.route("/r/closedsub/comments", forbidden("private"))
    cfg = app_config(tmp_path, server, subreddits=["closedsub", "lumo"], mentions="off")
    result = runner(cfg, store).run_once("reddit-lumo")
    # r/lumo is stored; the run still fails, so the source is unhealthy until someone acts.
    assert result.new == 7
    assert result.status == "error"
    assert "2 of 4 listings failed" in (result.error or "")
    assert "r/closedsub is private: the account needs to be an approved user" in (
        result.error or ""
    )
    assert store.source_status(["reddit-lumo"])[0].consecutive_failures == 1


def test_wrong_password_and_wrong_app_secret_are_terminal(tmp_path, server, monkeypatch):
    monkeypatch.setenv("REDDIT_PASSWORD", "not-the-password")
    with pytest.raises(TerminalError) as e:
        drain(collector(tmp_path, server))
    assert "Reddit refused the login (invalid_grant)" in e.value.message
    assert "not-the-password" not in e.value.message
    # A login failure stops the run at once: no listing after the first is tried.
    assert len(server.requests("/api/v1/access_token")) == 1

    monkeypatch.setenv("REDDIT_PASSWORD", PASSWORD)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "not-the-secret")
    with pytest.raises(TerminalError) as e:
        drain(collector(tmp_path, server))
    assert "refused the app credentials (HTTP 401)" in e.value.message


@pytest.mark.parametrize(
    ("drop", "named"),
    [("client_secret", "client_secret"), ("client_id", "client_id"), ("password", "password")],
)
def test_missing_credentials_are_not_configured(store, server, tmp_path, drop, named):
    cfg = app_config(tmp_path, server, **{drop: None})
    result = runner(cfg, store).run_once("reddit-lumo")
    assert result.status == "not_configured"
    assert f"no Reddit {named}" in result.error and f"praw_{named}" in result.error
    assert server.requests() == []  # nothing was sent


def test_praw_environment_variables_fill_in_missing_keys(tmp_path, server, monkeypatch):
    monkeypatch.setenv("praw_client_secret", SECRET)
    c = collector(tmp_path, server, client_secret=None, mentions="off")
    assert len(ids(drain(c))) == 7


def test_praw_ini_site_with_env_and_kwarg_precedence(tmp_path, server):
    """praw caches praw.ini per process, so this runs in a fresh interpreter."""
    home = tmp_path / "xdg"
    home.mkdir()
    (home / "praw.ini").write_text(
        "[lumo]\nclient_id=test-client-id\nclient_secret=wrong-secret-from-ini\n"
        f"username=LumoCare\npassword={PASSWORD}\n",
        encoding="utf-8",
    )
    script = textwrap.dedent(
        f"""
        import json, sys
        from datetime import UTC, datetime
        from pipeline import registry
        from pipeline.config import load_config
        from pipeline.collectors.base import CollectContext
        from pipeline.collectors.reddit import RedditCollector, RedditSource
        from pipeline.errors import CareradarError
        src = RedditSource.model_validate(dict(
            name="r", kind="reddit", site="lumo", subreddits=["lumo"], mentions="off",
            oauth_url="{server.url}", reddit_url="{server.url}", **json.loads(sys.argv[1])))
        ctx = CollectContext(app=load_config(None, registry.source_models()))
        try:
            print(sum(len(b.items) for b in RedditCollector(src, ctx).collect(None)))
        except CareradarError as e:
            print(type(e).__name__, e.message)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("praw_")}
    env.update(XDG_CONFIG_HOME=str(home), PYTHONPATH=os.getcwd())

    def run(keys: dict[str, str], **extra: str) -> str:
        out = subprocess.run(
            [sys.executable, "-W", "error", "-c", script, json.dumps(keys)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout.strip()

    # praw.ini alone: its wrong secret is refused.
    assert run({}).startswith("TerminalError")
    # The environment beats praw.ini ...
    assert run({}, praw_client_secret=SECRET) == "7"
    # ... and the source's own key beats both.
    assert run({"client_secret": SECRET}, praw_client_secret="wrong-env-secret") == "7"


# -- replies made on Reddit -----------------------------------------------------------------


def test_reply_polling_sets_first_response_at(store, server, tmp_path):
    server.route("/r/all/search", fixture("search_lumo_app.json"), q="lumo app")
    server.route("/comments/gd0001", fixture("thread_gd0001_unanswered.json"))
    cfg = app_config(tmp_path, server, subreddits=[], search=["lumo app"], mentions="off")
    r1 = runner(cfg, store).run_once("reddit-lumo")
    assert (r1.status, r1.new) == ("ok", 2), r1.error
    waiting = store.find_item("reddit-lumo", "t3_gd0001", now=NOW)
    assert waiting.needs_reply and waiting.first_response_at is None
    [polled] = server.requests("/comments/gd0001")
    assert polled.query["sort"] == "new" and polled.query["limit"] == "200"

    # The brand answers on Reddit itself; the next run sees it while polling the thread.
    server.route("/comments/gd0001", fixture("thread_gd0001_answered.json"))
    r2 = runner(cfg, store).run_once("reddit-lumo")
    assert (r2.status, r2.new, r2.responded) == ("ok", 1, 1), r2.error
    answered = store.find_item("reddit-lumo", "t3_gd0001", now=NOW)
    assert answered.status == "responded"
    assert answered.first_response_at == at(11, 30)
    reply = store.find_item("reddit-lumo", "t1_gc0002", now=NOW)
    assert reply.author_is_brand and reply.author == "lumocare"
    assert (reply.thread_id, reply.parent_id) == ("t3_gd0001", "t3_gd0001")

    # Answered items are no longer polled.
    polls = len(server.requests("/comments/gd0001"))
    runner(cfg, store).run_once("reddit-lumo")
    assert len(server.requests("/comments/gd0001")) == polls


def test_reply_polling_is_bounded_and_rotates(tmp_path, server):
    def waiting(n: int) -> AwaitingItem:
        return AwaitingItem(f"t3_aa{n:04d}", f"t3_aa{n:04d}", None, at(10, n), at(11, n))

    c = collector(
        tmp_path,
        server,
        mentions="off",
        listings=["submissions"],
        max_reply_threads=2,
        awaiting=[waiting(n) for n in range(3)],
    )
    cursor = drain(c)[-1].cursor
    first = [r.path for r in server.requests() if r.path.startswith("/comments/")]
    assert first == ["/comments/aa0000", "/comments/aa0001"]
    drain(c, cursor)
    after = [r.path for r in server.requests() if r.path.startswith("/comments/")]
    assert after[2:] == ["/comments/aa0002", "/comments/aa0000"]


def test_reply_window_limits_polling(tmp_path, server):
    seen: list[datetime] = []
    c = collector(tmp_path, server, mentions="off", reply_window="2h")
    c.ctx = CollectContext(
        app=c.ctx.app, clock=lambda: NOW, awaiting_response=lambda s: seen.append(s) or []
    )
    drain(c)
    assert seen == [at(10, 0)]


# -- identity and secrets -------------------------------------------------------------------


def test_user_agent_format_and_no_secret_on_the_wire_or_in_logs(store, server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    server.route("/r/lumo/comments", too_many_requests(retry_after=5))
    result = runner(app_config(tmp_path, server), store).run_once("reddit-lumo")
    assert result.status == "error"
    expected = f"{sys.platform}:careradar:{pipeline.__version__} (by u/LumoCare)"
    assert user_agent("LumoCare") == expected
    assert re.fullmatch(r"[a-z0-9]+:careradar:[0-9][^ ]* \(by u/LumoCare\)", expected)
    requests_ = server.requests()
    assert requests_
    for r in requests_:
        assert r.headers["user-agent"].startswith(expected + " PRAW/")
        for secret in SECRETS:
            assert secret not in r.url
            assert secret not in json.dumps(
                {k: v for k, v in r.headers.items() if k != "authorization"}
            )
    # The password only travels in the token request's form body, as OAuth requires.
    assert PASSWORD in server.requests("/api/v1/access_token")[0].body.decode()
    logged = caplog.text + json.dumps(result.to_json())
    stored = json.dumps([row.raw for row in store.list_items(source="reddit-lumo")])
    for secret in SECRETS:
        assert secret not in logged and secret not in stored


def test_secrets_are_hidden_in_the_parsed_config(tmp_path, server):
    src = app_config(tmp_path, server).sources[0]
    dumped = json.dumps(src.model_dump(mode="json")) + repr(src)
    assert SECRET not in dumped and PASSWORD not in dumped


# -- config ---------------------------------------------------------------------------------


def test_config_errors_name_the_key(tmp_path, server):
    with pytest.raises(ConfigError) as e:
        app_config(tmp_path, server, subreddits=["lumo", "not a sub!"])
    assert "sources[0].subreddits: 'not a sub!' is not a subreddit name" in e.value.message
    with pytest.raises(ConfigError) as e:
        app_config(tmp_path, server, subreddits=[], mentions="off")
    assert "nothing to collect" in e.value.message


def test_account_names_ignore_prefix_and_case():
    assert {account_name(a) for a in ("u/LumoCare", "/u/lumocare", "@LUMOCARE", "LumoCare")} == {
        "lumocare"
    }


def test_no_account_anywhere_is_not_configured(tmp_path, server):
    c = collector(tmp_path, server, username=None, password=None, mentions="off")
    with pytest.raises(NotConfigured) as e:
        drain(c)
    assert "account" in e.value.message


def test_more_new_items_than_limit_is_reported_not_silently_skipped(tmp_path, server):
    """Last run ended at t3_lm0001; since then more posts arrived than one listing returns."""
    server.route("/r/lumo/new", fixture("new_submissions_2.json"))
    c = collector(tmp_path, server, limit=2, listings=["submissions"], mentions="off")
    cursor = {
        "listings": {"new:r/lumo": {"utc": 1772442000.0, "seen": {"t3_lm0001": 1772442000.0}}}
    }
    batches = drain(c, cursor)
    (gap,) = [b for batch in batches for b in batch.bad]
    assert "more than 2 new items since the last run" in gap.reason
    assert "were not collected (poll more often or raise limit)" in gap.reason
    assert ids(batches) == ["t3_lm0004", "t3_lm0005"]  # what the listing did return is kept
    # With a limit that reaches back to the cursor, nothing is reported.
    wide = collector(tmp_path, server, limit=100, listings=["submissions"], mentions="off")
    reasons = [b.reason for batch in drain(wide, cursor) for b in batch.bad]
    assert not [r for r in reasons if "new items since the last run" in r]
