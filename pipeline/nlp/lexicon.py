"""``lexicon-1``: the low-resource baseline classifier (no trained model, no downloads).

Everything here is a rule a person can read; trained heads replace it later behind the same
:class:`~pipeline.nlp.base.Classifier` protocol. What it does, per item (title + text):

**Sentiment** comes from VADER (English only) with customer-care additions: word valences for
words VADER lacks or reads wrongly in this domain (``overcharged``, ``crashing``; ``joke`` and
``please`` are not praise in a complaint) and multi-word phrases VADER cannot see because it
scores single tokens ("never arrived", "charged twice", "doesn't work"). A phrase is rewritten
to one token (``never arrived`` -> ``cr_not_delivered``) before VADER runs, and that token
carries the valence. Label by VADER's compound ``c``: ``c >= 0.05`` positive, ``c <= -0.05``
negative, else neutral. ``sentiment_scores`` is a softmax over the logits

    positive: k*c      neutral: k*(2*t - |c|)      negative: -k*c      (t = 0.05, k = 15)

so the probabilities sum to 1, the largest one is the label (positive and neutral tie exactly
at c = t), neutral gets 0.69 at c = 0, and |c| >= 0.3 is near-certain.

**Complaint**: cues are patterns with weights (a strong cue like "never arrived" or "charged
twice" 0.6, a weak one like "refund" or "late" 0.35), in English and a few Malay/Indonesian,
Spanish and Chinese forms. With ``rule = min(1, sum of the weights of distinct cues)``,
``neg = max(0, -c)`` and ``pos = max(0, c)``::

    complaint_score = (1 - (1 - rule) * (1 - 0.6 * neg)) * (1 - 0.5 * pos)

and ``is_complaint`` is ``complaint_score >= 0.5``: one strong cue, two weak cues, or a weak
cue with clearly negative sentiment, unless the text is clearly positive.

**Urgency**: ``high`` for legal threats and safety hazards (always), and for churn intent,
public escalation or repeated contact unless the sentiment is positive; ``low`` for positive
non-complaints and empty text; ``normal`` otherwise.

**Topics**: taxonomy keywords (see ``config/taxonomy.yaml``); ``n`` distinct keywords of a topic
matched score ``1 - 0.5**n``, and every topic scoring at least 0.5 (one keyword) is kept.

**Entities** (offsets into ``item.text``, not the title), from
:class:`~pipeline.nlp.entities.EntityExtractor`: ``ORDER_ID`` (the identifier only, without
"order no." or "#"; also tracking numbers), ``TICKET``, ``MONEY``, ``EMAIL`` (the raw address,
as lexicon-1 always stored it) and ``PRODUCT`` (configured product names). No ``DATE``: the
baseline's entity set predates it, and a version's output should not drift.

**Language**: the item's own ``language`` if it has one, else :func:`detect_languages`.
``language_supported`` is false when the language is known and not English; the item is still
classified (VADER finds little in other languages, the multilingual cues still work).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from pipeline.items import Classification, Entity, Item, Sentiment, Urgency
from pipeline.nlp.entities import EntityExtractor
from pipeline.nlp.language import detect_languages
from pipeline.nlp.normalize import clean_text
from pipeline.nlp.taxonomy import Topic, load_taxonomy

__all__ = ["VERSION", "LexiconClassifier", "sentiment_probabilities"]

VERSION: Final = "lexicon-1"

POSITIVE_THRESHOLD: Final = 0.05
NEGATIVE_THRESHOLD: Final = -0.05
COMPLAINT_THRESHOLD: Final = 0.5
TOPIC_THRESHOLD: Final = 0.5
_SOFTMAX_K: Final = 15.0

ANALYSIS_MAX_CHARS: Final = 10_000
"""Only the head of a very long text is scored (VADER and the cues are linear, but why pay)."""
VADER_CHUNK_WORDS: Final = 100
"""VADER's cost grows with (words x sentiment words); longer texts are scored in chunks."""

_F = re.IGNORECASE
_ENTITY_LABELS: Final = ("ORDER_ID", "TICKET", "MONEY", "EMAIL", "PRODUCT")

