"""``kind: email`` with ``path``: Maildir, mbox and .eml folders through the real runner/store,
plus the config rules of the email source (no server needed)."""

from __future__ import annotations

import mailbox
import os
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.collectors import mail as mail_module
from pipeline.collectors.mail import decode_folder, encode_folder, parse_fetch
from pipeline.config import AppConfig, load_config
from pipeline.errors import ConfigError
from pipeline.items import Status
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.store import Store

DATA = Path(__file__).parent.parent / "data" / "mail"
FIXTURES = sorted(DATA.glob("*.eml"))
# Each of these is a bad input: machine-written mail is listed there too, so it can be audited.
NOT_STORED = {"auto-reply.eml", "bounce.eml", "exchange-auto-reply.eml", "not-a-message.eml"}


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(f"sqlite:///{tmp_path / 'careradar.db'}")
    try:
        yield s
    finally:
        s.close()


def make_cfg(tmp_path: Path, path: str, extra: str = "") -> AppConfig:
    p = tmp_path / "careradar.yaml"
    p.write_text(
        "sources:\n"
        "  - name: archive\n"
        "    kind: email\n"
        f"    path: {path}\n"
        "    brand_addresses: ['@brewista.example']\n" + extra,
        encoding="utf-8",
    )
    return load_config(p, registry.source_models())


def run(cfg: AppConfig, store: Store):
    return Runner(cfg, store, classifier=LexiconClassifier()).run_once("archive")


def message(mid: str, body: str, sender: str = "kim@example.com", **headers: str) -> bytes:
    lines = [
        f"From: {sender}",
        "Subject: order",
        f"Date: {headers.pop('date', 'Tue, 07 May 2024 09:00:00 +0000')}",
        f"Message-ID: <{mid}>",
    ]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join([*lines, "", body, ""])).encode()


# -- Maildir ------------------------------------------------------------------------------------


