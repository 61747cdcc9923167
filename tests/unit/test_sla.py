"""Which items need a reply, and their deadlines by channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline import registry
from pipeline.config import load_config
from pipeline.items import Channel, Classification, Item, Sentiment, Status, Urgency
from pipeline.sla import apply_policy, is_closing, needs_reply

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CFG = load_config(None, registry.source_models())


def item(channel: Channel, text: str = "hello", **kw) -> Item:
    return Item(source="s", channel=channel, external_id="1", text=text, created_at=T0, **kw)


def cls(sentiment="neutral", complaint=False, urgency="normal") -> Classification:
    return Classification(
        model_version="t",
        sentiment=Sentiment(sentiment),
        sentiment_scores={"negative": 0.1, "neutral": 0.8, "positive": 0.1},
        is_complaint=complaint,
        complaint_score=0.9 if complaint else 0.1,
        urgency=Urgency(urgency),
    )


@pytest.mark.parametrize(
    ("channel", "seconds"),
    [(Channel.CHAT, 120), (Channel.SOCIAL, 3600), (Channel.EMAIL, 86400), (Channel.REVIEW, 604800)],
)
def test_targets_by_channel_start_when_the_customer_posted(channel, seconds):
    state = apply_policy(item(channel, "my order is late"), cls("negative", True), CFG.sla)
    assert state is not None
    assert state.policy == channel.value
    assert state.started_at == T0
    assert state.due_at == T0 + timedelta(seconds=seconds)
    assert state.at_risk_at == T0 + timedelta(seconds=seconds * 0.75)
    assert state.status is Status.NEW


def test_praise_on_social_needs_no_reply_but_chat_always_does():
    assert not needs_reply(item(Channel.SOCIAL, "love it"), cls("positive"))
    assert needs_reply(item(Channel.CHAT, "hi, can you check my bill"), cls("neutral"))
    assert needs_reply(item(Channel.EMAIL, "Invoice attached"), cls("neutral"))


def test_questions_complaints_urgent_need_reply_on_public_channels():
    assert needs_reply(item(Channel.SOCIAL, "does it ship to Sabah?"), cls())
    assert needs_reply(item(Channel.REVIEW, "meh"), cls("neutral", complaint=True))
    assert needs_reply(item(Channel.FORUM, "meh"), cls(urgency="high"))
    assert needs_reply(item(Channel.SOCIAL, "meh"), cls("negative"))


def test_brand_posts_never_need_reply():
    assert not needs_reply(item(Channel.CHAT, "how can I help?", author_is_brand=True), cls())


@pytest.mark.parametrize(
    "text", ["ok thanks!", "Thank you 🙏", "ok terima kasih", "谢谢", "done, thanks!!", "gracias"]
)
def test_closing_messages_need_no_reply(text):
    assert is_closing(text)
    assert not needs_reply(item(Channel.CHAT, text), cls("positive"))


@pytest.mark.parametrize(
    "text", ["ok but where is my refund?", "thanks for nothing, still broken", "no"]
)
def test_not_closing(text):
    assert not is_closing(text)


def test_policy_override_and_breach_logic():
    state = apply_policy(
        item(Channel.SOCIAL, "late again"), cls("negative", True), CFG.sla, policy_override="chat"
    )
    assert state is not None and state.target_seconds == 120
    assert not state.breached(T0 + timedelta(seconds=60))
    assert state.at_risk(T0 + timedelta(seconds=100))
    assert state.breached(T0 + timedelta(seconds=121))