# --- urgency cues ---------------------------------------------------------------------------
#
# Each pattern is ``\b(?:word alternatives)`` followed by the alternatives that need no word
# boundary (Chinese). Written as one alternation of ``\b...`` branches it would mean the same,
# but Python's regex engine then tries every branch at every position of the text; with the
# ``\b`` in front it tries them only where a word starts (measured 4-8x faster per pattern).

_LEGAL: Final = (
    r"\b(?:(?:lawyers?|attorneys?|solicitors?|lawsuit|legal\s+action|legal\s+advice"
    r"|small\s+claims|consumer\s+tribunal|tribunal|chargeback|charge\s+back|class\s+action)\b"
    r"|su(?:ing|ed)\b|sue\b(?=\s*(?:[.!?,]|$|you|them|your|the|this|for|over|if|unless))"
    r"|(?:to|in)\s+court\b|court\s+(?:case|action|order)\b"
    r"|(?:peguam|mahkamah|saman|tuntutan\s+mahkamah|abogad[oa]|demandar\w*|demanda)\b)"
    r"|律师|起诉|法院|消协|(?<!\d)12315(?!\d)"
)
_SAFETY: Final = (
    r"\b(?:(?:caught|catch|catching|set\s+on)\s+fire\b|fire\s+(?:hazard|risk)\b"
    r"|(?:burst\s+into|in)\s+flames\b|burn(?:s|ed|t|ing)?\b|smok(?:e|es|ing)\b"
    r"|spark(?:ed|ing)\b|explod(?:e|ed|es|ing)\b|explosion\b|melted\b|overheat\w*\b"
    r"|injur(?:y|ies|ed)\b|hurt\s+(?:my|me|him|her|our)\b|hospital(?:s|i[sz]ed)?\b"
    r"|allerg(?:y|ic|ies)\b|anaphyla\w*\b|chok(?:ed|ing)\b|poison(?:ed|ing)\b"
    r"|electric(?:al)?\s+shock\b|electrocut\w*\b"
    r"|(?:gave|giving|gives)\s+(?:me|him|her|us|my\s+\w+)\s+(?:an?\s+)?(?:electric\s+)?shock\b"
    r"|(?:terbakar|berasap|kebakaran|meletup|letupan|incendio|humo|quemadura|explot[óo])\b)"
    r"|着火|冒烟|爆炸|过敏|烧伤|触电"
)
_CHURN: Final = (
    r"\b(?:(?:cancel|close|closing|delete|deleting|terminate|terminating|end|ending)"
    r"\s+(?:my|our)\s+(?:account|subscription|membership|plan|contract|service)\b"
    r"|cancell?ing\s+(?:my|our)\s+(?:account|subscription|membership|plan|contract)\b"
    r"|switching\s+to\b|(?:going\s+to|will|gonna)\s+switch\b"
    r"|switch(?:ed)?\s+(?:to\s+)?(?:another|a\s+different|a\s+competitor|competitors?)\b"
    r"|moving\s+to\s+(?:a\s+)?competitor\b"
    r"|(?:take|taking)\s+my\s+business\s+elsewhere\b|never\s+(?:buying|ordering|using)\b"
    r"|done\s+with\s+(?:you|this\s+company)\b|leaving\s+(?:you|for)\b"
    r"|(?:tutup|batal(?:kan)?)\s+(?:akaun|akun|langganan)\b|berhenti\s+langgan\w*\b"
    r"|cancelar\s+mi\s+(?:cuenta|suscripci[óo]n)\b|darme\s+de\s+baja\b)|销户|注销账"
)
_ESCALATION: Final = (
    r"\b(?:(?:going|go|went|talk|talking|speak|speaking)\s+to\s+the\s+(?:press|media|news)\b"
    r"|(?:post|posting|share|sharing)\w*\s+(?:this\s+|it\s+)?everywhere\b|go(?:ing)?\s+viral\b"
    r"|tagging\b|regulators?\b|ombudsman\b|trading\s+standards\b"
    r"|better\s+business\s+bureau\b|bbb\b|consumer\s+(?:protection|affairs|council)\b"
    r"|kpdn\w*\b|viral\s+kan\b|viralkan\b|media\s+sosial\b)|曝光"
)
_REPEATED: Final = (
    r"\b(?:third|fourth|fifth|sixth|3rd|4th|5th|6th|nth|umpteenth)\s+time\b"
    r"|\bagain\s+and\s+again\b|\bover\s+and\s+over\b"
    r"|\b(?:emailed|e-mailed|called|messaged|contacted|phoned|written|wrote|chatted|dm'?e?d"
    r"|asked|complained|rang|reported)\b[^.!?\n]{0,30}?\b(?:\d+|two|three|four|five|six|several"
    r"|multiple|many|numerous|countless)\s+times\b"
    r"|\bstill\s+no\s+(?:answer|reply|response|update|resolution)\b"
    r"|\bfor\s+the\s+(?:\d+(?:st|nd|rd|th)|second|third|fourth|fifth)\s+time\b"
)

