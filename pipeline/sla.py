"""Response-time policies: which items need a reply, and by when.

The clock starts when the customer posted (``created_at``), not when careradar collected the
item, so collection lag eats into the target and shows up as a health figure. Business-hours
calendars are not applied yet: ``due_at = created_at + target``.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pipeline.config import SlaConfig
from pipeline.items import Channel, Classification, Item, Sentiment, SlaState, Status, Urgency

# Direct channels: the customer wrote to us and expects an answer, whatever the mood.
_DIRECT = frozenset({Channel.CHAT, Channel.EMAIL})
_QUESTION = re.compile(r"[?\uff1f\u00bf]")  # ? and its full-width and Spanish forms
# A customer closing a conversation ("ok thanks", "terima kasih", "谢谢") needs no answer.
_CLOSING = re.compile(
    r"^(?:(?:ok(?:ay)?|okey|oke|k|great|perfect|cool|done|sure|alright|got it|noted|"
    r"thanks?|thank you|thank u|thx|ty|tq|cheers|many thanks|thanks a lot|much appreciated|"
    r"terima kasih|makasih|trima kasih|baik|sip|mantap|gracias|vale|perfecto|merci|danke|"
    r"谢谢|多谢|好的|明白|收到)[\s!.,~:)\-\u3002\uff01]*|[\U0001F44D\U0001F64F\u2764\uFE0F]\s*)+$",
    re.IGNORECASE,
)


def is_closing(text: str) -> bool:
    """True for a short acknowledgement that ends a conversation rather than asking for more."""
    stripped = text.strip()
    return 0 < len(stripped) <= 60 and bool(_CLOSING.match(stripped))


def needs_reply(item: Item, classification: Classification | None) -> bool:
    """Does this item put a response-time promise on the team?

    The brand's own posts never do, nor does a customer's closing "ok, thanks". Chats and
    e-mails always do otherwise. Public posts, reviews and
    forum threads do when they are negative, a complaint, urgent or ask a question; praise and
    chatter stay findable but do not start a clock.
    """
    if item.author_is_brand or is_closing(item.text):
        return False
    if item.channel in _DIRECT:
        return True
    if classification is None:
        return True  # unclassified: err on the side of a human looking
    return (
        classification.is_complaint
        or classification.sentiment is Sentiment.NEGATIVE
        or classification.urgency is Urgency.HIGH
        or bool(_QUESTION.search(item.text))
    )


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
    name, policy = cfg.policy_for(item.channel.value, policy_override)
    target = timedelta(seconds=policy.target)
    return SlaState(
        policy=name,
        target_seconds=round(policy.target),
        started_at=item.created_at,
        due_at=item.created_at + target,
        at_risk_at=item.created_at + timedelta(seconds=policy.at_risk_offset()),
        status=Status.NEW,
    )
