"""Person names (PERSON) in every script, without tagging ordinary words, technology or
famous people.

Evidence, combined per candidate:
- the names gazetteer (names-dataset, distilled: gazetteers.py) — how popular a token is as a
  given or family name somewhere in the world;
- the ordinary-word list (wordfreq, distilled) — "Convert", "Email", "Bitte", "Напиши" are
  words, not names, however spaCy tags them;
- cues: "my name is", "Dear", "Hi", "Mr", "reply to", "ich bin", "je m'appelle", "меня зовут",
  "我叫", "さん", "اسمي", "मेरा नाम" … before (or after) the name;
- spaCy's PERSON spans (Latin script only: an English model on Arabic or Devanagari text tags
  verbs), as one more vote for an unknown, capitalised name.

Rules by script: Latin and Cyrillic names are capitalised sequences (particles like "van",
"de", "bin" allowed), or a known name in lower case right after a cue. Arabic and Devanagari
have no capitals: gazetteer tokens next to each other, or a token a cue singles out. Chinese
names are a family name from the list of common Chinese surnames plus one or two characters,
where a cue introduces them; Japanese ones a family name and a given name before さん/様/です.

Not personal (docs/gateway-api.md): famous people (`FAMOUS`) and technology and product names
(`TECHNOLOGY`), both curated here — no maintained library classifies words as either — unless a
personal cue ("Dear", "my name is") says otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.pii import Finding
from infra.pii_recognizers.gazetteers import names, ordinary_words, places

ENTITY = "PERSON"

TECHNOLOGY = frozenset(
    w.casefold()
    for w in """
    Redis PostgreSQL Postgres MySQL MariaDB SQLite MongoDB Cassandra Kafka RabbitMQ NATS
    Kubernetes Docker Podman Helm Terraform Ansible Puppet Chef Jenkins Travis CircleCI GitHub
    GitLab Bitbucket Grafana Prometheus Kibana Elasticsearch Logstash OpenSearch Splunk Datadog
    Sentry nginx Apache Caddy Traefik Envoy Istio Linkerd Consul Vault Nomad Django Flask
    FastAPI Rails Laravel Spring React Vue Angular Svelte Next Nuxt Node Deno Bun Python Java
    Kotlin Scala Rust Go Golang Ruby Perl PHP Swift Dart Julia Haskell Elixir Erlang Clojure Lua
    TypeScript JavaScript TensorFlow PyTorch Keras Pandas NumPy SciPy Spark Hadoop Hive Airflow
    Dagster Snowflake BigQuery Redshift Databricks Jupyter Excel Outlook Windows Linux Ubuntu
    Debian Fedora Alpine macOS iOS Android Chrome Firefox Safari Slack Zoom Teams Jira
    Confluence Notion Figma Stripe Twilio SendGrid AWS Azure GCP Heroku Vercel Netlify
    Cloudflare OpenAI Anthropic Claude Gemini Llama Mistral ChatGPT Copilot iptables systemd
    cron Bash Zsh Vim Emacs VSCode IntelliJ PyCharm Xcode Celery Gunicorn Uvicorn Pydantic
    SQLAlchemy Alembic Hibernate Maven Gradle npm Yarn pnpm Webpack Vite Babel ESLint Prettier
    Jest Pytest Selenium Playwright Cypress Tableau PowerBI Looker Metabase Superset Kibana Ceph
    MinIO Hadoop Flink Storm Pulsar Zookeeper etcd CoreDNS Calico Cilium Argo Flux Kubeflow
    MLflow Ray Dask Polars DuckDB ClickHouse TimescaleDB InfluxDB Memcached Varnish HAProxy Acme
    Globex Initech Contoso Northwind
    """.split()
)
FAMOUS = frozenset(
    n.casefold()
    for n in """
    Einstein|Albert Einstein|Marie Curie|Curie|Shakespeare|William Shakespeare|Leonardo da Vinci|
    da Vinci|Isaac Newton|Newton|Ada Lovelace|Lovelace|Alan Turing|Turing|Gandhi|Mahatma Gandhi|
    Napoleon|Napoleon Bonaparte|Confucius|Tolstoy|Leo Tolstoy|Goethe|Johann Wolfgang von Goethe|
    Mozart|Beethoven|Bach|Picasso|Van Gogh|Vincent van Gogh|Darwin|Charles Darwin|Galileo|
    Aristotle|Plato|Socrates|Freud|Sigmund Freud|Karl Marx|Marx|Lincoln|Abraham Lincoln|
    Churchill|Winston Churchill|Nelson Mandela|Mandela|Martin Luther King|Cleopatra|Caesar|
    Julius Caesar|Dante|Cervantes|Miguel de Cervantes|Victor Hugo|Hugo|Dostoevsky|Pushkin|
    Nietzsche|Kant|Hegel|Descartes|Voltaire|Rousseau|Marco Polo|Columbus|Christopher Columbus|
    Tesla|Nikola Tesla|Edison|Thomas Edison|Stephen Hawking|Hawking|Elon Musk|Bill Gates|
    Steve Jobs|Mark Zuckerberg|Jeff Bezos|Barack Obama|Obama|Donald Trump|Trump|Joe Biden|Biden|
    Angela Merkel|Merkel|Emmanuel Macron|Macron|Vladimir Putin|Putin|Xi Jinping|Frida Kahlo|
    Michelangelo|Rembrandt|Homer|Buddha|Jesus|Muhammad|Moses|Linus Torvalds|Guido van Rossum|
    Tim Berners-Lee|Grace Hopper|Dijkstra|Edsger Dijkstra|Knuth|Donald Knuth|Ramanujan|Tagore|
    Rabindranath Tagore|Kafka|Franz Kafka|Orwell|George Orwell|Jane Austen|Austen|Hemingway|
    Chaplin|Charlie Chaplin|Elvis|Madonna|Beyoncé|Messi|Ronaldo|Pelé|Marie Antoinette|
    Queen Elizabeth|Elizabeth II|Gorbachev|Lenin|Stalin|Mao|Mao Zedong|Sun Yat-sen|Kurosawa|
    Hokusai|Murakami|Haruki Murakami|Rumi|Avicenna|Ibn Sina|Saladin|Khwarizmi
    """.replace("\n", "").split("|")
)

# One token per run of one script (a Latin name glued to Japanese text is still a token).
_TOKEN = re.compile(
    r"[A-Za-zÀ-ÖØ-öø-ɏḀ-ỿ]+(?:['’-][A-Za-zÀ-ÖØ-öø-ɏḀ-ỿ]+)*"
    r"|[\u0400-\u052F]+(?:-[\u0400-\u052F]+)*"
    r"|[\u0621-\u065F\u0670-\u06D3\u06FA-\u06FF\u0750-\u077F]+"
    r"|[\u0900-\u097F]+"
)
_PARTICLES = frozenset(
    """
    van von der den de del della di da do dos du la le al el bin binti ibn bint ben y st
    """.split()
)
# Cues before a name. Strong: a name follows (even an unknown or ordinary-looking one).
_STRONG_CUE = re.compile(
    r"(?i)(?:\bmy name is|\bi am|\bi'm|\bim\b|\bthis is|\bit's|\bcall me|\bdear|\bhi|\bhello|\bhey|"
    r"\bthanks|\bthank you|\bregards|\bcheers|\bsincerely|\bbest|\bmr|\bmrs|\bms|\bmiss|\bdr|"
    r"\bprof|\bpatient|\bsigned|\bich bin|\bmein name ist|\bich heiße|\bhallo|\bliebe[rs]?|"
    r"\bherrn?|\bfrau|\bgrüße|\bje m'appelle|\bje suis|\bbonjour|\bcher|\bchère|\bmadame|"
    r"\bmonsieur|\bmme|\bcordialement|\bme llamo|\bsoy|\bhola|\bquerid[oa]|\bseñora?|\bsra?|"
    r"\bsaludos|\bменя зовут|\bя\b|\bздравствуйте|\bуважаем\w*|\bгоспо\w*|"
    r"\bг-[нж]а?|\bс уважением|\bпривет)[\s.,:!]*$"
)
# Weak: a known name follows ("reply to Megan", "für Jonas", "pour Camille").
_WEAK_CUE = re.compile(
    r"(?i)(?:\bto|\bfor|\bfrom|\bwith|\bcc|\bask|\btell|\binvite|\bmeet|\bcontact|\bcustomer|"
    r"\bclient|\ban|\bfür|\bmit|\bpour|\bavec|\bpara|\bcon|\bответ\w*|\bдля|\bполучател\w*|"
    r"\bнапиши|\bи|\band|\bund|\bet|\by)[\s,:]*$"
)
_SENTENCE_END = re.compile(r"(?:^|[.!?\n:;]\s*|^\s*)$")
# Arabic, Devanagari: cue before / after.
_ARABIC_STRONG_CUE = re.compile(
    r"(?:اسمي|السيد|السيدة|الأستاذ|الأستاذة|الدكتور|الدكتورة|عزيزي|عزيزتي)\s*$"
)
_ARABIC_CUE = re.compile(r"(?:إلى|باسم|ردا|رد على)\s*$")  # only before known names
_DEVANAGARI_CUE_BEFORE = re.compile(r"(?:मैं|मेरा नाम|नाम|श्री|श्रीमती|सुश्री|प्रिय|नमस्ते,?)\s*$")
_DEVANAGARI_CUE_AFTER = re.compile(r"^\s*(?:हूँ|हूं|को|जी|ने|ko|ji|ne)(?![\u0900-\u097Fa-z])")
# Chinese: common family names (the most frequent ~120 surnames cover ~90% of people).
_CHINESE_SURNAMES = """
    欧阳 司马 上官 诸葛 东方 皇甫 慕容 令狐 王 李 张 刘 陈 杨 黄 赵 吴 周
    徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 彭 曾
    肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔
    钟 谭 陆 汪 范 金 石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 邱 江 尹 薛
    闫 段 雷 侯 龙 史 陶 黎 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戴 莫 孔
    向 汤 常 温 康 施 文 牛 樊 葛 邢 安 齐 易 乔 伍 庞 颜 倪 庄 聂 章
    鲁 岳 翟 殷 詹 申 欧 耿 关 兰 焦 俞 左 柳 甘 祝 包 宁 尚 符 舒 阮
    柯 纪 梅 童 凌 毕 单 季 裴 霍 涂 成 苗 谷 盛 曲 翁 冉 骆 蓝 路 游
    辛 靳 管 柴 蒙 鲍 华 喻 祁 蒲 房 滕 屈 饶 解 牟 艾 尤 阳 时 穆 农
    司 卓 古 吉 缪 简 车 项 连 芦 麦 褚 娄 窦 戚 岑 景 党 宫 费 卜 冷
    晏 席 卫 米 柏 宗 瞿 桂 全 佟 应 臧 闵 苟 邬 边 卞 姬 师 和 仇 栾
    隋 商 刁 沙 荣 巫 寇 桑 郎 甄 丛 仲 虞 敖 巩 明 佘 池 查 麻 苑 迟
    邝