# --- sentiment: VADER additions ------------------------------------------------------------

# Word valences (VADER's scale, -4..4) that VADER lacks or that read wrong in customer care.
_WORD_VALENCES: Final[dict[str, float]] = {
    "overcharged": -2.3,
    "ripoff": -2.5,
    "scammed": -2.8,
    "scammers": -2.8,
    "unresponsive": -1.8,
    "ghosted": -1.8,
    "leaking": -1.5,
    "crashes": -1.5,
    "crashed": -1.5,
    "crashing": -1.8,
    "glitch": -1.3,
    "glitchy": -1.5,
    "buggy": -1.6,
    "laggy": -1.3,
    "late": -1.0,
    "slow": -0.8,
    "garbage": -2.0,
    "trash": -1.8,
    "smoking": -1.2,  # of an appliance, not a habit, in this domain
    "pouting": -2.0,  # VADER reads the angry-face emoji as "pouting face"
    "fixed": 1.2,
    "joke": -1.0,  # "what a joke" (VADER: +1.2)
    "please": 0.2,  # a request, not praise (VADER: +1.3)
    "help": 0.3,  # "please help" opens many complaints (VADER: +1.7)
    "urgent": -0.3,
}

# Phrases VADER cannot see (it scores one token at a time): (token, valence, pattern).
_NEG = r"(?:not|n't|nt|never)"
_PHRASES: Final[tuple[tuple[str, float, str], ...]] = (
    (
        "cr_not_delivered",
        -2.2,
        r"\bnever\s+(?:arrived|came|showed\s+up|turned\s+up|got\s+here|received|delivered)\b"
        r"|\b(?:has|have|did|does)\s*" + _NEG + r"\s+(?:yet\s+)?(?:arrived?|come|been\s+delivered"
        r"|received|shown\s+up)\b"
        r"|\bnot\s+(?:yet\s+)?(?:arrived|received|delivered)\b|\bstill\s+not\s+here\b",
    ),
    (
        "cr_still_waiting",
        -1.8,
        r"\bstill\s+(?:waiting|nothing|no\s+(?:sign|word|update|news|reply|response|answer)"
        r"|(?:have|has)\s*" + _NEG + r")\b|\byet\s+to\s+(?:receive|hear|get)\b",
    ),
    (
        "cr_no_response",
        -1.8,
        r"\bno\s+(?:reply|replies|response|answer|callback|call\s+back)\b"
        r"|\b(?:nobody|no\s+one|noone)\s+(?:answers|replies|responds|helps|picks\s+up|cares"
        r"|gets\s+back|(?:has\s+)?(?:answered|replied|responded|helped|called))\b"
        r"|\bnever\s+(?:replied|responded|answered|called\s+(?:me\s+)?back|got\s+back)\b"
        r"|\bhung\s+up\s+on\b",
    ),
    (
        "cr_no_refund",
        -2.0,
        r"\bno\s+refund\b|\bnot\s+(?:been\s+)?refunded\b"
        r"|\b(?:haven't|have\s+not|didn't|did\s+not|never)\s+(?:been\s+)?(?:get|got|gotten"
        r"|received?)\s+(?:a|my|the|any)\s+refund\b"
        r"|\brefund\s+(?:has\s*" + _NEG + r"|never|still\s+not)\b",
    ),
    (
        "cr_charged_twice",
        -2.3,
        r"\b(?:charged|billed)\s+(?:me\s+)?(?:twice|two\s+times|double|2x|again|three\s+times)\b"
        r"|\bdouble[-\s]?(?:charged|billed|charge)\b"
        r"|\bunauthori[sz]ed\s+(?:charge|payment|transaction|debit)s?\b",
    ),
    (
        "cr_not_working",
        -2.0,
        r"\b(?:doesn't|does\s+not|doesnt|don't|do\s+not|dont|didn't|did\s+not|won't|will\s+not"
        r"|wont|never|stopped|stops)\s+(?:work|works|working|turn(?:ing)?\s+on|start(?:ing)?"
        r"|load(?:ing)?|open(?:ing)?)\b"
        r"|\b(?:isn't|is\s+not|aren't|are\s+not|not)\s+(?:working|loading|turning\s+on|starting)\b"
        r"|\bkeeps?\s+(?:crashing|freezing|failing|breaking|disconnecting)\b"
        r"|\bdead\s+on\s+arrival\b",
    ),
    (
        "cr_bad_delivery",
        -2.0,
        r"\barrived\s+(?:broken|damaged|cracked|smashed|crushed|opened|late|dead)\b"
        r"|\bwrong\s+(?:item|items|order|size|colou?r|product|parcel|package)\b"
        r"|\bmissing\s+(?:item|items|parts?|pieces?)\b|\bnot\s+as\s+described\b"
        r"|\bf[ae]ll(?:ing)?\s+apart\b",
    ),
    (
        "cr_cannot",
        -1.6,
        r"\b(?:can't|cannot|can\s+not|cant|unable\s+to|couldn't|could\s+not)\s+(?:log\s*in"
        r"|sign\s*in|access|reset|check\s*out|pay|cancel|contact|reach|get\s+through"
        r"|get\s+hold)\b",
    ),
    (
        "cr_never_again",
        -2.5,
        r"\bnever\s+(?:again|buying|ordering|using|shopping)\b|\bwaste\s+of\s+(?:money|time)\b"
        r"|\brip(?:ped)?[-\s]off\b",
    ),
    ("cr_legal_threat", -2.5, _LEGAL),
    # VADER's "no" negates up to three words on: "No problem, thanks!" would read negative.
    ("cr_no_problem", 1.2, r"\bno\s+(?:problems?|worries|worry|issues?)\b"),
    (
        "cr_long_wait",
        -1.5,
        r"\bon\s+hold\s+for\b|\bwaited\s+(?:for\s+)?(?:hours|ages|days|weeks|months)\b"
        r"|\b(?:took|taking|takes)\s+forever\b",
    ),
)

