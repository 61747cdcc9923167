"""``kind: email`` against a real dovecot (started by the fixture) and the real store.

Every test gets its own mailbox user on one session-wide server; messages are appended over
IMAP by the test, then collected through ``Runner.run_once`` exactly as ``careradar run`` does.
"""

from __future__ import annotations

import imaplib
import itertools
import logging
import os
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar

import pytest

from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.mail import EmailCollector
from pipeline.config import AppConfig, load_config
from pipeline.errors import TerminalError, TransientError
from pipeline.items import Status
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.store import Store
from tests.support.dovecot import Dovecot, free_port, running_dovecot

DATA = Path(__file__).parent.parent / "data" / "mail"
PASSWORD = "imap-Test-pw-7f3a9c"  # the value the tests look for in messages and logs
_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # One mailbox per test, created up front (dovecot caches its passwd-file).
    with running_dovecot({f"user{n}": PASSWORD for n in range(1, 41)}) as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    name = f"user{next(_users)}"
    assert name in dovecot.users, "more IMAP tests than pre-created users: raise the pool"
    return name


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'careradar.db'}")
    try:
        yield s
    finally:
        s.close()


def make_cfg(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dovecot: Dovecot,
    user: str,
    extra: str = "",
    password: str = PASSWORD,
) -> AppConfig:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", password)
    p = tmp_path / "careradar.yaml"
    p.write_text(
        "brands:\n  - {name: Brewista, accounts: ['@BrewistaCare', 'care@brewista.example']}\n"
        "sources:\n"
        "  - name: support-mail\n"
        "    kind: email\n"
        "    brand: Brewista\n"
        f"    host: {dovecot.host}\n"
        f"    port: {dovecot.port}\n"
        "    security: plain\n"
        f"    username: {user}\n"
        "    password: ${TEST_IMAP_PASSWORD}\n"
        "    brand_addresses: [support@brewista.example]\n" + extra,
        encoding="utf-8",
    )
    return load_config(p, registry.source_models())


def runner(cfg: AppConfig, store: Store) -> Runner:
    return Runner(cfg, store, classifier=LexiconClassifier())


def mail(
    mid: str,
    body: str,
    *,
    sender: str = "jane.doe@example.com",
    subject: str = "My order",
    date: datetime | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> bytes:
    when = date or datetime.now(UTC) - timedelta(hours=1)
    lines = [
        f"From: {sender}",
        "To: support@brewista.example",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{mid}>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append(f"References: {references}")
    lines += ["Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines).encode("utf-8")


def test_incremental_fetch_reads_only_new_mail_and_marks_nothing_seen(
    dovecot, user, tmp_path, monkeypatch, sqlite_store
):
    dovecot.append(user, "INBOX", mail("m1@example.com", "Where is my order?"))
    dovecot.append(user, "INBOX", mail("m2@example.com", "The grinder is broken."))
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user, "    batch_size: 1\n")
    r1 = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r1.status, r1.seen, r1.new) == ("ok", 2, 2), r1.error
    assert r1.batches >= 2  # batch_size 1: one batch per message, cursor after each
    assert sqlite_store.get_cursor("support-mail")["folders"]["INBOX"]["last_uid"] == 2

    dovecot.append(user, "INBOX", mail("m3@example.com", "Still waiting for a refund."))
    r2 = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r2.seen, r2.new) == (1, 1)
    assert sqlite_store.find_item("support-mail", "m3@example.com") is not None

    r3 = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r3.seen, r3.new) == (0, 0)
    # BODY.PEEK[] on a read-only EXAMINE: the customer's unread mail stays unread.
    assert all("\\Seen" not in flags for flags in dovecot.flags(user, "INBOX").values())