""".split()
_SURNAMES = frozenset(_CHINESE_SURNAMES)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_CHINESE_CUE_BEFORE = re.compile(
    r"(?:我叫|我是|姓名[:：]?|名字[:：]?|联系人[:：]?|收件人[:：]?|客户[:：]?|回复|回信给|转告|告诉|给|致|"
    r"感谢|谢谢|亲爱的|尊敬的)\s*$"
)
_CHINESE_CUE_AFTER = re.compile(
    r"^(?:先生|女士|小姐|老师|经理|同学|医生|教授|，|,|。|的|说|他|她|已|在|是|和|与|打|发|来)"
)
_CJK = r"[\u4e00-\u9fff]"
_KANA_NAME = r"[\u4e00-\u9fff\u3040-\u309f\u30a0-\u30ff]"
_JAPANESE_FAMILY = r"[\u4e00-\u9fff\u3005]"  # kanji, and 々 (佐々木)
_JAPANESE_NAME = re.compile(
    rf"({_JAPANESE_FAMILY}{{1,4}})(?:[ 　]?({_KANA_NAME}{{1,3}}?))?"
    r"(?=さん|様|氏|くん|君|ちゃん|です|、|。|\s*<|\s*\n|$)"
)
_JAPANESE_CUE_BEFORE = re.compile(
    r"(?:私は|わたしは|氏名[:：]?|差出人[:：]?|担当(?:の|者)?[:：]?|宛先[:：]?)\s*$"
)
_HONORIFIC = re.compile(r"さん|様|氏|くん|君|ちゃん|先生")


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def key(self) -> str:
        return re.sub(r"['’]s$", "", self.text.casefold())


@functools.cache
def _gazetteer() -> tuple[dict[str, float], frozenset[str]]:
    return _InflectedNames(names()), ordinary_words() | places()


# Russian declines names ("письмо Дмитрию Волкову": to Dmitry Volkov); the gazetteer holds the
# nominative. Case endings (dative, genitive, instrumental, prepositional) -> nominative ones.
_RUSSIAN_ENDINGS = (
    ("ию", ("ий", "ия")), ("ии", ("ий", "ия")), ("ием", ("ий",)), ("ией", ("ия",)),
    ("ью", ("ья",)), ("ой", ("а", "ая", "ой")), ("ому", ("", "ой")), ("ему", ("", "ий")),
    ("ого", ("", "ой")), ("его", ("", "ий")), ("ым", ("",)), ("ом", ("",)), ("ем", ("", "ь")),
    ("ой", ("а",)), ("ей", ("я", "ь")), ("ою", ("а",)), ("у", ("", "а")), ("ю", ("й", "я", "ь")),
    ("е", ("а", "я", "")), ("ы", ("а",)), ("и", ("а", "я", "ь")), ("а", ("", "й")),
)  # fmt: skip


class _InflectedNames(dict[str, float]):
    """The gazetteer, also answering for inflected Cyrillic forms of the names in it."""

    def get(self, key: str, default: float = 0.0) -> float:  # type: ignore[override]
        found = super().get(key)
        if found is not None:
            return found
        if key and "\u0400" <= key[0] <= "\u052f":
            for ending, nominatives in _RUSSIAN_ENDINGS:
                if key.endswith(ending) and len(key) > len(ending) + 2:
                    stem = key[: -len(ending)]
                    for nominative in nominatives:
                        found = super().get(stem + nominative)
                        if found is not None:
                            return found
        return default


def find(text: str, ner_spans: Sequence[tuple[int, int]] = ()) -> list[Finding]:
    gazetteer, ordinary = _gazetteer()
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    found: list[Finding] = []
    found.extend(_capitalised(text, tokens, gazetteer, ordinary, ner_spans))
    found.extend(_lower_case(text, tokens, gazetteer, ordinary))
    found.extend(_uncased(text, tokens, gazetteer, ordinary))
    found.extend(_chinese(text))
    found.extend(_japanese(text, gazetteer))
    return found


def _script(token: str) -> str:
    ch = token[0]
    if "\u0600" <= ch <= "\u06ff":
        return "ARABIC"
    if "\u0900" <= ch <= "\u097f":
        return "DEVANAGARI"
    if "\u0400" <= ch <= "\u052f":
        return "CYRILLIC"
    if ch.isascii() or "\u00c0" <= ch <= "\u024f":
        return "LATIN"
    return "OTHER"


def _capitalised(
    text: str,
    tokens: list[_Token],
    gazetteer: dict[str, float],
    ordinary: frozenset[str],
    ner_spans: Sequence[tuple[int, int]],
) -> list[Finding]:
    found = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _script(token.text) not in ("LATIN", "CYRILLIC") or not token.text[0].isupper():
            i += 1
            continue
        run = [token]
        j = i + 1
        while j < len(tokens) and len(run) < 4:
            gap = text[run[-1].end : tokens[j].start]
            nxt = tokens[j]
            if gap not in (" ", "\u00a0"):
                break
            if (nxt.text[0].isupper() and _script(nxt.text) == _script(token.text)) or (
                nxt.key in _PARTICLES and j + 1 < len(tokens) and tokens[j + 1].text[0].isupper()
            ):
                run.append(nxt)
            else:
                break
            j += 1
        while run and run[-1].key in _PARTICLES:
            run.pop()
        # Leading cue words ("Dear", "Hi") and ordinary words ("Invite", "Empfänger") belong to
        # the sentence, not the name.
        while len(run) > 1 and (
            _STRONG_CUE.search(run[0].text)
            or (run[0].key in ordinary and gazetteer.get(run[0].key, 0.0) < 3.0)
        ):
            run = run[1:]
        if run and _STRONG_CUE.search(run[0].text):
            run = []
        if len(run) >= 3 and run[0].key in ordinary:  # "Ask Maria Garcia": a verb, then a name
            run = run[1:]
        span = _accept(text, run, gazetteer, ordinary, ner_spans)
        if span is not None:
            found.append(Finding(ENTITY, span[0], span[1], 0.85))
        i = j if j > i + 1 else i + 1
    return found


def _accept(
    text: str,
    run: list[_Token],
    gazetteer: dict[str, float],
    ordinary: frozenset[str],
    ner_spans: Sequence[tuple[int, int]],
) -> tuple[int, int] | None:
    """The part of a capitalised run that is a person's name, if any."""
    if not run:
        return None
    start, end = run[0].start, run[-1].end
    before = text[max(0, start - 30) : start]
    strong = bool(_STRONG_CUE.search(before))
    weak = bool(_WEAK_CUE.search(before))
    full = re.sub(r"['’]s$", "", text[start:end].casefold())
    words = [t for t in run if t.key not in _PARTICLES]
    if any(t.text.isupper() and len(t.text) <= 4 for t in words) and not strong:
        return None  # an acronym ("IBAN", "HB"), not a name
    if (full in FAMOUS or full in places()) and not strong:
        return None
    if any(t.key in TECHNOLOGY for t in words) and not strong:
        return None
    strengths = [gazetteer.get(t.key, 0.0) for t in words]
    plain = [t.key in ordinary and gazetteer.get(t.key, 0.0) < 3.0 for t in words]
    by_ner = any(s <= start and end <= e for s, e in ner_spans) or any(
        start <= s < e <= end for s, e in ner_spans
    )
    if strong:
        # the name is the run, minus trailing ordinary words ("Hi Priya Thanks")
        while words and plain[-1] and len(words) > 1:
            words, plain = words[:-1], plain[:-1]
        if not plain[0] or gazetteer.get(words[0].key, 0.0) >= 2.0:
            return words[0].start, words[-1].end
        return None
    if len(words) >= 2:
        known = sum(s >= 2.5 for s in strengths)
        if any(plain) and known < len(words):
            return None
        if all(t.key in ordinary for t in words) and not (weak or by_ner):
            return None  # "Great Wall", "Park Lane": a phrase of words
        if (known >= 1 and max(strengths) >= 3.0) or (by_ner and known >= 1) or known >= 2:
            return start, end
        return None
    strength, is_plain = strengths[0], plain[0]
    if is_plain or (words[0].key in ordinary and not (weak or by_ner)):
        return None  # "Can you", "Order #123", "German": a word, unless a cue says otherwise
    initial = bool(_SENTENCE_END.search(text[max(0, start - 3) : start]))
    if weak and strength >= 2.5:
        return start, end
    if strength >= 3.5 and (not initial or strength >= 4.0 or by_ner):
        return start, end
    return None