# --- complaint cues: (name, weight, pattern) -------------------------------------------------

_STRONG, _MEDIUM, _WEAK = 0.6, 0.5, 0.35
_COMPLAINT_CUES: Final[tuple[tuple[str, float, str], ...]] = (
    # every negative VADER phrase is also a complaint cue; a long wait alone is a weak one
    *(
        (name, _WEAK if name == "cr_long_wait" else _STRONG, p)
        for name, valence, p in _PHRASES
        if valence < 0
    ),
    ("repeated_contact", _STRONG, _REPEATED),
    ("safety", _STRONG, _SAFETY),
    ("worst", _STRONG, r"\bworst\b|\bunacceptable\b|\bdisgusting\b|\bpathetic\b|\bscam\w*\b"),
    (
        "demand",
        _STRONG,
        r"\b(?:want|need|demand)\s+(?:my\s+money\s+back|a\s+refund|my\s+refund)\b"
        r"|\b(?:fix|sort)\s+(?:this|it)\s+(?:out|now|asap)\b|\bcomplain(?:t|ts|ing|ed)?\b",
    ),
    ("defect", _MEDIUM, r"\b(?:broken|damaged|defective|faulty|cracked|leaking|smoking)\b"),
    ("refund", _WEAK, r"\brefund\w*\b|\bmoney\s+back\b"),
    ("cancel", _WEAK, r"\bcancel\w*\b|\bunsubscribe\b"),
    ("late", _WEAK, r"\b(?:late|delayed|delay|lost|missing|stuck)\b|\bwhere\s+is\s+my\b"),
    (
        "negative_words",
        _WEAK,
        r"\b(?:terrible|horrible|awful|useless|rude|poor|ridiculous"
        r"|disappointed|disappointing|frustrat\w*|annoyed|fed\s+up|not\s+happy|unhappy"
        r"|problem|issue|error|crash\w*)\b",
    ),
    ("charged", _WEAK, r"\b(?:charged|overcharged|billed)\b"),
    # Malay / Indonesian
    (
        "ms_id",
        _STRONG,
        r"\b(?:belum|tak|tidak|x)\s+(?:sampai|terima|dapat|diterima)\b"
        r"|\b(?:rosak|rusak|penipu\w*|tipu|teruk|parah|kecewa|mengecewakan|hilang)\b"
        r"|\b(?:bayaran\s+balik|pengembalian\s+dana|duit\s+balik)\b",
    ),
    ("ms_id_weak", _WEAK, r"\b(?:lambat|lama\s+sangat|gagal|salah|komplain|aduan)\b"),
    # Spanish
    (
        "es",
        _STRONG,
        r"\bno\s+(?:ha\s+)?(?:llegado|lleg[óo]|funciona)\b|\bestafa\b|\bp[ée]sim[oa]\b"
        r"|\breembolso\b|\bcobraron\s+dos\s+veces\b|\b(?:roto|rota|defectuos[oa])\b",
    ),
    ("es_weak", _WEAK, r"\b(?:queja|reclamaci[óo]n|tarde|retraso|terrible|mal[oa]?)\b"),
    # Chinese (no word boundaries)
    ("zh", _STRONG, r"没收到|还没到|没到货|退款|投诉|坏了|差评|太差|骗子|垃圾|不能用|质量差|欺骗"),
    ("zh_weak", _WEAK, r"慢|等了|取消|问题"),
)

