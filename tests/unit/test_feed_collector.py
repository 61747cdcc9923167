"""kind: feed against a real HTTP server on loopback: every feed format, conditional GET and 304,
gzip, ill-formed feeds (reported once, not on every poll), lying charsets, a body that names a
local file, unsafe item links, keyword listening, HTTP failures, and a full run into the store
that stores nothing twice."""

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
    assert len(bad) == 1
    assert "declared 'utf-8' but the bytes do not decode as that; read as cp1252" in bad[0].reason


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
    # The commonest misconfiguration there is: read as UTF-8 and not a data problem.
    assert bad == []


def test_decode_feed_rules():
    assert decode_feed("naïve".encode(), "utf-8") == ("naïve", "utf-8", None)
    assert decode_feed(b"plain", "iso-8859-1")[2] is None  # ASCII fits any label
    assert decode_feed("naïve".encode(), "iso-8859-1") == ("naïve", "utf-8", None)
    text, codec, note = decode_feed("\ufeffhé".encode("utf-16-le"), None)
    assert (text, codec, note) == ("hé", "utf-16-le", None)
    text, codec, note = decode_feed(b'<?xml version="1.0" encoding="koi8-r"?>\xf0\xd2', None)
    assert codec == "koi8-r" and note is None and text.endswith("Пр")
    # The HTTP label wins; the XML declaration is a hint, and needing it is a data problem.
    koi = '<?xml version="1.0" encoding="koi8-r"?><t>Привет</t>'.encode("koi8-r")
    text, codec, note = decode_feed(koi, "utf-8")
    assert codec == "koi8-r" and "Привет" in text
    assert (
        note == "declared 'utf-8' and 'koi8-r' but the bytes do not decode as that; read as koi8-r"
    )
    assert decode_feed("café".encode("cp1252"), None)[2] == (
        "declared no charset (so UTF-8) but the bytes do not decode as that; read as cp1252"
    )


def test_an_html_page_instead_of_a_feed_is_one_bad_input(server):
    url = server.route("/oops", Reply(body=fixture("not-a-feed.html"), content_type="text/html"))
    items, bad, _, _ = drain(make(url))
    assert items == [] and len(bad) == 1
    assert bad[0].reason.startswith("not a feed") and bad[0].location == url
    assert "Maintenance in progress" in bad[0].excerpt