def _lower_case(
    text: str, tokens: list[_Token], gazetteer: dict[str, float], ordinary: frozenset[str]
) -> list[Finding]:
    """'reply to olivia', 'hey it's maria here': a known name after a cue, in lower case."""
    found = []
    for token in tokens:
        if not token.text.islower() or _script(token.text) not in ("LATIN", "CYRILLIC"):
            continue
        if gazetteer.get(token.key, 0.0) < 3.5 or token.key in ordinary or token.key in TECHNOLOGY:
            continue
        before = text[max(0, token.start - 30) : token.start]
        if _STRONG_CUE.search(before) or _WEAK_CUE.search(before):
            found.append(Finding(ENTITY, token.start, token.end, 0.7))
    return found


# Devanagari function words: wordfreq's Hindi list counts names as words (Indians mostly write
# their names in Latin script online), so only these are taken as certainly not a name.
_HINDI_FUNCTION = frozenset(
    """
    है हूँ हूं हैं था थी थे और या का की के को में से पर ने भी तो ही यह वह ये वो मैं मेरा मेरी
    मेरे आप आपका आपकी आपके उनका उनकी उनके उन्हें इसे उसे जी नहीं क्या क्यों कैसे कब कहाँ एक दो
    लिखो लिखें बताओ बताइए करो करें कर दो दें जवाब फ़ोन फोन नंबर पता नाम
    """.split()
)