def test_since_limits_the_first_run(dovecot, user, tmp_path, monkeypatch, sqlite_store):
    old = datetime.now(UTC) - timedelta(days=30)
    dovecot.append(user, "INBOX", mail("old@example.com", "old", date=old), when=old.timestamp())
    dovecot.append(user, "INBOX", mail("new@example.com", "Where is my order?"))
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user)
    r = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r.seen, r.new) == (1, 1)
    assert sqlite_store.find_item("support-mail", "old@example.com") is None
    # The old message is below the cursor now, so later runs do not pick it up either.
    assert sqlite_store.get_cursor("support-mail")["folders"]["INBOX"]["last_uid"] == 2


def test_uidvalidity_change_rereads_the_folder_from_since(
    dovecot, user, tmp_path, monkeypatch, sqlite_store, caplog
):
    dovecot.create_folder(user, "Support")
    dovecot.append(user, "Support", mail("a@example.com", "Order A never arrived."))
    dovecot.append(user, "Support", mail("b@example.com", "Order B is damaged."))
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user, "    inbox: Support\n")
    r1 = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r1.seen, r1.new) == (2, 2)
    before = sqlite_store.get_cursor("support-mail")["folders"]["Support"]

    # The folder is recreated (a server migration, a restore): UIDs start again at 1, so the
    # new message has a UID *below* the stored last_uid and would be missed without the check.
    dovecot.delete_folder(user, "Support")
    dovecot.create_folder(user, "Support")
    dovecot.set_uidvalidity(user, "Support", before["uidvalidity"] + 1000)
    dovecot.append(user, "Support", mail("a@example.com", "Order A never arrived."))
    dovecot.append(user, "Support", mail("c@example.com", "Order C: wrong colour."))
    with caplog.at_level(logging.WARNING, logger="pipeline.collectors.mail"):
        r2 = runner(cfg, sqlite_store).run_once("support-mail")
    assert (r2.seen, r2.new, r2.unchanged) == (2, 1, 1)
    assert sqlite_store.find_item("support-mail", "c@example.com") is not None
    assert "UIDVALIDITY of Support changed" in caplog.text
    after = sqlite_store.get_cursor("support-mail")["folders"]["Support"]
    assert after == {"uidvalidity": before["uidvalidity"] + 1000, "last_uid": 2}


def test_reply_in_sent_folder_marks_customer_mail_responded(
    dovecot, user, tmp_path, monkeypatch, store
):
    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    answered = asked + timedelta(minutes=95)
    dovecot.append(
        user,
        "INBOX",
        mail("q-1@example.com", "My espresso machine leaks. What should I do?", date=asked),
    )
    # An unrelated customer mail stays open.
    dovecot.append(user, "INBOX", mail("q-2@example.com", "Do you ship to Norway?", date=asked))
    dovecot.append(
        user,
        "Sent",
        mail(
            "r-1@brewista.example",
            "Sorry to hear that! A replacement seal is on its way.\n\n"
            "On Mon, Jane wrote:\n> My espresso machine leaks.",
            sender="Brewista Support <support@brewista.example>",
            subject="Re: My order",
            date=answered,
            in_reply_to="q-1@example.com",
            references="<q-1@example.com>",
        ),
    )
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user, "    sent: auto\n")
    result = runner(cfg, store).run_once("support-mail")
    assert (result.status, result.new, result.responded) == ("ok", 3, 1), result.error

    customer = store.find_item("support-mail", "q-1@example.com")
    assert customer is not None
    assert customer.status is Status.RESPONDED
    assert customer.first_response_at == answered
    assert (customer.thread_id, customer.author_is_brand) == ("q-1@example.com", False)
    reply = store.find_item("support-mail", "r-1@brewista.example")
    assert reply is not None and reply.author_is_brand
    assert (reply.thread_id, reply.parent_id) == ("q-1@example.com", "q-1@example.com")
    assert reply.text == "Sorry to hear that! A replacement seal is on its way."
    other = store.find_item("support-mail", "q-2@example.com")
    assert other is not None and other.status is Status.NEW and other.first_response_at is None
    assert set(store.get_cursor("support-mail")["folders"]) == {"INBOX", "Sent"}