# --- helpers --------------------------------------------------------------------------------

_REPEATS = re.compile(r"(\S)\1{4,}")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_CJK_OR_THAI = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def sentiment_probabilities(compound: float) -> dict[str, float]:
    """Negative/neutral/positive probabilities from VADER's compound score (see module doc)."""
    c = max(-1.0, min(1.0, compound))
    logits = {
        Sentiment.NEGATIVE.value: -_SOFTMAX_K * c,
        Sentiment.NEUTRAL.value: _SOFTMAX_K * (2 * POSITIVE_THRESHOLD - abs(c)),
        Sentiment.POSITIVE.value: _SOFTMAX_K * c,
    }
    top = max(logits.values())
    exps = {label: math.exp(v - top) for label, v in logits.items()}
    total = sum(exps.values())
    return {label: v / total for label, v in exps.items()}


def _label(compound: float) -> Sentiment:
    if compound >= POSITIVE_THRESHOLD:
        return Sentiment.POSITIVE
    if compound <= NEGATIVE_THRESHOLD:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


_WORD = re.compile(r"\w+(?:'\w+)*")


class _KeywordIndex:
    """Which taxonomy keywords occur in a text, fast: word n-grams are dict look-ups.

    A keyword is a sequence of words (``"tracking number"``) matched against the text's words
    in order, ignoring case and the punctuation/spacing between them; the last word may carry a
    plural ``s``/``es``. Keywords in Chinese, Japanese, Korean or Thai characters match as
    substrings (those scripts do not separate words with spaces).
    """

    def __init__(self, topics: Iterable[Topic]) -> None:
        self._ngrams: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._substrings: list[tuple[str, str]] = []
        self._max_n = 0
        for topic in topics:
            for keyword in topic.keywords:
                folded = keyword.translate(_APOSTROPHES).casefold()
                if _CJK_OR_THAI.search(folded):
                    self._substrings.append((folded, topic.name))
                    continue
                words = tuple(_WORD.findall(folded))
                if words:
                    self._ngrams.setdefault(words, []).append((topic.name, folded))
                    self._max_n = max(self._max_n, len(words))

    def matches(self, folded: str) -> dict[str, set[str]]:
        """Topic name -> the distinct keywords of that topic found in ``folded`` text."""
        found: dict[str, set[str]] = {}
        words = _WORD.findall(folded)
        for i in range(len(words)):
            for n in range(1, min(self._max_n, len(words) - i) + 1):
                head, last = words[i : i + n - 1], words[i + n - 1]
                candidates = {last}
                if last.endswith("s"):
                    candidates.add(last[:-1])
                    if last.endswith("es"):
                        candidates.add(last[:-2])
                for candidate in candidates:
                    for topic, keyword in self._ngrams.get((*head, candidate), ()):
                        found.setdefault(topic, set()).add(keyword)
        for substring, topic in self._substrings:
            if substring in folded:
                found.setdefault(topic, set()).add(substring)
        return found