def _uncased(
    text: str, tokens: list[_Token], gazetteer: dict[str, float], ordinary: frozenset[str]
) -> list[Finding]:
    """Arabic and Devanagari: gazetteer names side by side, or tokens a cue singles out."""
    found = []
    i = 0
    while i < len(tokens):
        script = _script(tokens[i].text)
        if script not in ("ARABIC", "DEVANAGARI"):
            i += 1
            continue
        run = [tokens[i]]
        j = i + 1
        while (
            j < len(tokens)
            and len(run) < 3
            and _script(tokens[j].text) == script
            and text[run[-1].end : tokens[j].start] == " "
        ):
            run.append(tokens[j])
            j += 1
        span = (
            _arabic(text, run, gazetteer, ordinary)
            if script == "ARABIC"
            else _devanagari(text, run, gazetteer)
        )
        if span is not None:
            found.append(Finding(ENTITY, span[0], span[1], 0.8))
            while i < len(tokens) and tokens[i].end <= span[1]:
                i += 1
            continue
        i += 1
    return found


# Arabic particles and pronouns that names-dataset also lists as names (على / علي "Ali").
_ARABIC_FUNCTION = frozenset(
    """
    في من على إلى الى عن مع بي لي لك له لها هو هي هم أنا انا نحن أنت انت هذا هذه ذلك تلك ما ماذا
    لماذا كيف متى أين اين هل لا نعم أو او ثم قد كل بعد قبل عند اسمي السيد السيدة الأستاذ
    الأستاذة الدكتور الدكتورة عزيزي عزيزتي مرحبا
    """.split()
)


