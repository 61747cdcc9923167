"""mailparse: charsets, MIME structure, HTML, quoted history and signatures, machine mail.

Most cases read a fixture from tests/data/mail/ (each says what it exercises in its
X-Fixture-Purpose header); the rest are small inline strings for one rule each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.collectors import mailparse
from pipeline.collectors.mailparse import (
    decode_bytes,
    decode_header_value,
    html_to_text,
    machine_generated,
    normalize_message_id,
    parse,
    strip_quotes_and_signature,
)

DATA = Path(__file__).parent.parent / "data" / "mail"


def load(name: str) -> mailparse.ParsedMail:
    return parse((DATA / name).read_bytes())


def test_every_fixture_says_what_it_exercises():
    for f in DATA.glob("*.eml"):
        assert f.read_bytes().startswith(b"X-Fixture-Purpose: "), f.name


@pytest.mark.parametrize(
    ("name", "subject", "text"),
    [
        ("latin1-qp.eml", "Commande non reçue", "n'est toujours pas arrivée après 12 jours"),
        ("cp1252-labelled-utf8.eml", "Grinder broken", "paid €149 for stopped working – it just"),
        ("shift-jis.eml", "配送の遅延について", "注文した商品がまだ届いていません。"),
        ("gb2312-quoted.eml", "咖啡机漏水", "我的咖啡机漏水了，请尽快处理。"),
        ("undecodable-headers.eml", "Problème avec ma facture", "120 € au lieu de 99 €"),
    ],
)
def test_charsets_are_decoded(name, subject, text):
    m = load(name)
    assert m.problem is None
    assert m.subject == subject
    assert text in m.text
    assert "\ufffd" not in m.text and "\ufffd" not in m.subject


def test_mislabeled_charset_is_recorded():
    assert load("cp1252-labelled-utf8.eml").charsets == ["utf-8 read as cp1252"]
    assert "“error 7”" in load("cp1252-labelled-utf8.eml").text


def test_sender_name_decoded_and_address_lowercased():
    m = load("latin1-qp.eml")
    assert (m.from_name, m.from_addr) == ("Élodie Lefèvre", "elodie@example.fr")
    assert load("undecodable-headers.eml").from_name == "René François"


def test_decode_bytes_order():
    utf8 = "Grüße".encode()
    # UTF-8 mislabeled as Latin-1: valid UTF-8 wins (no "GrÃ¼ÃŸe").
    assert decode_bytes(utf8, "iso-8859-1")[0] == "Grüße"
    # An unknown label falls back to UTF-8, then windows-1252.
    assert decode_bytes("naïve".encode("cp1252"), "x-klingon") == ("naïve", "cp1252")
    # A multi-byte charset with one broken byte keeps its text (not windows-1252 mojibake).
    damaged = "你好，我的订单在哪里？请尽快回复。谢谢".encode("gb18030") + b"\xff"
    text, used = decode_bytes(damaged, "gb2312")
    assert used == "gb18030" and text.startswith("你好，我的订单在哪里")
    # 7-bit ISO-2022-JP is still decoded.
    assert decode_bytes("日本".encode("iso2022_jp"), "iso-2022-jp")[0] == "日本"


def test_decode_header_value():
    # A multi-byte character split across two encoded words.
    word = "咖啡".encode()
    import base64

    a, b = base64.b64encode(word[:2]).decode(), base64.b64encode(word[2:]).decode()
    assert decode_header_value(f"=?utf-8?B?{a}?= =?utf-8?B?{b}?=") == "咖啡"
    assert decode_header_value("=?utf-8?q?Hello_World?= again") == "Hello World again"
    assert decode_header_value("=?unknown-cs?Q?caf=E9?=") == "café"
    assert decode_header_value(None) == ""


def test_message_ids_and_threading():
    assert normalize_message_id(" <abc@example.com> ") == "abc@example.com"
    assert normalize_message_id("abc@example.com") == "abc@example.com"
    assert normalize_message_id("") is None
    m = load("gmail-reply.eml")
    assert m.references == ["ticket-5521@example.com", "ticket-5521-reply@brewista.example"]
    assert m.in_reply_to == "ticket-5521-reply@brewista.example"
    assert m.thread_root == "ticket-5521@example.com"
    # No References: In-Reply-To is the root; neither: the message itself.
    assert load("auto-reply.eml").thread_root == "ticket-5521-reply@brewista.example"
    assert load("latin1-qp.eml").thread_root == "latin1-qp-001@example.fr"


def test_missing_message_id_gets_a_stable_synthetic_id():
    data = (DATA / "no-message-id.eml").read_bytes()
    first = parse(data)
    assert first.message_id is None and first.id.startswith("synthetic-")
    # The same message delivered again with other transport headers has the same id.
    again = parse(b"Received: from mx2 by mx3\r\nReturn-Path: <x@y>\r\n" + data)
    assert again.id == first.id
    assert parse(data.replace(b"a week", b"two weeks")).id != first.id
    assert first.date is None  # "sometime last tuesday" is no error


def test_html_only_body():
    m = load("html-only.eml")
    assert m.text == (
        "Hello team,\n\nMy order #A12345 arrived damaged.\nThe box was crushed & wet.\n\n"
        "- Item: Brewista Pro\n- Paid: €249\n\nOrder A12345\n\nThanks,\nJane"
    )
    assert "ignore me" not in m.text and "color" not in m.text


def test_html_quotes_dropped_only_from_the_classified_text():
    markup = (
        "<div>Still not fixed!</div><div class='gmail_quote'><div>On Mon, A wrote:</div>"
        "<blockquote type='cite'><div>We fixed it.</div></blockquote></div>"
    )
    assert html_to_text(markup, drop_quotes=True) == "Still not fixed!"
    assert "We fixed it." in html_to_text(markup)
    outlook = "<p>Where is it?</p><div id='divRplyFwdMsg'><b>From:</b> us</div><p>old text</p>"
    assert html_to_text(outlook, drop_quotes=True) == "Where is it?"


def test_alternative_prefers_plain():
    assert load("alternative.eml").text == "PLAIN VERSION: when will my refund arrive?"


@pytest.mark.parametrize(
    ("name", "text", "history"),
    [
        (
            "gmail-reply.eml",
            "Still broken after the firmware update. Please send a replacement.",
            "Please update the firmware",
        ),
        (
            "outlook-reply.eml",
            "This is the third time I am asking. Where is my warranty replacement?",
            "we have received your claim",
        ),
        (
            "german-original-message.eml",
            "Die Lieferung ist immer noch nicht da. Bitte um Rückmeldung.",
            "Ihre Bestellung wurde versandt",
        ),
        (
            "french-reply.eml",
            "Je n'ai toujours pas reçu le remboursement promis.",
            "le remboursement est en cours",
        ),
        ("gb2312-quoted.eml", "你好，\n我的咖啡机漏水了，请尽快处理。", "有什么可以帮您"),
    ],
)
def test_quoted_history_and_signatures_are_stripped(name, text, history):
    m = load(name)
    assert m.text == text
    assert history in m.body  # the full body is kept for people to read


@pytest.mark.parametrize(
    ("attribution"),
    [
        "El lun, 6 may 2024 a las 10:00, Soporte <s@b.example> escribió:",
        "Em seg., 6 de mai. de 2024 às 10:00, Suporte <s@b.example> escreveu:",
        "Op ma 6 mei 2024 om 10:00 schreef Support <s@b.example>:",
        "Pada tanggal Sen, 6 Mei 2024 pukul 10.00, Support <s@b.example> menulis:",
        "2024年5月6日(月) 10:00 サポート <s@b.example>:",
        "2024년 5월 6일 (월) 오전 10:00, Support <s@b.example>님이 작성:",
        "6 мая 2024 г., в 10:00, Support <s@b.example> написал(а):",
        "Support <s@b.example> 於 2024年5月6日 週一 上午10:00 寫道：",
    ],
)
def test_attributions_in_other_languages(attribution):
    body = f"My new question.\n\n{attribution}\n> Old answer from support.\n"
    assert strip_quotes_and_signature(body) == "My new question."
    # Followed by a header block the attribution cuts everything after it too ...
    outlook = "From: Support <s@b.example>\nSent: Monday\nTo: me\nSubject: Re: order\nOld."
    assert strip_quotes_and_signature(f"My new question.\n\n{attribution}\n{outlook}") == (
        "My new question."
    )
    # ... and as the last line (an HTML quote container dropped after it) it goes alone.
    assert strip_quotes_and_signature(f"My new question.\n\n{attribution}\n") == (
        "My new question."
    )


def test_quoted_operator_in_the_customers_own_words_is_kept():
    """Finding: "...написал:" at a line end used to cut everything after it."""
    m = load("russian-operator-quote.eml")
    assert m.text == m.body
    assert m.text.startswith("Здравствуйте!\n\nВаш оператор написал:\n")
    assert m.text.endswith("я подам в суд.")


@pytest.mark.parametrize(
    "body",
    [
        "Guten Tag,\nIhr Kollege schrieb:\nwir melden uns morgen.\nDas war vor drei Wochen!",
        "Hello,\nyour agent wrote:\nthe refund is on its way.\nIt never came. I want my money.",
        "Bonjour,\nvotre service client m'a écrit :\nc'est réglé.\nRien n'est réglé !",
    ],
)
def test_attribution_shaped_prose_is_not_cut(body):
    # No date, time, address or "On ..." keyword, and no quoted lines after it: it is prose.
    assert strip_quotes_and_signature(body) == body


def test_closing_sentence_shaped_like_an_attribution_stays():
    body = "The courier lost my parcel.\nOn the claim form I wrote"
    assert strip_quotes_and_signature(body) == body


def test_attribution_followed_by_plain_text_keeps_the_text():
    # Even a full attribution followed by unprefixed text is kept: it may be the customer quoting
    # someone and then complaining; losing that is worse than classifying some history.
    body = (
        "Still no refund.\n\nOn Tue, 7 May 2024 at 10:00, Support <s@b.example> wrote:\n"
        "Your refund was issued.\nIt was not. I will dispute the charge."
    )
    assert strip_quotes_and_signature(body) == body


def test_inline_answers_between_quotes_are_kept():
    body = (
        "On Tue, 7 May 2024, Support <s@b.example> wrote:\n"
        "> Which model do you have?\n"
        "The Brewista Pro.\n"
        "> And when did you buy it?\n"
        "In March.\n"
    )
    assert strip_quotes_and_signature(body) == "The Brewista Pro.\nIn March."


def test_signatures():
    assert strip_quotes_and_signature("Help please.\n-- \nJane\nCEO") == "Help please."
    assert strip_quotes_and_signature("Help please.\n\niPhoneから送信") == "Help please."
    assert strip_quotes_and_signature("Help please.\n\nGet Outlook for Android") == "Help please."
    # A dash line inside the text is not a signature delimiter.
    assert strip_quotes_and_signature("a -- b\nc") == "a -- b\nc"


def test_all_quoted_message_keeps_its_full_text():
    m = parse(b"From: a@example.com\r\nSubject: Fwd\r\n\r\n> only a quote\r\n> nothing new\r\n")
    assert m.text == "> only a quote\n> nothing new"


def test_attachments_are_metadata_only():
    m = load("attachments.eml")
    assert m.text == "The invoice is attached; I was charged twice."
    assert m.attachments == [
        {"filename": "facture-été.pdf", "content_type": "application/pdf", "size": 52},
        {"filename": None, "content_type": "image/png", "size": 70},
        {"filename": "Payment confirmation.eml", "content_type": "message/rfc822", "size": 89},
    ]
    raw = json.dumps(m.raw())
    assert "JVBERi0" not in raw and "iVBORw0" not in raw and "Two payments" not in raw


def test_broken_boundary_is_repaired():
    m = load("broken-boundary.eml")
    assert m.text == "The kettle arrived with a cracked lid, photo attached."
    assert "boundary repaired" in m.defects
    assert m.attachments[0]["filename"] == "lid.jpg"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (b"   \r\n", "empty message"),
        ((DATA / "not-a-message.eml").read_bytes(), "not an e-mail message"),
        (b"From: a@example.com\r\n\r\n", "no text, subject or attachment"),
    ],
)
def test_nothing_usable_is_a_problem(data, reason):
    assert reason in (parse(data).problem or "")


def check(headers: dict[str, list[str]], sender: str = "a@b.example", subject: str = "Hi"):
    return machine_generated({k.lower(): v for k, v in headers.items()}, sender, subject)


def test_machine_written_mail():
    assert load("auto-reply.eml").machine == "auto-reply (Auto-Submitted: auto-replied)"
    assert load("bounce.eml").machine == "bounce (delivery status report)"
    assert load("exchange-auto-reply.eml").machine == (
        "auto-reply (subject 'Automatic reply:' with X-MS-Exchange-Inbox-Rules-Loop: "
        "tomasz.nowak@example.pl, X-Auto-Response-Suppress: All)"
    )
    assert load("gmail-reply.eml").machine is None

    assert check({"Auto-Submitted": ["no"]}) is None
    assert check({"Auto-Submitted": ["auto-generated; owner-email=x@y"]}) == (
        "auto-reply (Auto-Submitted: auto-generated)"
    )
    assert check({"X-Autoreply": ["yes"]}) == "auto-reply (X-Autoreply: yes)"
    assert check({"X-Autorespond": ["Vacation"]}) == "auto-reply (X-Autorespond: Vacation)"
    assert check({"Precedence": ["auto_reply"]}) == "auto-reply (Precedence: auto_reply)"
    assert check({}, sender="postmaster@mx.example") == "bounce (from postmaster@mx.example)"
    assert check({}, sender="MAILER-DAEMON@mx.example").startswith("bounce (from ")
    report = "multipart/report; boundary=x; report-type=delivery-status"
    assert check({"Content-Type": [report]}) == "bounce (delivery status report)"
    # A read receipt is a report too, but not a bounce.
    mdn = "multipart/report; report-type=disposition-notification; boundary=x"
    assert check({"Content-Type": [mdn]}) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office hours my card was charged twice",
        "Auto reply not working on my account",
        "Automatic reply settings reset after update",
        "Autoreply broke my inbox",
        "Out of Office: what does this error mean?",  # the prefix, but no header evidence
        "Automatic reply: ticket 5521",
    ],
)
def test_a_subject_alone_never_makes_mail_machine_written(subject):
    """Finding: customer subjects matched the auto-reply pattern and the mail was dropped."""
    assert check({}, subject=subject) is None
    # Contact-form relays and mailing lists send real complaints with these.
    assert check({"Precedence": ["bulk"]}, subject=subject) is None
    assert check({"Precedence": ["list"]}, subject=subject) is None
    assert check({"Precedence": ["junk"]}, subject=subject) is None


@pytest.mark.parametrize(
    ("subject", "headers", "evidence"),
    [
        ("Out of Office: back Monday", {"X-Auto-Response-Suppress": ["All"]}, "Out of Office"),
        ("Abwesenheitsnotiz: Urlaub", {"Return-Path": ["<>"]}, "Abwesenheitsnotiz"),
        ("Réponse automatique : absent", {"X-Auto-Response-Suppress": ["OOF"]}, "Réponse"),
        ("自动回复：休假中", {"X-MS-Exchange-Inbox-Rules-Loop": ["a@b.example"]}, "自动回复"),
        ("Auto-Reply: received", {"Return-Path": ["<>"]}, "Auto-Reply"),
    ],
)
def test_autoresponder_subject_with_a_supporting_header(subject, headers, evidence):
    why = check(headers, subject=subject)
    assert why is not None and why.startswith(f"auto-reply (subject '{evidence}")
    # The supporting header alone (Outlook sets X-Auto-Response-Suppress on ordinary mail).
    assert check(headers, subject="My order never arrived") is None


def test_contact_form_relay_with_a_lookalike_subject_is_customer_mail():
    m = load("customer-ooo-subject.eml")
    assert m.machine is None and m.problem is None
    assert m.subject == "Out of office hours my card was charged twice"
    assert "charged twice (2 x 89 EUR)" in m.text


def test_date_without_zone_is_read_in_the_sources_zone():
    def date(header: str, zone: str = "UTC") -> datetime | None:
        return parse(
            f"From: a@b.example\r\nDate: {header}\r\n\r\nhi\r\n".encode(), default_tz=zone
        ).date

    berlin = "Europe/Berlin"
    # No zone: the source's zone (CEST is UTC+2 in May), like every other collector.
    assert date("Tue, 07 May 2024 09:00:00", berlin) == datetime(2024, 5, 7, 7, 0, tzinfo=UTC)
    assert date("Tue, 07 May 2024 09:00:00") == datetime(2024, 5, 7, 9, 0, tzinfo=UTC)
    # "-0000" is RFC 5322's "UTC, local zone unknown": UTC whatever the source's zone.
    assert date("Tue, 07 May 2024 09:00:00 -0000", berlin) == datetime(2024, 5, 7, 9, tzinfo=UTC)
    assert date("Tue, 07 May 2024 09:00:00 +0800", berlin) == datetime(2024, 5, 7, 1, tzinfo=UTC)
    assert date("Tue, 07 May 2024 09:00:00 GMT", berlin) == datetime(2024, 5, 7, 9, tzinfo=UTC)
    for garbage in ("sometime last tuesday", "Tue, 45 May 2024 09:00:00 +0000", "   "):
        assert date(garbage, berlin) is None


def test_huge_body_is_capped_in_raw_not_in_text():
    body = ("Line of a very long complaint. " * 2000).encode()
    m = parse(b"From: a@example.com\r\nSubject: long\r\nMessage-ID: <l@x>\r\n\r\n" + body)
    raw = m.raw()
    assert len(raw["body"].encode()) <= mailparse.BODY_RAW_MAX_BYTES
    assert raw["body_truncated_from_bytes"] > mailparse.BODY_RAW_MAX_BYTES
    assert len(m.text) > 50_000
    # CJK: 3 bytes a character, still capped in bytes without a broken character.
    cjk = ("我的订单还没有到。" * 2000).encode()
    m2 = parse(b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + cjk)
    assert len(m2.raw()["body"].encode()) <= mailparse.BODY_RAW_MAX_BYTES