def test_inbox_mail_from_a_brand_address_is_a_reply(
    dovecot, user, tmp_path, monkeypatch, sqlite_store
):
    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    dovecot.append(user, "INBOX", mail("t-1@example.com", "Is my warranty valid?", date=asked))
    # A colleague answered from the care address (from cfg.app.brands accounts) with the
    # support mailbox in Cc, so the reply landed in INBOX, not in Sent.
    dovecot.append(
        user,
        "INBOX",
        mail(
            "t-2@brewista.example",
            "Yes, it is valid until 2027.",
            sender="care@brewista.example",
            date=asked + timedelta(minutes=20),
            references="<t-1@example.com>",
            in_reply_to="t-1@example.com",
        ),
    )
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user)
    result = runner(cfg, sqlite_store).run_once("support-mail")
    assert result.responded == 1
    item = sqlite_store.find_item("support-mail", "t-1@example.com")
    assert item is not None and item.first_response_at == asked + timedelta(minutes=20)


def test_login_failure_is_terminal_and_never_shows_the_password(
    dovecot, user, tmp_path, monkeypatch, caplog
):
    # One refused login only: dovecot makes each further refusal from an address slower.
    wrong = "Wr0ng-Secret-Value-91"
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user, password=wrong)
    collector = EmailCollector(cfg.sources[0], CollectContext(app=cfg))  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG), pytest.raises(TerminalError) as exc:
        list(collector.collect(None))
    message = f"{exc.value.message} {exc.value.hint}"
    assert f"login as '{user}'" in message and f"127.0.0.1:{dovecot.port}" in message
    assert "was refused" in message and "AUTHENTICATIONFAILED" in message
    assert wrong not in message and PASSWORD not in message
    assert wrong not in caplog.text
    assert wrong not in repr(cfg)  # SecretStr: not even the config's repr shows it


def test_connection_refused_is_transient(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", PASSWORD)
    p = tmp_path / "c.yaml"
    p.write_text(
        "sources:\n  - {name: m, kind: email, host: 127.0.0.1, port: "
        f"{free_port()}, security: plain, username: u, password: '${{TEST_IMAP_PASSWORD}}', "
        "timeout: 2s}\n",
        encoding="utf-8",
    )
    cfg = load_config(p, registry.source_models())
    collector = EmailCollector(cfg.sources[0], CollectContext(app=cfg))  # type: ignore[arg-type]
    with pytest.raises(TransientError) as exc:
        list(collector.collect(None))
    assert "connect" in exc.value.message and PASSWORD not in exc.value.message


@pytest.mark.slow  # the first French/Korean texts load more language models (~3 s)
def test_broken_mime_is_kept_and_garbage_is_one_bad_input(
    dovecot, user, tmp_path, monkeypatch, sqlite_store
):
    names = [
        None,  # a good message
        "broken-boundary.eml",
        "not-a-message.eml",
        "undecodable-headers.eml",
        None,
    ]
    for n, name in enumerate(names):
        raw = (DATA / name).read_bytes() if name else mail(f"good-{n}@example.com", "Help!")
        dovecot.append(user, "INBOX", raw)
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user)
    result = runner(cfg, sqlite_store).run_once("support-mail")
    assert (result.status, result.seen, result.new, result.bad) == ("partial", 4, 4, 1)
    bad = sqlite_store.bad_inputs(source="support-mail")
    assert len(bad) == 1
    assert "INBOX UID 3" in bad[0]["location"] and "not an e-mail" in bad[0]["reason"]
    repaired = sqlite_store.find_item("support-mail", "broken-boundary-001@example.kr")
    assert repaired is not None and "cracked lid" in repaired.text
    assert repaired.raw["attachments"][0]["filename"] == "lid.jpg"
    odd = sqlite_store.find_item("support-mail", "undecodable-001@example.ca")
    assert odd is not None and odd.title == "Problème avec ma facture"
    assert "120 €" in odd.text


