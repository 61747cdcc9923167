"""kind: reviews: App Store pages from a real HTTP server on loopback (paging, the stop at
reviews already seen, paging deeper for developer responses only when the feed carries them,
developer responses through the runner and the store, pages that are not JSON, unsafe links)
and a Play Console CSV export in UTF-16."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.reviews import ReviewsCollector, ReviewsSource
from pipeline.config import load_config
from pipeline.errors import ConfigError, TransientError
from pipeline.items import AwaitingItem, Channel
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from tests.support.httpserver import Reply, ScriptedServer, serve

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1] / "data" / "reviews"
APP = "1234567890"
JSON = "application/json; charset=utf-8"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve() as s:
        yield s


def page_path(n: int, country: str = "us") -> str:
    return f"/{country}/rss/customerreviews/page={n}/id={APP}/sortby=mostrecent/json"


def serve_pages(server: ScriptedServer, *names: str, country: str = "us") -> None:
    for n, name in enumerate(names, start=1):
        body = (DATA / name).read_bytes()
        kind = "text/html; charset=utf-8" if name.endswith(".html") else JSON
        server.route(page_path(n, country), Reply(body=body, content_type=kind))


def make(server: ScriptedServer, awaiting=(), **kw) -> ReviewsCollector:
    app = load_config(None, registry.source_models())
    options = {
        "name": "appstore",
        "kind": "reviews",
        "app_id": APP,
        "base_url": server.base,
        "min_interval": 0,
        "retries": 0,
        "brand": "Brewista",
        **kw,
    }
    src = ReviewsSource.model_validate(options)
    ctx = CollectContext(app=app, clock=lambda: NOW, awaiting_response=lambda since: list(awaiting))
    return ReviewsCollector(src, ctx)


def drain(c: ReviewsCollector, cursor=None):
    items, bad, last = [], [], cursor
    for batch in c.collect(cursor):
        items += batch.items
        bad += batch.bad
        last = batch.cursor if batch.cursor is not None else last
    return items, bad, last


FIRST_RUN = (
    "apple-us-page1.json",
    "apple-us-page2.json",
    "apple-us-page3.json",
    "apple-us-page4-empty.json",
)


def test_pages_are_followed_until_an_empty_page(server):
    serve_pages(server, *FIRST_RUN)
    items, bad, cursor = drain(make(server))
    reviews = [i for i in items if not i.author_is_brand]
    assert [i.external_id for i in reviews] == [
        "1009",
        "1008",
        "1007",
        "1006",
        "1005",
        "1004",
        "1002",
    ]
    assert [len(server.requests(page_path(n))) for n in (1, 2, 3, 4)] == [1, 1, 1, 1]
    angry = reviews[0]
    assert angry.title == "[1/5] Crashes constantly"
    assert angry.text.startswith("Crashes constantly\n\nTerrible update.")
    assert angry.raw["rating"] == 1 and angry.raw["version"] == "4.2.0"
    assert angry.raw["country"] == "us" and angry.author == "grumpy_espresso"
    assert angry.created_at == datetime(2026, 11, 23, 10, 10, tzinfo=UTC)
    assert (angry.channel, angry.platform, angry.brand) == (Channel.REVIEW, "appstore", "Brewista")
    assert reviews[5].title == "[2/5] アプリが落ちる"
    # The developer response is a brand item pointing at its review.
    (response,) = [i for i in items if i.author_is_brand]
    assert response.parent_id == "1005" and response.external_id == "response-555001"
    assert response.author == "Brewista"
    assert response.created_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    # Rating 9 is a bad input; everything else on that page is kept.
    assert len(bad) == 1 and bad[0].reason == "rating '9' is not 1-5"
    assert "page 2 entry 4" in bad[0].location
    state = cursor["countries"]["us"]
    assert state["newest_updated"] == "2026-11-23T10:10:00+00:00"
    assert set(state["seen"]) == {"1009", "1008", "1007", "1006", "1005", "1004", "1002"}
    assert state["carries_responses"] is True  # 1005 came with one


def test_the_next_poll_stops_at_reviews_already_seen(server):
    serve_pages(server, *FIRST_RUN)
    c = make(server)
    _, _, cursor = drain(c)
    serve_pages(server, "apple-us-page1-later.json")
    items, bad, cursor2 = drain(c, cursor)
    assert [i.external_id for i in items] == ["1011", "1010"]
    assert bad == []
    assert len(server.requests(page_path(1))) == 2 and len(server.requests(page_path(2))) == 1
    assert cursor2["countries"]["us"]["newest_updated"] == "2026-11-23T17:00:00+00:00"


def test_awaiting_reviews_deeper_down_keep_the_paging_going(server):
    serve_pages(server, *FIRST_RUN)
    c = make(server)
    _, _, cursor = drain(c)
    serve_pages(server, "apple-us-page1-later.json")
    waiting = AwaitingItem("1006", None, None, datetime(2026, 11, 21, 19, 0, tzinfo=UTC), NOW)
    items, _, _ = drain(make(server, awaiting=[waiting]), cursor)
    assert [i.external_id for i in items] == ["1011", "1010"]
    # 1006 is on page 2: it was looked at again for a developer response.
    assert len(server.requests(page_path(2))) == 2


def test_a_feed_without_developer_responses_is_not_paged_for_them(server):
    # Like Apple's public feed: no review ever carries a developerResponse, so paging deeper
    # for responses to older awaiting reviews would cost requests and find nothing.
    serve_pages(server, "apple-us-page1.json", "apple-us-page3.json", "apple-us-page4-empty.json")
    c = make(server)
    _, _, cursor = drain(c)
    assert cursor["countries"]["us"]["carries_responses"] is False
    serve_pages(server, "apple-us-page1-later.json")
    waiting = AwaitingItem("1002", None, None, datetime(2026, 11, 18, 15, 0, tzinfo=UTC), NOW)
    items, _, cursor = drain(make(server, awaiting=[waiting]), cursor)
    assert [i.external_id for i in items] == ["1011", "1010"]
    assert len(server.requests(page_path(2))) == 1  # read on the first run only
    assert cursor["countries"]["us"]["carries_responses"] is False
    # Once a page shows a response, the next runs do page on for awaiting reviews.
    serve_pages(server, "apple-us-page1-responded.json")
    drain(make(server, awaiting=[waiting]), cursor)
    assert len(server.requests(page_path(2))) == 2


def empty_page() -> bytes:
    return (DATA / "apple-us-page4-empty.json").read_bytes()


def test_review_links_must_be_http(server):
    page = (DATA / "apple-us-page3.json").read_text(encoding="utf-8")
    page = page.replace(
        "https://apps.apple.com/us/app/brewista/id1234567890?see-all=reviews#r1002",
        "javascript:alert(document.cookie)",
    )
    server.route(page_path(1), Reply(body=page, content_type=JSON))
    server.route(page_path(2), Reply(body=empty_page(), content_type=JSON))
    (item,), bad, _ = drain(make(server))
    assert item.external_id == "1002" and item.url is None and bad == []


def test_a_utf16_json_page_with_a_bom_is_read(server):
    page = (DATA / "apple-us-page3.json").read_text(encoding="utf-8")
    server.route(page_path(1), Reply(body=page.encode("utf-16"), content_type=JSON))
    server.route(page_path(2), Reply(body=empty_page(), content_type=JSON))
    items, bad, _ = drain(make(server))
    assert [i.external_id for i in items] == ["1002"] and bad == []


def test_a_single_review_page_and_a_country_list(server):
    serve_pages(server, "apple-us-page3.json", "apple-us-page4-empty.json", country="gb")
    serve_pages(server, "apple-us-page4-empty.json", country="us")
    items, _, cursor = drain(make(server, countries=["US", "gb"]))
    assert [(i.external_id, i.raw["country"]) for i in items] == [("1002", "gb")]
    assert set(cursor["countries"]) == {"us", "gb"}
    assert cursor["countries"]["us"]["newest_updated"] is None


@pytest.mark.parametrize(
    ("name", "words"),
    [("apple-error.html", "page is an HTML page"), ("apple-truncated.json", "page is not JSON")],
)
def test_a_page_that_is_not_json_is_recorded_and_fails_the_country(server, name, words):
    serve_pages(server, "apple-us-page1.json", name)
    batches = []
    with pytest.raises(TransientError) as e:
        for batch in make(server).collect(None):
            batches.append(batch)
    items = [i for b in batches for i in b.items]
    bad = [r for b in batches for r in b.bad]
    assert [i.external_id for i in items] == ["1009", "1008", "1007"]  # page 1 is kept
    assert len(bad) == 1 and bad[0].reason.startswith(words)
    assert "us page 2" in bad[0].location
    # Nothing moved the cursor: the next run reads page 2 again instead of skipping it.
    assert all(b.cursor is None for b in batches)
    assert "page 2 is unusable" in e.value.message and e.value.hint


def test_one_failing_country_does_not_stop_the_others(server):
    serve_pages(server, "apple-error.html", country="us")
    serve_pages(server, "apple-us-page3.json", "apple-us-page4-empty.json", country="gb")
    items = []
    with pytest.raises(TransientError, match="1 of 2 countries failed"):
        for batch in make(server, countries=["us", "gb"]).collect(None):
            items += batch.items
    assert [i.external_id for i in items] == ["1002"]


def test_config_needs_exactly_one_mode(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sources:\n  - {name: r, kind: reviews}\n")
    with pytest.raises(ConfigError, match="either 'app_id'"):
        load_config(p, registry.source_models())
    p.write_text("sources:\n  - {name: r, kind: reviews, app_id: 'id12x'}\n")
    with pytest.raises(ConfigError, match="not an App Store id"):
        load_config(p, registry.source_models())
    p.write_text("sources:\n  - {name: r, kind: reviews, app_id: '1', countries: [usa]}\n")
    with pytest.raises(ConfigError, match="two-letter"):
        load_config(p, registry.source_models())
    p.write_text(
        "sources:\n  - {name: r, kind: reviews, app_id: '1', replay_anchor: 2026-01-15T12:00:00Z}\n"
    )
    with pytest.raises(ConfigError, match="needs 'path'"):
        load_config(p, registry.source_models())
    p.write_text("sources:\n  - {name: r, kind: reviews, path: x.csv, replay_anchor: 2026-01-15}\n")
    with pytest.raises(ConfigError, match="needs a zone"):
        load_config(p, registry.source_models())


# --- through the runner and the store ------------------------------------------------------------


def app_config(tmp_path: Path, server: ScriptedServer):
    p = tmp_path / "careradar.yaml"
    p.write_text(
        "brands:\n  - {name: Brewista}\n"
        "sources:\n"
        "  - name: appstore\n"
        "    kind: reviews\n"
        f"    app_id: id{APP}\n"
        "    countries: [us]\n"
        f"    base_url: {server.base}\n"
        "    brand: Brewista\n"
        "    min_interval: 0\n",
        encoding="utf-8",
    )
    return load_config(p, registry.source_models())


def test_developer_responses_mark_reviews_responded_in_the_store(store, server, tmp_path):
    serve_pages(server, *FIRST_RUN)
    runner = Runner(
        app_config(tmp_path, server), store, classifier=LexiconClassifier(), clock=lambda: NOW
    )
    first = runner.run_once("appstore")
    assert (first.status, first.new, first.bad) == ("partial", 8, 1)
    # 1005 came with its response: answered in the same batch.
    login = store.find_item("appstore", "1005", now=NOW)
    assert login.first_response_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert login.status == "responded"
    angry = store.find_item("appstore", "1009", now=NOW)
    assert angry.needs_reply and angry.first_response_at is None and angry.status == "new"

    # Next poll: 1009 now has a response. It is already seen, but it is waiting for a reply,
    # so its response is collected and the store links it.
    serve_pages(server, "apple-us-page1-responded.json")
    second = runner.run_once("appstore")
    assert second.status == "ok" and second.responded >= 1
    angry = store.find_item("appstore", "1009", now=NOW)
    assert angry.first_response_at == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert angry.status == "responded"
    reply = store.find_item("appstore", "response-555002", now=NOW)
    assert reply.author_is_brand and reply.parent_id == "1009"
    assert {"1011", "1010"} <= {r.external_id for r in store.list_items(source="appstore", now=NOW)}

    # A third identical poll stores nothing.
    third = runner.run_once("appstore")
    assert (third.new, third.updated) == (0, 0)


def test_a_broken_page_through_the_runner_keeps_the_cursor_where_it_was(store, server, tmp_path):
    serve_pages(server, "apple-us-page1.json", "apple-truncated.json")
    runner = Runner(
        app_config(tmp_path, server), store, classifier=LexiconClassifier(), clock=lambda: NOW
    )
    failed = runner.run_once("appstore")
    assert failed.status == "error" and "page 2 is unusable" in failed.error
    assert failed.new == 3 and store.get_cursor("appstore") is None
    (bad,) = store.bad_inputs(source="appstore")
    assert bad["reason"].startswith("page is not JSON")
    serve_pages(server, *FIRST_RUN)
    ok = runner.run_once("appstore")
    assert ok.status == "partial" and ok.new == 5  # 1006, 1005 + response, 1004, 1002
    assert store.get_cursor("appstore")["countries"]["us"]["newest_updated"]


# --- export import -------------------------------------------------------------------------------


PLAY_MAPPING = {
    "external_id": "Review Link",
    "text": "Review Text",
    "title": "Review Title",
    "created_at": "Review Submit Date and Time",
    "language": "Reviewer Language",
    "rating": "Star Rating",
    "version": "App Version Name",
    "reply_text": "Developer Reply Text",
    "reply_created_at": "Developer Reply Date and Time",
}


def test_play_console_utf16_csv_import(store, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(DATA / "play-console-reviews.csv", exports / "reviews_202611.csv")
    p = tmp_path / "careradar.yaml"
    mapping = "".join(f"      {k}: {v}\n" for k, v in PLAY_MAPPING.items())
    p.write_text(
        "sources:\n"
        "  - name: play\n"
        "    kind: reviews\n"
        "    path: exports/*.csv\n"
        "    platform: googleplay\n"
        "    brand: Brewista\n"
        "    mapping:\n" + mapping,
        encoding="utf-8",
    )
    cfg = load_config(p, registry.source_models())
    runner = Runner(cfg, store, classifier=LexiconClassifier(), clock=lambda: NOW)
    result = runner.run_once("play")
    assert (result.status, result.new, result.bad) == ("partial", 5, 2)
    rows = {
        parse_qs(urlsplit(r.external_id).query)["reviewId"][0]: r
        for r in store.list_items(source="play", now=NOW)
        if not r.author_is_brand
    }
    assert set(rows) == {"gp:AOqpTOH-1", "gp:AOqpTOH-2", "gp:AOqpTOH-3", "gp:AOqpTOH-5"}
    angry = rows["gp:AOqpTOH-1"]
    assert angry.title == "[1/5]" and angry.raw["rating"] == 1 and angry.raw["version"] == "4.2.1"
    assert angry.channel == "review" and angry.platform == "googleplay" and angry.language == "en"
    # The developer reply in the export answers the review.
    assert angry.first_response_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert angry.status == "responded"
    # UTF-16 decoded: umlauts, typographic quotes and Japanese intact.
    assert rows["gp:AOqpTOH-2"].text == "Die App stürzt beim Öffnen ständig ab, „sehr ärgerlich“."
    assert rows["gp:AOqpTOH-3"].text == "とても使いやすい。毎朝使っています。"
    assert rows["gp:AOqpTOH-5"].raw["rating"] is None
    reasons = sorted(b["reason"] for b in store.bad_inputs(source="play"))
    assert reasons[0].startswith("no text") and "kept without a rating" in reasons[1]
    # Read to its end: a second run reads nothing.
    again = runner.run_once("play")
    assert (again.seen, again.new, again.bad) == (0, 0, 0)


def test_an_export_can_be_replayed_with_its_newest_time_as_now(store, tmp_path):
    """As for kind: file (the demo's reviews): timestamps shift so the anchor becomes now."""
    shutil.copy(DATA / "play-console-reviews.csv", tmp_path / "reviews.csv")
    mapping = "".join(f"      {k}: {v}\n" for k, v in PLAY_MAPPING.items())
    p = tmp_path / "careradar.yaml"
    p.write_text(
        "sources:\n  - name: play\n    kind: reviews\n    path: reviews.csv\n"
        "    replay_anchor: 2026-11-22T00:00:00Z\n    mapping:\n" + mapping,
        encoding="utf-8",
    )
    runner = Runner(
        load_config(p, registry.source_models()),
        store,
        classifier=LexiconClassifier(),
        clock=lambda: NOW,
    )
    runner.run_once("play")
    (german,) = [
        r for r in store.list_items(source="play", now=NOW) if "gp:AOqpTOH-2" in r.external_id
    ]
    # Written 2026-11-21 09:00 UTC in the export (see test_play_console_utf16_csv_import).
    shift = NOW - datetime(2026, 11, 22, tzinfo=UTC)
    assert german.created_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC) + shift