def _arabic(
    text: str, run: list[_Token], gazetteer: dict[str, float], ordinary: frozenset[str]
) -> tuple[int, int] | None:
    before = text[max(0, run[0].start - 20) : run[0].start]
    strong = bool(_ARABIC_STRONG_CUE.search(before))
    named: list[_Token] = []
    for token in run:
        known = gazetteer.get(token.key, 0.0) >= 2.3
        if token.text in _ARABIC_FUNCTION:
            break
        if (token.key in ordinary and not known) or not (known or strong):
            break
        named.append(token)
    if not named:
        return None
    start, end = named[0].start, named[-1].end
    weak = bool(_ARABIC_CUE.search(before))
    if len(named) >= 2 or strong or weak:
        return start, end
    return None


def _devanagari(
    text: str, run: list[_Token], gazetteer: dict[str, float]
) -> tuple[int, int] | None:
    named: list[_Token] = []
    for token in run[:2]:
        if token.text in _HINDI_FUNCTION:
            break
        named.append(token)
    if not named:
        return None
    start, end = named[0].start, named[-1].end
    cued_before = bool(_DEVANAGARI_CUE_BEFORE.search(text[max(0, start - 20) : start]))
    cued_after = bool(_DEVANAGARI_CUE_AFTER.match(text[end : end + 8]))
    known = [gazetteer.get(t.key, 0.0) for t in named]
    if cued_before:
        return start, end
    if cued_after and (max(known) >= 2.3 or len(named) == 2):
        return start, end
    if len(named) == 2 and min(known) >= 2.3:
        return start, end
    return None


