"""Entities in customer text: order and ticket numbers, products, money, dates, PII kinds.

What an agent needs to act on a message without reading it twice: which order, which ticket,
which product, how much money, since when. Labels:

- ``ORDER_ID``: order numbers (``order 123-4567890``, ``Order#B99999``, ``#A12345``,
  ``订单号 12345``, ``訂單號``, ``pesanan saya 88123451``, ``Bestellnummer``, Tokopedia's
  ``INV/20261101/MPL/123456``; also after "invoice", "booking", "Rechnung", "factura",
  "tempahan", "发票", and airline or hotel codes with letters after "PNR", "booking ref",
  "confirmation code": ``PNR 6XK2LM``) and parcel tracking numbers (``PP-MY-1234567``,
  ``MY123456789SG`` with a valid UPU check digit, ``1Z...`` UPS, or any id after "tracking",
  "AWB", "resi", "rastreio", "Sendungsnummer", "运单号", "運單號"). The entity is the
  identifier only, without the "order no." or "#" (or "number is") in front of it.
- ``TICKET``: support tickets, case and claim references (``ticket #88231``, ``case no. 5512``,
  ``aduan 12345``, ``tiket saya CS-20391``, ``protocolo 2026112400123``, ``工单 98765``).
  The same reference words keep a number from being redacted as a phone number
  (:mod:`pipeline.nlp.pii`).
- ``PRODUCT``: the configured product names, case-insensitive, any spacing between the words
  of a multi-word name, also inside Chinese/Japanese/Korean text where there are no spaces
  (``我的HeatMax 3000坏了``).
- ``MONEY``: an amount with a currency before or after it (``$12.99``, ``RM 45``,
  ``Rp 150.000``, ``¥300``, ``12,50 €``, ``300元``).
- ``DATE``: dates and relative times: ``12/03``, ``2026-11-23``, ``March 3rd``, ``3 Mac``,
  ``yesterday``, ``3 days ago``, ``last week``, ``3 hari lepas``, ``semalam``, ``hace 3 días``,
  ``昨天``, ``3天前``, ``11月3日``; weekdays (``Saturday``, ``sabtu``, ``el lunes pasado``), and
  their short forms (``Sat``, ``sun``) only in a date's context (``Sat 14 Dec``, ``on sun at
  5pm``, ``Mon-Fri``), as they are also words ("I sat in the queue"). A score out of 5 or 10
  is no date ("amable, 10/10", "rated 4/5"; see :func:`_is_rating`).
- ``DURATION``: how long something took or has lasted, not when: ``47 mins``, ``3 hours``,
  ``2hrs``, ``an hour``, ``3 hari`` ("dah 3 hari tunggu"), ``两个星期``, ``3天``. With "ago",
  "lepas", "lalu", "hace" or 前 in front or after it is a point in time, a ``DATE``.
- ``EMAIL`` and ``PHONE``: found by :mod:`pipeline.nlp.pii`; their ``text`` is the redaction
  placeholder (``[email]``), never the address or number, unless the caller asks for raw
  values. Other PII (cards, IBANs, national ids, bank accounts) is never an entity, and any
  other entity that overlaps PII is dropped, so no personal data leaks out through an entity.

How: spaCy does the word-level part. One blank multi-language pipeline (``spacy.blank("xx")``,
see :func:`_pipeline`), built once per process, with an ``EntityRuler`` holding token patterns
for dates written in words ("three days ago", "dua minggu lepas", "el lunes pasado"); texts go
through ``nlp.pipe`` in batches, only those with a date word in them (a quick check that never
skips a match, :data:`_MAYBE_WORD_DATE`). Identifiers, money, numeric and CJK dates and product
names are regular expressions over the raw text, run only on text with a digit where they need
one: spaCy's tokenisers differ by language
("#A12345" is two tokens in English and one in Malay, "Order#B99999" is one token everywhere,
unspaced Chinese is one token in "xx"), and an entity that is part of a token cannot be a spaCy
span at all. Offsets are always into the text as given.

When two entities overlap, PII wins; otherwise the earlier one, then the longer one, then
TICKET before ORDER_ID before MONEY before DATE before DURATION before PRODUCT.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from pipeline.items import Entity
from pipeline.nlp.pii import find_pii

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

__all__ = ["LABELS", "PII_LABELS", "RULES_DIGEST", "EntityExtractor", "compile_products"]

LABELS: Final = ("ORDER_ID", "TICKET", "PRODUCT", "MONEY", "DATE", "DURATION", "EMAIL", "PHONE")
PII_LABELS: Final = {"email": "EMAIL", "phone": "PHONE"}
"""PII kinds that are also entities (as placeholders); the others are only redacted."""

_F = re.IGNORECASE
_CJK: Final = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# "A letter or digit that is not CJK": product names and words need this as a boundary, while
# a CJK character next to a Latin product name ("我的HeatMax") is not part of it.
_WORDCHAR = r"[^\W" + _CJK + r"]"

# --- identifiers -----------------------------------------------------------------------------

_ID_CORE = r"(?:[A-Z]{1,4}-)?[A-Z]{0,3}\d[\d-]{2,}\d[A-Z]{0,3}"
_MINE = r"(?:(?:saya|aku|ku|kami|anda)\s+)?"
_IS = r"(?:(?:is|was|adalah|ialah|es|era|ist|est)\s+)?"
"""Between the reference word and the id: "my order number is 12345678"."""
"""Indonesian and Malay put "my" after the noun: "pesanan saya 12345", "tiket saya CS-20391"."""
_ORDER_RE: Final = re.compile(
    r"(?<![\w&])#(?P<a>[A-Z]{0,3}\d[\d-]{3,}\d[A-Z]{0,3})(?![\w-])"
    r"|\b(?:order|orders|pesanan|pedido|commande|bestellung|bestellnummer|bestell-nr\.?"
    r"|auftragsnummer|encomenda|ordine|invoice|inv|booking|reservation|tempahan|reserva"
    r"|r[ée]servation|buchung|buchungsnummer|rechnung|rechnungsnummer|factura|fatura|facture"
    r"|faktur|invois)(?![A-Za-z])\s*"
    + _MINE
    + r"(?:no\.?|number|num|nr\.?|n[º°o]\.?|id|ref)?\s*"
    + _IS
    + r"[:#]?\s*(?P<b>"
    + _ID_CORE
    + r")(?![\w-])"
    r"|(?:订单|訂單|发票|發票)(?:号|號|編號|编号)?\s*[:\uff1a#]?\s*(?P<c>"
    + _ID_CORE
    + r")(?![\w-])"
    # airline and hotel booking codes have letters too ("PNR 6XK2LM"): after those words only
    r"|\b(?:pnr|booking\s+(?:ref(?:erence)?|code)|confirmation\s+(?:code|number|no\.?)"
    r"|kode\s+booking|localizador)\s*" + _IS + r"[:#]?\s*(?P<e>(?=[A-Z]*\d)[A-Z0-9]{5,8})(?![\w-])"
    # Tokopedia invoices, the order number Indonesian shoppers quote: INV/20261101/MPL/123456
    r"|(?<![\w/])(?P<d>INV/\d{8}/[A-Z]{2,6}/\d{6,12})(?![\w/])",
    _F,
)
_TRACKING_RE: Final = re.compile(
    r"(?:\b(?:tracking|track|awb|airway\s+bill|consignment|waybill|resi|no\.?\s*resi"
    r"|seguimiento|guía|rastreio|rastreamento|sendungsnummer|suivi)(?![A-Za-z])\s*"
    + _MINE
    + r"(?:no\.?|number|num|id|code|#)?\s*"
    + _IS
    + r"[:#]?\s*"
    r"|(?:运单号|快递单号|物流单号|運單號|快遞單號|物流單號)\s*[:\uff1a#]?\s*)"
    r"(?P<a>(?=[A-Z-]*\d)[A-Z0-9](?:[A-Z0-9]|-(?=[A-Z0-9])){5,34})(?![\w-])"
    r"|(?<![\w-])(?P<b>[A-Z]{2,4}-[A-Z]{2}-\d{6,14})(?![\w-])"  # PP-MY-1234567
    r"|(?<![\w-])(?P<c>1Z[0-9A-Z]{16})(?![\w-])",  # UPS
    _F,
)
_S10_RE: Final = re.compile(r"(?<![\w-])[A-Z]{2}\d{9}[A-Z]{2}(?![\w-])")
"""UPU S10 item ids (``MY123456789SG``): accepted when the check digit is right."""
_TICKET_RE: Final = re.compile(
    r"(?:\b(?:ticket|tickets|case|ref|reference|complaint|incident|request|claim|tiket|aduan|kes"
    r"|caso|reclamo|reclamaci[óo]n|solicitud|incidencia|protocolo|chamado|dossier"
    r"|ticketnummer|vorgangsnummer|fallnummer)(?![A-Za-z])\s*"
    + _MINE
    + r"(?:no\.?|number|num|nr\.?|n[º°o]\.?|id)?\s*"
    + _IS
    + r"[:#]?\s*#?"
    r"|(?:工单|投诉单|工单号|案例号|工單|客訴單)(?:号|號)?\s*[:\uff1a#]?\s*)"
    r"(?P<id>[A-Z]{0,4}-?\d[\d-]{2,}\d[A-Z]{0,3})(?![\w-])",
    _F,
)

# --- money -----------------------------------------------------------------------------------

_CURRENCY_PREFIX = (
    r"(?:US\$|S\$|A\$|C\$|HK\$|NT\$|R\$|RM|Rp\.?|USD|EUR|GBP|MYR|SGD|IDR|JPY|CNY|RMB|AUD|CAD|PHP"
    r"|THB|INR|HKD|[$€£¥₹₱฿₩])"
)
_CURRENCY_SUFFIX = (
    r"(?:USD|EUR|GBP|MYR|SGD|IDR|JPY|CNY|RMB|AUD|CAD|PHP|THB|INR|HKD|ringgit|rupiah|dollars?"
    r"|bucks|euros?|pounds?|pesos?|yuan|baht|yen|[€元块])"
)
_AMOUNT = r"\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MONEY_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])" + _CURRENCY_PREFIX + r"\s?(?:" + _AMOUNT + r")(?![\d])"
    r"|(?<![\w.,])(?:" + _AMOUNT + r")\s?" + _CURRENCY_SUFFIX + r"(?![A-Za-z])",
    _F,
)

# --- dates (the parts a regex does better than tokens) ---------------------------------------

_ZH_NUM = r"(?:\d+|[一二两三四五六七八九十半几]+)"
_DATE_RE: Final = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}-\d{1,2}-\d{1,2}"  # 2026-11-23
    r"|\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})"  # 23/11/2026, 23.11.26
    r"|(?P<dm>\d{1,2})/(?P<mm>\d{1,2})"  # 12/03 (checked below)
    r")(?![\w/.-]|\.\d)"
    # Chinese: 昨天, 上周, 3天前, 两个星期, 11月3日, 星期一
    r"|(?:大前天|前天|昨天|昨晚|今天|今早|今晚|明天|后天|上周|上个?星期|上个?月|这周|本周|去年"
    r"|" + _ZH_NUM + r"\s?(?:天|日|个月|個月|周|個星期|个星期|星期|小时|小時)(?:前|以前)"
    r"|" + _ZH_NUM + r"\s?日"
    r"|\d{1,2}月\d{1,2}[日号號]|\d{4}年\d{1,2}月(?:\d{1,2}[日号號])?"
    r"|(?:星期|周|礼拜)[一二三四五六日天])",
)

# --- durations (numbers with units; the word forms are spaCy patterns below) ------------------

_DURATION_RE: Final = re.compile(
    # 47mins, 2hrs, 1.5h, 30 min; the spaced English/Malay/Spanish word forms are token patterns.
    r"(?<![\w.,])\d+(?:[.,]\d)?(?:\s?(?:mins?|hrs?|secs?|wks?)|(?-i:h))(?![\w])"
    r"|(?<![\w.,])\d+(?:[.,]\d)?(?:minutes?|hours?|days?|weeks?|months?|jam|minit|menit|hari)"
    r"(?![\w])"
    # Chinese: 3天, 两个星期, 半小时, 3天了 (with 前 it is a date)
    r"|" + _ZH_NUM + r"\s?(?:天|个月|個月|周|個星期|个星期|星期|小时|小時|分钟|分鐘)(?!前|以前)",
    _F,
)

# --- dates in words: spaCy token patterns ----------------------------------------------------


def _words(text: str) -> list[str]:
    """Word lists are written as one string per language group: easier to read and extend."""
    return text.split()


_NUMBER_WORDS: Final = _words(
    "a an one two three four five six seven eight nine ten eleven twelve few couple several"
    " satu dua tiga empat lima enam tujuh lapan delapan sembilan sepuluh beberapa"
    " un una uno dos tres cuatro cinco seis siete ocho nueve diez unos unas varios"
)
_UNITS: Final = _words(
    "day days week weeks month months year years hour hours minute minutes mins hrs"
    " hari minggu bulan tahun jam minit menit"
    " día días dia dias semana semanas mes meses año años hora horas minutos"
)
_WEEKDAYS: Final = _words(
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs"
    " fri sat sun isnin selasa rabu khamis jumaat sabtu ahad senin kamis jumat minggu"
    " lunes martes miércoles miercoles jueves viernes sábado sabado domingo"
)
_SHORT_WEEKDAYS: Final = frozenset(_words("mon tue tues wed thu thur thurs fri sat sun"))
"""English abbreviations that are also ordinary words ("I sat in the queue", "the sun was out",
"wed", French "mon colis"): a date only in a date's context (:func:`_short_weekday_is_date`)."""
_MONTHS: Final = _words(
    "january february march april may june july august september october november december"
    " jan feb mar apr jun jul aug sep sept oct nov dec"
    " januari februari mac april mei jun julai ogos oktober disember maret juni juli agustus"
    " desember enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre"
    " noviembre diciembre"
)
_SINGLE_DAY_WORDS: Final = _words(
    "yesterday today tonight tomorrow semalam kelmarin kemarin semalem tadi esok besok"
    " ayer anteayer anoche hoy"
)
_ORDINAL = r"^\d{1,2}(?:st|nd|rd|th)?$"


