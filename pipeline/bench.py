"""The ingest benchmark: careradar's batched path against a naive loop, on SQLite and PostgreSQL.

Benchmarks measure; tests assert behaviour (DESIGN.md). ``run_bench`` generates a realistic
corpus (customer posts in English, Malay, Indonesian, Chinese and Spanish, 20-600 characters,
timestamps over the last two days, threads answered from a brand account), writes it as one
JSONL file and measures, in one run and on fresh databases:

1. **ingest**: ``Runner.run_once`` over a ``kind: file`` source with the default batch size
   (200 items per transaction), into SQLite and PostgreSQL;
2. **ingest, naive**: the same runner with ``batch_size: 1``, one transaction (and one
   classifier call, one language detection, two look-up queries) per item, which is what a
   straightforward loop does;
3. **re-run**: the cursor is deleted and the same source read again, so every item is re-read
   and recognised as unchanged: nothing is classified again (on PostgreSQL once more after
   ``ANALYZE``: a fresh database has no planner statistics, a running one does);
4. **classify**: ``LexiconClassifier.classify`` alone, 64 items per call against one per call.

Each ingest also records where its time went (language detection, classification, store reads,
store writes, the rest), measured by wrapping the store and the classifier, so the phases add
up to the measured total. Everything runs in this process; nothing here asserts a speed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, text

from pipeline import registry
from pipeline.collectors.base import CollectContext
from pipeline.collectors.file import FileCollector, FileSource
from pipeline.config import AppConfig, BrandConfig
from pipeline.items import BadInputRecord, Classification, Item, ProcessedItem
from pipeline.nlp.language import detect_languages
from pipeline.nlp.lexicon import LexiconClassifier
from pipeline.runner import Runner
from pipeline.sinks.schema import cursors
from pipeline.sinks.scratch import postgres_unavailable, scratch_database
from pipeline.sinks.store import Existing, Store, WriteResult

__all__ = [
    "DATABASES",
    "TABLE_HEADER",
    "BenchReport",
    "ScenarioResult",
    "generate_corpus",
    "run_bench",
]

log = logging.getLogger(__name__)

DATABASES: Final = ("sqlite", "postgresql")
DEFAULT_BATCH: Final = 200
"""``batch_size`` of a source that does not set one (SourceConfig's default)."""
CLASSIFY_BATCH: Final = 64
"""Items per classifier call in the classification scenario (``classifier.batch_size``)."""
SEED: Final = 20_240_501
SOURCE: Final = "bench"
TABLE_HEADER: Final = (
    "| scenario | database | batch | items | classified | seconds | items/s | ratio |"
)


Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """One measured scenario.

    ``scenario`` is one of ``ingest``, ``ingest-naive``, ``rerun``, ``rerun-analyzed``
    (PostgreSQL only), ``classify-batch``, ``classify-single``. ``ratio`` compares
    ``items_per_s`` with the scenario named in ``ratio_to`` (None on baselines). ``phases``
    splits ``seconds`` for the scenarios that run the runner. ``skipped`` gives the reason a
    scenario could not run (its numbers are then zero).
    """

    scenario: str
    label: str
    database: str  # sqlite | postgresql | "-" (no database involved)
    batch_size: int
    items: int = 0  # items read (ingest, re-run) or classified (classify)
    stored: int | None = None  # items of the source in the store afterwards
    classified: int = 0  # items the classifier was asked about
    seconds: float = 0.0
    items_per_s: float = 0.0
    ratio: float | None = None
    ratio_to: str | None = None
    transactions: int | None = None  # batches written, one transaction each
    phases: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is None


@dataclass
class BenchReport:
    rows: int
    scenarios: list[ScenarioResult]
    corpus: dict[str, Any]
    python: str
    cpu: str
    cores: int
    peak_rss_mib: float
    date: str
    total_seconds: float

    def scenario(self, name: str, database: str = "-") -> ScenarioResult:
        for s in self.scenarios:
            if s.scenario == name and s.database == database:
                return s
        raise KeyError(f"no scenario {name!r} on {database!r}")

    @property
    def machine(self) -> str:
        return (
            f"{self.cpu}, {self.cores} cores, Python {self.python}, "
            f"peak RSS {self.peak_rss_mib:.0f} MiB, {self.date}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        c = self.corpus
        langs = ", ".join(f"{k} {v}" for k, v in c["languages"].items())
        lines = [
            f"**Machine:** {self.machine}",
            "",
            f"**Corpus:** {self.rows} JSONL items ({langs}); {c['min_chars']}-{c['max_chars']} "
            f"characters, mean {c['mean_chars']:.0f}; {c['brand_replies']} brand replies in "
            f"{c['threads']} threads; {c['cross_posts']} cross-posts; created over the last "
            "2 days.",
            "",
            TABLE_HEADER,
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for s in self.scenarios:
            if not s.ok:
                lines.append(
                    f"| {s.label} | {s.database} | {s.batch_size} | - | - | - | - "
                    f"| skipped: {s.skipped} |"
                )
                continue
            if s.ratio_to is None:
                ratio = "baseline"
            elif s.ratio is None:
                ratio = f"n/a (no {s.ratio_to} rate)"
            else:
                ratio = f"{s.ratio:.1f}x {s.ratio_to}"
            lines.append(
                f"| {s.label} | {s.database} | {s.batch_size} | {s.items} | {s.classified} "
                f"| {s.seconds:.2f} | {s.items_per_s:,.0f} | {ratio} |"
            )
        phased = [s for s in self.scenarios if s.ok and s.phases]
        if phased:
            names = list(PHASES)
            lines += [
                "",
                "Where the ingest time goes (share of each run's seconds):",
                "",
                "| scenario | database | " + " | ".join(names) + " |",
                "|---|---|" + "---:|" * len(names),
            ]
            for s in phased:
                total = s.seconds or 1.0
                shares = " | ".join(f"{100 * s.phases.get(n, 0.0) / total:.0f}%" for n in names)
                lines.append(f"| {s.label} | {s.database} | {shares} |")
        lines += ["", f"Total benchmark time {self.total_seconds:.0f} s."]
        return "\n".join(lines) + "\n"


PHASES: Final = ("language", "classify", "store reads", "store writes", "other")
"""``other``: reading and parsing the file, normalising, SLA, fingerprints, run bookkeeping."""


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------

BRANDS: Final = (("Lumo Mobile", ("@LumoCare", "lumo.support")), ("Kedai Kita", ("@kedaikita_cs",)))
_PRODUCTS: Final = ("Lumo X2", "Lumo Buds", "Lumo Tab 11", "Lumo Watch", "SmartHome Hub")
_CITIES: Final = ("Kuala Lumpur", "Penang", "Jakarta", "Surabaya", "Singapore", "Madrid", "Bogota")
_NAMES: Final = ("Aisyah", "Budi", "Wei Ling", "Carlos", "Priya", "Hafiz", "Lucia", "Tom")
_EMAILS: Final = ("aisyah.r@example.com", "budi99@example.net", "c.ortiz@example.org")

# Chinese strings are written with ASCII , ? ! (the source stays lint-clean and readable) and
# get their full-width forms in _render, as real Chinese posts have them.
_FULL_WIDTH: Final = str.maketrans({",": "\uff0c", "?": "\uff1f", "!": "\uff01"})

# (language, template); slots: {order} {product} {amount} {days} {hours} {city} {name} {brand}
# {handle} {email}
_TEMPLATES: Final = (
    (
        "en",
        "My order {order} still hasn't arrived after {days} days. Tracking hasn't updated "
        "since it left {city}. Can someone help?",
    ),
    ("en", "I was charged twice for my {product} ({amount}). Please refund the extra charge."),
    (
        "en",
        "Love the new {product}! Setup took two minutes and the battery lasts all day. "
        "Great job {brand}.",
    ),
    (
        "en",
        "{handle} your app keeps crashing every time I open the payments page. Reinstalled "
        "twice, still broken.",
    ),
    (
        "en",
        "Third time contacting you about order {order}. If this isn't fixed today I'm "
        "cancelling my account and switching to a competitor.",
    ),
    (
        "en",
        "How do I change the delivery address on order {order}? The checkout page doesn't "
        "let me edit it.",
    ),
    (
        "en",
        "The {product} I received is damaged, the screen cracked right out of the box. I want "
        "a replacement or a refund of {amount}.",
    ),
    ("en", "Waited {hours} hours on the chat line and nobody answered. Terrible customer service."),
    ("en", "Is the {product} compatible with the older charger? Thinking of upgrading."),
    (
        "en",
        "Just got my refund for order {order}, thanks {name} from support for sorting it out "
        "so quickly!",
    ),
    (
        "en",
        "The {product} started smoking while charging last night. This is a fire hazard, my "
        "kid was sitting next to it.",
    ),
    (
        "en",
        "Can't log in since the last update, the password reset email never arrives at {email}.",
    ),
    ("en", "Delivery driver left my parcel in the rain in {city}. Everything inside is soaked."),
    (
        "ms",
        "Pesanan {order} saya belum sampai lagi, dah {days} hari tunggu. Tolong semak status "
        "penghantaran.",
    ),
    (
        "ms",
        "Saya dicaj dua kali untuk {product}, jumlah {amount}. Bila duit saya akan dipulangkan?",
    ),
    (
        "ms",
        "Terima kasih {brand}, {product} baru sampai dan berfungsi dengan baik. Servis memang "
        "terbaik!",
    ),
    ("ms", "Aplikasi asyik tergantung bila nak bayar. Dah cuba pasang semula tapi masih sama."),
    ("ms", "Kenapa tiada siapa balas mesej saya? Dah {hours} jam tunggu di talian."),
    ("ms", "Barang yang saya terima rosak, skrin retak. Saya nak tukar baru atau bayaran balik."),
    ("ms", "Macam mana nak tukar alamat penghantaran untuk pesanan {order}?"),
    (
        "id",
        "Pesanan saya {order} belum datang juga padahal sudah {days} hari. Tolong dicek ya kak.",
    ),
    (
        "id",
        "Kok saldo saya terpotong dua kali {amount} untuk {product}? Mohon segera dikembalikan.",
    ),
    (
        "id",
        "Mantap, {product} sudah sampai di {city} dan kualitasnya bagus banget. Terima kasih "
        "{brand}!",
    ),
    ("id", "Aplikasinya error terus setiap mau checkout, sudah update tapi tetap tidak bisa."),
    ("id", "Sudah {hours} jam chat CS tidak dibalas. Pelayanan sangat mengecewakan."),
    ("id", "Barang yang datang rusak dan tidak sesuai pesanan. Saya minta refund penuh."),
    ("id", "Bagaimana cara mengganti alamat pengiriman untuk pesanan {order}?"),
    ("zh", "我的订单{order}已经{days}天了还没到,物流信息一直没有更新,请尽快处理。"),
    ("zh", "{product}被重复扣款两次,一共{amount},请马上退款。"),
    ("zh", "刚收到{product},做工很好,用起来很顺手,谢谢{brand}!"),
    ("zh", "应用每次打开支付页面就闪退,重装了两次还是不行,到底什么时候修好?"),
    ("zh", "等了{hours}个小时客服都没有回复,服务太差了。"),
    ("zh", "收到的{product}屏幕是碎的,我要求换货或者退款。"),
    ("zh", "请问订单{order}可以修改收货地址吗?我搬家了。"),
    (
        "es",
        "Mi pedido {order} todavía no ha llegado después de {days} días. ¿Alguien me puede ayudar?",
    ),
    ("es", "Me cobraron dos veces {amount} por el {product}. Quiero el reembolso cuanto antes."),
    (
        "es",
        "¡Me encanta el nuevo {product}! Llegó rápido a {city} y funciona perfecto. Gracias "
        "{brand}.",
    ),
    ("es", "La aplicación se cierra cada vez que intento pagar. Ya la reinstalé y sigue igual."),
    ("es", "Llevo {hours} horas esperando en el chat y nadie responde. Pésimo servicio."),
    (
        "es",
        "El {product} llegó roto, la pantalla está rajada. Quiero un cambio o mi dinero de vuelta.",
    ),
    ("es", "¿Cómo puedo cambiar la dirección de entrega del pedido {order}?"),
)

# Extra sentences that make a post longer, per language.
_FILLERS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": (
        "I have been a customer for {days} years and never had this problem before.",
        "Already sent an email to support and only got an automatic reply.",
        "My reference number is {order}, in case you need it.",
        "The website says one thing and the app says another.",
        "Honestly expected better from {brand}.",
        "I need this sorted before the weekend because I'm travelling.",
        "Tried calling the hotline too but the queue was over an hour long.",
        "This is the second order this month with the same problem.",
        "Your FAQ page doesn't cover this at all.",
        "I paid with my credit card and the bank shows the payment as completed.",
        "Please don't ask me to restart the phone again, I've done that five times.",
        "A friend of mine had exactly the same issue last week.",
    ),
    "ms": (
        "Saya dah jadi pelanggan selama {days} tahun dan tak pernah ada masalah macam ni.",
        "Dah hantar emel tapi cuma dapat balasan automatik.",
        "Nombor rujukan saya {order}.",
        "Harap dapat selesaikan secepat mungkin sebab saya perlukan barang ni.",
        "Talian hotline pun sibuk sepanjang hari.",
        "Ini kali kedua bulan ni saya dapat masalah yang sama.",
        "Saya dah bayar guna kad kredit dan bank kata pembayaran berjaya.",
    ),
    "id": (
        "Saya sudah jadi pelanggan {days} tahun dan baru kali ini ada masalah seperti ini.",
        "Sudah kirim email tapi cuma dapat balasan otomatis.",
        "Nomor referensi saya {order} ya.",
        "Tolong segera diproses karena barangnya saya butuhkan minggu ini.",
        "Telepon ke call center juga antreannya panjang sekali.",
        "Ini sudah kedua kalinya bulan ini saya mengalami masalah yang sama.",
        "Saya bayar pakai kartu kredit dan di bank statusnya sudah berhasil.",
    ),
    "zh": (
        "我已经是{brand}的老客户了,从来没遇到过这种情况。",
        "已经发了邮件给客服,只收到自动回复。",
        "我的参考编号是{order}。",
        "希望这周之内能解决,我急着用。",
        "打客服电话也一直占线。",
        "这个月已经是第二次出现同样的问题了。",
        "我是用信用卡付的款,银行显示已经扣款成功。",
        "你们的常见问题页面根本没有提到这个情况。",
    ),
    "es": (
        "Soy cliente desde hace {days} años y nunca me había pasado algo así.",
        "Ya mandé un correo a soporte y solo recibí una respuesta automática.",
        "Mi número de referencia es {order}.",
        "Necesito que lo solucionen antes del fin de semana.",
        "Llamé a la línea de atención pero la espera era de más de una hora.",
        "Es la segunda vez este mes que me pasa lo mismo.",
        "Pagué con tarjeta de crédito y el banco muestra el pago como completado.",
    ),
}

_REPLIES: Final[Mapping[str, tuple[str, ...]]] = {
    "en": (
        "Hi {name}, sorry about this! We've sent you a DM so we can sort out order {order}.",
        "Thanks for letting us know. Our team is looking into it now and will update you today.",
    ),
    "ms": (
        "Hai {name}, maaf atas kesulitan. Kami telah hantar mesej peribadi untuk semak "
        "pesanan {order}.",
    ),
    "id": (
        "Halo kak {name}, mohon maaf atas ketidaknyamanannya. Kami sudah kirim DM untuk cek "
        "pesanan {order} ya.",
    ),
    "zh": ("您好,非常抱歉给您带来不便,我们已私信您跟进订单{order},请查收。",),
    "es": (
        "Hola {name}, lamentamos lo ocurrido. Te escribimos por mensaje privado para revisar "
        "el pedido {order}.",
    ),
}

_FOLLOW_UPS: Final[Mapping[str, tuple[str, ...]]] = {
    "en": ("ok thanks, will check my DMs now", "Still waiting, nobody has messaged me yet."),
    "ms": ("terima kasih, dah terima mesej tu", "Masih tunggu, belum ada sesiapa hubungi saya."),
    "id": (
        "makasih kak, sudah saya cek DM-nya",
        "Masih belum ada yang hubungi saya sampai sekarang.",
    ),
    "zh": (
        "好的,谢谢你们这么快回复,我马上去看一下私信。",
        "到现在还是没有任何人联系我,请你们快点处理一下。",
    ),
    "es": ("vale, gracias, ya reviso el mensaje", "Sigo esperando, nadie me ha escrito todavía."),
}

# channel -> (weight, platforms)
_CHANNELS: Final = (
    ("social", 60, ("x", "facebook", "instagram", "tiktok")),
    ("review", 15, ("playstore", "appstore", "google-maps")),
    ("forum", 10, ("reddit", "lowyat")),
    ("email", 8, ("email",)),
    ("chat", 7, ("livechat",)),
)
_LANGUAGE_WEIGHTS: Final = {"en": 40, "ms": 18, "id": 16, "zh": 13, "es": 13}
MIN_CHARS: Final = 20
MAX_CHARS: Final = 600


def _slots(rng: random.Random) -> dict[str, str]:
    brand = rng.choice(BRANDS)
    return {
        "order": f"{rng.choice(('LM', 'KK', '#'))}{rng.randint(100_000, 999_999)}",
        "product": rng.choice(_PRODUCTS),
        "amount": rng.choice(("RM", "Rp", "$", "€", "¥"))
        + f"{rng.randint(5, 2_500)}.{rng.randint(0, 99):02d}",
        "days": str(rng.randint(2, 21)),
        "hours": str(rng.randint(2, 9)),
        "city": rng.choice(_CITIES),
        "name": rng.choice(_NAMES),
        "brand": brand[0],
        "handle": brand[1][0],
        "email": rng.choice(_EMAILS),
    }


def _render(language: str, template: str, slots: Mapping[str, str]) -> str:
    if language == "zh":
        template = template.translate(_FULL_WIDTH)
    return template.format(**slots)


def _target_length(rng: random.Random) -> int:
    """Mostly short posts, some paragraphs, a few long rants."""
    bucket = rng.random()
    if bucket < 0.45:
        return rng.randint(MIN_CHARS, 140)
    if bucket < 0.80:
        return rng.randint(140, 320)
    return rng.randint(320, MAX_CHARS)


def _fit(text: str, language: str, slots: Mapping[str, str], rng: random.Random) -> str:
    """``text`` lengthened with filler sentences towards a sampled length, within 20-600.

    Fillers are drawn without repeats until the language's list is used up. A Chinese
    character carries about a word, so Chinese posts aim at a third of the length in characters.
    """
    target = max(_target_length(rng) // (3 if language == "zh" else 1), MIN_CHARS)
    sep = "" if language == "zh" else " "
    fillers: list[str] = []
    while len(text) < target:
        if not fillers:
            fillers = list(_FILLERS[language])
            rng.shuffle(fillers)
        text += sep + _render(language, fillers.pop(), slots)
    if len(text) > MAX_CHARS:
        cut = text[:MAX_CHARS]
        space = cut.rfind(" ")
        text = cut[:space] if language != "zh" and space > MAX_CHARS // 2 else cut
    return text


def generate_corpus(
    rows: int, *, now: datetime | None = None, seed: int = SEED
) -> list[dict[str, Any]]:
    """``rows`` JSONL records for a ``kind: file`` source, sorted by ``created_at``.

    About a third of the public/chat/e-mail posts open a thread that a brand account answers
    (5 minutes to 5 hours later, never after ``now``); some of those get a customer follow-up;
    2% of posts are cross-posted to a second platform within the hour. Same seed, same corpus
    (timestamps are relative to ``now``).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    languages = list(_LANGUAGE_WEIGHTS)
    by_language = {lang: [t for code, t in _TEMPLATES if code == lang] for lang in languages}
    channels = [c for c, _, _ in _CHANNELS]
    channel_weights = [w for _, w, _ in _CHANNELS]
    platforms = {c: p for c, _, p in _CHANNELS}
    span = timedelta(days=2).total_seconds()
    records: list[dict[str, Any]] = []
    n = 0

    def add(record: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        record["id"] = f"b{n:07d}"
        records.append(record)

    while len(records) < rows:
        language = rng.choices(languages, weights=[_LANGUAGE_WEIGHTS[x] for x in languages])[0]
        slots = _slots(rng)
        template = rng.choice(by_language[language])
        text = _fit(_render(language, template, slots), language, slots, rng)
        channel = rng.choices(channels, weights=channel_weights)[0]
        plat = rng.choice(platforms[channel])
        created = now - timedelta(seconds=rng.uniform(0, span))
        author = f"user{rng.randint(1, rows * 2)}"
        post: dict[str, Any] = {
            "text": text,
            "created_at": created.isoformat(),
            "channel": channel,
            "platform": plat,
            "brand": slots["brand"],
            "author": author,
            "_lang": language,
        }
        if channel in ("review", "forum"):
            post["title"] = text[: rng.randint(12, 40)]
        add(post)
        if rng.random() < 0.02:  # the same words on a second platform, a little later
            copy = dict(post)
            copy["platform"] = rng.choice([p for c in platforms.values() for p in c if p != plat])
            copy["created_at"] = (created + timedelta(minutes=rng.uniform(1, 60))).isoformat()
            copy["_cross_post"] = True
            add(copy)
        if channel == "review" or rng.random() >= 0.33:
            continue
        thread = post["id"]
        post["thread_id"] = thread
        brand = next(b for b in BRANDS if b[0] == slots["brand"])
        reply_at = created + timedelta(minutes=rng.uniform(5, 300))
        if reply_at >= now:
            continue
        add(
            {
                "text": _render(language, rng.choice(_REPLIES[language]), slots),
                "created_at": reply_at.isoformat(),
                "channel": channel,
                "platform": plat,
                "brand": slots["brand"],
                "author": rng.choice(brand[1]),
                "thread_id": thread,
                "parent_id": thread,
                "_lang": language,
                "_brand_reply": True,
            }
        )
        follow_at = reply_at + timedelta(minutes=rng.uniform(1, 120))
        if rng.random() < 0.4 and follow_at < now:
            text = _render(language, rng.choice(_FOLLOW_UPS[language]), slots)
            if rng.random() < 0.3:
                text = _fit(text, language, slots, rng)
            add(
                {
                    "text": text,
                    "created_at": follow_at.isoformat(),
                    "channel": channel,
                    "platform": plat,
                    "brand": slots["brand"],
                    "author": author,
                    "thread_id": thread,
                    "parent_id": thread,
                    "_lang": language,
                }
            )
    del records[rows:]
    records.sort(key=lambda r: (r["created_at"], r["id"]))
    return records


def _describe(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    lengths = [len(r["text"]) for r in records]
    languages = Counter(str(r["_lang"]) for r in records)
    return {
        "languages": {k: languages[k] for k in _LANGUAGE_WEIGHTS if languages[k]},
        "channels": dict(Counter(str(r["channel"]) for r in records).most_common()),
        "min_chars": min(lengths),
        "max_chars": max(lengths),
        "mean_chars": round(sum(lengths) / len(lengths), 1),
        "threads": len({r["thread_id"] for r in records if r.get("thread_id")}),
        "brand_replies": sum(1 for r in records if r.get("_brand_reply")),
        "cross_posts": sum(1 for r in records if r.get("_cross_post")),
    }


def _write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            # Keys starting with "_" describe the corpus; they are not part of the dump.
            clean = {k: v for k, v in r.items() if not k.startswith("_")}
            f.write(json.dumps(clean, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# Instrumentation: phases add up to the measured total
# --------------------------------------------------------------------------------------------


class _Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.classified = 0

    def reset(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.classified = 0

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t0


class _TimedClassifier:
    """The real classifier, counting and timing what it is asked to do."""

    def __init__(self, inner: LexiconClassifier, phases: _Phases) -> None:
        self.inner = inner
        self.version = inner.version
        self.phases = phases

    def classify(self, items: Sequence[Item]) -> list[Classification]:
        self.phases.classified += len(items)
        with self.phases.timing("classify"):
            return self.inner.classify(items)


class _TimedStore(Store):
    """The real store; the calls the runner makes per batch are timed."""

    phases: _Phases | None = None

    def _timing(self, phase: str) -> AbstractContextManager[None]:
        return self.phases.timing(phase) if self.phases is not None else _nothing()

    def existing(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Existing]:
        with self._timing("store reads"):
            return super().existing(keys)

    def find_cross_posts(
        self, fingerprints: Sequence[str], *, since: datetime
    ) -> dict[str, tuple[str, str]]:
        with self._timing("store reads"):
            return super().find_cross_posts(fingerprints, since=since)

    def write_batch(
        self,
        processed: Sequence[ProcessedItem],
        *,
        bad: Sequence[BadInputRecord] = (),
        source: str | None = None,
        cursor: Mapping[str, Any] | None = None,
        run_id: int | None = None,
    ) -> WriteResult:
        with self._timing("store writes"):
            return super().write_batch(
                processed, bad=bad, source=source, cursor=cursor, run_id=run_id
            )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _TimedRunner(Runner):
    """The real runner; its language-detection stage is timed."""

    phases: _Phases | None = None

    def _with_language(self, items: list[Item]) -> list[Item]:
        if self.phases is None:
            return super()._with_language(items)
        with self.phases.timing("language"):
            return super()._with_language(items)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


@contextmanager
def _fresh_database(database: str, workdir: Path) -> Iterator[str]:
    """An empty database's URL: a new SQLite file, or a PostgreSQL database dropped after."""
    if database == "sqlite":
        yield f"sqlite:///{workdir / f'careradar_bench_{uuid.uuid4().hex[:12]}.db'}"
        return
    with scratch_database("careradar_bench_") as url:
        yield url


@contextmanager
def _open_store(url: str, phases: _Phases) -> Iterator[_TimedStore]:
    store = _TimedStore.open(url, migrate=True)
    assert isinstance(store, _TimedStore)
    store.phases = phases
    try:
        yield store
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def _rate(items: int, seconds: float) -> float:
    return items / seconds if seconds > 0 else 0.0


class _Bench:
    def __init__(
        self, cfg: AppConfig, source: FileSource, classifier: LexiconClassifier, progress: Progress
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.phases = _Phases()
        self.classifier = _TimedClassifier(classifier, self.phases)
        self.progress = progress

    def runner(self, store: Store) -> _TimedRunner:
        runner = _TimedRunner(self.cfg, store, classifier=self.classifier)
        runner.phases = self.phases
        return runner

    def _measure(
        self, store: _TimedStore, src: FileSource, result: ScenarioResult
    ) -> ScenarioResult:
        runner = self.runner(store)
        self.phases.reset()
        t0 = time.perf_counter()
        run = runner.run_once(src)
        seconds = time.perf_counter() - t0
        if run.status != "ok":
            raise RuntimeError(
                f"benchmark run on {result.database} ended {run.status}: {run.error} "
                f"({run.hint or 'no hint'})"
            )
        phases = dict(self.phases.seconds)
        phases["other"] = max(0.0, seconds - sum(phases.values()))
        result.items = run.seen
        result.classified = self.phases.classified
        result.seconds = seconds
        result.items_per_s = _rate(run.seen, seconds)
        result.transactions = run.batches
        result.phases = {k: round(v, 4) for k, v in phases.items()}
        result.stored = store.count_items(source=src.name)
        self.progress(
            f"{result.database}: {result.label}: {result.items} items in {seconds:.2f} s "
            f"({result.items_per_s:,.0f}/s)"
        )
        return result

    def database(self, database: str, workdir: Path) -> list[ScenarioResult]:
        results = _database_scenarios(database, self.source.batch_size)
        first, naive, rerun, *analyzed = results
        with _fresh_database(database, workdir) as url, _open_store(url, self.phases) as store:
            self.progress(f"{database}: ingest, batch_size {self.source.batch_size}")
            self._measure(store, self.source, first)
            with store.engine.begin() as conn:
                conn.execute(delete(cursors))
            self.progress(f"{database}: re-run with the cursor deleted")
            self._measure(store, self.source, rerun)
            for result in analyzed:
                # A fresh PostgreSQL database has no planner statistics until autovacuum gets
                # round to it (about a minute); a long-running deployment always has them.
                with store.engine.begin() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.execute(delete(cursors))
                self.progress(f"{database}: re-run after ANALYZE")
                self._measure(store, self.source, result)
        with _fresh_database(database, workdir) as url, _open_store(url, self.phases) as store:
            self.progress(f"{database}: naive ingest, batch_size 1")
            self._measure(store, self.source.model_copy(update={"batch_size": 1}), naive)
        first.ratio, first.ratio_to = _ratio(first, naive), "naive"
        for result in (rerun, *analyzed):
            result.ratio, result.ratio_to = _ratio(result, first), "first ingest"
        return results

    def classification(self, items: Sequence[Item]) -> list[ScenarioResult]:
        inner = self.classifier.inner
        results = []
        for scenario, label, size in (
            ("classify-batch", f"classify, {CLASSIFY_BATCH} per call", CLASSIFY_BATCH),
            ("classify-single", "classify, 1 per call", 1),
        ):
            self.progress(f"classification alone, {size} per call")
            done = 0
            t0 = time.perf_counter()
            for start in range(0, len(items), size):
                done += len(inner.classify(items[start : start + size]))
            seconds = time.perf_counter() - t0
            results.append(
                ScenarioResult(
                    scenario,
                    label,
                    "-",
                    size,
                    items=len(items),
                    classified=done,
                    seconds=seconds,
                    items_per_s=_rate(done, seconds),
                )
            )
            self.progress(f"{label}: {done} items in {seconds:.2f} s")
        batch, single = results
        batch.ratio, batch.ratio_to = _ratio(batch, single), "1 per call"
        return results


def _database_scenarios(database: str, batch_size: int) -> list[ScenarioResult]:
    """Empty results for the scenarios run on ``database``: ingest, naive ingest, re-run, and
    on PostgreSQL a second re-run once the planner has statistics."""
    results = [
        ScenarioResult("ingest", "ingest (careradar)", database, batch_size),
        ScenarioResult("ingest-naive", "ingest (naive: 1 item per transaction)", database, 1),
        ScenarioResult("rerun", "re-run, nothing new", database, batch_size),
    ]
    if database == "postgresql":
        results.append(
            ScenarioResult(
                "rerun-analyzed", "re-run, nothing new, after ANALYZE", database, batch_size
            )
        )
    return results


def _ratio(a: ScenarioResult, b: ScenarioResult) -> float | None:
    return round(a.items_per_s / b.items_per_s, 2) if b.items_per_s > 0 else None


def _read_items(cfg: AppConfig, source: FileSource, runner: Runner) -> list[Item]:
    """The corpus as the classifier sees it in the pipeline: parsed and normalised, no language
    set (``classify`` detects it, as it does for any item without one)."""
    collector = FileCollector(source, CollectContext(app=cfg))
    out: list[Item] = []
    for batch in collector.collect(None):
        out.extend(runner.normalize(batch.items))
    return out


def _warm_up(classifier: LexiconClassifier, items: Sequence[Item]) -> None:
    """Load lingua's models (about 1-2 s on the first call) and warm the classifier's regexes."""
    sample = list(items[:32])
    detect_languages([i.text for i in sample])
    detect_languages([sample[0].text])
    classifier.classify(sample)
    classifier.classify(sample[:1])


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def run_bench(
    rows: int = 5000,
    databases: Sequence[str] = DATABASES,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Generate ``rows`` items and measure every scenario on every database in ``databases``.

    A PostgreSQL server that cannot be reached gives ``skipped: <reason>`` rows, not an error.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown:
        raise ValueError(f"unknown database(s) {', '.join(unknown)}; use {', '.join(DATABASES)}")
    say: Progress = progress or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    date = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    records = generate_corpus(rows)
    say(f"generated {rows} items")
    registry.source_models()  # import the built-in collectors before anything is timed
    classifier = LexiconClassifier(products=_PRODUCTS)
    cfg = AppConfig(brands=[BrandConfig(name=n, accounts=list(a)) for n, a in BRANDS])
    scenarios: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="careradar-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "corpus.jsonl"
        _write_jsonl(path, records)
        source = FileSource(
            name=SOURCE, kind="file", channel="social", path=str(path), batch_size=DEFAULT_BATCH
        )
        bench = _Bench(cfg, source, classifier, say)
        items = _read_items(cfg, source, Runner(cfg, None, classifier=classifier))
        say("warming up (language detector models, classifier)")
        _warm_up(classifier, items)
        for database in dict.fromkeys(databases):
            reason = postgres_unavailable() if database == "postgresql" else None
            if reason is not None:
                say(f"{database}: skipped: {reason}")
                skipped = _database_scenarios(database, source.batch_size)
                for s in skipped:
                    s.skipped = reason
                scenarios += skipped
                continue
            scenarios += bench.database(database, workdir)
        scenarios += bench.classification(items)
    return BenchReport(
        rows=rows,
        scenarios=scenarios,
        corpus=_describe(records),
        python=platform.python_version(),
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        peak_rss_mib=_peak_rss_mib(),
        date=date,
        total_seconds=round(time.perf_counter() - started, 1),
    )
