"""Offline language detection: scripts, lingua, and 'not sure' for short/noise text."""

from __future__ import annotations

import pytest

from pipeline.nlp import language
from pipeline.nlp.language import SUPPORTED_LANGUAGES, detect_language, detect_languages


@pytest.fixture(scope="module", autouse=True)
def _warm_detector() -> None:
    """Load lingua's models once for the module (the first detection takes about a second)."""
    detect_language("warming up the language detector")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my order never arrived and nobody answers", "en"),
        ("Mi pedido no ha llegado todavía", "es"),
        ("Où est ma commande ? Je l'attends depuis deux semaines.", "fr"),
        ("Meine Bestellung ist nicht angekommen", "de"),
        ("Obrigado pela ajuda, chegou tudo certo", "pt"),
        ("我的快递还没到", "zh"),
        ("注文した商品がまだ届きません", "ja"),
        ("주문한 상품이 아직 안 왔어요", "ko"),
        ("คำสั่งซื้อของฉันยังไม่มาถึง", "th"),
        ("Đơn hàng của tôi chưa đến", "vi"),
    ],
)
def test_detects(text: str, expected: str) -> None:
    code, confidence = detect_language(text)
    assert code == expected
    assert 0.5 <= confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "Pesanan saya belum sampai lagi, tolong semak.",
        "Saya mahu bayaran balik",
        "Paket saya belum datang, kurirnya ke mana?",
    ],
)
def test_malay_indonesian_is_one_of_the_two_with_honest_confidence(text: str) -> None:
    code, confidence = detect_language(text)
    assert code in {"ms", "id"}
    assert 0.0 < confidence < 1.0


def test_close_malay_indonesian_call_reports_low_confidence() -> None:
    code, confidence = detect_language("Pesanan saya belum sampai lagi, tolong semak.")
    assert code in {"ms", "id"}
    assert confidence < 0.7


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😡😡😡",
        "👍",
        "https://t.co/abc123",
        "12345 678",
        "RM 129.90",
        "ok",
        "lol",
        "@acme",
    ],
)
def test_noise_and_very_short_text_is_none(text: str) -> None:
    assert detect_language(text) == (None, 0.0)


def test_mixed_script_follows_the_majority() -> None:
    assert detect_language("我的iPhone坏了")[0] == "zh"
    assert detect_language("I love my new 寿司 knife set from you")[0] == "en"


def test_links_and_mentions_do_not_sway_the_answer() -> None:
    text = "@AcmeSupport mi pedido no ha llegado https://www.example.com/tracking/status"
    assert detect_language(text)[0] == "es"


def test_batch_matches_single_and_keeps_order() -> None:
    texts = [
        "my order never arrived",
        "😡",
        "我的快递还没到",
        "Mi pedido no ha llegado todavía",
        "",
        "Meine Bestellung ist nicht angekommen",
    ]
    batch = detect_languages(texts)
    assert batch == [detect_language(t) for t in texts]
    assert [code for code, _ in batch] == ["en", None, "zh", "es", None, "de"]
    assert detect_languages([]) == []


def test_detector_is_built_once() -> None:
    first = language._get_detector()
    detect_languages(["one more English sentence", "otra frase en español"])
    assert language._get_detector() is first


def test_supported_languages_are_iso_639_1() -> None:
    assert {"en", "zh", "ms", "id", "es", "fr", "de", "pt", "ja", "ko"} <= set(SUPPORTED_LANGUAGES)
    assert all(len(code) == 2 and code.islower() for code in SUPPORTED_LANGUAGES)
