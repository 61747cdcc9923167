"""Offline language detection: script rules first, then lingua over a fixed language set.

Returns ISO 639-1 codes with a confidence in [0, 1], or ``(None, 0.0)`` when the text is too
short or too ambiguous to call (``"ok"``, ``"lol"``, emoji, links, numbers). A wrong guess is
worse than no guess: downstream, "not English" marks the English-only sentiment unsupported.

1. Only the first :data:`MAX_CHARS` characters are read. Links, e-mail addresses, @mentions,
   digits and punctuation are removed; fewer than :data:`MIN_LETTERS` letters left is ``None``.
2. Script short-circuit (cheap, exact): text that is mostly Hangul is ``ko``; mostly Han/kana is
   ``ja`` when it has a fair share of kana, else ``zh``; mostly Thai is ``th``. Han, kana and
   Hangul characters count twice (one character carries about a short word), so a Chinese
   sentence with a brand name in Latin letters is still Chinese. The confidence is the script's
   share of the letters.
3. Otherwise lingua (high-accuracy mode, lazily loaded: 200-300 MB of models) gives a
   probability per language. Malay and Indonesian are near-identical in short text
   ("Pesanan saya belum sampai lagi" scores ID 0.51 / MS 0.48): they are judged together as a
   group, the top one of the two is returned with its own (low) confidence, so a caller that
   cares can look at it. The answer is ``None`` unless the winner's group has at least
   :data:`MIN_CONFIDENCE` and is :data:`MIN_RATIO` times the best language outside the group.

The detector is built once per process on first use (thread-safe); the first call that needs
lingua's models pays for loading them (about 1-2 s).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Final

from lingua import ConfidenceValue, Language, LanguageDetector, LanguageDetectorBuilder

__all__ = [
    "MAX_CHARS",
    "MIN_CONFIDENCE",
    "MIN_LETTERS",
    "MIN_RATIO",
    "SUPPORTED_LANGUAGES",
    "detect_language",
    "detect_languages",
]

_LINGUA_LANGUAGES: Final = (
    Language.ENGLISH,
    Language.CHINESE,
    Language.MALAY,
    Language.INDONESIAN,
    Language.SPANISH,
    Language.FRENCH,
    Language.GERMAN,
    Language.PORTUGUESE,
    Language.JAPANESE,
    Language.KOREAN,
    Language.VIETNAMESE,
    Language.THAI,
    Language.TAGALOG,
)

SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = tuple(
    lang.iso_code_639_1.name.lower() for lang in _LINGUA_LANGUAGES
)
"""ISO 639-1 codes this module can return. Anything else is reported as the closest of these."""

_CODES: Final = dict(zip(_LINGUA_LANGUAGES, SUPPORTED_LANGUAGES, strict=True))
"""lingua language -> ISO 639-1 code (reading the code off lingua's objects costs per call)."""

MAX_CHARS: Final = 1_000
"""Only the head of a text is looked at; more text does not change the answer, only the cost."""

MIN_LETTERS: Final = 4
"""Fewer letters than this (after removing links, mentions, digits) is never called."""

MIN_CONFIDENCE: Final = 0.3
"""The winner's group must have at least this probability..."""

MIN_RATIO: Final = 1.5
"""...and be this many times more likely than the best language outside its group."""

_GROUPS: Final[dict[str, frozenset[str]]] = {
    "ms": frozenset({"ms", "id"}),
    "id": frozenset({"ms", "id"}),
}

_NOISE = re.compile(
    r"(?:https?://|www\.)\S+"  # links
    r"|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|(?<![\w@])@\w+",  # @mentions
    re.IGNORECASE,
)
_MAYBE_NOISE = re.compile(r"@|://|www\.", re.IGNORECASE)
"""What each of the three kinds of noise needs: checked first, it is one fast scan."""
_NON_LETTERS = re.compile(r"[\W\d_]+")

_lock = threading.Lock()
_detector: LanguageDetector | None = None


def _get_detector() -> LanguageDetector:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = LanguageDetectorBuilder.from_languages(*_LINGUA_LANGUAGES).build()
    return _detector


def _prepare(text: str) -> str:
    """The text lingua should see: no links/addresses/mentions, words separated by spaces."""
    if _MAYBE_NOISE.search(text):
        text = _NOISE.sub(" ", text)
    return " ".join(_NON_LETTERS.sub(" ", text).split())


_HANGUL = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0003ffff]")
_THAI = re.compile("[\u0e00-\u0e7f]")
_SCRIPTS = re.compile(
    "[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
    "\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0003ffff\u0e00-\u0e7f]"
)
"""Every character of the four scripts above (they do not overlap)."""


