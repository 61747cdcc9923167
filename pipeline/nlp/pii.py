"""Find and redact personal data in text shown to people (alerts, digests, web, CLI).

The store keeps the raw text; redaction happens at display time. Kinds, in priority order when
two matches overlap:

- ``card``: 13-19 digits, optionally in groups of 4+ separated by one space or dash, that pass
  the Luhn check (so a random long number is left alone), and the 3-4 digit security code
  right after "CVV", "CVC", "security code", "安全码" ...;
- ``iban``: two letters, two check digits and 11-30 letters/digits (optionally in groups of four)
  whose mod-97 check is 1;
- ``national_id``: a Malaysian MyKad number ``YYMMDD-PB-###G`` whose first six digits are a
  real date (``900101-14-5678``; without dashes only right after "IC", "NRIC", "MyKad", "no. KP"
  ...), a Singapore NRIC/FIN (``S1234567D``) whose check letter is right, and a 16-digit
  Indonesian NIK right after "NIK" or "KTP", a Spanish DNI/NIE (``12345678Z``, ``X1234567L``)
  and an 18-character Chinese resident ID (``11010519491231002X``) whose check letter or digit
  is right (the Chinese one also needs a real birth date), and a US Social Security number
  (``078-05-1120``; without dashes only right after "SSN" or "social security") that could
  have been issued;
- ``bank_account``: 8-20 digits (in groups separated by one space or dash) only right after
  words that introduce an account: "account", "acc no", "a/c", "akaun", "rekening", "no rek",
  "cuenta", "银行账号" ... A bare long number is not called a bank account: too many order and
  tracking numbers look the same;
- ``email``: ``local@domain.tld`` (``+`` tags, dots, subdomains), also written to dodge
  scrapers with the ``@`` and dots in brackets: ``jane[at]example[dot]com``, ``jane (at)
  example.co.uk``, ``jane{at}example{.}com`` (only bracketed forms: "look at this dot com" is
  a sentence);
- ``phone``: an optional ``+CC``, an optional ``(area)``, then digit groups separated by single
  spaces, dashes or dots, 8-15 digits in all. Not a phone: dates (``2026-11-23``, ``23.11.2026``),
  year ranges, amounts next to a currency (``RM 12345678``, ``15.000.000 rupiah``), numbers glued
  to letters (``MY123456789SG``, ``#A12345``, the tail of ``PP-MY-1234567890``), and numbers
  right after "order", "invoice", "tracking", "ticket", "resi", "订单号" ...
  (``order 123-4567890``). Right after a phone word ("tel", "Telefon", "WA", "hp" ...) slashes
  and mixed separators count too (``Tel. 030/1234567``).

"Glued to letters" means letters of scripts that put spaces between words. Chinese, Japanese
and Thai do not, so ``我的手机13812345678，请回电`` still holds a phone number and
``邮箱abc@example.com`` an address.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EMAIL_RE", "PII_KINDS", "find_pii", "redact", "redact_part"]

PII_KINDS: Final = ("card", "iban", "national_id", "bank_account", "email", "phone")

_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
)
"""Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, bopomofo,
Han): a number or address right next to them is not glued to a word."""
_AFTER_UNSPACED = f"(?<=[{_UNSPACED}])"
_BEFORE_UNSPACED = f"(?=[{_UNSPACED}])"


def _starts(excluded: str) -> str:
    """Lookbehind: not after ``excluded`` (a character class body), unless after one of the
    :data:`_UNSPACED` scripts (themselves word characters)."""
    return f"(?:(?<![{excluded}])|{_AFTER_UNSPACED})"


def _ends(excluded: str) -> str:
    """Lookahead counterpart of :func:`_starts`."""
    return f"(?:(?![{excluded}])|{_BEFORE_UNSPACED})"


EMAIL_RE: Final = re.compile(
    _starts(r"\w.+%@-") + r"[A-Za-z0-9][A-Za-z0-9._%+-]*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}" + _ends(r"\w")
)
"""An e-mail address (also used by the entity extractor). ``@user@instance.example`` is a
public fediverse handle, not an address: the leading ``@`` rules it out."""

_CARD_RE: Final = re.compile(_starts(r"\w+-") + r"\d(?:[ -]?\d){12,18}" + _ends(r"\w-"))
_IBAN_RE: Final = re.compile(_starts(r"\w") + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}" + _ends(r"\w"))
_PHONE_RE: Final = re.compile(
    _starts(r"\w#+@$€£¥") + r"(?:\+\d{1,3}[ .-]?)?"  # country code
    r"(?:\(\d{1,4}\)[ .-]?)?"  # (area code)
    r"\d+(?:[ .-]\d+)*"  # digit groups, one separator between groups
     + _ends(r"\w@")
)

_DATE_RE: Final = re.compile(
    r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"  # 2026-11-23
    r"|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}"  # 23.11.2026, 11/23/26
    r"|(?:19|20)\d\d ?- ?(?:19|20)\d\d"  # 2019-2026
    r"|\d{1,2}[.:]\d{2} ?- ?\d{1,2}[.:]\d{2}"  # 10.30-11.45
)
_GROUPED_NUMBER: Final = re.compile(r"\d{1,3}(?:\.\d{3})+|\d+\.\d+")  # 10.000.000, 3.14159265
_CURRENCY_BEFORE: Final = re.compile(
    r"(?:RM|Rp\.?|IDR|MYR|SGD|USD|EUR|GBP|PHP|THB|INR|JPY|CNY|RMB|[$€£¥₹₱฿₩])\s*$",
    re.IGNORECASE,
)
_CURRENCY_AFTER: Final = re.compile(
    r"^\s*(?:RM|IDR|MYR|SGD|USD|EUR|GBP|PHP|THB|INR|JPY|CNY|RMB|[$€£¥₹₱฿₩]"
    r"|ringgit|rupiah|dollars?|euros?|pesos?|yuan|baht|yen|won)\b",
    re.IGNORECASE,
)
_REFERENCE_BEFORE: Final = re.compile(
    r"\b(?:order|invoice|tracking|track|ticket|case|claim|ref|reference|receipt|awb|parcel|"
    r"booking|reservation|tempahan|reserva|buchung|rechnung|factura|fatura|facture|"
    r"shipment|consignment|account|acct|member|membership|pesanan|pedido|resi|tiket|aduan|"
    r"caso|incidencia|protocolo|chamado|encomenda|rastreio|commande|bestellung|bestellnummer|"
    r"auftragsnummer|sendungsnummer|ticketnummer|vorgangsnummer)"
    r"\s*(?:(?:saya|aku|ku|kami|anda)\s+)?(?:no\.?|number|num|nr\.?|id|#)?\s*"
    r"(?:(?:is|was|adalah|ialah|es|era|ist|est)\s+)?[:：#]?\s*$"
    r"|(?:订单|訂單|单号|單號|运单|運單|快递单|快遞單|物流单|物流單|发票|發票|工单|工單|编号|編號"
    r"|注文番号|伝票番号)[号號]?\s*[:：#]?\s*$",
    re.IGNORECASE,
)
_DIGIT_BEFORE: Final = re.compile(r"\d[.,/:-]?$")
_LETTERS_BEFORE: Final = re.compile(r"[A-Za-z][-_/]$")
"""``PP-MY-1234567890``, ``AWB/12345678``: the digits are the tail of an identifier."""

_MYKAD_RE: Final = re.compile(
    _starts(r"\w-") + r"(\d{2})(\d{2})(\d{2})-(\d{2})-(\d{4})" + _ends(r"\w-")
)
_ID_WORD = r"(?:ic|i/c|nric|mykad|kad\s+pengenalan|k/?p|no\.?\s*k/?p)"
_MYKAD_BARE_RE: Final = re.compile(
    r"\b" + _ID_WORD + r"\s*(?:no\.?|number|num)?\s*[:#]?\s*"
    r"(?P<id>(\d{2})(\d{2})(\d{2})(\d{2})(\d{4}))(?!\w)",
    re.IGNORECASE,
)
_NRIC_RE: Final = re.compile(_starts(r"\w") + r"[STFG]\d{7}[A-Z]" + _ends(r"\w"))
_DNI_RE: Final = re.compile(
    _starts(r"\w-")
    + r"(?:(?P<nie>[XYZ])-?(?P<n7>\d{7})|(?P<n8>\d{8}))-?(?P<letter>[A-Z])"
    + _ends(r"\w-")
)
_CN_ID_RE: Final = re.compile(_starts(r"\w-") + r"\d{17}[\dXx]" + _ends(r"\w-"))
_NIK_RE: Final = re.compile(
    r"\b(?:nik|ktp|no\.?\s*ktp)\s*(?:no\.?)?\s*[:#]?\s*(?P<id>\d{16})(?!\w)", re.IGNORECASE
)
_SSN_RE: Final = re.compile(
    _starts(r"\w-") + r"(?P<area>\d{3})-(?P<group>\d{2})-(?P<serial>\d{4})" + _ends(r"\w-")
)
_SSN_BARE_RE: Final = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is\s+)?[:#]?\s*"
    r"(?P<area>\d{3})\s?(?P<group>\d{2})\s?(?P<serial>\d{4})(?!\w)",
    re.IGNORECASE,
)
_SECURITY_CODE_RE: Final = re.compile(
    r"(?:\b(?:cvv2?|cvc2?|csc|cid|security\s+code|card\s+code|kod\s+keselamatan"
    r"|c[óo]digo\s+de\s+seguridad|kode\s+keamanan)|安全码|安全碼)"
    r"\s*(?:is\s+|es\s+|adalah\s+)?[:#]?\s*(?P<code>\d{3,4})(?!\d)",
    re.IGNORECASE,
)
"""The three or four digits on the back of a card, only right after their name: with the
card number they are all a fraudster needs."""
_PHONE_WORD_RE: Final = re.compile(
    r"\b(?:tel|telp|telefon|telephone|phone|fon|mobil|mobile|handy|hp|whatsapp|wa)\.?\s*"
    r"(?:no\.?|nr\.?|number|nummer)?\s*[:#]?\s*(?P<number>\+?\d[\d /.-]{5,20}\d)(?![\d\w])",
    re.IGNORECASE,
)
"""A number right after a phone word, in the forms the unprompted pattern refuses (German
``030/1234567``, slashes and mixed separators)."""
_BANK_ACCOUNT_RE: Final = re.compile(
    r"(?:\b(?:bank\s+)?(?:account|acct|acc|a/c)\s*(?:no\.?|number|num|nr\.?|#)?"
    r"|\b(?:no\.?\s*|nombor\s+|nomor\s+)?(?:akaun|rekening|rek\.?|norek)(?:\s+bank)?"
    r"|\b(?:n[úu]mero\s+de\s+)?cuenta|\bclabe"
    r"|银行账号|银行卡号|银行账户|账号|账户)"
    r"(?:\s+(?:is|adalah|ialah|ni|nya|es))?\s*[:#]?\s*"
    r"(?:[A-Za-z]{2,12}\s*[:-]?\s*)?"  # a bank's name in between: "rekening BCA 123..."
    r"(?P<number>\d(?:[ -]?\d){7,19})" + _ends(r"\w-"),
    re.IGNORECASE,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _real_date(yy: str, mm: str, dd: str) -> bool:
    """``YYMMDD`` is a calendar date (any century; 29 Feb accepted)."""
    month, day = int(mm), int(dd)
    days = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def _nric_ok(value: str) -> bool:
    """Singapore NRIC (S/T) or FIN (F/G) check letter: weights 2765432, +4 for T and G."""
    weights = (2, 7, 6, 5, 4, 3, 2)
    total = sum(int(d) * w for d, w in zip(value[1:8], weights, strict=True))
    prefix = value[0]
    if prefix in "TG":
        total += 4
    letters = "JZIHGFEDCBA" if prefix in "ST" else "XWUTRQPNMLK"
    return value[8] == letters[total % 11]


def _dni_ok(m: re.Match[str]) -> bool:
    """Spanish DNI (8 digits) or NIE (X/Y/Z + 7 digits): the letter is the number mod 23."""
    number = m.group("n8") or str("XYZ".index(m.group("nie"))) + m.group("n7")
    return m.group("letter") == "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23]


def _cn_id_ok(value: str) -> bool:
    """Chinese resident ID: a real birth date YYYYMMDD at 7-14 and the ISO 7064 MOD 11-2
    check character last."""
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not (1900 <= year <= 2100 and _real_date("00", f"{month:02d}", f"{day:02d}")):
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    return value[17].upper() == "10X98765432"[total % 11]


def _national_ids(text: str) -> list[tuple[str, int, int]]:
    found = []
    for m in _MYKAD_RE.finditer(text):
        if _real_date(m.group(1), m.group(2), m.group(3)):
            found.append(("national_id", m.start(), m.end()))
    for m in _MYKAD_BARE_RE.finditer(text):
        if _real_date(m.group(2), m.group(3), m.group(4)):
            found.append(("national_id", m.start("id"), m.end("id")))
    for m in _NRIC_RE.finditer(text):
        if _nric_ok(m.group()):
            found.append(("national_id", m.start(), m.end()))
    for m in _NIK_RE.finditer(text):
        found.append(("national_id", m.start("id"), m.end("id")))
    for m in _DNI_RE.finditer(text):
        if _dni_ok(m):
            found.append(("national_id", m.start(), m.end()))
    for m in _CN_ID_RE.finditer(text):
        if _cn_id_ok(m.group()):
            found.append(("national_id", m.start(), m.end()))
    for m in _SSN_RE.finditer(text):
        if _REFERENCE_BEFORE.search(text[max(0, m.start() - 30) : m.start()]):
            continue  # "order 123-45-6789" is an order number, as for phones
        if _ssn_ok(m.group("area"), m.group("group"), m.group("serial")):
            found.append(("national_id", m.start(), m.end()))
    for m in _SSN_BARE_RE.finditer(text):
        if _ssn_ok(m.group("area"), m.group("group"), m.group("serial")):
            found.append(("national_id", m.start("area"), m.end("serial")))
    return found


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    """A US Social Security number as issued: no area 000, 666 or 9xx, no group 00 or serial
    0000 (so most 3-2-4 dashed numbers that are not SSNs stay)."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _bank_accounts(text: str) -> list[tuple[str, int, int]]:
    found = []
    for m in _BANK_ACCOUNT_RE.finditer(text):
        raw = m.group("number")
        digits = sum(ch.isdigit() for ch in raw)
        if 8 <= digits <= 20 and not _DATE_RE.fullmatch(raw):
            found.append(("bank_account", m.start("number"), m.end("number")))
    return found