def _date_patterns() -> list[dict[str, Any]]:
    """EntityRuler patterns for dates and durations written in words (en, ms/id, es); shared by
    languages. Where two overlap the longer wins, so "3 days ago" is one DATE, not a DURATION."""
    num: dict[str, Any] = {"LOWER": {"REGEX": r"^(?:\d+|" + "|".join(_NUMBER_WORDS) + r")$"}}
    unit: dict[str, Any] = {"LOWER": {"IN": _UNITS}}
    weekday: dict[str, Any] = {"LOWER": {"IN": _WEEKDAYS}}
    month: dict[str, Any] = {"LOWER": {"IN": _MONTHS}}
    day: dict[str, Any] = {"LOWER": {"REGEX": _ORDINAL}}
    period: dict[str, Any] = {"LOWER": {"IN": ["week", "month", "year", "weekend", "night"]}}
    ago: dict[str, Any] = {"LOWER": {"IN": ["ago", "lepas", "lalu", "back"]}}
    patterns: list[list[dict[str, Any]]] = [
        [{"LOWER": {"IN": _SINGLE_DAY_WORDS}}],
        [{"LOWER": "last"}, {"LOWER": "night"}],
        [
            {"LOWER": {"IN": ["hari", "minggu", "bulan"]}},
            {"LOWER": {"IN": ["ini", "lepas", "lalu"]}},
        ],
        [{"LOWER": {"IN": ["last", "this", "next", "past"]}}, period],
        [{"LOWER": {"IN": ["last", "this", "next", "on"]}}, weekday],
        [weekday],
        [{"LOWER": "the"}, {"LOWER": "other"}, {"LOWER": "day"}],
        # 3 days ago, two weeks ago, 3 hari lepas, 3 hari yang lalu
        [num, unit, ago],
        [num, unit, {"LOWER": "yang"}, {"LOWER": "lalu"}],
        # hace 3 días, hace una semana; el lunes pasado; la semana pasada
        [{"LOWER": "hace"}, num, unit],
        [{"LOWER": "hace"}, unit],
        [
            {"LOWER": {"IN": ["el", "la"]}},
            {"LOWER": {"IN": [*_WEEKDAYS, "semana", "mes"]}},
            {"LOWER": {"IN": ["pasado", "pasada"]}},
        ],
        # March 3rd, March 3, 2026 / 3 March, 3rd of March / 3 de marzo
        [month, day],
        [month, day, {"ORTH": ",", "OP": "?"}, {"LOWER": {"REGEX": r"^(?:19|20)\d\d$"}}],
        [day, month],
        [day, month, {"LOWER": {"REGEX": r"^(?:19|20)\d\d$"}}],
        [day, {"LOWER": "of"}, month],
        [day, {"LOWER": "de"}, month],
    ]
    durations: list[list[dict[str, Any]]] = [
        # 47 mins, an hour, 3 hari, tres días, half an hour
        [num, unit],
        [{"LOWER": "half"}, {"LOWER": {"IN": ["an", "a"]}}, {"LOWER": {"IN": ["hour", "day"]}}],
        [{"LOWER": "setengah"}, {"LOWER": {"IN": ["jam", "hari"]}}],
        [{"LOWER": "media"}, {"LOWER": "hora"}],
    ]
    # half an hour ago, setengah jam lalu, hace media hora: a point in time again
    patterns += [[*p, ago] for p in durations[1:3]] + [[{"LOWER": "hace"}, *durations[3]]]
    return [{"label": "DATE", "pattern": p} for p in patterns] + [
        {"label": "DURATION", "pattern": p} for p in durations
    ]