def _by_script(letters: str) -> tuple[str | None, float] | None:
    """A decision from the writing system alone, or None when lingua must decide."""
    if letters.isascii():
        return None  # Latin letters only: the script says nothing, lingua decides
    hangul = len(_HANGUL.findall(letters))
    kana = len(_KANA.findall(letters))
    han = len(_HAN.findall(letters))
    thai = len(_THAI.findall(letters))
    rest = _SCRIPTS.sub("", letters)
    # Letters of any other script; a numeral such as "²" or "Ⅻ" that _prepare kept is none.
    other = len(rest) if rest.isalpha() else sum(map(str.isalpha, rest))
    weighted = {"hangul": 2 * hangul, "cjk": 2 * (han + kana), "thai": thai, "other": other}
    total = sum(weighted.values())
    if total == 0:
        return None
    script = max(weighted, key=lambda k: weighted[k])
    share = round(weighted[script] / total, 4)
    if script == "other" or share <= 0.5:
        return None
    if script == "hangul":
        return ("ko", share)
    if script == "thai":
        return ("th", share)
    # Japanese text mixes kanji and kana; Chinese has no kana (a stray "の" in a slogan aside).
    return ("ja", share) if kana >= 0.1 * (han + kana) else ("zh", share)


def _decide(values: Sequence[ConfidenceValue]) -> tuple[str | None, float]:
    if not values:
        return (None, 0.0)
    scores = {_CODES[v.language]: v.value for v in values}
    top = max(scores, key=lambda k: (scores[k], k))
    group = _GROUPS.get(top, frozenset({top}))
    group_score = sum(scores.get(code, 0.0) for code in group)
    outside = max((s for code, s in scores.items() if code not in group), default=0.0)
    if group_score < MIN_CONFIDENCE or group_score < MIN_RATIO * outside:
        return (None, 0.0)
    return (top, round(scores[top], 4))


def _pre_decide(text: str) -> tuple[str | None, float] | str:
    """A final answer, or the prepared text lingua has to look at."""
    prepared = _prepare(text[:MAX_CHARS]) if text else ""
    letters = prepared.replace(" ", "")
    by_script = _by_script(letters)
    if by_script is not None:
        return by_script
    if len(letters) < MIN_LETTERS:
        return (None, 0.0)
    return prepared


def detect_language(text: str) -> tuple[str | None, float]:
    """The ISO 639-1 code of ``text`` and a confidence, or ``(None, 0.0)`` if unsure."""
    decided = _pre_decide(text)
    if not isinstance(decided, str):
        return decided
    return _decide(_get_detector().compute_language_confidence_values(decided))


def detect_languages(texts: Sequence[str]) -> list[tuple[str | None, float]]:
    """:func:`detect_language` for many texts, one result per text in the same order.

    Texts that need lingua go to its multi-threaded batch API in one call.
    """
    results: list[tuple[str | None, float]] = [(None, 0.0)] * len(texts)
    pending: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        decided = _pre_decide(text)
        if isinstance(decided, str):
            pending.append((i, decided))
        else:
            results[i] = decided
    if pending:
        detector = _get_detector()
        prepared = [p for _, p in pending]
        if len(prepared) == 1:
            batches = [detector.compute_language_confidence_values(prepared[0])]
        else:
            batches = detector.compute_language_confidence_values_in_parallel(prepared)
        for (i, _), values in zip(pending, batches, strict=True):
            results[i] = _decide(values)
    return results
