"""kind: feed against a real HTTP server on loopback: every feed format, conditional GET and 304,
gzip, ill-formed feeds, lying charsets, keyword listening, HTTP failures, and a full run into
the store that stores nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.feed import (
    FeedCollector,
    FeedSource,
    KeywordMatcher,
    KeywordRules,
    decode_feed,
    html_to_text,
)
from pipeline.collectors.http import HostRateLimiter, HttpClient
from pipeline.config import load_config
from pipeline.errors import ConfigError, TerminalError, TransientError
from pipeline.items import Channel
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from tests.support.httpserver import Reply, ScriptedServer, serve

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve() as s:
        yield s


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def make(url: str | None = None, http: HttpClient | None = None, **kw) -> FeedCollector:
    app = load_config(None, registry.source_models())
    options = {"name": "news", "kind": "feed", "min_interval": 0, "retries": 0, **kw}
    if url is not None:
        options["url"] = url
    src = FeedSource.model_validate(options)
    return FeedCollector(src, CollectContext(app=app, clock=lambda: NOW), http=http)


def drain(c: FeedCollector, cursor=None):
    items, bad, last, batches = [], [], cursor, 0
    for batch in c.collect(cursor):
        batches += 1
        items += batch.items
        bad += batch.bad
        last = batch.cursor if batch.cursor is not None else last
    return items, bad, last, batches


# --- formats and entry shapes -------------------------------------------------------------------


def test_rss20_entries_become_clean_items(server):
    url = server.route("/forum.rss", Reply(body=fixture("rss20-mixed.xml"), content_type=RSS))
    items, bad, _, _ = drain(make(url, brand="Brewista", platform="brewista-forum"))
    assert bad == []
    by_id = {i.external_id: i for i in items}
    assert len(items) == 5
    first = by_id["forum-post-101"]
    # HTML description -> text: entities decoded, script/style gone, paragraphs and <br> kept.
    assert first.text == (
        "My Brewista Pro grinder jammed & now it only hums.\n\n"
        "Support ticket #4471 has had no answer for 3 days.\nAny ideas?"
    )
    assert "track(" not in first.text and "color" not in first.text
    assert first.title == "Grinder jammed after two weeks"
    assert first.author == "Mia K."  # the name, not the e-mail address
    assert first.created_at == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
    assert first.url == "https://forum.brewista.example/t/101"
    assert (first.channel, first.platform, first.brand) == (
        Channel.SOCIAL,
        "brewista-forum",
        "Brewista",
    )
    assert first.raw["tags"] == ["grinder"] and first.raw["format"] == "rss20"
    # No guid: the link is the identity.
    assert "https://forum.brewista.example/t/102" in by_id
    # Neither guid nor link: a hash of title and date, stable across polls.
    hashed = [i for i in items if i.external_id.startswith("sha256:")]
    assert len(hashed) == 1 and hashed[0].title == "Milk frother \u2013 worth it?"
    assert hashed[0].text == "Thinking about buying the frother add-on this week."
    again, _, _, _ = drain(make(url))
    assert hashed[0].external_id in {i.external_id for i in again}
    # An unreadable date: collection time, and raw says so.
    tank = by_id["forum-post-104"]
    assert tank.created_at == NOW and tank.raw["created_at_from"] == "collected"
    assert tank.raw["date_unparsed"] == "the day before yesterday, around noon"
    # No title (Mastodon-style), Chinese text, author from dc:creator.
    cn = by_id["forum-post-105"]
    assert cn.title is None and cn.text == "我的Brewista咖啡机一直漏水，客服也不回复。"
    assert cn.author == "小王"


@pytest.mark.parametrize(
    ("name", "content_type", "count", "fmt"),
    [
        ("atom03.xml", "application/atom+xml", 1, "atom03"),
        ("atom10-alerts.xml", "application/atom+xml", 4, "atom10"),
        ("rss10-rdf.xml", "application/rdf+xml", 2, "rss10"),
        ("rss091.xml", "text/xml", 1, "rss091u"),
        ("jsonfeed-1.0.json", "application/feed+json", 1, "json1"),
        ("jsonfeed-1.1.json", "application/json", 3, "json1.1"),
    ],
)
def test_every_feed_format(server, name, content_type, count, fmt):
    url = server.route("/f", Reply(body=fixture(name), content_type=content_type))
    items, _, _, _ = drain(make(url))
    assert len(items) == count
    assert {i.raw["format"] for i in items} == {fmt}
    assert all(i.text for i in items)


def test_atom_html_title_and_relative_link(server):
    url = server.route("/alerts", Reply(body=fixture("atom10-alerts.xml")))
    items, _, _, _ = drain(make(url))
    recall = next(i for i in items if i.external_id == "tag:alerts.example,2026:a1")
    assert recall.title == "Recall notice for Brewista kettles"
    assert recall.url == server.url("/news/recall-kettles")
    assert recall.created_at == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # published, in UTC
    assert recall.text.endswith("\n\nOwners should stop using them.")


def test_rss091_without_dates_uses_collection_time(server):
    url = server.route("/tiny", Reply(body=fixture("rss091.xml"), content_type="text/xml"))
    (item,), _, _, _ = drain(make(url))
    assert item.external_id == "https://tiny.example/1"
    assert item.created_at == NOW and item.raw["created_at_from"] == "collected"
    assert "date_unparsed" not in item.raw


def test_json_feed_items_and_bad_item(server):
    url = server.route(
        "/status.json",
        Reply(body=fixture("jsonfeed-1.1.json"), content_type="text/plain; charset=utf-8"),
    )
    items, bad, _, _ = drain(make(url))
    by_id = {i.external_id: i for i in items}
    assert set(by_id) == {"status-9001", "9002", "https://status.brewista.example/i/9004"}
    login = by_id["status-9001"]
    assert login.text == (
        "Some customers cannot log in to the Brewista app.\n\nWe are on it & will update."
    )
    assert login.author == "Status bot" and login.raw["tags"] == ["incident", "app"]
    assert by_id["9002"].created_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    no_id = by_id["https://status.brewista.example/i/9004"]
    assert no_id.created_at == NOW and no_id.raw["date_unparsed"] == "not a date"
    assert len(bad) == 1 and bad[0].reason == "expected an object, got str"
    assert bad[0].location == f"{url} items[2]"


def test_json_that_is_not_a_json_feed_is_one_bad_input(server):
    url = server.route("/j", Reply(body=b'{"items": []}', content_type="application/json"))
    items, bad, _, _ = drain(make(url))
    assert items == [] and len(bad) == 1 and "not a JSON Feed" in bad[0].reason


# --- conditional GET, re-polls, gzip -------------------------------------------------------------


def test_conditional_get_with_etag_then_304_keeps_the_cursor(server):
    url = server.route("/e.rss", Reply(body=fixture("rss20-mixed.xml"), etag='"v1"'))
    c = make(url)
    items, _, cursor, _ = drain(c)
    assert len(items) == 5
    (state,) = cursor["feeds"].values()
    assert state["etag"] == '"v1"' and state["url"] == url and len(state["seen"]) == 5
    assert list(c.collect(cursor)) == []  # 304: nothing yielded, the stored cursor stays
    assert server.requests("/e.rss")[1].headers["if-none-match"] == '"v1"'


def test_conditional_get_with_last_modified_then_304(server):
    stamp = "Mon, 23 Nov 2026 10:00:00 GMT"
    url = server.route("/lm.rss", Reply(body=fixture("rss10-rdf.xml"), last_modified=stamp))
    c = make(url)
    items, _, cursor, _ = drain(c)
    assert len(items) == 2
    assert list(c.collect(cursor)) == []
    sent = server.requests("/lm.rss")[1].headers
    assert sent["if-modified-since"] == stamp and "if-none-match" not in sent


def test_a_repoll_without_validators_yields_only_new_entries(server):
    old = fixture("rss10-rdf.xml").decode()
    extra = (
        '<item rdf:about="https://board.example/t/3"><title>Brewista new thread</title>'
        "<link>https://board.example/t/3</link><description>new</description>"
        "<dc:date>2026-11-23T11:00:00Z</dc:date></item></rdf:RDF>"
    )
    url = server.route("/b", Reply(body=old), Reply(body=old.replace("</rdf:RDF>", extra)))
    c = make(url)
    first, _, cursor, _ = drain(c)
    second, _, cursor, _ = drain(c, cursor)
    assert len(first) == 2
    assert [i.external_id for i in second] == ["https://board.example/t/3"]
    # The same bytes again (the last reply repeats): nothing to parse, nothing yielded.
    assert list(c.collect(cursor)) == []
    assert len(server.requests("/b")) == 3


def test_gzipped_feed(server):
    url = server.route("/gz", Reply(body=fixture("atom10-alerts.xml"), encoding="gzip"))
    items, bad, _, _ = drain(make(url))
    assert len(items) == 4 and bad == []
    assert server.requests("/gz")[0].headers["accept-encoding"].startswith("gzip")


def test_large_feed_comes_in_several_batches_with_the_etag_only_at_the_end(server):
    entries = "".join(
        f"<item><title>Brewista post {n}</title><guid>g{n}</guid>"
        f"<pubDate>Mon, 23 Nov 2026 08:{n:02d}:00 GMT</pubDate></item>"
        for n in range(25)
    )
    body = f'<rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'
    url = server.route("/many", Reply(body=body, etag='"big"'))
    batches = list(make(url, batch_size=10).collect(None))
    assert [len(b.items) for b in batches] == [10, 10, 5]
    states = [next(iter(b.cursor["feeds"].values())) for b in batches]
    assert [s.get("etag") for s in states] == [None, None, '"big"']
    assert [len(s["seen"]) for s in states] == [10, 20, 25]


# --- broken input -------------------------------------------------------------------------------


def test_ill_formed_feed_keeps_good_entries_and_records_one_bad_input(server):
    url = server.route("/bozo", Reply(body=fixture("bozo-rss.xml"), content_type=RSS))
    items, bad, _, _ = drain(make(url))
    assert [i.external_id for i in items] == ["bozo-1", "bozo-2", "bozo-3"]
    assert len(bad) == 1
    assert bad[0].location == url
    assert bad[0].reason.startswith("ill-formed feed (SAXParseException")
    assert "kept 3 entries" in bad[0].reason


def test_an_unchanged_ill_formed_feed_is_reported_once(server):
    url = server.route("/bozo", Reply(body=fixture("bozo-rss.xml")))  # no ETag, no date
    c = make(url)
    _, bad, cursor, _ = drain(c)
    assert len(bad) == 1
    assert drain(c, cursor)[:2] == ([], [])


def test_windows_1252_bytes_labelled_utf8_keep_every_entry(server):
    url = server.route("/cp", Reply(body=fixture("cp1252-labelled-utf8.xml"), content_type=RSS))
    items, bad, _, _ = drain(make(url))
    assert [i.title for i in items] == [
        "Brewista \u201cPro\u201d costs \u20ac499 and it\u2019s broken",
        "Second entry",
    ]
    assert items[0].text == "Caf\u00e9 owner: the steam wand doesn\u2019t work."
    assert "\ufffd" not in items[1].text and items[1].text.startswith("Na\u00efve")
    assert len(bad) == 1 and "declared 'utf-8' but the bytes are cp1252" in bad[0].reason


def test_utf8_bytes_labelled_latin1_by_header_and_declaration(server):
    url = server.route(
        "/l1",
        Reply(
            body=fixture("utf8-labelled-latin1.xml"),
            content_type="application/rss+xml; charset=ISO-8859-1",
        ),
    )
    (item,), bad, _, _ = drain(make(url))
    assert item.title == "Grüße aus München: Brewista kaputt"
    assert item.text == "コーヒーメーカーが壊れました"
    assert len(bad) == 1 and "bytes are utf-8" in bad[0].reason


def test_decode_feed_rules():
    assert decode_feed("naïve".encode(), "utf-8") == ("naïve", "utf-8", None)
    assert decode_feed(b"plain", "iso-8859-1")[2] is None  # ASCII fits any label
    text, codec, note = decode_feed("\ufeffhé".encode("utf-16-le"), None)
    assert (text, codec, note) == ("hé", "utf-16-le", None)
    text, codec, note = decode_feed(b'<?xml version="1.0" encoding="koi8-r"?>\xf0\xd2', None)
    assert codec == "koi8-r" and note is None and text.endswith("Пр")


def test_an_html_page_instead_of_a_feed_is_one_bad_input(server):
    url = server.route("/oops", Reply(body=fixture("not-a-feed.html"), content_type="text/html"))
    items, bad, _, _ = drain(make(url))
    assert items == [] and len(bad) == 1
    assert bad[0].reason.startswith("not a feed") and bad[0].location == url
    assert "Maintenance in progress" in bad[0].excerpt


def test_html_to_text():
    html = (
        "<div><h2>Title</h2><p>One &amp; two&nbsp;three</p><ul><li>a</li><li>b</li></ul>"
        "<script>alert(1)</script><style>.x{}</style><img alt='sad face'><pre>keep\n  this</pre>"
    )
    # Line breaks inside <pre> survive; indentation does not (clean_text drops it anyway).
    assert html_to_text(html) == "Title\n\nOne & two three\n\na\nb\n\nsad face\n\nkeep\nthis"
    assert html_to_text("no tags at all") == "no tags at all"
    assert html_to_text("1 < 2 and <b>bold") == "1 < 2 and bold"


# --- keyword listening ---------------------------------------------------------------------------


def test_keyword_include_and_exclude_on_a_search_feed(server):
    url = server.route("/alerts", Reply(body=fixture("atom10-alerts.xml")))
    items, bad, cursor, _ = drain(
        make(url, keywords={"include": ["Brewista"], "exclude": ["giveaway"]})
    )
    assert sorted(i.external_id for i in items) == [
        "tag:alerts.example,2026:a1",
        "tag:alerts.example,2026:a3",
    ]
    assert bad == []
    # Skipped entries are remembered too: a re-poll does not look at them again.
    (state,) = cursor["feeds"].values()
    assert len(state["seen"]) == 4


def test_keyword_phrase_and_chinese_keyword(server):
    url = server.route("/forum", Reply(body=fixture("rss20-mixed.xml")))
    items, _, _, _ = drain(make(url, keywords={"include": ['"no answer"', "漏水"]}))
    assert sorted(i.external_id for i in items) == ["forum-post-101", "forum-post-105"]


def test_keyword_matcher_rules():
    m = KeywordMatcher(KeywordRules(include=["battery drain", "acme", "refund*", "漏水"]))
    kept = [
        "Battery  DRAIN after update",
        "used my Acme phone",
        "#acme support",
        "ACME's app",
        "用Acme手机",
        "ＡＣＭＥ full-width",
        "still waiting for my refunded order",
        "手机一直漏水",
    ]
    dropped = ["battery draining fast", "welcome to acmeville", "no refnd", "漏 水"]
    assert [t for t in kept if m.why_skipped(t) is not None] == []
    assert [t for t in dropped if m.why_skipped(t) is None] == []
    ex = KeywordMatcher(KeywordRules(exclude=["giveaway"]))
    assert ex.why_skipped("Win! GIVEAWAY now") == "exclude keyword 'giveaway'"
    assert ex.why_skipped("anything else") is None
    assert KeywordRules.model_validate(["a", "b"]).include == ["a", "b"]


# --- HTTP failures through the collector ---------------------------------------------------------


def test_redirects_over_the_limit(server):
    server.route("/hop", Reply(status=301, headers={"Location": "/hop"}))
    with pytest.raises(TerminalError, match="redirected more than 2 times"):
        drain(make(server.url("/hop"), max_redirects=2))


def test_body_over_max_bytes(server):
    url = server.route("/huge", Reply(body=b"<rss>" + b" " * 65_536, repeat=40))
    with pytest.raises(TerminalError, match="larger than max_bytes"):
        drain(make(url, max_bytes="1MB"))


def test_429_with_retry_after(server):
    url = server.route("/rl", Reply(status=429, headers={"Retry-After": "300"}))
    with pytest.raises(TransientError) as e:
        drain(make(url))
    assert e.value.retry_after == 300 and "source 'news'" in e.value.message


def test_500_is_retried_then_transient(server):
    url = server.route("/err", Reply(status=500))
    waits: list[float] = []
    http = HttpClient(min_interval=0, retries=2, sleep=waits.append, limiter=HostRateLimiter())
    with http, pytest.raises(TransientError, match="after 3 attempts"):
        drain(make(url, http=http))
    assert len(server.requests("/err")) == 3 and len(waits) == 2


@pytest.mark.parametrize("status", [403, 404])
def test_403_and_404_are_terminal(server, status):
    url = server.route("/x", Reply(status=status))
    with pytest.raises(TerminalError, match=str(status)):
        drain(make(url))


def test_one_failing_feed_does_not_stop_the_others(server):
    good = server.route("/good", Reply(body=fixture("rss10-rdf.xml")))
    missing = server.url("/missing")
    items = []
    with pytest.raises(TerminalError) as e:
        for batch in make(urls=[missing, good]).collect(None):
            items += batch.items
    assert len(items) == 2
    assert e.value.message.startswith("1 of 2 feeds failed; first: source 'news'")


def test_config_errors_name_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sources:\n  - {name: n, kind: feed, url: 'ftp://x.example/f'}\n")
    with pytest.raises(ConfigError, match=r"sources\[0\].*http:// or https://"):
        load_config(p, registry.source_models())
    p.write_text("sources:\n  - {name: n, kind: feed}\n")
    with pytest.raises(ConfigError, match="give 'url'"):
        load_config(p, registry.source_models())


# --- the whole cycle into the store --------------------------------------------------------------


def test_run_once_into_the_store_stores_nothing_twice(store, server, tmp_path):
    bozo = server.route("/bozo.rss", Reply(body=fixture("bozo-rss.xml"), etag='"b1"'))
    forum = server.route("/forum.rss", Reply(body=fixture("rss20-mixed.xml")))
    secret_forum = forum + "?token=s3cr3t-token"
    cfg_path = tmp_path / "careradar.yaml"
    cfg_path.write_text(
        "sources:\n"
        "  - name: listening\n"
        "    kind: feed\n"
        f"    urls: ['{bozo}', '{secret_forum}']\n"
        "    brand: Brewista\n"
        "    platform: forum\n"
        "    min_interval: 0\n"
        "    max_bytes: 2MB\n"
        "    contact: https://ops.example/careradar\n"
        "    keywords: {include: [brewista, '\"no answer\"', 漏水, post]}\n",
        encoding="utf-8",
    )
    cfg = load_config(cfg_path, registry.source_models())
    runner = Runner(cfg, store, classifier=LexiconClassifier(), clock=lambda: NOW)

    first = runner.run_once("listening")
    assert (first.status, first.error) == ("partial", None)
    stored = {r.external_id: r for r in store.list_items(source="listening", now=NOW)}
    # bozo: "First post about Brewista", "Third post" (include 'post'); the ampersand one
    # mentions neither. forum: 101 (phrase and brand), 105 (漏水 and brand), 102 is not about
    # Brewista by name; 103 and 104 do not match.
    assert set(stored) == {"bozo-1", "bozo-3", "forum-post-101", "forum-post-105"}
    assert (
        stored["forum-post-101"].brand == "Brewista"
        and stored["forum-post-101"].platform == "forum"
    )
    (bad,) = store.bad_inputs(source="listening")
    assert bad["location"] == bozo and "ill-formed feed" in bad["reason"]
    assert first.new == 4 and first.bad == 1

    second = runner.run_once("listening")
    assert (second.status, second.new, second.updated, second.bad) == ("ok", 0, 0, 0)
    assert len(store.list_items(source="listening", now=NOW)) == 4
    assert store.bad_inputs(source="listening")[0]["times_seen"] == 1
    # The bozo feed answered 304 the second time; the forum feed had no validators.
    assert server.requests("/bozo.rss")[1].headers["if-none-match"] == '"b1"'
    assert (
        server.requests("/forum.rss")[0]
        .headers["user-agent"]
        .endswith("(+https://ops.example/careradar)")
    )
    # The token in the forum URL is nowhere in what was stored.
    cursor = store.get_cursor("listening")
    assert "s3cr3t" not in json.dumps(cursor)
    for row in store.list_items(source="listening", now=NOW):
        assert "s3cr3t" not in json.dumps(row.to_json())