def test_every_fixture_through_imap(dovecot, user, tmp_path, monkeypatch, sqlite_store):
    """All fixtures in one folder: machine mail and garbage are bad inputs, the rest stored."""
    files = sorted(DATA.glob("*.eml"))
    for f in files:
        dovecot.append(user, "INBOX", f.read_bytes())
    cfg = make_cfg(tmp_path, monkeypatch, dovecot, user, "    batch_size: 5\n")
    result = runner(cfg, sqlite_store).run_once("support-mail")
    skipped = {"auto-reply.eml", "bounce.eml", "exchange-auto-reply.eml", "not-a-message.eml"}
    assert (result.new, result.bad) == (len(files) - len(skipped), len(skipped))
    # Filtered mail is findable by folder and UID, with the evidence that filtered it.
    uid = {f.name: n for n, f in enumerate(files, start=1)}
    bad = {b["location"]: b["reason"] for b in sqlite_store.bad_inputs(source="support-mail")}
    where = f"imap 127.0.0.1 INBOX UID {uid['auto-reply.eml']} (UIDVALIDITY "
    assert [r for loc, r in bad.items() if loc.startswith(where)] == [
        "auto-reply not stored (Auto-Submitted: auto-replied)"
    ]
    customer = sqlite_store.find_item("support-mail", "form-relay-001@forms.brewista.example")
    assert customer is not None  # "Out of office hours ..." with Precedence: bulk is a customer
    ru = sqlite_store.find_item("support-mail", "ru-operator-001@example.ru")
    assert ru is not None and ru.text.endswith("я подам в суд.")
    sjis = sqlite_store.find_item("support-mail", "sjis-001@example.jp")
    assert sjis is not None and sjis.title == "配送の遅延について"
    assert "注文した商品がまだ届いていません" in sjis.text
    gb = sqlite_store.find_item("support-mail", "gb2312-001@example.cn")
    assert gb is not None and gb.title == "咖啡机漏水" and "写道" not in gb.text
    assert "写道" in gb.raw["body"]  # the full body is kept
    assert sqlite_store.find_item("support-mail", "ooo-001@example.com") is None
    nodate = sqlite_store.find_item("support-mail", "synthetic-d55793b31186a9edfec9c6fd2e2e5e02")
    assert nodate is not None and nodate.raw["date_fallback"] is True
    # "sometime last tuesday": INTERNALDATE (the append time, about now) is used instead.
    assert abs((nodate.created_at - datetime.now(UTC)).total_seconds()) < 600


def test_tls_and_starttls(dovecot, user, tmp_path, monkeypatch, sqlite_store):
    if dovecot.tls_port is None:
        reason = "openssl is not installed, so the server has no certificate"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the TLS tests must run)")
        pytest.skip(reason)
    dovecot.append(user, "INBOX", mail("tls-1@example.com", "Over TLS, please."))
    base = make_cfg(tmp_path, monkeypatch, dovecot, user)
    src = base.sources[0]
    tls = src.model_copy(
        update={"security": "tls", "port": dovecot.tls_port, "ca_file": str(dovecot.ca_file)}
    )
    starttls = tls.model_copy(update={"security": "starttls", "port": dovecot.port})
    for variant in (tls, starttls):
        cfg = base.model_copy(update={"sources": [variant]})
        r = runner(cfg, sqlite_store).run_once(variant)
        assert r.status == "ok", r.error
    assert sqlite_store.find_item("support-mail", "tls-1@example.com") is not None
    untrusted = tls.model_copy(update={"ca_file": None})
    collector = EmailCollector(untrusted, CollectContext(app=base))  # type: ignore[arg-type]
    with pytest.raises(TerminalError, match="not trusted"):
        list(collector.collect(None))