def _chunks(words: list[str], size: int) -> Iterable[list[str]]:
    """Consecutive runs of at most ``size`` words, cut after a sentence end where possible."""
    start = 0
    while start < len(words):
        end = min(len(words), start + size)
        if end < len(words):
            for i in range(end - 1, start + size // 2, -1):
                if words[i].endswith((".", "!", "?")):
                    end = i + 1
                    break
        yield words[start:end]
        start = end


def _primary(language: str | None) -> str | None:
    if not language:
        return None
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower() or None


class LexiconClassifier:
    """Rule- and lexicon-based classifier; see the module docstring for every rule."""

    version = VERSION

    def __init__(
        self, taxonomy: Sequence[Topic] | None = None, products: Sequence[str] = ()
    ) -> None:
        self.taxonomy: tuple[Topic, ...] = tuple(load_taxonomy() if taxonomy is None else taxonomy)
        self.products: tuple[str, ...] = tuple(products)
        # The rules are code, but topics and products are configuration: a changed taxonomy or
        # product list is a new model version, so stored items get classified again.
        settings = json.dumps(
            [[t.name, list(t.keywords)] for t in self.taxonomy] + [sorted(self.products)]
        )
        self.version = f"{VERSION}+{hashlib.sha256(settings.encode()).hexdigest()[:8]}"
        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update(_WORD_VALENCES)
        self._vader.lexicon.update({token: valence for token, valence, _ in _PHRASES})
        self._emoji = {ord(k): f" {v} " for k, v in self._vader.emojis.items() if len(k) == 1}
        self._phrases = [(re.compile(pattern, _F), token) for token, _, pattern in _PHRASES]
        # Cue and urgency patterns are lowercase and run on case-folded text (faster than
        # re.IGNORECASE); the VADER phrases keep the case, VADER reads CAPS as emphasis.
        self._cues = [(name, w, re.compile(p)) for name, w, p in _COMPLAINT_CUES]
        self._legal = re.compile(_LEGAL)
        self._safety = re.compile(_SAFETY)
        self._churn = re.compile(_CHURN)
        self._escalation = re.compile(_ESCALATION)
        self._repeated = re.compile(_REPEATED)
        self._topics = _KeywordIndex(self.taxonomy)
        self._entities = EntityExtractor(self.products, labels=_ENTITY_LABELS, reveal_pii=True)

    # -- the protocol --------------------------------------------------------------------

    def classify(self, items: Sequence[Item]) -> list[Classification]:
        """One classification per item, in order; never raises on odd text."""
        texts = [self._analysis_text(item) for item in items]
        missing = [i for i, item in enumerate(items) if not item.language]
        detected = detect_languages([texts[i] for i in missing])
        languages: list[str | None] = [item.language or None for item in items]
        for i, (code, _confidence) in zip(missing, detected, strict=True):
            languages[i] = code
        return [
            self._classify_one(item, text, language)
            for item, text, language in zip(items, texts, languages, strict=True)
        ]

    # -- the parts -----------------------------------------------------------------------

    @staticmethod
    def _analysis_text(item: Item) -> str:
        text = item.text if not item.title else f"{item.title}\n{item.text}"
        return clean_text(text[:ANALYSIS_MAX_CHARS]).translate(_APOSTROPHES)

    def compound(self, text: str) -> float:
        """VADER's compound score with the customer-care phrases applied.

        Runs of one character are cut to four ("!!!!!!!" -> "!!!!", VADER's own cap) and emoji
        are replaced by VADER's own descriptions ("pouting face"). A text of more
        than :data:`VADER_CHUNK_WORDS` words is scored in chunks (cut after a sentence end when
        there is one in the second half of a chunk) and the chunk scores are averaged, weighted
        by length: VADER is meant for sentences, and its cost is quadratic in long texts.
        """
        for pattern, token in self._phrases:
            text = pattern.sub(f" {token} ", text)
        text = _REPEATS.sub(r"\1\1\1\1", text)  # a wall of one emoji or "!" counts as four
        if not text.isascii():
            text = text.translate(self._emoji)
        words = text.split()
        if not words:
            return 0.0
        if len(words) <= VADER_CHUNK_WORDS:
            return float(self._vader.polarity_scores(" ".join(words))["compound"])
        total = weight = 0.0
        for chunk in _chunks(words, VADER_CHUNK_WORDS):
            total += len(chunk) * float(self._vader.polarity_scores(" ".join(chunk))["compound"])
            weight += len(chunk)
        return total / weight

    def complaint_score(self, text: str, compound: float) -> float:
        """The complaint score in [0, 1] for ``text`` with VADER compound ``compound``."""
        folded = text.casefold()
        rule = min(1.0, sum(w for _, w, p in self._cues if p.search(folded)))
        neg, pos = max(0.0, -compound), max(0.0, compound)
        score = (1.0 - (1.0 - rule) * (1.0 - 0.6 * neg)) * (1.0 - 0.5 * pos)
        return round(min(1.0, max(0.0, score)), 4)

    def urgency(self, text: str, sentiment: Sentiment, is_complaint: bool) -> Urgency:
        """High for legal/safety always; churn/escalation/repeat contact unless positive."""
        if not text.strip():
            return Urgency.LOW
        folded = text.casefold()
        if self._legal.search(folded) or self._safety.search(folded):
            return Urgency.HIGH
        if sentiment is not Sentiment.POSITIVE and (
            self._churn.search(folded)
            or self._escalation.search(folded)
            or self._repeated.search(folded)
        ):
            return Urgency.HIGH
        if sentiment is Sentiment.POSITIVE and not is_complaint:
            return Urgency.LOW
        return Urgency.NORMAL

    def topics(self, text: str) -> dict[str, float]:
        """Topic name -> score for every topic with a score of at least 0.5, best first."""
        scores: dict[str, float] = {}
        for name, keywords in self._topics.matches(text.translate(_APOSTROPHES).casefold()).items():
            score = round(1.0 - 0.5 ** len(keywords), 4)
            if score >= TOPIC_THRESHOLD:
                scores[name] = score
        return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))

    def entities(self, text: str) -> list[Entity]:
        """Order ids, tickets, amounts, e-mail addresses and product names, by position."""
        return self._entities.extract_one(text)

    def _classify_one(self, item: Item, text: str, language: str | None) -> Classification:
        compound = self.compound(text)
        sentiment = _label(compound)
        complaint = self.complaint_score(text, compound)
        is_complaint = complaint >= COMPLAINT_THRESHOLD
        primary = _primary(language)
        return Classification(
            model_version=self.version,
            sentiment=sentiment,
            sentiment_scores=sentiment_probabilities(compound),
            is_complaint=is_complaint,
            complaint_score=complaint,
            urgency=self.urgency(text, sentiment, is_complaint),
            topics=self.topics(text),
            entities=tuple(self.entities(item.text)),
            language=language,
            language_supported=primary is None or primary == "en",
        )
