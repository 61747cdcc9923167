"""PII redaction: real-world shapes are redacted, look-alikes (orders, prices, dates) are kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.nlp.pii import find_pii, redact

CASES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "nlp" / "pii_cases.yaml").read_text("utf-8")
)


@pytest.mark.parametrize("case", CASES["redact"], ids=lambda c: c["text"][:40])
def test_redacts(case: dict[str, str]) -> None:
    assert redact(case["text"]) == case["expect"]


@pytest.mark.parametrize("text", CASES["keep"])
def test_keeps_look_alikes(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text) == text


def test_find_pii_kinds_and_offsets() -> None:
    text = "mail a+b@x.com, card 4111111111111111, call +60 12-345 6789"
    found = find_pii(text)
    assert [kind for kind, _, _ in found] == ["email", "card", "phone"]
    assert [text[s:e] for _, s, e in found] == [
        "a+b@x.com",
        "4111111111111111",
        "+60 12-345 6789",
    ]


def test_luhn_decides_card() -> None:
    assert redact("4111111111111111") == "[card]"
    assert redact("4111111111111112") == "4111111111111112"


def test_iban_check_digits_decide() -> None:
    assert redact("GB82WEST12345698765432") == "[iban]"
    assert redact("GB00WEST12345698765432") == "GB00WEST12345698765432"


def test_phone_right_after_order_word_is_an_order_number() -> None:
    assert redact("order 0123456789") == "order 0123456789"
    # ...but an explicit international number is a phone wherever it is
    assert redact("order issue, call +60 12-345 6789") == "order issue, call [phone]"


def test_redaction_is_idempotent_and_total() -> None:
    text = "x@y.org 4111 1111 1111 1111 +1 415 555 0134"
    once = redact(text)
    assert once == "[email] [card] [phone]"
    assert redact(once) == once
    assert redact("") == ""


def test_fediverse_handle_is_not_an_email() -> None:
    assert (
        redact("@ParcelPeakHelp@mastodon.example help") == "@ParcelPeakHelp@mastodon.example help"
    )
    assert redact("mail jane@mastodon.example") == "mail [email]"


MORE: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "nlp_b" / "pii_more_cases.yaml").read_text("utf-8")
)


@pytest.mark.parametrize("case", MORE["redact"], ids=lambda c: c["text"][:40])
def test_redacts_ids_and_accounts(case: dict[str, str]) -> None:
    assert redact(case["text"]) == case["expect"]


@pytest.mark.parametrize("text", MORE["keep"])
def test_keeps_tracking_and_reference_numbers(text: str) -> None:
    assert find_pii(text) == []


def test_mykad_is_a_national_id_not_a_phone() -> None:
    text = "IC 900101-14-5678 or phone 012-345 6789"
    assert [(kind, text[s:e]) for kind, s, e in find_pii(text)] == [
        ("national_id", "900101-14-5678"),
        ("phone", "012-345 6789"),
    ]


def test_mykad_needs_a_real_birth_date() -> None:
    # Month 13 is no date: the shape alone does not make a national id.
    assert [kind for kind, _, _ in find_pii("IC 901301-14-5678")] != ["national_id"]


def test_bare_long_number_is_not_a_bank_account() -> None:
    # Without a word that introduces an account, a long number stays (orders, tracking).
    assert find_pii("ref 1234567890123 please") == []
    assert redact("account 1234567890123") == "account [bank_account]"


def test_card_after_account_word_is_a_card() -> None:
    assert redact("account no 4111 1111 1111 1111") == "account no [card]"


# --- the pre-check: no digit and no '@', nothing to find --------------------------------------

_SCRIPTS = {
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
}


def _all_case_texts() -> list[str]:
    """Every case text, also with its digits written in each of :data:`_SCRIPTS`."""
    base = [c["text"] for c in CASES["redact"] + MORE["redact"]] + CASES["keep"] + MORE["keep"]
    texts = list(base)
    for digits in _SCRIPTS.values():
        texts += [t.translate(str.maketrans("0123456789", digits)) for t in base]
    return texts


def test_the_pre_check_never_skips_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.nlp import pii

    texts = [*_all_case_texts(), "no numbers here, just words", "superscript x² ½ Ⅻ", ""]
    fast = [find_pii(t) for t in texts]
    monkeypatch.setattr(pii, "_MAYBE_PII", re.compile(""))  # every finder on every text
    assert fast == [find_pii(t) for t in texts]
    assert sum(map(bool, fast)) > len(texts) // 4  # the texts do contain PII


@pytest.mark.parametrize("script", sorted(_SCRIPTS))
def test_pii_in_other_digits_is_still_found(script: str) -> None:
    # The patterns' \d takes any decimal digit; so does the pre-check.
    to = str.maketrans("0123456789", _SCRIPTS[script])
    text = "card 4111 1111 1111 1111, call +60 12-345 6789, IC 900101-14-5678".translate(to)
    assert [kind for kind, _, _ in find_pii(text)] == ["card", "phone", "national_id"]
    assert redact(text) == "card [card], call [phone], IC [national_id]"


def test_text_without_a_digit_or_at_sign_skips_every_finder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.nlp import pii

    calls: list[str] = []
    for name in ("_cards", "_ibans", "_national_ids", "_bank_accounts", "_emails", "_phones"):
        real = getattr(pii, name)

        def spy(text: str, real: Any = real, name: str = name) -> Any:
            calls.append(name)
            return real(text)

        monkeypatch.setattr(pii, name, spy)
    assert find_pii("the parcel never came and nobody answers, account closed?") == []
    assert calls == []
    assert find_pii("mail jane@example.org") == [("email", 5, 21)]
    assert find_pii("call ０１２-３４５ ６７８９") == [("phone", 5, 17)]
    assert len(calls) == 12