def _chinese(text: str) -> list[Finding]:
    found = []
    for han in _HAN.finditer(text):
        index, ch = han.start(), han.group()
        for surname in (text[index : index + 2], ch):
            if surname not in _SURNAMES:
                continue
            before = text[max(0, index - 6) : index]
            cued = bool(_CHINESE_CUE_BEFORE.search(before))
            if not cued and index and not re.match(r"[，。,\s:：]", text[index - 1]):
                continue  # inside a run of characters: part of a word, not a name's start
            given = re.match(rf"{_CJK}{{1,2}}", text[index + len(surname) :])
            if given is None:
                continue
            name_end = index + len(surname) + len(given.group())
            after = text[name_end : name_end + 4]
            if cued or _CHINESE_CUE_AFTER.match(after):
                # a two-character given name only when what follows says the name ended there
                if len(given.group()) == 2 and not _CHINESE_CUE_AFTER.match(after):
                    name_end -= 1
                found.append(Finding(ENTITY, index, name_end, 0.8))
            break
    return found


def _japanese(text: str, gazetteer: dict[str, float]) -> list[Finding]:
    if not re.search(r"[\u3040-\u30ff]", text):  # Japanese text has kana
        return []
    found = []
    for match in _JAPANESE_NAME.finditer(text):
        family = match.group(1)
        start = match.start()
        if match.group(2) is None and not _HONORIFIC.match(text, match.end()):
            continue  # a family name alone only before an honorific (佐々木さん)
        # the family name may be the tail of a longer kanji run: take a known one
        for cut in range(len(family)):
            candidate = family[cut:]
            if gazetteer.get(candidate.casefold(), 0.0) >= 2.5:
                start = match.start() + cut
                break
        else:
            if not _JAPANESE_CUE_BEFORE.search(text[max(0, start - 6) : start]):
                continue
        found.append(Finding(ENTITY, start, match.end(), 0.8))
    return found
