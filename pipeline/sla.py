"""Response-time policies: which items need a reply, and by when.

The clock starts when the customer posted (``created_at``), not when careradar collected the
item, so collection lag eats into the target and shows up as a health figure.

A policy without a calendar counts wall-clock time: ``due_at = created_at + target``. A policy
with a calendar (``sla.calendars``) counts only that calendar's open hours, in its time zone,
skipping closed days and holidays: an e-mail sent on Friday evening with a 4-hour business
target is due on Monday at 13:00 when the team opens at 09:00. The walk is done in UTC
instants, so a daylight-saving change inside an opening is counted as the hours that really
passed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pipeline.config import Calendar, SlaConfig
from pipeline.items import Channel, Classification, Item, Sentiment, SlaState, Status, Urgency

# Direct channels: the customer wrote to us and expects an answer, whatever the mood.
DIRECT_CHANNELS = frozenset({Channel.CHAT, Channel.EMAIL})
_QUESTION = re.compile(
    # a question mark: ASCII, full-width and Spanish opening
    r"[?\uff1f\u00bf]"
    # or a sentence that opens as a question or request, as people post without the mark:
    # "WHERE IS MY PARCEL", "any update on my refund", "tolong cek pesanan saya"
    r"|(?:^|[.!\n]\s*)(?:where\s+(?:is|are)|where's|when\s+(?:will|do|does|can|is)|how\s+long"
    r"|how\s+(?:do|can)\s+i|can\s+(?:you|someone|anyone|somebody)|could\s+(?:you|someone)"
    r"|is\s+(?:anyone|anybody)|any\s+update|anyone\s+there|please\s+(?:help|check|reply|respond)"
    r"|di\s*mana|kapan|bilakah|macam\s+mana|bagaimana|apakah|adakah|tolong|mohon"
    r"|d[óo]nde|cu[áa]ndo|alguien|pueden|podr[íi]an|por\s+favor)\b"
    r"|哪里|什么时候|多久|能不能|为什么|吗\s*$",
    re.IGNORECASE,
)
# A customer closing a conversation ("ok thanks", "makasih kak", "好的，谢谢") needs no answer: a
# message made only of thanks, okays and emoji, with the words chat puts around them ("kak",
# "min", "ya" in Indonesian and Malay, "bro", "so much"), which alone close nothing ("kak?" calls
# the agent, "ya" answers a question).
_CLOSING_WORDS = (
    # en
    r"ok(?:ay)?|okey|oke|k|great|perfect|cool|done|sure|alright|got it|noted|all good"
    r"|sounds good|awesome|brilliant|nice|thanks?|thank you|thank u|thx|ty|tq|tqvm|cheers"
    r"|many thanks|thanks a lot|much appreciated|appreciate it"
    # ms/id
    r"|terima kasih|makasih|trima kasih|terimakasih|baik|sip|mantap|siap"
    # es, pt, fr, de
    r"|gracias|vale|perfecto|genial|listo|de acuerdo|obrigad[oa]|valeu|merci|danke"
    r"|danke sch(?:ö|oe)n|vielen dank"
    # zh
    r"|谢谢你?|谢谢您|多谢|感谢|非常感谢|好的|明白了?|收到了?|知道了|没问题|辛苦了"
)
_FILLER_WORDS = (
    r"so much|very much|mate|bro|sis|banyak|ya|yaa|ye|yah|lah|kak|kakak|min|mimin|gan|bang|bos"
    r"|boss|mas|mbak|mba|pak|bu|encik|cik|puan|tuan|muchas|mil|beaucoup"
)
_SEPARATORS = r"[\s!.,~:)\-\u3002\uff01\uff0c\u3001]*"
_EMOJI = r"[\U0001F44D\U0001F64F\u2764\uFE0F]\s*"
_CLOSING = re.compile(
    rf"^(?:(?:{_CLOSING_WORDS}|{_FILLER_WORDS}){_SEPARATORS}|{_EMOJI})+$", re.IGNORECASE
)
_FILLER_ONLY = re.compile(rf"^(?:(?:{_FILLER_WORDS}){_SEPARATORS})+$", re.IGNORECASE)


def is_closing(text: str) -> bool:
    """True for a short acknowledgement that ends a conversation rather than asking for more."""
    stripped = text.strip()
    return (
        0 < len(stripped) <= 60
        and bool(_CLOSING.match(stripped))
        and not _FILLER_ONLY.match(stripped)
    )


def needs_reply(item: Item, classification: Classification | None) -> bool:
    """Does this item put a response-time promise on the team?

    The brand's own posts never do, nor does a customer's closing "ok, thanks". Chats and
    e-mails always do otherwise. Public posts, reviews and
    forum threads do when they are negative, a complaint, urgent or ask a question, and reviews
    also when rated 1 or 2 stars; praise and chatter stay findable but do not start a clock.
    """
    if item.author_is_brand or is_closing(item.text):
        return False
    if item.channel in DIRECT_CHANNELS:
        return True
    if classification is None:
        return True  # unclassified: err on the side of a human looking
    if item.channel is Channel.REVIEW and _low_rating(item.raw.get("rating")):
        return True  # a 1-2 star review with calm words is still an unhappy customer
    return (
        classification.is_complaint
        or classification.sentiment is Sentiment.NEGATIVE
        or classification.urgency is Urgency.HIGH
        or bool(_QUESTION.search(item.text))
    )


def _low_rating(value: object) -> bool:
    """A 1 or 2 on the 1-5 star scale app stores and review sites use."""
    try:
        return 1 <= float(str(value)) <= 2
    except ValueError:
        return False


def apply_policy(
    item: Item,
    classification: Classification | None,
    cfg: SlaConfig,
    *,
    policy_override: str | None = None,
) -> SlaState | None:
    """The SLA state for a new item, or None when it needs no reply."""
    if not needs_reply(item, classification):
        return None
    return start_clock(item.channel, item.created_at, cfg, policy_override=policy_override)


def start_clock(
    channel: Channel,
    created_at: datetime,
    cfg: SlaConfig,
    *,
    policy_override: str | None = None,
) -> SlaState:
    """The reply clock of an item of ``channel`` posted at ``created_at``: the channel's policy
    (or ``policy_override``, a source's ``sla_policy``), counted from when the customer posted.

    :func:`apply_policy` uses it for new items; ``triage label`` for an item a person says
    needs attention (a complaint, urgent) after the pipeline decided it needed no reply.
    """
    name, policy = cfg.policy_for(channel.value, policy_override)
    calendar = cfg.calendars[policy.calendar] if policy.calendar else None
    return SlaState(
        policy=name,
        target_seconds=round(policy.target),
        started_at=created_at,
        due_at=deadline(created_at, policy.target, calendar),
        at_risk_at=deadline(created_at, policy.at_risk_offset(), calendar),
        status=Status.NEW,
    )


MAX_CALENDAR_DAYS = 3 * 366
"""A deadline further out than this many days of calendar is a configuration mistake."""


def deadline(start: datetime, seconds: float, calendar: Calendar | None = None) -> datetime:
    """``start`` plus ``seconds`` of (business) time, as a UTC instant."""
    if calendar is None:
        return start + timedelta(seconds=seconds)
    zone = ZoneInfo(calendar.timezone)
    week = calendar.weekly()
    holidays = frozenset(calendar.holidays)
    remaining = timedelta(seconds=seconds)
    # Start the walk a day early: yesterday's opening may run past midnight into today.
    day = start.astimezone(zone).date() - timedelta(days=1)
    for _ in range(MAX_CALENDAR_DAYS):
        if day not in holidays:
            for open_at, close_at in _openings(day, week[day.weekday()], zone):
                if close_at <= start:
                    continue
                begin = max(open_at, start)
                if remaining <= close_at - begin:
                    return begin + remaining
                remaining -= close_at - begin
        day += timedelta(days=1)
    raise ValueError(f"calendar in {calendar.timezone} has no open hours within 3 years")


def _openings(
    day: date, ranges: list[tuple[int, int]], zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The day's open ranges as UTC instants (a range may end after midnight)."""
    return [(_local(day, begin, zone), _local(day, end, zone)) for begin, end in ranges]


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """Wall-clock ``minutes`` after the start of local ``day`` (may be the next day), in UTC."""
    days, rest = divmod(minutes, 24 * 60)
    wall = datetime.combine(day + timedelta(days=days), time(rest // 60, rest % 60), tzinfo=zone)
    return wall.astimezone(UTC)