def _cards(text: str) -> list[tuple[str, int, int]]:
    found = []
    for m in _CARD_RE.finditer(text):
        raw = m.group()
        groups = re.split(r"[ -]", raw)
        separators = set(re.findall(r"[ -]", raw))
        # One kind of separator, and groups of at least 4 digits except the last (4-4-4-4,
        # 4-6-5, 4-4-4-4-3): this keeps dates and phone numbers out.
        if len(separators) > 1 or any(len(g) < 4 for g in groups[:-1]):
            continue
        digits = "".join(groups)
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            found.append(("card", m.start(), m.end()))
    found += [("card", m.start("code"), m.end("code")) for m in _SECURITY_CODE_RE.finditer(text)]
    return found


def _ibans(text: str) -> list[tuple[str, int, int]]:
    found = []
    for m in _IBAN_RE.finditer(text):
        raw = m.group()
        # The regex is greedy and may run into a following capitalised word ("... 32 ASAP"):
        # try the whole match, then shorter ones cut at a space, longest first.
        ends = [len(raw)] + [i for i in range(len(raw) - 1, 14, -1) if raw[i] == " "]
        for end in ends:
            if _iban_ok(raw[:end].replace(" ", "")):
                found.append(("iban", m.start(), m.start() + end))
                break
    return found


