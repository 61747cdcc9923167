"""The lexicon-1 baseline classifier and the topic taxonomy it reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.items import Channel, Classification, Item, Sentiment, Urgency
from pipeline.nlp.base import Classifier
from pipeline.nlp.lexicon import LexiconClassifier, sentiment_probabilities
from pipeline.nlp.taxonomy import Topic, default_taxonomy_text, load_taxonomy

ROOT = Path(__file__).parents[2]
CASES: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "tests" / "data" / "nlp" / "lexicon_cases.yaml").read_text("utf-8")
)["cases"]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_item(text: str, n: int = 0, **overrides: Any) -> Item:
    values: dict[str, Any] = {
        "source": "test",
        "channel": Channel.SOCIAL,
        "external_id": f"ext-{n}",
        "text": text,
        "created_at": T0,
    }
    values.update(overrides)
    return Item(**values)


@pytest.fixture(scope="module")
def clf() -> LexiconClassifier:
    classifier = LexiconClassifier(products=["Blendr Pro", "HeatMax 3000"])
    classifier.classify([make_item("warm up the language detector once per module")])
    return classifier


def classify_one(clf: LexiconClassifier, text: str, **overrides: Any) -> Classification:
    [result] = clf.classify([make_item(text, **overrides)])
    return result


# -- behaviour on real-looking messages --------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["text"][:40])
def test_cases(clf: LexiconClassifier, case: dict[str, Any]) -> None:
    result = classify_one(clf, case["text"])
    if "sentiment" in case:
        assert result.sentiment == Sentiment(case["sentiment"])
    if "complaint" in case:
        assert result.is_complaint is case["complaint"], result.complaint_score
    if "urgency" in case:
        assert result.urgency == Urgency(case["urgency"])
    if "supported" in case:
        assert result.language_supported is case["supported"], result.language
    for topic in case.get("topics", []):
        assert topic in result.topics, dict(result.topics)


def test_complaint_score_orders_messages(clf: LexiconClassifier) -> None:
    angry = classify_one(clf, "my order never arrived and nobody answers")
    praise = classify_one(clf, "Love the new blender, works great!")
    assert angry.complaint_score > 0.9
    assert praise.complaint_score < 0.1
    for result in (angry, praise):
        assert 0.0 <= result.complaint_score <= 1.0


def test_non_english_is_flagged_but_classified(clf: LexiconClassifier) -> None:
    for text in ("我的快递还没到", "Pesanan saya belum sampai lagi, tolong semak."):
        result = classify_one(clf, text)
        assert isinstance(result, Classification)
        assert result.language in {"zh", "ms", "id"}
        assert result.language_supported is False
        assert result.model_version == clf.version


def test_item_language_wins_over_detection(clf: LexiconClassifier) -> None:
    kept = classify_one(clf, "Pesanan saya belum sampai lagi", language="en")
    assert (kept.language, kept.language_supported) == ("en", True)
    regional = classify_one(clf, "my order never arrived", language="ms-MY")
    assert (regional.language, regional.language_supported) == ("ms-MY", False)


def test_unknown_language_counts_as_supported(clf: LexiconClassifier) -> None:
    result = classify_one(clf, "😍😍")
    assert result.language is None
    assert result.language_supported is True
    assert result.sentiment == Sentiment.POSITIVE  # VADER reads emoji


@pytest.mark.parametrize("text", ["", "   ", "\x00\u200b"])
def test_empty_text_is_calm(clf: LexiconClassifier, text: str) -> None:
    result = classify_one(clf, text)
    assert result.sentiment == Sentiment.NEUTRAL
    assert result.is_complaint is False
    assert result.urgency == Urgency.LOW
    assert dict(result.topics) == {}
    assert result.entities == ()


def test_title_is_read_too(clf: LexiconClassifier) -> None:
    result = classify_one(clf, "still nothing after three weeks", title="Refund")
    assert "billing" in result.topics


def test_positive_name_sue_is_not_a_legal_threat(clf: LexiconClassifier) -> None:
    assert classify_one(clf, "Sue from support sorted it out, thank you!").urgency == Urgency.LOW


# -- sentiment probabilities ----------------------------------------------------------------


@pytest.mark.parametrize("compound", [-1.0, -0.6, -0.05, -0.01, 0.0, 0.02, 0.049, 0.2, 0.97, 1.0])
def test_sentiment_probabilities_sum_to_one_and_agree_with_label(compound: float) -> None:
    probs = sentiment_probabilities(compound)
    assert set(probs) == {"negative", "neutral", "positive"}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    if compound <= -0.05:
        expected = "negative"
    elif compound >= 0.05:
        expected = "positive"
    else:
        expected = "neutral"
    assert max(probs, key=lambda k: probs[k]) == expected


def test_classified_probabilities_sum_to_one(clf: LexiconClassifier) -> None:
    texts = [case["text"] for case in CASES] + ["", "ok", "meh"]
    for result in clf.classify([make_item(t, i) for i, t in enumerate(texts)]):
        assert sum(result.sentiment_scores.values()) == pytest.approx(1.0)
        top = max(result.sentiment_scores, key=lambda k: result.sentiment_scores[k])
        assert top == result.sentiment.value


# -- batches ----------------------------------------------------------------------------------


def test_one_result_per_item_in_order_and_deterministic(clf: LexiconClassifier) -> None:
    texts = [case["text"] for case in CASES] * 3 + ["", "😡", "ok"]
    items = [make_item(t, i) for i, t in enumerate(texts)]
    first = clf.classify(items)
    assert len(first) == len(items)
    assert clf.classify(items) == first
    # order inside the batch does not change any single answer
    shuffled = list(range(len(items)))
    random.Random(3).shuffle(shuffled)
    again = clf.classify([items[i] for i in shuffled])
    assert [again[shuffled.index(i)] for i in range(len(items))] == first
    # nor does batching
    assert [classify_one(clf, t) for t in texts[:5]] == first[:5]
    assert clf.classify([]) == []


def test_implements_classifier_protocol() -> None:
    classifier: Classifier = LexiconClassifier(taxonomy=[])
    assert classifier.version.startswith("lexicon-1+")


def test_version_changes_with_taxonomy_and_products() -> None:
    base = LexiconClassifier()
    assert LexiconClassifier().version == base.version
    assert LexiconClassifier(products=["AeroKettle"]).version != base.version
    assert LexiconClassifier(taxonomy=base.taxonomy[:3]).version != base.version


def test_two_instances_agree() -> None:
    items = [make_item(case["text"], i) for i, case in enumerate(CASES)]
    assert LexiconClassifier().classify(items) == LexiconClassifier().classify(items)


# -- entities ---------------------------------------------------------------------------------


def test_entities_with_offsets(clf: LexiconClassifier) -> None:
    text = (
        "My heatmax 3000 died. Order no. 88231 and order #A12345, also order 123-4567890. "
        "Paid RM 129.90, then $12 and €5,00 and 12 USD. Mail me: jo.lee+care@mail.example.com"
    )
    result = classify_one(clf, text)
    for entity in result.entities:
        assert text[entity.start : entity.end] == entity.text
    got = [(e.label, e.text) for e in result.entities]
    assert got == [
        ("PRODUCT", "heatmax 3000"),
        ("ORDER_ID", "88231"),
        ("ORDER_ID", "A12345"),
        ("ORDER_ID", "123-4567890"),
        ("MONEY", "RM 129.90"),
        ("MONEY", "$12"),
        ("MONEY", "€5,00"),
        ("MONEY", "12 USD"),
        ("EMAIL", "jo.lee+care@mail.example.com"),
    ]


def test_entities_are_not_invented(clf: LexiconClassifier) -> None:
    result = classify_one(clf, "ordered 2 items on 2026-11-23 #blessed #2024 for my Blendr")
    assert result.entities == ()


# -- topics -----------------------------------------------------------------------------------


def _topic(name: str, *keywords: str) -> Topic:
    return Topic(name=name, label=name.title(), description="test topic", keywords=keywords)


def test_topic_keyword_matching_rules() -> None:
    clf = LexiconClassifier(
        taxonomy=[
            _topic("delivery", "parcel", "tracking number", "快递"),
            _topic("app_bugs", "app", "won't load"),
        ]
    )
    topics = clf.topics
    assert topics("Two PARCELS, no tracking   number!") == {"delivery": 0.75}
    assert topics("我的快递呢") == {"delivery": 0.5}
    assert topics("the page won\u2019t load in the app") == {"app_bugs": 0.75}
    assert topics("sent it on whatsapp and appreciate the parcelforce guy") == {}


def test_topic_scores_are_bounded_and_sorted(clf: LexiconClassifier) -> None:
    text = "refund refund charged twice, invoice wrong, payment failed, no refund, chargeback"
    scores = clf.topics(text)
    assert next(iter(scores)) == "billing"
    assert 0.5 <= scores["billing"] < 1.0
    assert list(scores.values()) == sorted(scores.values(), reverse=True)


# -- taxonomy ---------------------------------------------------------------------------------

DEFAULT_TOPICS = [
    "delivery",
    "billing",
    "product_quality",
    "customer_service",
    "account",
    "app_bugs",
    "pricing",
    "cancellation",
    "privacy",
    "wait_times",
    "outage",
]


def test_bundled_taxonomy_is_the_documented_one() -> None:
    documented = (ROOT / "config" / "taxonomy.yaml").read_bytes()
    bundled = (ROOT / "pipeline" / "data" / "taxonomy.yaml").read_bytes()
    assert bundled == documented, "copy config/taxonomy.yaml to pipeline/data/taxonomy.yaml"
    assert default_taxonomy_text().encode("utf-8") == documented


def test_default_taxonomy() -> None:
    topics = load_taxonomy()
    assert [t.name for t in topics] == DEFAULT_TOPICS
    assert load_taxonomy(ROOT / "config" / "taxonomy.yaml") == topics
    for topic in topics:
        assert 8 <= len(topic.examples) <= 20, topic.name
        assert topic.keywords, topic.name
        assert all(k == k.casefold() for k in topic.keywords), topic.name
        assert topic.label and topic.description


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, "utf-8")
    return path


GOOD = "  - {name: delivery, label: Delivery, description: d, keywords: [parcel]}\n"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("topics:\n" + GOOD + "  - {name: Delivery, label: D, description: d}\n", "topics[1].name"),
        ("topics:\n" + GOOD + GOOD, "topics[1].name"),
        ("topics:\n  - {name: x, label: X, description: d, keyword: [a]}\n", "topics[0].keyword"),
        ("topics:\n  - {name: x, description: d, keywords: [a]}\n", "topics[0].label"),
        ("topics:\n  - {name: x, label: X, description: d}\n", "topics[0]"),
        ("topics:\n  - {name: x, label: X, description: d, keywords: a}\n", "topics[0].keywords"),
        ("topics:\n  - {name: x, label: X, description: d, examples: [ok, 3]}\n", "examples[1]"),
        ("topics: []\n", "topics"),
        ("- {name: x}\n", "topics"),
        ("topics:\n  - [unclosed\n", "invalid YAML"),
    ],
)
def test_taxonomy_errors_name_file_and_place(tmp_path: Path, body: str, where: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(path) in info.value.message
    assert where in info.value.message
    assert info.value.hint


def test_taxonomy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_custom_taxonomy_normalises_keywords(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n  - name: loyalty\n    label: Loyalty points\n    description: points\n"
        "    keywords: [Points, '  Reward   Card ', points]\n",
    )
    [topic] = load_taxonomy(path)
    assert topic.keywords == ("points", "reward card")
    assert topic.examples == ()


def test_long_text_is_scored_in_chunks_with_the_same_verdict(clf: LexiconClassifier) -> None:
    angry = "My order never arrived. Nobody answers the phone. This is the worst shop ever. "
    result = classify_one(clf, angry * 200)
    assert result.sentiment == Sentiment.NEGATIVE
    assert result.is_complaint is True
    wall = classify_one(clf, "😡" * 20_000)
    assert wall.sentiment == Sentiment.NEGATIVE


@pytest.mark.parametrize(
    "text",
    [
        "Thank you! Had E07 every morning for a week. Fixed in 10 minutes.",
        "works fine now after the update, cheers",
        "got my full refund today, thanks Sam",
        "Terima kasih, dana refund sudah masuk ke rekening saya",
        "makasih min, akunnya sudah bisa dipakai",
        "terima kasih banyak, masalah akaun saya dah selesai",
        "Gracias, ya me llegó el reembolso",
        "问题已经解决了，谢谢客服小姐姐",
        "谢谢，退款已经收到了",
        "谢谢，已经收到退款了",
        "客服很耐心，帮我把问题解决了，点赞",
        "好评！退款到账了",
        # Praise in place of thanks
        "Agent on chat fixed my billing issue in under 10 minutes, brilliant",
        "Masalah akaun saya selesai dalam masa 5 minit je, laju gila service",
        "客服处理问题特别及时，半小时就搞定了",
        "Der Support hat mein Problem mit der Rechnung sofort gelöst, top",
        "O suporte resolveu o problema da minha conta em minutos, excelente",
        # The problem it praises the fix of is named: no exception for words of damage
        "The charger was broken, they sent a new one the next day. Superb.",
    ],
)
def test_thanks_for_a_solved_problem(clf: LexiconClassifier, text: str) -> None:
    assert clf.resolved_thanks(text)


@pytest.mark.parametrize(
    "text",
    [
        "thanks but the problem is still not fixed",
        "Thanks for fixing the login. My bill is also wrong",
        "thanks for nothing, sorted my foot",
        "fixed? thanks, it broke again an hour later",
        "thank you, though it isn't resolved",
        "terima kasih tapi masalahnya masih belum selesai",
        "makasih, tapi refund belum masuk",
        "gracias, pero todavía no funciona",
        "谢谢，但是问题还是没解决",
        "谢谢，退款还没收到",
        "点赞的人多，可是问题没解决",
        "好评返现的钱还没到账",
        "it is fixed now",  # no thanks: left to the heads
        "thanks for the quick reply",  # no resolution
        # Praise that is not for a solved problem
        'So the "resolved" ticket just reopened itself. Brilliant.',
        "Support marked my ticket as solved without replying. Brilliant.",
        "Great, they said it was fixed last week",
        "I hope we can get this resolved quickly",
        "I need this resolved quickly, my rent is due",
        "Replaced it quickly and now it is worse",
        "top of my list: get this fixed",
    ],
)
def test_thanks_that_is_not_for_a_solved_problem(clf: LexiconClassifier, text: str) -> None:
    assert not clf.resolved_thanks(text)


@pytest.mark.parametrize(
    "text",
    [
        "Oh great, the app logged me out AGAIN 🙃",
        "wow thanks for the 3 hour wait, really appreciate it 🙄",
        "Fantastic service as always, parcel lost for the third time /s",
        "best customer service ever, nobody picks up the phone #not",
        "Thanks for nothing @AcmeTel, still no refund",
        'yeah right, "next day delivery". it\'s been a week',
        "Great service my foot. Three weeks and no refund.",
        "Really loving being put on hold for an hour",
        "Gracias por nada, seguimos sin internet",
    ],
)
def test_sarcasm_markers(clf: LexiconClassifier, text: str) -> None:
    assert clf.sarcastic(text)


@pytest.mark.parametrize(
    "text",
    [
        "Yeah, right on time and well packed, thank you!",
        "Love paying less with the new family plan",
        "The box fell on my foot while unpacking but everything inside was fine",
        "Best quick fix for my foot pain, the insoles are great",
        "What's the difference between /s and /m sizes?",
        "see acme.com/s",
        "Gracias por todo, muy buena atención",
        "呵呵，总体来看运行速度还可以",  # a friendly "hehe" in older Chinese reviews
    ],
)
def test_not_sarcasm(clf: LexiconClassifier, text: str) -> None:
    assert not clf.sarcastic(text)


@pytest.mark.parametrize(
    "text",
    [
        "Aduan: caj roaming yang tidak sah\nAssalamualaikum dan salam sejahtera,",
        "Saya ingin membuat aduan tentang caj roaming dalam bil Januari saya",
        "Saya mau komplain soal paket yang salah warna",
        "Keluhan: aplikasi tidak bisa login sejak versi 2.14",
        "I would like to make a formal complaint about your driver",
        "I'm writing to lodge a complaint about order 88213",
        "Re: Complaint - kettle order #A12345",
        "我要投诉你们的快递员",
        "投诉：快递员态度恶劣",
        "Quiero poner una reclamación por el cobro de aduana",
        "Je souhaite déposer une réclamation",
        "Ich möchte mich über Ihren Service beschweren",
    ],
)
def test_the_customer_saying_it_is_a_complaint(clf: LexiconClassifier, text: str) -> None:
    assert clf.complaint_statement(text)


@pytest.mark.parametrize(
    "text",
    [
        "No complaints, great service!",
        "My complaint was resolved quickly, thanks",
        "How do I make a complaint?",
        "Where can I file a complaint?",
        "Saya tiada aduan, servis bagus",
        "他们处理投诉很快",
        "¿Dónde puedo poner una queja?",
        "complaint handling was excellent",
    ],
)
def test_the_word_complaint_alone_is_not_a_complaint(clf: LexiconClassifier, text: str) -> None:
    assert not clf.complaint_statement(text)
