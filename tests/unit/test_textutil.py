"""textutil: the charset and HTML rules feeds, reviews and e-mail share. Inline inputs, one rule
per assertion; the collectors' own tests check the same rules on their fixtures."""

from __future__ import annotations

import codecs

import pytest

from pipeline.collectors.textutil import codec_for, decode_bytes, html_to_text, sniff_bom

# --- decode_bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (codecs.BOM_UTF8 + "hé".encode(), "utf-8"),
        (codecs.BOM_UTF16_LE + "hé".encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + "hé".encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + "hé".encode("utf-32-le"), "utf-32-le"),
    ],
)
def test_a_bom_wins_over_any_label(data, codec):
    assert decode_bytes(data, "iso-8859-1") == ("hé", codec, False)
    assert decode_bytes(data, None) == ("hé", codec, False)
    assert sniff_bom(data) is not None and sniff_bom(data)[0] == codec  # type: ignore[index]


def test_sniff_bom_lengths():
    assert sniff_bom(codecs.BOM_UTF8 + b"x") == ("utf-8", 3)
    assert sniff_bom(codecs.BOM_UTF32_LE) == ("utf-32-le", 4)  # not mistaken for UTF-16 LE
    assert sniff_bom(b"<?xml") is None and sniff_bom(b"") is None


def test_valid_utf8_under_a_latin1_label_is_utf8_and_no_fallback():
    assert decode_bytes("Grüße 日本".encode(), "iso-8859-1") == ("Grüße 日本", "utf-8", False)
    assert decode_bytes("Grüße".encode(), "windows-1252") == ("Grüße", "utf-8", False)


def test_cp1252_bytes_labelled_utf8_fall_back_to_cp1252():
    data = "“Café” costs €5".encode("cp1252")
    assert decode_bytes(data, "utf-8") == ("“Café” costs €5", "cp1252", True)
    assert decode_bytes(data, None) == ("“Café” costs €5", "cp1252", True)
    assert decode_bytes(data, "x-klingon") == ("“Café” costs €5", "cp1252", True)


def test_a_declared_single_byte_charset_is_used_when_the_bytes_are_not_utf8():
    data = "Привет".encode("koi8-r")
    assert decode_bytes(data, "koi8-r") == ("Привет", "koi8-r", False)
    assert decode_bytes("Ελλάδα".encode("iso-8859-7"), "ISO-8859-7")[0] == "Ελλάδα"


def test_pure_ascii_is_ascii_whatever_the_label():
    assert decode_bytes(b"plain text", "iso-8859-1") == ("plain text", "ascii", False)
    assert decode_bytes(b"plain", "utf-16") == ("plain", "ascii", False)  # a lying wide label
    assert decode_bytes(b"", None) == ("", "ascii", False)


def test_a_multibyte_label_is_trusted_before_utf8():
    # GB2312 for 一业 happens to be valid UTF-8 ("һҵ"); short CJK strings hit this often.
    data = "一业".encode("gb2312")
    assert data.decode("utf-8") == "һҵ"
    assert decode_bytes(data, "gb2312") == ("一业", "gb18030", False)


def test_a_damaged_multibyte_text_keeps_its_charset_with_replacement():
    damaged = "你好，我的订单在哪里？请尽快回复。谢谢".encode("gb18030") + b"\xff"
    text, used, fell_back = decode_bytes(damaged, "gb2312")
    assert used == "gb18030" and fell_back and text.startswith("你好，我的订单在哪里")


def test_seven_bit_iso2022_jp_is_still_decoded():
    assert decode_bytes("日本".encode("iso2022_jp"), "iso-2022-jp") == (
        "日本",
        "iso2022_jp",
        False,
    )