_BRACKETED_AT: Final = r"[\[({<]\s?(?:at|@)\s?[\])}>]"
_AT: Final = rf"\s?{_BRACKETED_AT}\s?"
_DOT: Final = r"(?:\s?[\[({<]\s?(?:dot|\.)\s?[\])}>]\s?|\.)"
_OBFUSCATED_EMAIL_RE: Final = re.compile(
    _starts(r"\w.+%@-")
    + r"[A-Za-z0-9][A-Za-z0-9._%+-]*"
    + _AT
    + r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:"
    + _DOT
    + r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    + _DOT
    + r"[A-Za-z]{2,24}"
    + _ends(r"\w"),
    re.IGNORECASE,
)
"""An address with its ``@`` (and maybe its dots) in brackets: ``jane[at]example[dot]com``."""
_MAYBE_OBFUSCATED: Final = re.compile(_BRACKETED_AT, re.IGNORECASE)


def _emails(text: str) -> list[tuple[str, int, int]]:
    found = [("email", m.start(), m.end()) for m in EMAIL_RE.finditer(text)]
    if _MAYBE_OBFUSCATED.search(text):
        found += [("email", m.start(), m.end()) for m in _OBFUSCATED_EMAIL_RE.finditer(text)]
    return found


def _phones(text: str) -> list[tuple[str, int, int]]:
    found = []
    for m in _PHONE_RE.finditer(text):
        start, end = m.start(), m.end()
        raw = m.group()
        # Trailing sentence punctuation is not part of the number ("call 012-345 6789.").
        while raw and raw[-1] in ".-":
            raw, end = raw[:-1], end - 1
        digits = sum(ch.isdigit() for ch in raw)
        if not 8 <= digits <= 15:
            continue
        if _DATE_RE.fullmatch(raw) or _GROUPED_NUMBER.fullmatch(raw):
            continue
        before, after = text[max(0, start - 30) : start], text[end : end + 12]
        if _DIGIT_BEFORE.search(before) or (after[:1] in ",." and after[1:2].isdigit()):
            continue  # part of a longer number, amount or date
        if _LETTERS_BEFORE.search(before):
            continue  # the tail of an identifier such as PP-MY-1234567890
        if _CURRENCY_BEFORE.search(before) or _CURRENCY_AFTER.search(after):
            continue
        if not raw.startswith(("+", "(")) and _REFERENCE_BEFORE.search(before):
            continue
        found.append(("phone", start, end))
    for m in _PHONE_WORD_RE.finditer(text):
        raw = m.group("number")
        if 8 <= sum(ch.isdigit() for ch in raw) <= 15 and not _DATE_RE.fullmatch(raw):
            found.append(("phone", m.start("number"), m.end("number")))
    return found


