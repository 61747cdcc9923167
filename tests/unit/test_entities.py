"""Entity extraction (spaCy blank pipelines + regular expressions) on multilingual text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.items import Entity
from pipeline.nlp.entities import LABELS, EntityExtractor

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "nlp_b" / "entity_cases.yaml").read_text("utf-8")
)["cases"]
PRODUCTS = ["HeatMax 3000", "Blendr Pro", "小米手环"]


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(PRODUCTS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["text"][:40] or "empty")
def test_cases(extractor: EntityExtractor, case: dict[str, Any]) -> None:
    [found] = extractor.extract([case["text"]], [case["language"]])
    assert [[e.label, e.text] for e in found] == case["expect"]


def test_batch_keeps_order_and_offsets(extractor: EntityExtractor) -> None:
    texts = [c["text"] for c in CASES]
    languages = [c["language"] for c in CASES]
    batch = extractor.extract(texts, languages)
    assert batch == [
        extractor.extract_one(t, lang) for t, lang in zip(texts, languages, strict=True)
    ]
    for text, entities in zip(texts, batch, strict=True):
        for e in entities:
            assert e.label in LABELS
            if e.label not in ("EMAIL", "PHONE"):
                assert text[e.start : e.end] == e.text
        assert entities == sorted(entities, key=lambda e: (e.start, e.end, e.label))


def test_pii_never_surfaces(extractor: EntityExtractor) -> None:
    text = "mail me at jane@example.org, IC 900101-14-5678, acc no 1234567890"
    [found] = extractor.extract([text], ["en"])
    assert Entity("EMAIL", "[email]", 11, 27) in found
    assert all("jane" not in e.text and "5678" not in e.text for e in found)
    raw = EntityExtractor(reveal_pii=True).extract_one(text, "en")
    assert Entity("EMAIL", "jane@example.org", 11, 27) in raw


def test_label_filter_and_unknown_label() -> None:
    only_money = EntityExtractor(PRODUCTS, labels=["MONEY"])
    assert [e.label for e in only_money.extract_one("HeatMax 3000 cost RM 45 yesterday")] == [
        "MONEY"
    ]
    with pytest.raises(ValueError, match="unknown entity labels"):
        EntityExtractor(labels=["PERSON"])


def test_unsupported_and_missing_languages_fall_back(extractor: EntityExtractor) -> None:
    # ja/ko/th need extra tokenizer packages: the "xx" pipeline is used instead, no error.
    texts = ["昨天 order #A12345", "어제 order #A12345", "order #A12345 yesterday"]
    for entities in extractor.extract(texts, ["ja", "ko", None]):
        assert [e.text for e in entities if e.label == "ORDER_ID"] == ["A12345"]


def test_mismatched_lengths_are_refused(extractor: EntityExtractor) -> None:
    with pytest.raises(ValueError, match="2 texts but 1 languages"):
        extractor.extract(["a", "b"], ["en"])


def test_long_text_is_fine(extractor: EntityExtractor) -> None:
    text = ("the blender broke. " * 5000) + "order #A12345"
    [found] = extractor.extract([text], ["en"])
    assert found[-1] == Entity("ORDER_ID", "A12345", len(text) - 6, len(text))


# --- the pre-checks that skip spaCy and the regexes must never change a result -------------

_NEIGHBOURS = (
    " ",
    "",
    "\n",
    ".",
    ",",
    "(",
    ")",
    "-",
    "/",
    "'",
    '"',
    "#",
    "3",
    "x",
    "É",
    "ß",
    "ж",
    "我",
    "ก",
    "\u0301",  # a combining accent
    "\u00a0",
    "²",
    "😡",
)


def _date_word_texts() -> list[str]:
    """Every date word the patterns use, in text, capitalised, and glued to many neighbours."""
    from pipeline.nlp import entities

    words = sorted(entities._WORD_DATE_ANCHORS | {"ago", "lalu", "pasado", "de", "of", "the"})
    texts = []
    for i, word in enumerate(words):
        before = _NEIGHBOURS[i % len(_NEIGHBOURS)]
        after = _NEIGHBOURS[(i * 7 + 3) % len(_NEIGHBOURS)]
        texts += [
            f"it was 3 {word} ago",
            f"{before}{word}{after}",
            f"since{before}{word.upper()}{after}3rd 2026 please",
            f"hace 2 {word.title()}, el {word} pasado, 3rd of {word}",
        ]
    return texts


def test_pre_checks_change_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.nlp import entities

    texts = [c["text"] for c in CASES] + _date_word_texts()
    for code in (None, "en", "ms", "es", "zh"):
        extractor = EntityExtractor(PRODUCTS)
        fast = extractor.extract(texts, [code] * len(texts))
        with monkeypatch.context() as m:
            m.setattr(entities, "_MAYBE_WORD_DATE", re.compile(""))  # spaCy for every text
            m.setattr(entities, "_DIGIT", re.compile(""))  # every regex for every text
            full = extractor.extract(texts, [code] * len(texts))
        assert fast == full
        dates = sum(1 for found in full for e in found if e.label == "DATE")
        assert dates > len(texts) // 2, code  # the texts do exercise the date patterns


def test_date_word_check_agrees_with_the_tokenizer() -> None:
    """A text whose tokens include a date word passes the check, whatever is glued to it."""
    from pipeline.nlp import entities

    nlp = entities._pipeline()
    for word in sorted(entities._WORD_DATE_ANCHORS):
        for before in _NEIGHBOURS:
            for after in _NEIGHBOURS:
                text = f"a{before}{word.title()}{after}b"
                if any(t.lower_ in entities._WORD_DATE_ANCHORS for t in nlp.make_doc(text)):
                    assert entities._MAYBE_WORD_DATE.search(text.lower()), text


def test_text_without_a_date_word_skips_spacy() -> None:
    from pipeline.nlp import entities

    check = entities._MAYBE_WORD_DATE
    assert check.search("the blender broke and support never answered") is None
    assert check.search("monthly fee, daylight, jamming, semanario") is None
    assert check.search("since monday") and check.search("3 hari lepas")


def test_date_words_inside_chinese_text(extractor: EntityExtractor) -> None:
    # spaCy's blank Chinese tokenizer splits into characters, where no date word can match.
    text = "我的订单 3 days ago 还没到，上周 last week 也问过"
    [found] = extractor.extract([text], ["zh"])
    assert [e.text for e in found if e.label == "DATE"] == ["3 days ago", "上周", "last week"]


# --- weekday abbreviations are words unless a date's context says otherwise -----------------

_ABBREVIATIONS_AS_WORDS = [
    "I sat in the queue for ages",
    "the sun was out and the parcel got soaked",
    "Sun was out all day, the package melted",  # a capital at the start of a sentence
    "we sat on sun loungers waiting for the courier",
    "the sat nav sent the driver to the wrong street",
    "this sun is brutal and the AC is broken",
    "wed like a refund please",
    "mon colis est perdu",
    "I sat at 5 different desks before anyone helped",
    "we enjoyed the sun and sat by the pool",
]


@pytest.mark.parametrize("text", _ABBREVIATIONS_AS_WORDS)
def test_weekday_abbreviations_as_ordinary_words_are_not_dates(
    extractor: EntityExtractor, text: str
) -> None:
    assert [e for e in extractor.extract_one(text, "en") if e.label == "DATE"] == []


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("see you Sat 14 Dec", ["Sat", "14 Dec"]),
        ("on sun at 5pm", ["on sun"]),
        ("Sun, Dec 14th works for me", ["Sun", "Dec 14th"]),
        ("can the technician come wed 14/12?", ["wed", "14/12"]),
        ("sat 10am or sun at 5 pm", ["sat", "sun"]),
        ("next Wed or last sat", ["next Wed", "last sat"]),
        ("see you on sat.", ["on sat"]),
        ("I'll call on Wed about it", ["on Wed"]),
        ("we rang them, it was on a Sat, they said Monday", ["Sat", "Monday"]),
        ("the shop is open Mon-Fri and Sat and Sun", ["Mon", "Fri", "Sat", "Sun"]),
        ("delivery sat morning, pickup until sun", ["sat", "sun"]),
    ],
)
def test_weekday_abbreviations_in_a_date_context_are_dates(
    extractor: EntityExtractor, text: str, dates: list[str]
) -> None:
    found = extractor.extract_one(text, "en")
    assert [e.text for e in found if e.label == "DATE"] == dates
    assert all(text[e.start : e.end] == e.text for e in found)


def test_full_weekday_names_match_alone_in_every_language(extractor: EntityExtractor) -> None:
    from pipeline.nlp import entities

    full = [w for w in entities._WEEKDAYS if w not in entities._SHORT_WEEKDAYS]
    assert {"saturday", "sabtu", "ahad", "minggu", "sábado", "domingo"} <= set(full)
    for word in full:
        for form in (word, word.title()):
            found = extractor.extract_one(f"the parcel came {form} but was empty")
            assert [(e.label, e.text) for e in found] == [("DATE", form)], form
    # ...and with the words around them the patterns always took.
    assert [e.text for e in extractor.extract_one("it broke on Saturday, el sábado pasado")] == [
        "on Saturday",
        "el sábado pasado",
    ]


# --- durations: how long, not when -------------------------------------------------------------


def test_durations_and_dates_are_told_apart_and_can_be_asked_for_alone() -> None:
    text = "waited 47 mins on the phone 3 days ago, dah 3 hari tunggu, 等了两个星期"
    both = EntityExtractor().extract_one(text)
    assert [(e.label, e.text) for e in both] == [
        ("DURATION", "47 mins"),
        ("DATE", "3 days ago"),
        ("DURATION", "3 hari"),
        ("DURATION", "两个星期"),
    ]
    only = EntityExtractor(labels=["DURATION"]).extract_one(text)
    assert [e.text for e in only] == ["47 mins", "3 hari", "两个星期"]
    # Without DURATION, "3 days ago" is still one date and no duration appears inside it.
    dates = EntityExtractor(labels=["DATE"]).extract_one(text)
    assert [e.text for e in dates] == ["3 days ago"]


def test_entity_rules_are_part_of_the_model_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed entity rule changes the digest the classifiers' versions are built from."""
    from pipeline.nlp import entities, lexicon

    assert entities.RULES_DIGEST in lexicon._RULES
    assert entities._rules_digest() == entities.RULES_DIGEST
    monkeypatch.setattr(entities, "_DURATION_RE", re.compile(r"\d+ fortnights?"))
    assert entities._rules_digest() != entities.RULES_DIGEST
    monkeypatch.undo()
    monkeypatch.setattr(entities, "_UNITS", [*entities._UNITS, "fortnight"])
    assert entities._rules_digest() != entities.RULES_DIGEST
