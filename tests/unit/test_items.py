"""What a classifier reads of an item: rated review titles and titles repeated in the text."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.items import Channel, Item, analysis_text, rated_title, review_rating


def _item(channel: Channel, text: str, title: str | None) -> Item:
    return Item(
        source="s",
        channel=channel,
        external_id="1",
        text=text,
        title=title,
        created_at=datetime(2026, 1, 15, tzinfo=UTC),
    )


def test_a_rated_review_title_gives_its_rating_and_loses_the_marker() -> None:
    review = _item(
        Channel.REVIEW, "Crashes on launch\n\nEvery time.", rated_title(2, "Crashes on launch")
    )
    assert review.title == "[2/5] Crashes on launch"
    assert review_rating(review) == (2, "Crashes on launch")
    assert analysis_text(review) == "Crashes on launch\n\nEvery time."  # the title once
    bare = _item(Channel.REVIEW, "ok", rated_title(1, ""))
    assert review_rating(bare) == (1, None)
    assert analysis_text(bare) == "ok"


def test_other_titles_are_kept_as_they_are() -> None:
    post = _item(Channel.FORUM, "it logs me out", "[1/5] my rating")
    assert review_rating(post) == (None, "[1/5] my rating")
    assert analysis_text(post) == "[1/5] my rating\nit logs me out"
    unrated = _item(Channel.REVIEW, "fine", "[6/5] off the scale")
    assert review_rating(unrated) == (None, "[6/5] off the scale")
    assert analysis_text(_item(Channel.EMAIL, "body", None)) == "body"