# --- products ------------------------------------------------------------------------------


def compile_products(products: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for all product names, longest first; ``None`` if none.

    Words of a name may be separated by any whitespace ("HeatMax  3000"). A name must not be
    glued to other Latin letters or digits ("Blendr" is not found in "Blendrs"), but may touch
    CJK characters, which have no spaces between words.
    """
    names = sorted({" ".join(p.split()) for p in products if p.strip()}, key=lambda p: (-len(p), p))
    if not names:
        return None
    alternatives = "|".join(_name_pattern(n) for n in names)
    return re.compile(r"(?<!" + _WORDCHAR + r")(?:" + alternatives + r")(?!" + _WORDCHAR + r")", _F)


def _name_pattern(name: str) -> str:
    # Between two words of a name: one or more spaces in Latin text; optional where a word
    # starts or ends in CJK, which is written without spaces.
    words = name.split()
    out = [re.escape(words[0])]
    for prev, word in itertools.pairwise(words):
        cjk_edge = re.search("[" + _CJK + "]", prev[-1] + word[0]) is not None
        out.append((r"\s*" if cjk_edge else r"\s+") + re.escape(word))
    return "".join(out)


# --- helpers -------------------------------------------------------------------------------


def _s10_ok(value: str) -> bool:
    digits = [int(d) for d in value[2:10]]
    check = int(value[10])
    total = sum(d * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    expected = 11 - total % 11
    expected = 5 if expected == 11 else 0 if expected == 10 else expected
    return check == expected


def _anchor_words(patterns: Sequence[dict[str, Any]]) -> frozenset[str]:
    """Words of which every date pattern needs at least one as a whole token.

    For each pattern one of its required (not optional) token specs with a fixed word list is
    picked, preferring one whose words are already anchors, else the one adding the fewest new
    words (the later on a tie: "night" rather than "last"), so common words such as "the" or
    "a" stay out and the pre-check stays selective.
    """
    anchors: set[str] = set()

    def fixed(pattern: list[dict[str, Any]]) -> list[set[str]]:
        out: list[set[str]] = []
        for spec in pattern:
            lower = spec.get("LOWER")
            if "OP" in spec:
                continue
            if isinstance(lower, str):
                out.append({lower})
            elif isinstance(lower, dict) and "IN" in lower:
                out.append(set(lower["IN"]))
        return out

    for specs in sorted((fixed(p["pattern"]) for p in patterns), key=len):
        if not specs:
            raise ValueError("a date pattern without a fixed word cannot be pre-checked")
        if any(words <= anchors for words in specs):
            continue
        anchors |= min(reversed(specs), key=lambda words: len(words - anchors))
    return frozenset(anchors)


_WORD_LABELS: Final = frozenset({"DATE", "DURATION"})
"""Labels the spaCy EntityRuler finds (words); the others are regular expressions."""
_WORD_DATE_ANCHORS: Final = _anchor_words(_date_patterns())
_MAYBE_WORD_DATE: Final = re.compile(
    r"(?<![^\W\d_])(?:"
    + "|".join(re.escape(w) for w in sorted(_WORD_DATE_ANCHORS, key=lambda w: (-len(w), w)))
    + r")(?![^\W\d_])"
)
"""Run over ``text.lower()``: no match means the date EntityRuler cannot match either, so spaCy
is skipped (most texts). An anchor must be a whole token, and spaCy's tokenizer only splits a
word from a neighbouring non-letter (space, punctuation, symbol, digit), which this allows on
both sides: checked with every Unicode letter glued to either side of a date word, and in
``tests/unit/test_entities.py``. A token's ``LOWER`` is ``str.lower`` of its text, a substring
of ``text.lower()`` for these words."""

_DIGIT: Final = re.compile(r"\d")
"""Every identifier, amount and numeric date pattern needs a digit: without one they are skipped."""

_nlp: Language | None = None
_nlp_lock = threading.Lock()


def _pipeline() -> Language:
    """The blank "xx" pipeline + date EntityRuler, built once per process, for every language.

    Only the date EntityRuler runs on spaCy tokens (identifiers, money and products are regexes
    over the text), and the generic "xx" tokenizer splits its patterns the same way as the
    language-specific ones. Those load large tokenizer-exception tables the first time a
    language is seen (measured 1-3.5 s each: French 3.3 s), which a mixed-language stream pays
    again and again for nothing. Chinese too: spaCy's blank Chinese tokenizer (its default
    "char" segmenter) cuts text into single characters, so a date in words inside Chinese text
    ("我的订单 3 days ago 还没到") could never match; Chinese dates are regexes anyway.
    """
    global _nlp
    if _nlp is None:
        with _nlp_lock:
            if _nlp is None:
                import spacy

                nlp = spacy.blank("xx")
                ruler = nlp.add_pipe("entity_ruler", config={"validate": True})
                ruler.add_patterns(_date_patterns())  # type: ignore[attr-defined]
                _nlp = nlp
    return _nlp


class EntityExtractor:
    """Finds :data:`LABELS` entities in many texts at once (see the module docstring).

    ``labels`` restricts the output to some labels; ``reveal_pii`` puts the raw e-mail address
    or phone number into ``Entity.text`` instead of ``[email]``/``[phone]`` (for code that
    already holds the raw text and needs the value, never for display).
    """

    def __init__(
        self,
        products: Sequence[str] = (),
        *,
        labels: Iterable[str] | None = None,
        reveal_pii: bool = False,
    ) -> None:
        self.labels = frozenset(LABELS if labels is None else labels)
        unknown = sorted(self.labels - set(LABELS))
        if unknown:
            raise ValueError(f"unknown entity labels {unknown}; valid: {', '.join(LABELS)}")
        self.reveal_pii = reveal_pii
        self._products = compile_products(products)

    def extract(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[list[Entity]]:
        """Entities per text, in text order. Never raises on odd text.

        ``languages`` (ISO 639-1 or None, one per text) is accepted for callers that have it;
        every pattern works across languages, so it changes nothing (see :func:`_pipeline`).
        """
        if languages is not None and len(languages) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(languages)} languages")
        word_dates: list[list[Entity]] = [[] for _ in texts]
        if self.labels & _WORD_LABELS:
            indexes = [i for i, t in enumerate(texts) if t and _MAYBE_WORD_DATE.search(t.lower())]
            if indexes:
                docs = _pipeline().pipe((texts[i] for i in indexes), batch_size=256)
                for i, doc in zip(indexes, docs, strict=True):
                    word_dates[i] = [
                        Entity(e.label_, e.text, e.start_char, e.end_char)
                        for e in doc.ents
                        if e.label_ in self.labels and _weekday_context_ok(doc, e)
                    ]
        return [
            self._extract_one(text, dates) for text, dates in zip(texts, word_dates, strict=True)
        ]

    def extract_one(self, text: str, language: str | None = None) -> list[Entity]:
        """:meth:`extract` for a single text."""
        return self.extract([text], [language])[0]

    def _extract_one(self, text: str, word_dates: list[Entity]) -> list[Entity]:
        if not text:
            return []
        pii = find_pii(text)
        found: list[Entity] = []
        want = self.labels
        digits = _DIGIT.search(text) is not None
        if "ORDER_ID" in want and digits:
            for m in _ORDER_RE.finditer(text):
                group = m.lastgroup or "a"
                found.append(Entity("ORDER_ID", m.group(group), m.start(group), m.end(group)))
            for m in _TRACKING_RE.finditer(text):
                group = m.lastgroup or "a"
                found.append(Entity("ORDER_ID", m.group(group), m.start(group), m.end(group)))
            for m in _S10_RE.finditer(text):
                if _s10_ok(m.group()):
                    found.append(Entity("ORDER_ID", m.group(), m.start(), m.end()))
        if "TICKET" in want and digits:
            for m in _TICKET_RE.finditer(text):
                found.append(Entity("TICKET", m.group("id"), m.start("id"), m.end("id")))
        if "MONEY" in want and digits:
            for m in _MONEY_RE.finditer(text):
                found.append(Entity("MONEY", m.group(), m.start(), m.end()))
        found.extend(word_dates)
        if "DATE" in want:
            # Numeric dates need a digit, the Chinese ones CJK characters (not ASCII).
            for m in _DATE_RE.finditer(text) if digits or not text.isascii() else ():
                if m.group("dm") is not None and (
                    not _day_month_ok(m.group("dm"), m.group("mm")) or _is_rating(text, m)
                ):
                    continue
                found.append(Entity("DATE", m.group(), m.start(), m.end()))
        if "DURATION" in want:
            for m in _DURATION_RE.finditer(text) if digits or not text.isascii() else ():
                found.append(Entity("DURATION", m.group(), m.start(), m.end()))
        if "PRODUCT" in want and self._products is not None:
            for m in self._products.finditer(text):
                found.append(Entity("PRODUCT", m.group(), m.start(), m.end()))
        return _resolve(text, found, pii, want, reveal=self.reveal_pii)


# --- weekday abbreviations: a date only in a date's context ----------------------------------

_STRONG_BEFORE: Final = frozenset({"last", "next"})
_WEAK_BEFORE: Final = frozenset({"on", "this", "every", "each", "a", "until", "till"})
_RANGE_JOINS: Final = frozenset({"-", "\u2013", "\u2014", "/", "&", "to", "till", "until", "thru"})
_LIST_JOINS: Final = frozenset({",", "and", "or"})
_TIME_PREPOSITIONS: Final = frozenset({"at", "@", "from", "before", "after", "around", "by"})
_DAY_PARTS: Final = frozenset({"morning", "afternoon", "evening", "night", "noon", "midday"})
_MONTH_WORDS: Final = frozenset(_MONTHS)
_WEEKDAY_WORDS: Final = frozenset(_WEEKDAYS)
_DAY_NUMBER: Final = re.compile(r"^(?:0?[1-9]|[12]\d|3[01])$")
_ORDINAL_DAY: Final = re.compile(r"^(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)$")
_NUMERIC_DATE: Final = re.compile(r"^\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\.?$")
_CLOCK: Final = re.compile(r"^\d{1,2}(?:(?:[:.]\d{2})?(?:am|pm|a\.m\.|p\.m\.)|:\d{2})$")
_HOUR: Final = re.compile(r"^(?:[01]?\d|2[0-4])$")


def _weekday_context_ok(doc: Doc, ent: Span) -> bool:
    """Keep a word-date entity unless it rests on a weekday abbreviation out of context.

    Only the entities that are an abbreviation alone, or "on"/"this" + an abbreviation, are
    checked; the other patterns with an abbreviation carry their own context ("last sat",
    "el sat pasado"). Full weekday names always count: "Saturday" is not an ordinary word.
    """
    tokens = list(ent)
    if tokens[-1].lower_ not in _SHORT_WEEKDAYS:
        return True
    if len(tokens) > 1 and tokens[0].lower_ not in _WEAK_BEFORE:
        return True
    return _short_weekday_is_date(doc, tokens[-1].i)


def _short_weekday_is_date(doc: Doc, i: int) -> bool:
    """Is the abbreviation ``doc[i]`` ("sat", "Sun", "wed"...) a weekday here?

    The rule, in order:

    1. "last" or "next" before it: "last sat", "next Wed" (these words rarely precede the
       ordinary words "sat", "sun", "wed" or French "mon").
    2. A date or a time right after it (a comma between is fine): "Sat 14 Dec", "Sun, Dec 14",
       "sat 14th", "Wed 14/12", "sun 5pm", "Sat 10:30", "sun at 5pm", "sat morning". People
       write an abbreviation to qualify a date or a time; "I sat 14 hours" is not one ("14"
       is not followed by a month), nor "I sat at 5 desks" (a bare hour must end the phrase).
    3. Another weekday next to it in a range or list: "Mon-Fri", "sat/sun", "mon to fri";
       across "and", "or" or a comma only if one of the two is capitalised or a full name
       ("Sat and Sun", not "the sun and sat down").
    4. "on", "this", "every", "each", "a", "until" or "till" before it, and it is capitalised
       ("on Sat", "this Sun", "on a Sat,"), or it ends the phrase ("see you on sat.", "until
       sun"): "on sun loungers", "on sat nav" and "this sun is brutal" stay words.

    Capitalisation alone is not enough: every sentence starts with a capital ("Sun was out").
    """
    tok = doc[i]
    prev = doc[i - 1] if i > 0 else None
    if prev is not None and prev.lower_ in _STRONG_BEFORE:
        return True
    if _date_or_time_at(doc, i + 1):
        return True
    if _weekday_neighbour(doc, i, -1) or _weekday_neighbour(doc, i, 1):
        return True
    if prev is not None and prev.lower_ in _WEAK_BEFORE:
        return tok.text[:1].isupper() or _phrase_ends(doc, i + 1)
    return False


def _at(doc: Doc, i: int) -> Token | None:
    return doc[i] if 0 <= i < len(doc) else None


def _phrase_ends(doc: Doc, i: int) -> bool:
    """Nothing word-like at ``doc[i]``: the end of the text or punctuation."""
    tok = _at(doc, i)
    return tok is None or tok.is_punct


def _date_or_time_at(doc: Doc, i: int) -> bool:
    """A date or a time starts at ``doc[i]`` (after an optional comma)."""
    tok = _at(doc, i)
    if tok is not None and tok.text == ",":
        i += 1
        tok = _at(doc, i)
    if tok is None:
        return False
    word = tok.lower_
    after = _at(doc, i + 1)
    after_word = after.lower_ if after is not None else ""
    if _ORDINAL_DAY.match(word) or _NUMERIC_DATE.match(word) or _CLOCK.match(word):
        return True  # 14th, 14/12, 2026-12-14, 5pm, 10:30
    if word in _DAY_PARTS:
        return True  # sat morning
    if _DAY_NUMBER.match(word) and after_word in _MONTH_WORDS:
        return True  # 14 Dec
    if word in _MONTH_WORDS and (_DAY_NUMBER.match(after_word) or _ORDINAL_DAY.match(after_word)):
        return True  # Dec 14, Dec 14th
    if _HOUR.match(word) and (after_word in ("am", "pm", "a.m.", "p.m.")):
        return True  # 5 pm
    if word in _TIME_PREPOSITIONS and after is not None:
        if _CLOCK.match(after_word) or after_word in ("noon", "midday"):
            return True  # at 5pm, at noon
        if _HOUR.match(after_word):
            # "at 5" is a time where the phrase ends there or "pm" follows; "at 5 desks" is not
            nxt = _at(doc, i + 2)
            return nxt is None or nxt.is_punct or nxt.lower_ in ("am", "pm", "a.m.", "p.m.")
    return False


def _weekday_neighbour(doc: Doc, i: int, step: int) -> bool:
    """Another weekday one join away from ``doc[i]`` in direction ``step`` (see rule 3)."""
    join = _at(doc, i + step)
    other = _at(doc, i + 2 * step)
    if join is None or other is None or other.lower_ not in _WEEKDAY_WORDS:
        return False
    if join.lower_ in _RANGE_JOINS:
        return True
    if join.lower_ in _LIST_JOINS:
        return (
            other.lower_ not in _SHORT_WEEKDAYS
            or doc[i].text[:1].isupper()
            or other.text[:1].isupper()
        )
    return False


def _day_month_ok(first: str, second: str) -> bool:
    """``12/03`` is a date when one part can be a month and both can be a day; not ``24/7``."""
    a, b = int(first), int(second)
    if (a, b) == (24, 7):
        return False
    return 1 <= a <= 31 and 1 <= b <= 31 and (a <= 12 or b <= 12)


_RATING_BEFORE: Final = re.compile(
    r"(?:\b(?:rate|rated|rating|score|scored|give|gave|giving|kasih|bagi|beri|nilai|doy"
    r"|nota|puntuaci[óo]n)\s*(?:it|this|them|you|u|ini)?\s*:?\s*)$",
    re.IGNORECASE,
)
_RATING_AFTER: Final = re.compile(
    r"\s*(?:stars?\b|bintang\b|estrellas?\b|would\b|will\b|recommend|highly\b|⭐|★"
    r"|[^\w\s]*\s*$)",
    re.IGNORECASE,
)
_DATE_BEFORE: Final = re.compile(
    r"\b(?:on|by|since|until|till|from|before|after|due|dated|tgl|tanggal|pada|sejak|el|desde"
    r"|hasta|le|am|bis|seit|ordered|placed|paid|bought|purchased|received|shipped|sent|booked)\s*$",
    re.IGNORECASE,
)


def _is_rating(text: str, m: re.Match[str]) -> bool:
    """``10/10``, ``4/5`` as a score: out of 5 or 10, after a rating word ("rated 4/5",
    "kasih 5/5") or followed by stars, "would recommend" or the end of the text ("amable,
    10/10"), and not after a date word or a verb dates follow ("delivered on 10/10",
    "ordered 3/5")."""
    if m.group("mm") not in ("5", "10") or int(m.group("dm")) > int(m.group("mm")):
        return False
    before = text[max(0, m.start() - 20) : m.start()]
    if _RATING_BEFORE.search(before):
        return True
    return not _DATE_BEFORE.search(before) and bool(_RATING_AFTER.match(text, m.end()))


_PRIORITY: Final = {"TICKET": 0, "ORDER_ID": 1, "MONEY": 2, "DATE": 3, "DURATION": 4, "PRODUCT": 5}
"""Equal spans: "ticket #88231" is a ticket although "#88231" alone reads as an order."""


def _resolve(
    text: str,
    found: list[Entity],
    pii: list[tuple[str, int, int]],
    want: frozenset[str],
    *,
    reveal: bool,
) -> list[Entity]:
    """PII first; then earlier, then longer entities win; nothing overlaps personal data."""
    kept: list[Entity] = []
    for kind, start, end in pii:
        label = PII_LABELS.get(kind)
        if label in want:
            kept.append(Entity(label, text[start:end] if reveal else f"[{kind}]", start, end))
    taken = [(s, e) for _, s, e in pii]
    found.sort(key=lambda e: (e.start, -(e.end - e.start), _PRIORITY.get(e.label, 9)))
    for entity in found:
        if any(entity.start < e and s < entity.end for s, e in taken):
            continue
        kept.append(entity)
        taken.append((entity.start, entity.end))
    kept.sort(key=lambda e: (e.start, e.end, e.label))
    return kept


def _rules_digest() -> str:
    rules = [
        LABELS,
        [r.pattern for r in (_ORDER_RE, _TRACKING_RE, _TICKET_RE, _S10_RE, _MONEY_RE)],
        [r.pattern for r in (_DATE_RE, _DURATION_RE)],
        _date_patterns(),
        sorted(_PRIORITY.items()),
    ]
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:8]


RULES_DIGEST: Final = _rules_digest()
"""The entity rules in one digest: part of the classifiers' model version, so a rule that finds
something new (durations, say) re-classifies the items it would change when they are seen
again."""