@pytest.mark.parametrize("order", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_read_when_declared(order):
    data = "<x>hé</x>".encode(order)
    assert decode_bytes(data, "UTF-16") == ("<x>hé</x>", order, False)


def test_hints_come_after_the_declared_charset_and_count_as_fallback():
    data = "Привет".encode("koi8-r")
    assert decode_bytes(data, "utf-8", hints=("koi8-r",)) == ("Привет", "koi8-r", True)
    assert decode_bytes(data, None, hints=("nonsense", "koi8-r"))[1] == "koi8-r"


def test_windows_1252_reads_every_byte():
    # 0x81 is undefined in windows-1252: it becomes U+0081, as in browsers, not an error.
    assert decode_bytes(b"\x81abc\xe9", None) == ("\x81abcé", "cp1252", True)
    every = bytes(range(256))
    text, used, _ = decode_bytes(every, "utf-8")
    assert used == "cp1252" and len(text) == 256 and "\ufffd" not in text


def test_codec_for_labels():
    assert codec_for("ISO-8859-1") == "cp1252"
    assert codec_for("latin1") == "cp1252" and codec_for("us-ascii") == "cp1252"
    assert codec_for("gb2312") == "gb18030" and codec_for("GBK") == "gb18030"
    assert codec_for("Shift_JIS") == "cp932" and codec_for("euc-kr") == "cp949"
    assert codec_for('"utf8"') == "utf-8"
    assert codec_for("unknown-8bit") is None and codec_for("x-klingon") is None
    assert codec_for("") is None and codec_for(None) is None


# --- html_to_text ---------------------------------------------------------------------------


def test_html_to_text_blocks_lists_entities_and_dropped_parts():
    html = (
        "<html><head><title>page title</title><style>p{}</style></head><body>"
        "<div><h2>Title</h2><p>One &amp; two&nbsp;three &#8211; &euro;5</p>"
        "<ul><li>a</li><li>b</li></ul>"
        "<script>alert(1)</script><noscript>enable js</noscript><img alt=' sad face '>"
        "<pre>keep\n  this</pre></div></body></html>"
    )
    assert html_to_text(html) == (
        "Title\n\nOne & two three \u2013 \u20ac5\n\n- a\n- b\nsad face\nkeep\nthis"
    )


def test_html_to_text_line_breaks_and_paragraphs():
    html = "<p>Hello   team,</p>\n\n<p>My order<br>arrived <b>damaged</b>.</p>Thanks,<br/>Jane"
    assert html_to_text(html) == "Hello team,\n\nMy order\narrived damaged.\nThanks,\nJane"
    assert html_to_text("<table><tr><td>Order</td><td>A1</td></tr></table>") == "Order A1"


def test_html_to_text_plain_text_and_odd_markup():
    assert html_to_text("no tags at all\nsecond line") == "no tags at all\nsecond line"
    assert html_to_text("1 < 2 and <b>bold") == "1 < 2 and bold"
    assert html_to_text("") == ""
    # A self-closed <script/> encloses nothing: the text after it is kept.
    assert html_to_text("<script/>visible <b>text</b>") == "visible text"
    # Unclosed and nested dropped elements do not leak their content.
    assert html_to_text("<svg><svg>x</svg>y</svg>z") == "z"
    assert html_to_text("<p>ok</p><script>never closed") == "ok"
    assert html_to_text("<<<>>>&&&;<p") == "<<<>>>&&&;<p"  # an unfinished tag is text


def test_html_to_text_drops_quoted_history_only_when_asked():
    markup = (
        "<div>Still not fixed!</div><div class='gmail_quote'><div>On Mon, A wrote:</div>"
        "<blockquote type='cite'><div>We fixed it.</div></blockquote></div>"
    )
    assert html_to_text(markup, drop_quotes=True) == "Still not fixed!"
    assert "We fixed it." in html_to_text(markup)
    outlook = "<p>Where is it?</p><div id='divRplyFwdMsg'><b>From:</b> us</div><p>old text</p>"
    assert html_to_text(outlook, drop_quotes=True) == "Where is it?"
    # In a feed a blockquote is content.
    assert html_to_text("<p>He said:</p><blockquote>it broke</blockquote>") == (
        "He said:\n\nit broke"
    )
