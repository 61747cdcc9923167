"""Which items need a reply, and their deadlines by channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipeline import registry
from pipeline.config import Calendar, load_config
from pipeline.errors import ConfigError
from pipeline.items import Channel, Classification, Item, Sentiment, Status, Urgency
from pipeline.sla import apply_policy, deadline, is_closing, needs_reply

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


@pytest.mark.parametrize(
    "text",
    [
        "WHERE IS MY PARCEL",
        "any update on my refund",
        "hi. can someone call me back",
        "tolong cek pesanan saya",
        "kapan paket saya sampai",
        "por favor revisen mi pedido",
        "你们周末营业吗",
        "能不能快点发货",
    ],
)
def test_a_question_without_a_question_mark_needs_reply(text):
    assert needs_reply(item(Channel.SOCIAL, text), cls())


@pytest.mark.parametrize(
    "text", ["How great is this!", "What a lovely day", "Bila ada masalah, hubungi kami"]
)
def test_exclamations_and_statements_are_not_questions(text):
    assert not needs_reply(item(Channel.SOCIAL, text), cls())


def test_brand_posts_never_need_reply():
    assert not needs_reply(item(Channel.CHAT, "how can I help?", author_is_brand=True), cls())


@pytest.mark.parametrize(
    "text",
    [
        "ok thanks!",
        "Thank you 🙏",
        "ok terima kasih",
        "谢谢",
        "done, thanks!!",
        "gracias",
        # with the words chat puts around a thank-you
        "makasih kak",
        "terima kasih ya kak",
        "oke siap kak",
        "sip min",
        "terima kasih banyak",
        "thank you so much",
        "cheers mate",
        "muchas gracias",
        "好的，谢谢",
        "谢谢你",
    ],
)
def test_closing_messages_need_no_reply(text):
    assert is_closing(text)
    assert not needs_reply(item(Channel.CHAT, text), cls("positive"))


@pytest.mark.parametrize(
    "text",
    [
        "ok but where is my refund?",
        "thanks for nothing, still broken",
        "no",
        # an honorific or "yes" alone calls the agent or answers a question
        "kak",
        "kak?",
        "ya",
        "min",
        "ok kak, tapi paketnya belum sampai",
        "bro where is my parcel",
        "so much for your service",
    ],
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


# --- business hours ---------------------------------------------------------------------------

KL = ZoneInfo("Asia/Kuala_Lumpur")
BERLIN = ZoneInfo("Europe/Berlin")


def calendar(hours, tz="Asia/Kuala_Lumpur", holidays=()) -> Calendar:
    return Calendar(timezone=tz, hours=hours, holidays=list(holidays))


OFFICE = {"mon-fri": "09:00-18:00", "sat": "10:00-13:00", "sun": "closed"}


def kl(*args: int) -> datetime:
    return datetime(*args, tzinfo=KL)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (kl(2026, 11, 24, 10, 0), 2, kl(2026, 11, 24, 12, 0)),  # Tuesday, inside hours
        (kl(2026, 11, 24, 17, 0), 2, kl(2026, 11, 25, 10, 0)),  # runs into Wednesday
        (kl(2026, 11, 24, 7, 30), 1, kl(2026, 11, 24, 10, 0)),  # before opening
        (kl(2026, 11, 27, 19, 0), 3, kl(2026, 11, 28, 13, 0)),  # Friday night -> Saturday
        (kl(2026, 11, 27, 19, 0), 4, kl(2026, 11, 30, 10, 0)),  # ... Sunday closed -> Monday
        (kl(2026, 11, 24, 9, 0), 24, kl(2026, 11, 26, 15, 0)),  # 24 business hours
    ],
)
def test_business_hours_deadline(start, hours, due):
    assert deadline(start.astimezone(UTC), hours * 3600, calendar(OFFICE)) == due


def test_holidays_are_closed():
    cal = calendar(OFFICE, holidays=["2026-12-25"])
    thursday_evening = kl(2026, 12, 24, 17, 0).astimezone(UTC)
    assert deadline(thursday_evening, 2 * 3600, cal) == kl(2026, 12, 26, 11, 0)


def test_overnight_opening_runs_past_midnight():
    night = calendar({"daily": "22:00-06:00"})
    assert deadline(kl(2026, 11, 24, 23, 0), 2 * 3600, night) == kl(2026, 11, 25, 1, 0)
    # 05:00: one hour left tonight, the second hour once it reopens at 22:00.
    assert deadline(kl(2026, 11, 25, 5, 0), 2 * 3600, night) == kl(2026, 11, 25, 23, 0)


def test_daylight_saving_counts_real_hours():
    always = calendar({"daily": "00:00-24:00"}, tz="Europe/Berlin")
    # Berlin springs forward at 02:00 on 2026-03-29: 3 real hours after 23:00 is 03:00 UTC+2.
    start = datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN)
    got = deadline(start.astimezone(UTC), 3 * 3600, always)
    assert got == start.astimezone(UTC) + timedelta(hours=3)
    assert got.astimezone(BERLIN).hour == 3


def test_policy_with_calendar_sets_due_and_at_risk_in_business_time(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "sla:\n"
        "  calendars:\n"
        "    office: {timezone: Asia/Kuala_Lumpur, hours: {mon-fri: '09:00-18:00'}}\n"
        "  policies:\n"
        "    email: {target: 4h, at_risk: 1h, calendar: office}\n",
        encoding="utf-8",
    )
    cfg = load_config(p, registry.source_models())
    friday_night = kl(2026, 11, 27, 20, 0).astimezone(UTC)
    mail = Item(
        source="s", channel=Channel.EMAIL, external_id="m", text="hi", created_at=friday_night
    )
    state = apply_policy(mail, None, cfg.sla)
    assert state is not None
    assert state.started_at == friday_night
    assert state.due_at == kl(2026, 11, 30, 13, 0)
    assert state.at_risk_at == kl(2026, 11, 30, 12, 0)
    # Chat keeps its wall-clock two minutes.
    chat = Item(source="s", channel=Channel.CHAT, external_id="c", text="hi", created_at=T0)
    chat_state = apply_policy(chat, None, cfg.sla)
    assert chat_state is not None
    assert chat_state.due_at == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("calendars: {o: {timezone: Mars/Base, hours: {mon: '09:00-17:00'}}}", "unknown time zone"),
        ("calendars: {o: {timezone: UTC, hours: {mon: '9-17'}}}", "is not a time range"),
        ("calendars: {o: {timezone: UTC, hours: {funday: '09:00-17:00'}}}", "is not a day"),
        ("calendars: {o: {timezone: UTC, hours: {daily: closed}}}", "no open hours"),
        ("policies: {email: {target: 4h, calendar: office}}", "unknown calendar 'office'"),
    ],
)
def test_calendar_config_errors_name_the_problem(tmp_path, snippet, message):
    p = tmp_path / "c.yaml"
    p.write_text(f"sla:\n  {snippet}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p, registry.source_models())
    assert message in str(e.value)
    assert "c.yaml: sla" in str(e.value)


@pytest.mark.parametrize(
    ("rating", "expected"),
    [(1, True), ("2", True), (3, False), (5, False), (None, False), ("n/a", False)],
)
def test_low_star_review_needs_a_reply_even_in_calm_words(rating, expected):
    review = item(Channel.REVIEW, "The app is fine I guess.", raw={"rating": rating})
    assert needs_reply(review, cls("neutral")) is expected
