"""The urgency cues of lexicon-1 in the languages the teams read: each cue fires on the way
customers write it, and the look-alikes that mean something harmless do not fire at all."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from pipeline.items import Channel, Item, Sentiment, Urgency
from pipeline.nlp.lexicon import (
    _CHURN,
    _ESCALATION,
    _LEGAL,
    _REPEATED,
    _RULES,
    _SAFETY,
    _SECURITY,
    LexiconClassifier,
    _alternatives,
    _by_first_char,
    _cue,
)

PATTERNS = {
    "legal": re.compile(_LEGAL),
    "safety": re.compile(_SAFETY),
    "security": re.compile(_SECURITY),
    "churn": re.compile(_CHURN),
    "escalation": re.compile(_ESCALATION),
    "repeated": re.compile(_REPEATED),
}

# (cue, text): the cue must match the text (case-folded, as the classifier reads it).
FIRES: list[tuple[str, str]] = [
    # -- repeated contact ---------------------------------------------------------------------
    # Indonesian / Malay
    ("repeated", "Bro customer service u all very useless leh, call 5 times no one pick up"),
    ("repeated", "I have been calling them 4 times today"),
    ("repeated", "I've opened 3 tickets and nobody replied"),
    ("repeated", "Estou esperando o reembolso há 30 dias, já abri 3 chamados e ninguém responde"),
    ("repeated", "abrí 4 reclamos y nada"),
    ("repeated", "saya sudah menghubungi CS lima kali dan tidak ada yang membantu"),
    ("repeated", "dah lima kali saya call tapi masih tak selesai"),
    ("repeated", "udah 3x telpon cs tetep gak ada solusi"),
    ("repeated", "sdh berkali-kali komplain lewat email"),
    ("repeated", "Sudah berkali2 saya lapor ke call center"),
    ("repeated", "ini kali ketiga saya hubungi kalian"),
    ("repeated", "sudah hubungi customer service kalian 4 kali"),
    ("repeated", "sudah mengirim email 5 kali tidak ada yang bertanggung jawab"),
    ("repeated", "pesanan belum sampai, masih belum ada balasan dari admin"),
    ("repeated", "msh blm ada respon dari tim kalian"),
    ("repeated", "dah seminggu, masih tiada jawapan dari pihak syarikat"),
    ("repeated", "sampai sekarang tidak ada tanggapan"),
    # Spanish
    ("repeated", "por tercera vez les escribo por el mismo problema"),
    ("repeated", "He llamado 5 veces y nadie me da una solución"),
    ("repeated", "les he escrito varias veces por el reembolso"),
    ("repeated", "llamé a atención al cliente cuatro veces"),
    ("repeated", "Es la cuarta vez que reclamo"),
    ("repeated", "sigo sin respuesta desde el lunes"),
    ("repeated", "todavía no me han respondido"),
    # Portuguese
    ("repeated", "pela terceira vez venho pedir ajuda"),
    ("repeated", "já liguei 5 vezes e ninguém resolve"),
    ("repeated", "liguei para a central várias vezes"),
    ("repeated", "ainda sem resposta do suporte"),
    # French
    ("repeated", "c'est la troisième fois que je vous écris"),
    ("repeated", "J'ai appelé 4 fois le service client"),
    ("repeated", "j'ai relancé à plusieurs reprises"),
    ("repeated", "pour la énième fois : où est mon colis ?"),
    ("repeated", "toujours pas de réponse à ma réclamation"),
    # German
    ("repeated", "Ich schreibe Ihnen zum dritten Mal"),
    ("repeated", "zum wiederholten Mal angerufen"),
    ("repeated", "ich habe mehrmals angerufen"),
    ("repeated", "habe schon dreimal beim Kundenservice angerufen"),
    ("repeated", "Immer noch keine Antwort auf meine Mail"),
    # Chinese
    ("repeated", "第三次投诉了还是没人处理"),
    ("repeated", "这是我第四次给你们打电话"),
    ("repeated", "打了五次电话都没人接"),
    ("repeated", "已经多次联系客服"),
    ("repeated", "催了好几次了"),
    ("repeated", "一直没人回复"),
    ("repeated", "到現在還是沒有回覆"),
    # -- legal ---------------------------------------------------------------------------------
    ("legal", "kalau tidak dikembalikan saya akan bawa ke jalur hukum"),
    ("legal", "pengacara saya akan menghubungi kalian"),
    ("legal", "saya akan tuntut kalian"),
    ("legal", "saya laporkan ke polisi kalau barang tidak dikirim"),
    ("legal", "saya akan buat laporan polis"),
    ("legal", "voy a poner una denuncia en consumo"),
    ("legal", "os voy a llevar a juicio"),
    ("legal", "lo llevaré a los tribunales"),
    ("legal", "mi abogado ya tiene el caso"),
    ("legal", "vou processar vocês"),
    ("legal", "já falei com meu advogado"),
    ("legal", "vou entrar na justiça"),
    ("legal", "je vais porter plainte"),
    ("legal", "mon avocat vous contactera"),
    ("legal", "vous allez recevoir une mise en demeure"),
    ("legal", "ich werde einen Anwalt einschalten"),
    ("legal", "mein Rechtsanwalt meldet sich"),
    ("legal", "ich verklage euch"),
    ("legal", "wir sehen uns vor Gericht"),
    ("legal", "我要告你们"),
    ("legal", "我会通过法律途径解决"),
    ("legal", "我會找律師"),
    ("legal", "我要打12315投诉"),
    ("legal", "I will call 12315"),
    # -- safety --------------------------------------------------------------------------------
    ("safety", "anak saya kesetrum waktu pegang charger"),
    ("safety", "kena renjatan elektrik masa pasang"),
    ("safety", "sekeluarga keracunan setelah makan"),
    ("safety", "anak saya terluka karena mainan ini"),
    ("safety", "ayah saya dilarikan ke rumah sakit"),
    ("safety", "charger nya korslet dan berasap"),
    ("safety", "me dio una descarga eléctrica"),
    ("safety", "intoxicación alimentaria después de comer"),
    ("safety", "el cargador se incendió"),
    ("safety", "o carregador pegou fogo"),
    ("safety", "tomei um choque do aparelho"),
    ("safety", "o aparelho está dando choque"),
    ("safety", "le chargeur a pris feu"),
    ("safety", "mon fils s'est brûlé avec la bouilloire"),
    ("safety", "j'ai reçu une décharge électrique"),
    ("safety", "Ich habe einen Stromschlag bekommen"),
    ("safety", "das Ladegerät stand in Flammen"),
    ("safety", "mein Sohn hat sich verbrannt"),
    ("safety", "Lebensmittelvergiftung nach der Lieferung"),
    ("safety", "充电器起火了"),
    ("safety", "我的iPhone充电器起火了"),  # a run that starts in Latin letters
    ("safety", "iPhone充电器起火了"),
    ("safety", "ich habe mir die Finger verbrannt"),
    ("safety", "插座漏电"),
    ("safety", "孩子吃了以后中毒"),
    ("safety", "我的手受傷了"),
    # -- churn ---------------------------------------------------------------------------------
    ("churn", "saya mau berhenti berlangganan"),
    ("churn", "mending pindah ke provider lain"),
    ("churn", "gak akan beli lagi di toko ini"),
    ("churn", "saya kapok pakai aplikasi ini"),
    ("churn", "tak akan beli lagi, serius"),
    ("churn", "nggak bakal order di sini lagi"),
    ("churn", "kapoklah saya makan di sini"),
    ("churn", "nak tukar ke telco lain"),
    ("churn", "me cambio a la competencia"),
    ("churn", "no vuelvo a comprar aquí"),
    ("churn", "quiero cancelar el contrato"),
    ("churn", "me doy de baja mañana"),
    ("churn", "vou cancelar minha assinatura"),
    ("churn", "nunca mais compro nessa loja"),
    ("churn", "je vais résilier mon abonnement"),
    ("churn", "je me désabonne"),
    ("churn", "Ich werde kündigen"),
    ("churn", "hiermit kündige ich meinen Vertrag"),
    ("churn", "ich bestelle hier nie wieder"),
    ("churn", "我要退订这个套餐"),
    ("churn", "再也不买了"),
    ("churn", "以后换别家"),
    ("churn", "不會再用你們的服務"),
    # English additions (2026-11-24 probe): leaving for another provider, swollen batteries,
    # food that makes people sick, the fourth e-mail, a promised call back that never came
    ("churn", "Been a customer 9 years. Moving my broadband to another provider end of the month"),
    ("churn", "we're switching to a different supplier"),
    ("churn", "I'm changing providers as soon as the contract allows"),
    ("churn", "taking our account over to a competitor"),
    ("churn", "porting my number out tomorrow"),
    ("churn", "just requested my PAC code"),
    ("churn", "I'll shop elsewhere from now on"),
    ("safety", "The battery on my X5 swelled up and the back cover popped off"),
    ("safety", "my laptop has a swollen battery"),
    ("safety", "I can smell gas since your engineer left"),
    ("safety", "found a piece of glass in my salad"),
    ("safety", "my son was vomiting all night after the chicken"),
    ("repeated", "This is my fourth email about the same broken dishwasher"),
    ("repeated", "3rd complaint this month"),
    ("repeated", "Still waiting on a callback that was promised on Monday"),
    ("repeated", "still waiting for a reply to my email of the 3rd"),
    # Second probe of the same day: regulators and MPs, threats to post, payment disputes, the
    # police, food that made someone ill, being passed around, and someone else in the account
    ("escalation", "I will be filing a complaint with the FCA about this"),
    ("escalation", "Reported you to Ofcom"),
    ("escalation", "I'm writing to my MP about this"),
    ("escalation", "This will be all over Twitter tonight"),
    ("escalation", "Going to leave a 1 star review everywhere I can"),
    ("escalation", "我要投诉到工商局"),
    ("legal", "I'm disputing the charge with my bank"),
    ("legal", "I've raised a dispute with PayPal"),
    ("legal", "Will be reporting this to Action Fraud"),
    ("legal", "I'm reporting you to the police"),
    ("churn", "You've lost a customer"),
    ("churn", "I'm never flying with you again"),
    ("safety", "Your product gave my dog diarrhoea and he's at the vet"),
    ("safety", "there's mould in the baby formula"),
    ("safety", "Makanan basi, anak saya sampai muntah-muntah"),
    ("safety", "孩子吃了以后上吐下泻"),
    ("safety", "mi hijo tuvo vómitos toda la noche"),
    ("repeated", "I keep getting passed from department to department"),
    ("repeated", "Every time I call I get cut off after an hour"),
    ("security", "Someone stole my card details from your site"),
    ("security", "My account was hacked and all my points are gone"),
    ("security", "someone logged into my account and changed the email"),
    ("security", "there are unauthorised transactions on my card"),
    ("security", "Akun saya dibobol, saldo hilang semua"),
    ("security", "akaun saya kena godam"),
    ("security", "Me han hackeado la cuenta"),
    ("security", "minha conta foi hackeada"),
    ("security", "mon compte a été piraté"),
    ("security", "mein Konto wurde gehackt"),
    ("security", "我的账号被盗了"),
    ("security", "信用卡被盗刷了"),
    # -- escalation ----------------------------------------------------------------------------
    ("escalation", "saya akan lapor ke YLKI"),
    ("escalation", "akan saya sebarkan di medsos"),
    ("escalation", "saya adukan ke OJK"),
    ("escalation", "lo voy a publicar en redes sociales"),
    ("escalation", "lo publicaré en redes"),
    ("escalation", "pediré la hoja de reclamaciones"),
    ("escalation", "ya puse la queja en la OCU"),
    ("escalation", "voy a ir a la prensa"),
    ("escalation", "vou reclamar no Reclame Aqui"),
    ("escalation", "já abri reclamação no Procon"),
    ("escalation", "vou postar isso nas redes sociais"),
    ("escalation", "je vais saisir la DGCCRF"),
    ("escalation", "je vais tout publier sur les réseaux sociaux"),
    ("escalation", "je vais balancer ça sur les réseaux"),
    ("escalation", "j'ai écrit au médiateur"),
    ("escalation", "ich wende mich an die Verbraucherzentrale"),
    ("escalation", "ich gehe damit an die Presse"),
    ("escalation", "ich poste das in den sozialen Medien"),
    ("escalation", "我要发到网上"),
    ("escalation", "我去找媒体"),
    ("escalation", "已經投訴到消基會"),
]

# Harmless look-alikes: no urgency cue at all may match.
QUIET: list[str] = [
    # charged twice is not repeated contact
    "saya dicaj dua kali untuk pesanan yang sama",
    "me han cobrado dos veces",
    "fui cobrado duas vezes",
    "扣了两次钱",
    "ich wurde doppelt belastet, zweimal abgebucht",
    # "email" and "message" are nouns too
    "I got your email 3 times today lol",
    "we made 3 orders this month, all great",
    # used / visited / bought several times
    "baru 3 kali pakai sudah rusak",
    "sudah berkali-kali makan di sini, selalu enak",
    "ini kali ketiga saya pesan burger di sini",
    "sudah beberapa kali ke sini",
    "pertama kali ke sini, ketiga kali datang ke cabang ini",
    "lo he usado varias veces y funciona",
    "por tercera vez compré este modelo",  # no contact; "for the third time" bought
    "pela segunda vez que compro",
    "c'est la troisième fois que je commande, parfait",
    "zum zweiten Mal bestellt",
    "第三次来这家店吃饭",
    "多次使用后还是很好用",
    "我问了一下价格",
    "Zum dritten Mal bestellt, super Qualität",
    "me llamo Juan y por tercera vez compro aquí",
    "Frage: kann ich mehrmals bestellen?",
    # phone models and hand phones
    "jual telepon genggam xiaomi 4x hitam",
    # German: "Brand" is the English brand, "Gericht" is a dish, "kundig" is expert
    "great brand, lovely products",
    "das Gericht war kalt",
    "brandneu und originalverpackt",
    "sehr kundige Beratung",
    "im Vergleich zur Konkurrenz viel besser",
    # Portuguese / Spanish words that are not legal threats
    "o processo de compra foi fácil",
    "vou processar o pagamento amanhã",
    "a mi juicio el producto es bueno",
    "es un buen producto de consumo",
    "el bajo consumo de la lavadora",
    # French: avocado, hospital-free
    "j'ai reçu un avocat pas mûr",
    "levei um choque com o preço",
    "des avocats abîmés dans ma commande",
    # sunburn-free, sales that "explode" only in Chinese slang, computer viruses
    "手机中毒了，要杀毒",
    "电脑中毒了",
    "再也不用担心迟到了",
    # social media without a threat to spread anything
    "saya benci media sosial",
    "viral di media sosial",
    "upload foto ke media sosial dapat diskon",
    "sigo a la marca en redes sociales",
    "subí una foto a redes sociales",
    "postei uma foto nas redes sociais",
    "jogo online na internet todo dia",
    "j'ai partagé mon avis sur les réseaux sociaux",
    "les réseaux sociaux de la marque",
    # Indonesian: news and everyday words
    "pengacara setya novanto tidak puas",
    "kuota hangus setelah sebulan",
    "rumah sakit ini pelayanannya bagus",
    "tidak pernah kapok ke sini",
    "tidak akan kapok buat balik lagi",
    "restoran pindah ke jalan siliwangi",
    "saya pindah ke sebelah karena lebih tinggi",
    "gak perlu beli lagi, awet banget",
    "mau tanya berapa kali sehari obat ini diminum",
    "masih tidak ada yang mengalahkan rasanya",
    # non-smoking areas
    "we sat in the non-smoking area",
    "duduk di smoking area",
    # English words that look like the new cues
    "God blesses you",
    "pure cinematic intoxication",
    "uninstalled and reinstalled the app, works now",
    # moving house is not leaving a provider, a battery can be fine, a plan can change
    "moving my desk to a new room",
    "changed my address to a new one last week",
    "taking my kids to a new school",
    "battery life is great, lasts two days",
    "still waiting for my parcel",
    "this is my third order and all were perfect",
    "Satan is throwing up his hands in surrender",
    # questions and praise near the new cues
    "I dispute nothing, it was a great stay",
    "Can I close the app while it updates?",
    "Is the heater safe to leave on overnight?",
    "I keep forgetting my password lol",
    "Leaving a 5 star review, thank you!",
    "Bagaimana cara ganti password akun?",
    "El curso de hackeo ético estuvo genial",
    "我想注销一个多余的子账号，怎么操作？",
    "mau muntah lihat mukanya",
    "bikin gue muntah",
    "life hack: freeze the bread",
    "someone changed my delivery slot without asking",
    "somebody used my coupon code before me",
]


def _search(cue: str, text: str) -> re.Match[str] | None:
    return PATTERNS[cue].search(text.casefold())


@pytest.mark.parametrize(("cue", "text"), FIRES, ids=[f"{c}:{t[:30]}" for c, t in FIRES])
def test_cue_fires(cue: str, text: str) -> None:
    assert _search(cue, text), f"{cue} cue missed: {text!r}"


@pytest.mark.parametrize("text", QUIET, ids=[t[:40] for t in QUIET])
def test_look_alike_stays_quiet(text: str) -> None:
    hits = {cue: m.group(0) for cue in PATTERNS if (m := _search(cue, text))}
    assert hits == {}


@pytest.fixture(scope="module")
def clf() -> LexiconClassifier:
    return LexiconClassifier()


@pytest.mark.parametrize(
    "text",
    [
        "saya sudah menghubungi CS lima kali dan tidak ada yang membantu",
        "dah lima kali saya call tapi masih tak selesai",
        "第三次投诉了还是没人处理",
        "He llamado 5 veces y sigo sin respuesta",
        "ich habe mehrmals angerufen, immer noch keine Antwort",
    ],
)
def test_repeated_contact_is_high_urgency(clf: LexiconClassifier, text: str) -> None:
    [result] = clf.classify([_item(text)])
    assert result.urgency is Urgency.HIGH
    assert result.is_complaint  # repeated contact is a strong complaint cue too


@pytest.mark.parametrize(
    "text",
    ["saya dicaj dua kali untuk pesanan yang sama", "扣了两次钱", "me han cobrado dos veces"],
)
def test_charged_twice_is_not_urgent(clf: LexiconClassifier, text: str) -> None:
    assert clf.urgency(text, Sentiment.NEGATIVE, is_complaint=True) is Urgency.NORMAL


def test_legal_and_safety_ignore_sentiment_churn_does_not(clf: LexiconClassifier) -> None:
    assert clf.urgency("vou processar vocês", Sentiment.POSITIVE, False) is Urgency.HIGH
    assert clf.urgency("充电器起火了", Sentiment.POSITIVE, False) is Urgency.HIGH
    assert clf.urgency("je vais résilier", Sentiment.NEGATIVE, False) is Urgency.HIGH
    assert clf.urgency("je vais résilier", Sentiment.POSITIVE, False) is Urgency.LOW


def test_legal_cue_is_also_a_vader_phrase_on_uncased_text(clf: LexiconClassifier) -> None:
    # _LEGAL also rewrites the text before VADER (case kept, re.IGNORECASE): a threat in any
    # of the languages turns the sentiment negative.
    assert clf.compound("Vou PROCESSAR vocês") < -0.05
    assert clf.compound("Ich VERKLAGE euch") < -0.05


def _item(text: str) -> Item:
    return Item(
        source="test",
        channel=Channel.SOCIAL,
        external_id="cue",
        text=text,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


# -- the fast form of the patterns ------------------------------------------------------------


def _random_alternative(rng: random.Random, depth: int = 0) -> str:
    """A small regex over a/b/é/c, in the shapes the cues use: words, optional parts, groups,
    classes (also ranges), quantified groups, look-behinds and escapes at the start."""
    parts: list[str] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.4:
            parts.append("".join(rng.choice("abé") for _ in range(rng.randint(1, 3))))
        elif kind < 0.55:
            parts.append(rng.choice(["[ab]", "[a-c]", "[ée]", r"[-\s]"]))
        elif kind < 0.75 and depth < 2:
            inner = "|".join(_random_alternative(rng, depth + 1) for _ in range(rng.randint(1, 3)))
            parts.append(f"(?:{inner})" + rng.choice(["", "", "?", "+"]))
        elif kind < 0.85:
            parts.append(rng.choice([r"\s", r"\w*", r"\b", r"(?<!b)", r"(?<=a)", "c?"]))
        else:
            parts.append(rng.choice(["a", "b", "é"]) + rng.choice(["?", "*", "{1,2}", ""]))
    return "".join(parts)


def test_grouping_by_first_character_keeps_every_match() -> None:
    rng = random.Random(7)
    texts = ["".join(rng.choice("aabbéc -") for _ in range(rng.randint(0, 12))) for _ in range(400)]
    for _ in range(300):
        words = "|".join(_random_alternative(rng) for _ in range(rng.randint(1, 6)))
        plain = re.compile(rf"\b(?:{words})")
        fast = re.compile(rf"\b(?:{_by_first_char(words)})")
        for text in texts:
            assert bool(plain.search(text)) == bool(fast.search(text)), (words, text)


def test_grouping_splits_only_top_level_alternatives() -> None:
    assert _alternatives(r"a|(?:b|c)|[|)]d|\|e") == ["a", "(?:b|c)", "[|)]d", r"\|e"]
    grouped = _by_first_char(r"kapok|k(?:ü|ue)ndig\w*|(?<!x)zz|\dx")
    assert grouped.startswith("k(?:")
    assert grouped.endswith(r"|(?<!x)zz|\dx")  # not a plain first character: left as it is


def test_chinese_alternatives_run_inside_mixed_runs_only() -> None:
    cue = re.compile(_cue("foo", "起火"))
    for text in ["充电器起火了", "我的iphone充电器起火了", "iphone起火", "foo", "ok, 起火"]:
        assert cue.search(text), text
    for text in ["no fire here", "起 火", "fo o"]:
        assert not cue.search(text), text


def test_every_compiled_rule_is_in_the_version_digest() -> None:
    """A cue kind missing from ``_RULES`` would change labels without a new model version, and
    items seen again would keep the old ones."""
    rules = repr(_RULES)
    clf = LexiconClassifier()
    compiled = [p for _kind, p in clf._all_cues]
    compiled += [p for _name, _w, p in clf._cues]
    assert len(compiled) >= 7
    for pattern in compiled:
        assert repr(pattern.pattern) in rules, pattern.pattern[:60]


def test_every_cue_that_holds_is_named(clf: LexiconClassifier) -> None:
    text = "my account was hacked, I'm closing my account and calling my lawyer"
    assert clf.urgency_cues(text, Sentiment.NEGATIVE) == ("legal", "security", "churn")
    assert clf.urgency_cues(text, Sentiment.POSITIVE) == ("legal", "security")


def test_security_is_high_urgency_whatever_the_sentiment(clf: LexiconClassifier) -> None:
    [result] = clf.classify([_item("great, my account was hacked and you did nothing")])
    assert result.urgency is Urgency.HIGH
