"""Text clean-up and cross-post fingerprints."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from pipeline.nlp.normalize import clean_text, fingerprint


def test_clean_text_nfc_and_controls() -> None:
    decomposed = "cafe\u0301"
    assert clean_text(decomposed) == "caf\u00e9"
    assert clean_text("a\x00b\x07c\x1bd\x7f") == "abcd"
    assert clean_text("keep\ttabs\nand lines") == "keep\ttabs\nand lines"


def test_clean_text_invisible_and_bidi_dropped_zwj_kept() -> None:
    assert clean_text("\ufeffzero\u200bwidth\u00ad") == "zerowidth"
    assert clean_text("\u202eevil\u202c") == "evil"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_text(family) == family


def test_clean_text_surrogates() -> None:
    assert clean_text("x\ud83d\ude00y") == "x\U0001f600y"  # a pair split in two is joined
    assert clean_text("bad\ud800z") == "bad\ufffdz"  # a lone one is replaced
    assert clean_text("\ufffe") == "\ufffd"


def test_clean_text_spaces_and_lines() -> None:
    text = "  hello \u00a0\u00a0 world  \r\n\r\n\r\n\r\nbye  \rnow  "
    assert clean_text(text) == "hello world\n\nbye\nnow"
    assert clean_text("") == ""
    assert clean_text("   \n  ") == ""


def test_clean_text_odd_inputs_do_not_raise() -> None:
    assert clean_text(b"caf\xc3\xa9 \xff") == "caf\u00e9 \ufffd"  # type: ignore[arg-type]
    assert clean_text(None) == "None"  # type: ignore[arg-type]


@given(st.text())
def test_clean_text_never_raises_and_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in once)


def test_fingerprint_ignores_urls_mentions_case_punctuation_whitespace() -> None:
    a = "My order NEVER arrived!!! https://t.co/xyz @AcmeHelp #fail"
    b = "@acme  my order never arrived... #Fail\nhttp://bit.ly/abc"
    c = "my order never arrived fail www.example.com/x"
    assert fingerprint(a) == fingerprint(b) == fingerprint(c)
    assert len(fingerprint(a)) == 20
    assert all(ch in "0123456789abcdef" for ch in fingerprint(a))


def test_fingerprint_differs_for_different_text() -> None:
    assert fingerprint("my order never arrived") != fingerprint("my order finally arrived")
    assert fingerprint("order 12345 never arrived") != fingerprint("order 12346 never arrived")


def test_fingerprint_nfkc() -> None:
    assert fingerprint("\uff2d\uff59 order never arrived") == fingerprint("My order never arrived")


def test_fingerprint_short_text_is_empty() -> None:
    assert fingerprint("thanks!") == ""
    assert fingerprint("ok 👍 https://example.com/a-very-long-link @someone") == ""
    assert fingerprint("") == ""
    # CJK characters weigh double: a short Chinese sentence is long enough
    assert fingerprint("我的快递还没到") != ""


def test_fediverse_handle_is_one_mention() -> None:
    base = "3rd time my parcel says failed delivery, I WAS HOME"
    assert fingerprint(f"@ParcelPeakHelp@mastodon.example {base}") == fingerprint(
        f"@ParcelPeakHelp {base}"
    )


def _clean_every_step(text: str) -> str:
    """clean_text without its shortcuts for ASCII text: every step on every text."""
    from pipeline.nlp import normalize

    text = normalize._repair_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
    text = normalize._DROP.sub("", unicodedata.normalize("NFC", text))
    text = normalize._SPACES.sub(" ", normalize._NONCHARACTERS.sub("\ufffd", text))
    text = normalize._SPACE_AROUND_NEWLINE.sub("\n", text)
    return normalize._MANY_NEWLINES.sub("\n\n", text).strip()


# ASCII with every control character and runs of spaces; then the same with a few non-ASCII
# spaces, invisible characters and a noncharacter mixed in.
_ASCII = st.lists(
    st.one_of(
        st.characters(max_codepoint=127),
        st.sampled_from([" ", "  ", "\n", " \n ", "\n\n\n", "\r\n", "\t", "\x0b", "\x1f", "a"]),
    )
)
_MIXED = st.lists(st.sampled_from(["a", " ", "\n", "\t", "\u00a0", "\u2009", "\u200b", "\ufdd0"]))


@given(_ASCII)
def test_ascii_shortcuts_change_nothing(parts: list[str]) -> None:
    text = "".join(parts)
    assert clean_text(text) == _clean_every_step(text)


@given(_MIXED)
def test_non_ascii_text_takes_every_step(parts: list[str]) -> None:
    text = "".join(parts)
    assert clean_text(text) == _clean_every_step(text)