@pytest.mark.slow  # every fixture: loads language models for ~10 languages
def test_maildir_import_is_incremental_and_survives_flag_changes(tmp_path, store):
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    keys = [md.add(f.read_bytes()) for f in FIXTURES]
    cfg = make_cfg(tmp_path, "Maildir", "    batch_size: 4\n")
    r1 = run(cfg, store)
    assert (r1.new, r1.bad) == (len(FIXTURES) - len(NOT_STORED), len(NOT_STORED))
    assert r1.batches == -(-len(FIXTURES) // 4)
    bad = store.bad_inputs(source="archive")
    assert all(b["location"].startswith("maildir ") for b in bad)
    assert sum("not an e-mail" in b["reason"] for b in bad) == 1

    # A mail client reads a message: it moves from new/ to cur/ with flags. Not new mail.
    msg = md[keys[0]]
    msg.set_subdir("cur")
    msg.add_flag("S")
    md[keys[0]] = msg
    md.add(message("fresh@example.com", "Where is my parcel?"))
    r2 = run(cfg, store)
    assert (r2.seen, r2.new, r2.bad) == (1, 1, 0)
    assert run(cfg, store).seen == 0


def test_maildir_cursor_is_bounded(tmp_path, store, monkeypatch):
    monkeypatch.setattr(mail_module, "MAX_SEEN_KEYS", 3)
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    base = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    for n in range(8):
        key = md.add(message(f"b{n}@example.com", f"question number {n}?"))
        path = tmp_path / "Maildir" / "new" / key
        os.utime(path, (base + n * 60, base + n * 60))
    cfg = make_cfg(tmp_path, "Maildir", "    batch_size: 2\n")
    assert run(cfg, store).new == 8
    cursor = store.get_cursor("archive")["files"]
    assert len(cursor["seen"]) <= 3 and cursor["watermark"] >= base + 4 * 60
    assert run(cfg, store).seen == 0


# -- mbox ---------------------------------------------------------------------------------------


def test_mbox_import_reads_on_from_the_offset(tmp_path, store):
    box = mailbox.mbox(tmp_path / "archive.mbox")
    box.add(message("m1@example.com", "From the start my order was wrong.\nFrom now on?"))
    box.add((DATA / "latin1-qp.eml").read_bytes())
    box.flush()
    box.close()
    cfg = make_cfg(tmp_path, "archive.mbox")
    r1 = run(cfg, store)
    assert (r1.new, r1.bad) == (2, 0)
    item = store.find_item("archive", "m1@example.com")
    # mailbox escapes body lines starting with "From " as ">From "; the import undoes it.
    assert item is not None and item.text.endswith("From now on?")
    assert ">From" not in item.text
    assert store.find_item("archive", "latin1-qp-001@example.fr").title == "Commande non reçue"

    box = mailbox.mbox(tmp_path / "archive.mbox")
    box.add(message("m3@example.com", "One more thing."))
    box.flush()
    box.close()
    r2 = run(cfg, store)
    assert (r2.seen, r2.new) == (1, 1)
    assert run(cfg, store).seen == 0

    # A replaced file (different beginning) is read from the start; nothing is stored twice.
    (tmp_path / "archive.mbox").write_bytes(
        b"From x@y Tue May  7 09:00:00 2024\n" + message("m4@example.com", "new file")
    )
    r3 = run(cfg, store)
    assert (r3.seen, r3.new) == (1, 1)


def test_mbox_from_line_date_is_the_fallback(tmp_path, store):
    raw = message("nodate@example.com", "no date header", date="not a date")
    (tmp_path / "a.mbox").write_bytes(b"From someone Tue May  7 09:30:00 2024\n" + raw)
    run(make_cfg(tmp_path, "a.mbox"), store)
    item = store.find_item("archive", "nodate@example.com")
    assert item is not None and item.created_at == datetime(2024, 5, 7, 9, 30, tzinfo=UTC)


def test_mbox_thread_with_brand_reply_is_responded(tmp_path, store):
    # Recent: a first run's older history starts no reply clock (first_run_max_age).
    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    box = mailbox.mbox(tmp_path / "support.mbox")
    box.add(message("c1@example.com", "My machine leaks, help?", date=format_datetime(asked)))
    box.add(
        message(
            "r1@brewista.example",
            "A new seal is on its way.\n\n-- \nBrewista Care",
            sender="Care <care@brewista.example>",
            date=format_datetime(asked + timedelta(hours=2)),
            In_Reply_To="<c1@example.com>",
            References="<c1@example.com>",
        )
    )
    box.flush()
    box.close()
    result = run(make_cfg(tmp_path, "support.mbox"), store)
    assert result.responded == 1
    item = store.find_item("archive", "c1@example.com")
    assert item.status is Status.RESPONDED
    assert item.first_response_at == asked + timedelta(hours=2)
    reply = store.find_item("archive", "r1@brewista.example")
    assert reply.author_is_brand and reply.text == "A new seal is on its way."


# -- .eml folder --------------------------------------------------------------------------------


@pytest.mark.slow  # every fixture: loads language models for ~10 languages
def test_eml_folder_import(tmp_path, store):
    folder = tmp_path / "exports"
    shutil.copytree(DATA, folder / "nested")
    cfg = make_cfg(tmp_path, "exports")
    r1 = run(cfg, store)
    assert (r1.new, r1.bad) == (len(FIXTURES) - len(NOT_STORED), len(NOT_STORED))
    assert store.find_item("archive", "ooo-001@example.com") is None  # auto-reply not stored
    assert store.find_item("archive", "bounce-001@mx.brewista.example") is None
    html = store.find_item("archive", "html-only-001@example.com")
    assert html.raw["file"] == "nested/html-only.eml" and "script" not in html.text
    assert run(cfg, store).seen == 0

    # An edited file is read again (and updates its item); the others are not.
    edited = folder / "nested" / "alternative.eml"
    edited.write_bytes(edited.read_bytes().replace(b"PLAIN VERSION", b"EDITED VERSION"))
    r3 = run(cfg, store)
    assert (r3.seen, r3.updated) == (1, 1)
    assert store.find_item("archive", "alt-001@example.org").text.startswith("EDITED VERSION")


def test_single_eml_file_and_future_date(tmp_path, store):
    future = datetime.now(UTC) + timedelta(days=400)
    (tmp_path / "one.eml").write_bytes(
        message("future@example.com", "Date from a broken clock", date=format_datetime(future))
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    r = run(make_cfg(tmp_path, "one.eml"), store)
    assert r.new == 1
    item = store.find_item("archive", "future@example.com")
    # A Date in the future would push the SLA due time into the future: the file time is used.
    assert before - timedelta(minutes=5) <= item.created_at <= datetime.now(UTC)


def test_since_filters_an_import(tmp_path, store):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.eml").write_bytes(message("old@example.com", "old one"))
    recent = format_datetime(datetime.now(UTC) - timedelta(days=1))
    (tmp_path / "d" / "new.eml").write_bytes(message("new@example.com", "new one", date=recent))
    # An old auto-reply is outside 'since' too: not even listed as filtered.
    (tmp_path / "d" / "ooo.eml").write_bytes((DATA / "auto-reply.eml").read_bytes())
    r = run(make_cfg(tmp_path, "d", "    since: 7d\n"), store)
    assert r.new == 1 and store.find_item("archive", "new@example.com") is not None
    assert r.bad == 0


def test_machine_mail_is_listed_in_bad_inputs_and_lookalike_customer_mail_is_stored(
    tmp_path, store
):
    """Finding: mail filtered as an auto-reply vanished, and customer subjects were filtered."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in (
        "auto-reply.eml",
        "bounce.eml",
        "exchange-auto-reply.eml",
        "customer-ooo-subject.eml",
    ):
        shutil.copy(DATA / name, folder / name)
    result = run(make_cfg(tmp_path, "in"), store)
    assert (result.new, result.bad) == (1, 3)
    customer = store.find_item("archive", "form-relay-001@forms.brewista.example")
    assert customer is not None and customer.title.startswith("Out of office hours")
    reasons = {b["location"]: b["reason"] for b in store.bad_inputs(source="archive")}
    assert reasons == {
        "eml auto-reply.eml": "auto-reply not stored (Auto-Submitted: auto-replied)",
        "eml bounce.eml": "bounce not stored (delivery status report)",
        "eml exchange-auto-reply.eml": "auto-reply not stored (subject 'Automatic reply:' with "
        "X-MS-Exchange-Inbox-Rules-Loop: tomasz.nowak@example.pl, X-Auto-Response-Suppress: All)",
    }
    for b in store.bad_inputs(source="archive"):
        assert b["excerpt"].startswith("X-Fixture-Purpose:")  # the operator can read what it was


def test_timezone_applies_to_zoneless_dates_and_mbox_from_lines(tmp_path, store):
    raw = message("tz@example.com", "no zone in my Date", date="Tue, 07 May 2024 09:00:00")
    nodate = message("tz2@example.com", "no Date at all", date="garbage")
    (tmp_path / "a.mbox").write_bytes(
        b"From someone Tue May  7 09:30:00 2024\n"
        + raw
        + b"\nFrom someone Tue Jan  9 09:30:00 2024\n"
        + nodate
    )
    run(make_cfg(tmp_path, "a.mbox", "    timezone: Asia/Kuala_Lumpur\n"), store)
    item = store.find_item("archive", "tz@example.com")
    assert item is not None and item.created_at == datetime(2024, 5, 7, 1, 0, tzinfo=UTC)
    fallback = store.find_item("archive", "tz2@example.com")
    assert fallback is not None and fallback.created_at == datetime(2024, 1, 9, 1, 30, tzinfo=UTC)


def test_fallback_date_before_1990_is_not_used(tmp_path, store):
    raw = message("old-clock@example.com", "my clock says 1970", date="not a date")
    (tmp_path / "a.mbox").write_bytes(b"From someone Thu Jan  1 00:00:00 1970\n" + raw)
    before = datetime.now(UTC) - timedelta(seconds=5)
    run(make_cfg(tmp_path, "a.mbox"), store)
    item = store.find_item("archive", "old-clock@example.com")
    assert item is not None and item.created_at >= before  # now, not 1970


def test_missing_path_is_not_configured(tmp_path, store):
    r = run(make_cfg(tmp_path, "nowhere"), store)
    assert r.status == "not_configured" and "does not exist" in (r.error or "")


# -- config -------------------------------------------------------------------------------------


def write(tmp_path: Path, source: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(f"sources:\n  - {source}\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{name: m, kind: email, host: imap.example.com, security: plain, username: u, "
            "password: p}",
            "security: plain would send the password to imap.example.com unencrypted",
        ),
        ("{name: m, kind: email, host: h.example, path: x}", "either 'host' (IMAP) or 'path'"),
        ("{name: m, kind: email}", "either 'host' (IMAP) or 'path'"),
        ("{name: m, kind: email, host: h.example, username: u}", "needs 'username' and 'password'"),
        ("{name: m, kind: email, path: x, format: pst}", "sources[0].format"),
        ("{name: m, kind: email, path: x, timezone: Mars/Olympus}", "unknown time zone"),
    ],
)
def test_config_errors(tmp_path, source, message):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, source), registry.source_models())
    assert message in exc.value.message


def test_config_accepts_plain_to_loopback_or_when_allowed(tmp_path):
    for host in ("127.0.0.1", "localhost", "::1"):
        src = f"{{name: m, kind: email, host: '{host}', security: plain, username: u, password: p}}"
        cfg = load_config(write(tmp_path, src), registry.source_models())
        assert cfg.sources[0].channel == "email"
    src = (
        "{name: m, kind: email, host: mail.example, security: plain, allow_insecure: true, "
        "username: u, password: p}"
    )
    assert load_config(write(tmp_path, src), registry.source_models()).sources[0].imap_port() == 143


def test_folder_names_in_modified_utf7():
    assert encode_folder("INBOX") == '"INBOX"'
    assert encode_folder("Sent Items") == '"Sent Items"'
    assert encode_folder("Отправленные") == '"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"'
    assert encode_folder("A&B") == '"A&-B"'
    for name in ("Отправленные", "已发送", "Envoyés", "A&B"):
        assert decode_folder(encode_folder(name)[1:-1]) == name


# -- IMAP FETCH responses -----------------------------------------------------------------------
# imaplib's shape, as seen from dovecot: a (text before the literal, literal) tuple per message,
# then the text after the literal as its own bytes element. dovecot always puts UID first; other
# servers need not (RFC 3501 fixes no order), so the other orders are written out here.

BODY = b"From: a@b.example\r\nSubject: x\r\n\r\nhello\r\n"


def test_fetch_response_uid_before_the_body():
    data = [
        (
            b'1 (UID 41 INTERNALDATE "24-Nov-2026 01:24:58 +0100" RFC822.SIZE 40 BODY[]<0> {40}',
            BODY,
        ),
        b")",
    ]
    (resp,) = parse_fetch(data)
    assert (resp.seq, resp.uid, resp.size, resp.body) == (1, 41, 40, BODY)
    assert resp.internaldate == datetime(2026, 11, 24, 0, 24, 58, tzinfo=UTC)


def test_fetch_response_uid_after_the_body():
    """Finding: a UID after the literal was never seen, and the message skipped silently."""
    data = [
        (b"7 (BODY[]<0> {40}", BODY),
        b' UID 42 FLAGS (\\Seen \\Answered) INTERNALDATE " 7-May-2024 09:00:00 -0500")',
        (b"8 (RFC822.SIZE 40 BODY[]<0> {40}", BODY),
        b" UID 43)",
        b"9 (FLAGS (\\Deleted))",  # an unsolicited flag update for another message
    ]
    first, second, unsolicited = parse_fetch(data)
    assert (first.seq, first.uid, first.body) == (7, 42, BODY)
    assert first.flags == ("\\Seen", "\\Answered")
    assert first.internaldate == datetime(2024, 5, 7, 14, 0, tzinfo=UTC)
    assert (second.seq, second.uid, second.size, second.internaldate) == (8, 43, 40, None)
    assert (unsolicited.seq, unsolicited.uid, unsolicited.body) == (9, None, None)
    assert unsolicited.flags == ("\\Deleted",)


def test_fetch_response_without_uid_or_with_an_empty_body():
    no_uid, empty = parse_fetch(
        [(b"3 (BODY[]<0> {40}", BODY), b")", b'4 (UID 9 BODY[]<0> "" RFC822.SIZE 0)']
    )
    assert (no_uid.seq, no_uid.uid, no_uid.body) == (3, None, BODY)
    assert (empty.uid, empty.body) == (9, b"")


def test_size_only_fetch_in_any_order():
    resps = parse_fetch([b"1 (UID 5 RFC822.SIZE 40)", b"2 (RFC822.SIZE 77 UID 6)"])
    assert [(r.uid, r.size, r.body) for r in resps] == [(5, 40, None), (6, 77, None)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'INTERNALDATE "07-May-2024 09:00:00 +0200"', datetime(2024, 5, 7, 7, tzinfo=UTC)),
        (b'INTERNALDATE " 7-May-2024 09:00:00 -0000"', datetime(2024, 5, 7, 9, tzinfo=UTC)),
        (b'INTERNALDATE "7-May-2024 23:30:00 -0130"', datetime(2024, 5, 8, 1, tzinfo=UTC)),
        (b'INTERNALDATE "07-Foo-2024 09:00:00 +0000"', None),
        (b"RFC822.SIZE 40", None),
    ],
)
def test_internaldate(text, expected):
    assert mail_module._internaldate(text) == expected
