"""Text clean-up and the cross-post fingerprint.

``clean_text`` is what every later stage sees: one Unicode form, no control characters, no
broken surrogates, single spaces. It never raises, whatever a collector hands it.

``fingerprint`` is for dedupe across sources: the same complaint pasted to three platforms with
different links, @mentions, capitalisation or punctuation gets one fingerprint. Text too short to
call a cross-post ("thanks!", "ok") gets ``""``, which means "do not dedupe on this".
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["FINGERPRINT_MIN_CHARS", "clean_text", "fingerprint"]

FINGERPRINT_MIN_CHARS = 12
"""Meaningful characters (letters and digits; CJK count double) a text needs for a fingerprint."""

_REPLACEMENT = "\ufffd"

# Invisible characters that are noise rather than content: zero-width space, word joiner, BOM,
# soft hyphen, and the bidi embedding/override/isolate controls (a known spoofing vector).
# ZWJ/ZWNJ (U+200C/U+200D) are kept: emoji sequences and several scripts need them.
_DROP = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # control characters (category Cc) except \t and \n
    "\u200b\u2060\ufeff\u00ad"  # zero-width space, word joiner, BOM, soft hyphen
    "\u202a-\u202e\u2066-\u2069]"  # bidi embeddings, overrides and isolates
)
_NONCHARACTERS = re.compile(
    "[\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe"
    "\U0003ffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)
_SPACES = re.compile(r"[^\S\n\t]+")  # horizontal whitespace except tabs (NBSP, thin space ...)
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
_MANY_NEWLINES = re.compile(r"\n{3,}")

_SURROGATE = re.compile("[\ud800-\udfff]")

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# @user, and the fediverse's @user@instance.example (one mention, not a mention plus a domain).
_MENTION = re.compile(r"(?<![\w@])@\w+(?:@[\w-]+(?:\.[\w-]+)+)?")


def _repair_surrogates(text: str) -> str:
    """Join surrogate pairs that arrived as two code points; replace lone ones with U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """Return ``text`` in NFC with control/invisible characters dropped and spaces collapsed.

    - lone surrogates and Unicode noncharacters become U+FFFD;
    - ``\\r\\n`` and ``\\r`` become ``\\n``; other control characters are dropped (``\\n`` and
      ``\\t`` are kept), as are zero-width spaces, BOMs, soft hyphens and bidi overrides;
    - runs of horizontal spaces (including NBSP) become one space, spaces around line breaks
      go, three or more line breaks become two; the result is stripped.

    Never raises: a non-string is converted with ``str()`` (bytes are decoded as UTF-8).
    """
    if not isinstance(text, str):
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", "replace")
        else:
            try:
                text = str(text)
            except Exception:
                return ""
    if not text:
        return ""
    text = _repair_surrogates(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Most text is ASCII, which is NFC and has no noncharacters, and once the control
    # characters are gone its only horizontal space is " ": those steps are skipped for it.
    ascii_only = text.isascii()
    if not ascii_only:
        text = unicodedata.normalize("NFC", text)
    text = _DROP.sub("", text)
    if not ascii_only:
        text = _NONCHARACTERS.sub(_REPLACEMENT, text)
    if not ascii_only or "  " in text:
        text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _SPACE_AROUND_NEWLINE.sub("\n", text)
        text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def _meaningful(text: str) -> str:
    """Letters, digits and combining marks only, after removing links and @mentions."""
    text = unicodedata.normalize("NFKC", clean_text(text)).casefold()
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    # '#' of a hashtag is punctuation and goes with the rest; the word itself stays.
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LNM")


def _weight(text: str) -> int:
    """Length where East Asian wide characters count double (one Han char ~ one short word)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fingerprint(text: str) -> str:
    """A short hex digest that is equal for cross-posts of the same text.

    The text is NFKC-normalised and case-folded; URLs and @mentions are removed, hashtag markers
    dropped (the word stays), and everything that is not a letter, digit or combining mark
    (punctuation, emoji, whitespace) is ignored. Returns the first 20 hex digits of the SHA-1 of
    what is left, or ``""`` when fewer than :data:`FINGERPRINT_MIN_CHARS` meaningful characters
    remain (too short to call two posts the same post).
    """
    core = _meaningful(text)
    if _weight(core) < FINGERPRINT_MIN_CHARS:
        return ""
    return hashlib.sha1(core.encode("utf-8"), usedforsecurity=False).hexdigest()[:20]