_MAYBE_PII: Final = re.compile(rf"[\d@]|{_BRACKETED_AT}", re.IGNORECASE)
r"""Every kind needs a digit, an ``@`` or a bracketed "at": cards, IBANs (``[A-Z]{2}\d{2}``),
national ids (MyKad, NRIC ``[STFG]\d{7}``, NIK), bank accounts and phones all match ``\d``,
e-mail addresses a literal ``@`` or ``[at]``. Without any of them, :func:`find_pii` has nothing
to find and skips its six scans (most texts: posts without numbers). ``\d`` here is the
patterns' own ``\d`` (Unicode decimal digits: full-width ``４``, Arabic-Indic ``٤``, Devanagari
``४``, which they accept), so the check cannot skip a text they would match."""


def find_pii(text: str) -> list[tuple[str, int, int]]:
    """Every piece of personal data in ``text`` as ``(kind, start, end)``, sorted by start.

    Matches never overlap; on overlap the earlier kind in :data:`PII_KINDS` wins (a Luhn-valid
    card number after "account" is a card; a MyKad number is never a phone).
    """
    if _MAYBE_PII.search(text) is None:
        return []
    taken: list[tuple[str, int, int]] = []
    for finder in (_cards, _ibans, _national_ids, _bank_accounts, _emails, _phones):
        for kind, start, end in finder(text):
            if all(end <= s or start >= e for _, s, e in taken):
                taken.append((kind, start, end))
    return sorted(taken, key=lambda t: (t[1], t[2]))


def redact(text: str) -> str:
    """``text`` with each piece of personal data replaced by its kind in brackets: ``[card]``,
    ``[iban]``, ``[national_id]``, ``[bank_account]``, ``[email]`` or ``[phone]``."""
    spans = find_pii(text)
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for kind, start, end in spans:
        parts.append(text[last:start])
        parts.append(f"[{kind}]")
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact_part(text: str, part: str, start: int, end: int) -> str:
    """``part`` (found at ``text[start:end]``, an entity's text) redacted the way :func:`redact`
    redacts that stretch of ``text``.

    Personal data is judged in its context: the 8 digits after "订单号" are an order number,
    the same 8 digits on their own look like a phone number and would be shown as ``[phone]``.
    When ``part`` is not what the offsets point at (a placeholder such as ``[email]``, or
    offsets into another text) it is judged on its own.
    """
    if not 0 <= start <= end <= len(text) or text[start:end] != part:
        return redact(part)
    pieces: list[str] = []
    last = start
    for kind, a, b in find_pii(text):
        if b <= start or a >= end:
            continue
        pieces.append(text[last : max(a, start)])
        pieces.append(f"[{kind}]")
        last = min(b, end)
    pieces.append(text[last:end])
    return "".join(pieces)
