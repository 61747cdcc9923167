"""PII redaction: real-world shapes are redacted, look-alikes (orders, prices, dates) are kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.nlp.pii import find_pii, redact, redact_part

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


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        # Chinese, Japanese and Thai put no space between a word and a number or address
        ("我的手机13812345678，请回电", "我的手机[phone]，请回电"),
        ("邮箱abc@example.com请回复", "邮箱[email]请回复"),
        ("カード番号4111111111111111です", "カード番号[card]です"),
        ("โทร0812345678ค่ะ", "โทร[phone]ค่ะ"),
        ("身份证S1234567D", "身份证[national_id]"),
        # national ids with their check letter or digit
        ("mi DNI es 12345678Z", "mi DNI es [national_id]"),
        ("NIE X1234567L, gracias", "NIE [national_id], gracias"),
        ("身份证号11010519491231002X", "身份证号[national_id]"),
        # US Social Security numbers, card security codes, phones after a phone word
        ("my ssn is 078-05-1120", "my ssn is [national_id]"),
        ("SSN: 123 45 6789", "SSN: [national_id]"),
        (
            "card 4111 1111 1111 1111 exp 12/27 cvv 123",
            "card [card] exp 12/27 cvv [card]",
        ),
        ("CVC: 4321 thanks", "CVC: [card] thanks"),
        ("kode keamanan 123", "kode keamanan [card]"),
        ("安全码123", "安全码[card]"),
        ("Tel. 030/1234567", "Tel. [phone]"),
        ("Telefon: 0171 / 123 45 67 bitte", "Telefon: [phone] bitte"),
        ("hp 0812/3456/7890 ya", "hp [phone] ya"),
    ],
)
def test_redacts_next_to_unspaced_scripts_and_more_ids(text: str, expect: str) -> None:
    assert redact(text) == expect


@pytest.mark.parametrize(
    "text",
    [
        "订单号123456789012还没到",  # an order number, as after "order"
        "运单13812345678",
        "DNI 12345678A",  # wrong check letter
        "身份证号110105194912310021",  # wrong check digit
        "MY123456789SG",  # still glued to Latin letters
        "ref X1234567Q",  # NIE shape, wrong letter
        "order 123-45-6789",  # an order number in the shape of an SSN
        "ref 900-12-3456",  # no SSN starts with 9
        "security code 123456 from your app",  # six digits: a one-time code, not a CVV
        "tel 12/11/2026",  # a date after a phone word
    ],
)
def test_keeps_reference_numbers_and_bad_check_digits(text: str) -> None:
    assert find_pii(text) == []


def test_a_part_is_redacted_in_its_context() -> None:
    text = "订单号 48213579 还没发货, call 0123456789 or mail jane.doe@example.com"
    order = text.index("48213579")
    # On its own the order number looks like a phone number; next to 订单号 it is not one.
    assert redact("48213579") == "[phone]"
    assert redact_part(text, "48213579", order, order + 8) == "48213579"
    at = text.index("jane")
    assert redact_part(text, "jane.doe@example.com", at, len(text)) == "[email]"
    # A part reaching over personal data keeps the rest of its words.
    call = text.index("call")
    assert redact_part(text, text[call : call + 18], call, call + 18) == "call [phone] or"
    # A placeholder, or offsets that do not point at the part, are judged alone.
    assert redact_part(text, "[email]", at, len(text)) == "[email]"
    assert redact_part(text, "0123456789", 0, 10) == "[phone]"
    assert redact_part(text, "0123456789", 50, 900) == "[phone]"
