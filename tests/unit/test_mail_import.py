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
from pipeline.collectors.mail import decode_folder, encode_folder
from pipeline.config import AppConfig, load_config
from pipeline.errors import ConfigError
from pipeline.items import Status
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.store import Store

DATA = Path(__file__).parent.parent / "data" / "mail"
FIXTURES = sorted(DATA.glob("*.eml"))
NOT_STORED = {"auto-reply.eml", "bounce.eml", "not-a-message.eml"}


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
    assert (r1.new, r1.bad) == (len(FIXTURES) - len(NOT_STORED), 1)
    assert r1.batches == -(-len(FIXTURES) // 4)
    bad = store.bad_inputs(source="archive")[0]
    assert bad["location"].startswith("maildir ") and "not an e-mail" in bad["reason"]

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
    asked = datetime(2024, 5, 7, 9, 0, tzinfo=UTC)
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
    assert (r1.new, r1.bad) == (len(FIXTURES) - len(NOT_STORED), 1)
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
    r = run(make_cfg(tmp_path, "d", "    since: 7d\n"), store)
    assert r.new == 1 and store.find_item("archive", "new@example.com") is not None


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