# -- a server that answers FETCH items in another order ----------------------------------------
# dovecot always sends UID first, so this scripted IMAP server (real sockets, real imaplib on the
# client side) sends message 1's UID after its body and message 2's body with no UID at all.


class _ScriptedImap(socketserver.StreamRequestHandler):
    messages: ClassVar[dict[int, bytes]] = {}

    def send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1] scripted server ready")
        while line := self.rfile.readline():
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            command = rest.upper()
            if command.startswith(b"CAPABILITY"):
                self.send(b"* CAPABILITY IMAP4rev1")
            elif command.startswith(b"EXAMINE"):
                self.send(b"* 3 EXISTS")
                self.send(b"* OK [UIDVALIDITY 77] UIDs valid")
            elif command.startswith(b"UID SEARCH"):
                self.send(b"* SEARCH " + b" ".join(str(u).encode() for u in self.messages))
            elif command.startswith(b"UID FETCH") and b"BODY.PEEK" not in command:
                for n, (uid, body) in enumerate(self.messages.items(), start=1):
                    self.send(b"* %d FETCH (RFC822.SIZE %d UID %d)" % (n, len(body), uid))
            elif command.startswith(b"UID FETCH"):
                self.fetch_bodies()
            elif command.startswith(b"LOGOUT"):
                self.send(b"* BYE")
                self.send(tag + b" OK LOGOUT completed")
                return
            self.send(tag + b" OK done")

    def fetch_bodies(self) -> None:
        date = b'INTERNALDATE "' + imaplib.Time2Internaldate(time.time())[1:-1].encode() + b'"'
        for n, (uid, body) in enumerate(self.messages.items(), start=1):
            literal = b"BODY[]<0> {%d}\r\n" % len(body) + body
            if n == 1:  # UID (and the date) after the body: legal, and was missed
                self.wfile.write(b"* 1 FETCH (%s UID %d %s)\r\n" % (literal, uid, date))
            elif n == 2:  # no UID at all: cannot be tied to a UID, must not vanish
                self.wfile.write(b"* 2 FETCH (%s)\r\n" % literal)
            else:
                self.wfile.write(b"* %d FETCH (UID %d %s %s)\r\n" % (n, uid, date, literal))


def test_fetch_items_in_any_order_and_unparsed_responses_are_recorded(
    tmp_path, monkeypatch, sqlite_store
):
    _ScriptedImap.messages = {
        11: mail("after@example.com", "UID after the body: still my complaint."),
        12: mail("lost@example.com", "No UID in the answer."),
        13: mail("usual@example.com", "The usual order."),
    }
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ScriptedImap)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("TEST_IMAP_PASSWORD", PASSWORD)
        p = tmp_path / "c.yaml"
        p.write_text(
            "sources:\n  - {name: support-mail, kind: email, host: 127.0.0.1, port: "
            f"{server.server_address[1]}, security: plain, username: u, "
            "password: '${TEST_IMAP_PASSWORD}', timeout: 5s}\n",
            encoding="utf-8",
        )
        cfg = load_config(p, registry.source_models())
        result = runner(cfg, sqlite_store).run_once("support-mail")
    finally:
        server.shutdown()
        server.server_close()
    assert (result.status, result.new, result.bad) == ("partial", 2, 1), result.error
    after = sqlite_store.find_item("support-mail", "after@example.com")
    assert after is not None and after.raw["uid"] == 11
    assert sqlite_store.find_item("support-mail", "usual@example.com") is not None
    (bad,) = sqlite_store.bad_inputs(source="support-mail")
    assert bad["location"] == "imap 127.0.0.1 INBOX (UIDVALIDITY 77)"
    assert bad["reason"] == (
        "fetched but not parsed: FETCH response for message number 2 carried no UID; "
        "UIDs without a body: 12"
    )
    assert "No UID in the answer." in bad["excerpt"]
    assert sqlite_store.get_cursor("support-mail")["folders"]["INBOX"]["last_uid"] == 13