def test_a_body_naming_a_local_file_is_not_read_as_that_file(server, tmp_path):
    # feedparser takes bytes or a str as a file name first: a server answering with a path
    # must not make careradar read (or, for /dev/zero, hang on) a local file.
    local = tmp_path / "private.xml"
    local.write_text(
        '<rss version="2.0"><channel><title>local</title><item><guid>local-1</guid>'
        "<title>LOCAL FILE SECRET</title><description>from disk</description></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    url = server.route("/path", Reply(body=str(local).encode(), content_type=RSS))
    items, bad, _, _ = drain(make(url))
    assert items == []
    assert len(bad) == 1 and bad[0].reason.startswith("not a feed")
    assert "LOCAL FILE SECRET" not in bad[0].excerpt


def test_a_permanently_ill_formed_feed_is_reported_once_across_changes(server):
    template = fixture("undefined-entity.xml")

    def version(hour: int, extra: bytes = b"") -> bytes:
        body = template.replace(b"LAST_BUILD", f"Mon, 23 Nov 2026 {hour:02d}:00:00 GMT".encode())
        return body.replace(b"<item>", extra + b"<item>", 1)

    new_entry = b"<item><title>Brewista news three</title><guid>entity-3</guid></item>"
    url = server.route(
        "/cms.rss",
        Reply(body=version(9), content_type=RSS),
        Reply(body=version(10), content_type=RSS),  # only lastBuildDate moved
        Reply(body=version(11, new_entry), content_type=RSS),  # a new entry: lines shift too
        Reply(body=fixture("rss10-rdf.xml")),  # fixed for a while
        Reply(body=version(12), content_type=RSS),  # broken again: worth a new report
    )
    c = make(url)
    items, bad, cursor, _ = drain(c)
    assert [i.external_id for i in items] == ["entity-1", "entity-2"]
    assert len(bad) == 1 and "undefined entity" in bad[0].reason
    items, bad, cursor, _ = drain(c, cursor)
    assert (items, bad) == ([], [])
    items, bad, cursor, _ = drain(c, cursor)
    assert [i.external_id for i in items] == ["entity-3"] and bad == []
    _, bad, cursor, _ = drain(c, cursor)
    assert bad == [] and next(iter(cursor["feeds"].values()))["reported"] == []
    _, bad, cursor, _ = drain(c, cursor)
    assert len(bad) == 1 and "undefined entity" in bad[0].reason
    assert len(server.requests("/cms.rss")) == 5


def test_a_bad_entry_is_reported_once_while_the_feed_changes_around_it(server):
    def feed(*items: object) -> str:
        return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": list(items)})

    one = {"id": "a", "content_text": "Brewista one"}
    two = {"id": "b", "content_text": "Brewista two"}
    url = server.route(
        "/j.json",
        Reply(body=feed(one, "not an object"), content_type="application/feed+json"),
        Reply(body=feed(two, one, "not an object"), content_type="application/feed+json"),
    )
    c = make(url)
    items, bad, cursor, _ = drain(c)
    assert [i.external_id for i in items] == ["a"] and len(bad) == 1
    items, bad, cursor, _ = drain(c, cursor)
    assert [i.external_id for i in items] == ["b"] and bad == []


def test_a_changing_ill_formed_feed_is_partial_only_once_through_the_runner(
    store, server, tmp_path
):
    template = fixture("undefined-entity.xml")
    versions = [
        Reply(body=template.replace(b"LAST_BUILD", f"hour {h}".encode()), content_type=RSS)
        for h in (9, 10, 11)
    ]
    url = server.route("/cms.rss", *versions)
    cfg_path = tmp_path / "careradar.yaml"
    cfg_path.write_text(
        f"sources:\n  - {{name: cms, kind: feed, url: '{url}', min_interval: 0}}\n",
        encoding="utf-8",
    )
    app = load_config(cfg_path, registry.source_models())
    runner = Runner(app, store, classifier=LexiconClassifier(), clock=lambda: NOW)
    statuses = [(r.status, r.new, r.bad) for r in (runner.run_once("cms") for _ in range(3))]
    assert statuses == [("partial", 2, 1), ("ok", 0, 0), ("ok", 0, 0)]
    assert len(server.requests("/cms.rss")) == 3


def test_item_links_must_be_http(server):
    url = server.route("/links.rss", Reply(body=fixture("unsafe-links.xml"), content_type=RSS))
    items, bad, _, _ = drain(make(url))
    assert bad == []
    assert {i.external_id: i.url for i in items} == {
        "link-js": None,
        "link-data": None,
        "link-mail": None,
        "link-ok": server.url("/t/9"),
    }
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {"id": "j1", "url": "javascript:alert(1)", "content_text": "x"},
                {"id": "j2", "external_url": "https://ext.example/p", "content_text": "y"},
            ],
        }
    )
    url = server.route("/links.json", Reply(body=body, content_type="application/feed+json"))
    items, _, _, _ = drain(make(url))
    assert {i.external_id: i.url for i in items} == {"j1": None, "j2": "https://ext.example/p"}


def test_a_token_in_the_feed_path_stays_out_of_cursor_and_raw(server):
    token = "k3J9x2LqP0w8ZtR5vB7nM4cY"
    url = server.route(f"/private/{token}.rss", Reply(body=fixture("rss10-rdf.xml")))
    items, _, cursor, _ = drain(make(url))
    assert items and token not in json.dumps(cursor)
    assert all(token not in json.dumps(i.raw) for i in items)
    assert items[0].raw["feed_url"] == server.url("/private/….rss")


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
