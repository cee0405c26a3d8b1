"""The labelled PII corpus: chat, e-mail, code/.env/YAML, CSV/JSON/SQL/HL7 rows, logs and forms in
nine languages, with planted values that pass their checksums, look-alike decoys, and PII-free
prompts. Generated with a fixed seed and checked in as bench/pii_corpus.jsonl:

    uv run python -m bench.pii_corpus            # rewrites bench/pii_corpus.jsonl
    uv run python -m bench.pii_corpus --check    # fails if the checked-in file is stale

Each line: {"id", "lang", "format", "text", "spans": [{"start", "end", "type", "value"}],
"decoys": [{"start", "end", "kind", "value"}]}. A snippet with no spans is PII-free.

Templates mark slots as [[TYPE]] (a value to detect) or [[~KIND]] (a decoy that must pass
through). Values of one snippet belong to one person (the e-mail is made from the name).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import pii_values as v

SEED = 20261201
PATH = Path(__file__).with_name("pii_corpus.jsonl")
LANGS = ("en", "de", "fr", "es", "zh", "ja", "ar", "hi", "ru")
TYPES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
    "CRYPTO", "SECRET", "DATE_OF_BIRTH", "STREET_ADDRESS", "PASSPORT", "NATIONAL_ID",
    "MEDICAL_RECORD_NUMBER",
)  # fmt: skip

# --- templates: (format, text) per language ---------------------------------------------------

T: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("chat", "Hi, I'm [[PERSON]] and my card [[CREDIT_CARD]] was charged twice. Can you help me write a complaint?"),
        ("chat", "can you draft a reply to [[PERSON:lower]]? she asked about the invoice, her number is [[PHONE_NUMBER]]"),
        ("chat", "My name is [[PERSON]], born [[DATE_OF_BIRTH]]. Summarize my insurance options please."),
        ("chat", "Please translate this for [[PERSON:first]]: the package goes to [[STREET_ADDRESS]] on Friday."),
        ("chat", "Why does my [[~TECH]] cluster keep restarting? I upgraded to [[~VERSION]] yesterday. Logs are from [[IP_ADDRESS]]."),
        ("chat", "I need to wire money to IBAN [[IBAN_CODE]] for [[PERSON]]. Write a polite note to the bank."),
        ("chat", "Send the payout to [[CRYPTO]] — that's my wallet. Order [[~ORDER_ID]] is still pending."),
        ("chat", "Here's my passport number [[PASSPORT]] and SSN [[NATIONAL_ID:us_ssn]], fill the visa form for me."),
        ("chat", "Patient [[PERSON]] (MRN [[MEDICAL_RECORD_NUMBER]]) reports chest pain since Monday. Draft a referral letter."),
        ("chat", "Compare [[~TECH]] and [[~TECH]] for a write-heavy workload, and explain how [[~TECH]] schedules pods."),
        ("chat", "Tell me about the history of [[~PLACE]] and why [[~FAMOUS]] is still so influential."),
        ("email", "From: [[PERSON]] <[[EMAIL_ADDRESS]]>\nSubject: Re: lease renewal\n\nHi [[PERSON:first]],\nI moved to [[STREET_ADDRESS]]. Call me on [[PHONE_NUMBER]].\nThanks,\n[[PERSON:first]]"),
        ("email", "Dear [[PERSON]],\n\nYour refund for order [[~ORDER_ID]] was sent to the card ending in the number [[CREDIT_CARD]]. Reply to [[EMAIL_ADDRESS]] with questions.\n\nBest regards"),
        ("code", "OPENAI_API_KEY=[[SECRET]]\nDATABASE_URL=postgres://admin:[[SECRET:password]]@db.internal:5432/app\nLOG_LEVEL=debug"),
        ("code", "import boto3\nclient = boto3.client('s3', aws_access_key_id='[[SECRET:aws_key]]', aws_secret_access_key='[[SECRET:aws_secret]]')\n# why does this fail with AccessDenied?"),
        ("code", "headers = {\"Authorization\": \"Bearer [[SECRET]]\"}\nresp = requests.get(url, headers=headers)  # returns 401, why?"),
        ("code", "Here is my key file, why won't ssh accept it?\n[[SECRET:private_key]]"),
        ("yaml", "services:\n  api:\n    image: ghcr.io/acme/api:[[~VERSION]]\n    environment:\n      STRIPE_KEY: [[SECRET:stripe]]\n      ADMIN_EMAIL: [[EMAIL_ADDRESS]]"),
        ("csv", "name,email,phone,dob\n[[PERSON]],[[EMAIL_ADDRESS]],[[PHONE_NUMBER]],[[DATE_OF_BIRTH:iso]]\nWhich column should be the primary key?"),
        ("json", "{\"customer\": {\"name\": \"[[PERSON]]\", \"email\": \"[[EMAIL_ADDRESS]]\", \"card\": \"[[CREDIT_CARD]]\"}, \"sku\": \"[[~ORDER_ID]]\"}\nValidate this against the schema."),
        ("sql", "INSERT INTO users (full_name, email, ssn) VALUES ('[[PERSON]]', '[[EMAIL_ADDRESS]]', '[[NATIONAL_ID:us_ssn]]');\n-- why does this violate the unique constraint?"),
        ("hl7", "MSH|^~\\&|EPIC|HOSP|||20240312||ADT^A01|MSG0001|P|2.5\nPID|1||[[MEDICAL_RECORD_NUMBER]]^^^HOSP^MR||[[PERSON:hl7]]||[[DATE_OF_BIRTH:hl7]]|F|||[[STREET_ADDRESS]]\nParse this HL7 message into JSON."),
        ("log", "2024-03-12T10:15:22Z INFO login ok user=[[EMAIL_ADDRESS]] ip=[[IP_ADDRESS]] build=[[~VERSION]]\n2024-03-12T10:15:23Z WARN slow query 812ms"),
        ("log", "GET [[URL_TOKEN]] 200 1532ms ua=Mozilla/5.0 ip=[[IP_ADDRESS]]"),
        ("form", "Full name: [[PERSON]]\nDate of birth: [[DATE_OF_BIRTH]]\nAddress: [[STREET_ADDRESS]]\nPhone: [[PHONE_NUMBER]]\nPassport no.: [[PASSPORT]]\nCheck this application for mistakes."),
        ("form", "National Insurance number: [[NATIONAL_ID:uk_nino]]\nName: [[PERSON]]\nEmployer: [[~PRODUCT]] Ltd\nIs my tax code right?"),
        ("chat", "my aadhaar is [[NATIONAL_ID:in_aadhaar]] and PAN [[NATIONAL_ID:in_pan]], the bank KYC keeps failing. what else do they need?"),
        ("chat", "Reset link from support: [[URL_TOKEN]] — it says expired, can you explain why?"),
        ("chat", "Invite [[PERSON]] and [[PERSON]] to the review; [[PERSON:first]] owns the [[~TECH]] migration."),
    ],
    "de": [
        ("chat", "Hallo, ich bin [[PERSON]] und meine Kreditkarte [[CREDIT_CARD]] wurde doppelt belastet. Hilf mir bitte mit einer Beschwerde."),
        ("chat", "Bitte schreib eine Antwort an [[PERSON]], Telefon [[PHONE_NUMBER]], wegen der Mietkaution."),
        ("chat", "Mein Name ist [[PERSON]], geboren am [[DATE_OF_BIRTH]]. Welche Versicherung passt zu mir?"),
        ("chat", "Überweise die Miete an IBAN [[IBAN_CODE]] (Empfänger [[PERSON]]) – formuliere den Verwendungszweck."),
        ("chat", "Meine neue Adresse ist [[STREET_ADDRESS]]. Schreib das bitte in den Nachsendeauftrag."),
        ("chat", "Warum startet mein [[~TECH]]-Container ständig neu? Ich habe gestern auf Version [[~VERSION]] aktualisiert."),
        ("chat", "Erkläre mir die Geschichte von [[~PLACE]] und warum [[~FAMOUS]] so berühmt ist."),
        ("email", "Von: [[PERSON]] <[[EMAIL_ADDRESS]]>\nBetreff: Termin\n\nHallo [[PERSON:first]],\nbitte ruf mich unter [[PHONE_NUMBER]] an.\nViele Grüße\n[[PERSON:first]]"),
        ("form", "Name: [[PERSON]]\nGeburtsdatum: [[DATE_OF_BIRTH]]\nAnschrift: [[STREET_ADDRESS]]\nSteuer-ID: [[NATIONAL_ID:de_idnr]]\nReisepassnummer: [[PASSPORT]]\nBitte prüfe das Formular."),
        ("code", "# .env für das Projekt\nGITHUB_TOKEN=[[SECRET]]\nSMTP_PASSWORD=[[SECRET:password]]\nwarum schlägt der Login fehl?"),
        ("log", "2024-05-02 08:01:17 FEHLER Anmeldung fehlgeschlagen für [[EMAIL_ADDRESS]] von [[IP_ADDRESS]]"),
        ("csv", "Name;E-Mail;Telefon\n[[PERSON]];[[EMAIL_ADDRESS]];[[PHONE_NUMBER]]\nWie importiere ich das in Excel?"),
        ("chat", "Patient [[PERSON]], Patientennummer [[MEDICAL_RECORD_NUMBER]], hat seit Montag Fieber. Schreib einen Arztbrief."),
        ("chat", "Vergleiche [[~TECH]] und [[~TECH]] für unser Projekt, bitte mit Beispielen."),
    ],
    "fr": [
        ("chat", "Bonjour, je m'appelle [[PERSON]] et ma carte [[CREDIT_CARD]] a été débitée deux fois. Aide-moi à écrire une réclamation."),
        ("chat", "Peux-tu répondre à [[PERSON]] ? Son numéro est le [[PHONE_NUMBER]]."),
        ("chat", "Je suis née le [[DATE_OF_BIRTH]] et je m'appelle [[PERSON]]. Quelle mutuelle me conseilles-tu ?"),
        ("chat", "Mon numéro de sécurité sociale est [[NATIONAL_ID:fr_nir]], remplis le formulaire pour moi."),
        ("chat", "Envoie le virement sur l'IBAN [[IBAN_CODE]] au nom de [[PERSON]]."),
        ("chat", "J'habite au [[STREET_ADDRESS]]. Rédige une lettre de résiliation pour mon opérateur."),
        ("chat", "Pourquoi mon déploiement [[~TECH]] échoue après la mise à jour [[~VERSION]] ?"),
        ("chat", "Raconte-moi l'histoire de [[~PLACE]] et l'œuvre de [[~FAMOUS]]."),
        ("email", "De : [[PERSON]] <[[EMAIL_ADDRESS]]>\nObjet : rendez-vous\n\nBonjour [[PERSON:first]],\nappelez-moi au [[PHONE_NUMBER]].\nCordialement,\n[[PERSON:first]]"),
        ("form", "Nom : [[PERSON]]\nDate de naissance : [[DATE_OF_BIRTH]]\nAdresse : [[STREET_ADDRESS]]\nNuméro de passeport : [[PASSPORT]]\nVérifie ce dossier."),
        ("code", "export STRIPE_SECRET=[[SECRET:stripe]]\nexport DB_PASS=[[SECRET:password]]\n# pourquoi la connexion est refusée ?"),
        ("log", "12/03/2024 09:12:44 ERREUR échec de connexion pour [[EMAIL_ADDRESS]] depuis [[IP_ADDRESS]]"),
        ("json", "{\"client\": \"[[PERSON]]\", \"courriel\": \"[[EMAIL_ADDRESS]]\", \"commande\": \"[[~ORDER_ID]]\"}\nCorrige ce JSON."),
    ],
    "es": [
        ("chat", "Hola, soy [[PERSON]] y me cobraron dos veces en la tarjeta [[CREDIT_CARD]]. ¿Me ayudas con la reclamación?"),
        ("chat", "Escribe una respuesta a [[PERSON]], su teléfono es [[PHONE_NUMBER]]."),
        ("chat", "Nací el [[DATE_OF_BIRTH]], me llamo [[PERSON]] y mi DNI es [[NATIONAL_ID:es_dni]]. ¿Qué seguro me conviene?"),
        ("chat", "Haz la transferencia al IBAN [[IBAN_CODE]] a nombre de [[PERSON]]."),
        ("chat", "Mi dirección nueva es [[STREET_ADDRESS]]. Redacta el cambio de domicilio."),
        ("chat", "¿Por qué falla mi clúster de [[~TECH]] después de actualizar a [[~VERSION]]?"),
        ("chat", "Cuéntame la historia de [[~PLACE]] y por qué [[~FAMOUS]] es tan importante."),
        ("email", "De: [[PERSON]] <[[EMAIL_ADDRESS]]>\nAsunto: cita\n\nHola [[PERSON:first]],\nllámame al [[PHONE_NUMBER]].\nSaludos,\n[[PERSON:first]]"),
        ("form", "Nombre: [[PERSON]]\nFecha de nacimiento: [[DATE_OF_BIRTH]]\nDomicilio: [[STREET_ADDRESS]]\nPasaporte: [[PASSPORT]]\nRevisa la solicitud."),
        ("code", "AWS_ACCESS_KEY_ID=[[SECRET:aws_key]]\nAWS_SECRET_ACCESS_KEY=[[SECRET:aws_secret]]\n# ¿por qué no funciona?"),
        ("log", "2024-03-12 10:00:01 ERROR acceso denegado usuario=[[EMAIL_ADDRESS]] ip=[[IP_ADDRESS]]"),
        ("sql", "UPDATE clientes SET telefono = '[[PHONE_NUMBER]]' WHERE nombre = '[[PERSON]]';"),
    ],
    "zh": [
        ("chat", "你好，我叫[[PERSON]]，我的信用卡[[CREDIT_CARD]]被扣了两次款，请帮我写投诉信。"),
        ("chat", "请帮我回复[[PERSON]]，他的电话是[[PHONE_NUMBER]]。"),
        ("chat", "我叫[[PERSON]]，出生日期[[DATE_OF_BIRTH]]，身份证号[[NATIONAL_ID:cn_ric]]，帮我填写申请表。"),
        ("chat", "我的地址是[[STREET_ADDRESS]]，请帮我写一封搬家通知。"),
        ("chat", "联系人：[[PERSON]]，邮箱[[EMAIL_ADDRESS]]，护照号码[[PASSPORT]]。"),
        ("chat", "为什么我的[[~TECH]]集群在升级到[[~VERSION]]后一直重启？"),
        ("chat", "介绍一下[[~PLACE]]的历史，以及[[~FAMOUS]]的贡献。"),
        ("chat", "请把款转到钱包地址[[CRYPTO]]，订单号[[~ORDER_ID]]。"),
        ("log", "2024-03-12 10:15:22 错误 用户[[EMAIL_ADDRESS]]从[[IP_ADDRESS]]登录失败"),
        ("form", "姓名：[[PERSON]]\n电话：[[PHONE_NUMBER]]\n地址：[[STREET_ADDRESS]]\n请检查信息是否完整。"),
        ("code", "# 配置文件\nAPI_KEY=[[SECRET]]\n为什么请求返回401？"),
    ],
    "ja": [
        ("chat", "こんにちは、[[PERSON]]です。クレジットカード[[CREDIT_CARD]]が二重に請求されました。苦情の文面を手伝ってください。"),
        ("chat", "[[PERSON]]さんに返信を書いてください。電話番号は[[PHONE_NUMBER]]です。"),
        ("chat", "私は[[PERSON]]、生年月日は[[DATE_OF_BIRTH]]です。保険について教えてください。"),
        ("chat", "住所は[[STREET_ADDRESS]]です。引っ越しの通知を書いてください。"),
        ("chat", "マイナンバーは[[NATIONAL_ID:jp_my_number]]です。申請書を作ってください。"),
        ("chat", "[[~TECH]]を[[~VERSION]]に更新したら動かなくなりました。原因は？"),
        ("chat", "[[~PLACE]]の歴史と[[~FAMOUS]]について教えてください。"),
        ("email", "差出人: [[PERSON]] <[[EMAIL_ADDRESS]]>\n件名: 打ち合わせ\n\n[[PERSON]]様\nお電話は[[PHONE_NUMBER]]までお願いします。"),
        ("form", "氏名：[[PERSON]]\n生年月日：[[DATE_OF_BIRTH]]\n旅券番号：[[PASSPORT]]\n内容を確認してください。"),
        ("log", "2024-03-12 10:15:22 エラー ログイン失敗 user=[[EMAIL_ADDRESS]] ip=[[IP_ADDRESS]]"),
    ],
    "ar": [
        ("chat", "مرحبا، اسمي [[PERSON]] وتم خصم المبلغ مرتين من بطاقتي [[CREDIT_CARD]]. ساعدني في كتابة شكوى."),
        ("chat", "اكتب ردا إلى [[PERSON]]، رقم هاتفه [[PHONE_NUMBER]]."),
        ("chat", "اسمي [[PERSON]] وتاريخ الميلاد [[DATE_OF_BIRTH]]. ما هو التأمين المناسب لي؟"),
        ("chat", "عنواني الجديد [[STREET_ADDRESS]]. اكتب رسالة تغيير العنوان."),
        ("chat", "حوّل المبلغ إلى الآيبان [[IBAN_CODE]] باسم [[PERSON]]."),
        ("chat", "رقم جواز السفر [[PASSPORT]] والبريد [[EMAIL_ADDRESS]]، املأ الاستمارة."),
        ("chat", "لماذا يتوقف [[~TECH]] بعد التحديث إلى [[~VERSION]]؟"),
        ("chat", "حدثني عن تاريخ [[~PLACE]] وإنجازات [[~FAMOUS]]."),
        ("log", "2024-03-12 10:15:22 خطأ فشل تسجيل الدخول [[EMAIL_ADDRESS]] من [[IP_ADDRESS]]"),
    ],
    "hi": [
        ("chat", "नमस्ते, मैं [[PERSON]] हूँ और मेरे कार्ड [[CREDIT_CARD]] से दो बार पैसे कटे। शिकायत लिखने में मदद करें।"),
        ("chat", "[[PERSON]] को जवाब लिखो, उनका फ़ोन नंबर [[PHONE_NUMBER]] है।"),
        ("chat", "मेरा नाम [[PERSON]] है, जन्म तिथि [[DATE_OF_BIRTH]], आधार [[NATIONAL_ID:in_aadhaar]]। फॉर्म भर दो।"),
        ("chat", "मेरा पता [[STREET_ADDRESS]] है। पता बदलने का पत्र लिखो।"),
        ("chat", "पासपोर्ट नंबर [[PASSPORT]] और पैन [[NATIONAL_ID:in_pan]] है, KYC क्यों फेल हो रहा है?"),
        ("chat", "[[~TECH]] को [[~VERSION]] पर अपडेट करने के बाद एरर क्यों आ रहा है?"),
        ("chat", "[[~PLACE]] का इतिहास और [[~FAMOUS]] के योगदान के बारे में बताओ।"),
        ("chat", "mera number [[PHONE_NUMBER:in_domestic]] hai, [[PERSON:first]] ko bolo call kare"),
        ("log", "2024-03-12 10:15:22 ERROR लॉगिन विफल [[EMAIL_ADDRESS]] [[IP_ADDRESS]]"),
    ],
    "ru": [
        ("chat", "Здравствуйте, меня зовут [[PERSON]], с карты [[CREDIT_CARD]] списали деньги дважды. Помогите составить жалобу."),
        ("chat", "Напиши ответ [[PERSON]], его телефон [[PHONE_NUMBER]]."),
        ("chat", "Я [[PERSON]], дата рождения [[DATE_OF_BIRTH]], паспорт [[PASSPORT]]. Заполни анкету."),
        ("chat", "Мой адрес: [[STREET_ADDRESS]]. Напиши заявление о смене адреса."),
        ("chat", "Переведи деньги на IBAN [[IBAN_CODE]] получателю [[PERSON]]."),
        ("chat", "Почему [[~TECH]] падает после обновления до [[~VERSION]]?"),
        ("chat", "Расскажи историю [[~PLACE]] и о вкладе [[~FAMOUS]]."),
        ("email", "От: [[PERSON]] <[[EMAIL_ADDRESS]]>\nТема: встреча\n\nЗдравствуйте, [[PERSON:first]]!\nПозвоните мне: [[PHONE_NUMBER]].\nС уважением"),
        ("log", "2024-03-12 10:15:22 ОШИБКА вход не выполнен [[EMAIL_ADDRESS]] с [[IP_ADDRESS]]"),
        ("code", "# конфиг\nTELEGRAM_BOT_TOKEN=[[SECRET]]\nпочему бот не отвечает?"),
    ],
}  # fmt: skip

PII_FREE: dict[str, list[str]] = {
    "en": [
        "Compare Redis and PostgreSQL for a session store.",
        "Explain how Kubernetes schedules pods onto nodes.",
        "Convert this JSON to YAML and keep the comments.",
        "Write iptables rules that only allow ports 22 and 443.",
        "Set up a Grafana dashboard for p99 latency from Prometheus.",
        "What is the difference between TCP and UDP?",
        "Email templates: give me three subject lines for a product launch.",
        "Name five sorting algorithms and their complexity.",
        "Summarize the plot of Hamlet in three sentences.",
        "Plan a three-day trip to Rome with museums and food.",
        "Why is the sky blue? Explain like I'm five.",
        "Refactor this Python function to use a dict comprehension.",
        "How do I pin opencv-python-headless below version 5 in pyproject.toml?",
        "What changed between Django 4.2 and 5.0?",
        "Translate 'good morning' into German, French and Japanese.",
        "Write a haiku about autumn rain in Kyoto.",
        "Explain Einstein's theory of special relativity simply.",
        "How does the Paris metro compare with the London Underground?",
        "Give me a SQL query that counts orders per month.",
        "My build fails with exit code 137. What does that mean?",
        "Benchmark nginx versus Caddy as a reverse proxy.",
        "Is Kafka or RabbitMQ better for event sourcing?",
        "Draft a job ad for a senior Rust engineer.",
        "What is 17 percent of 2,340?",
        "Create a weekly workout plan for a beginner.",
        "List the planets in order from the sun.",
        "How do vaccines train the immune system?",
        "Fix the off-by-one error in this loop: for i in range(len(a) + 1).",
        "Write unit tests for a function that parses ISO 8601 dates.",
        "What were the causes of the French Revolution?",
    ],
    "de": [
        "Bitte erkläre mir den Unterschied zwischen Docker und Podman.",
        "Wie funktioniert die Photosynthese?",
        "Schreib ein Gedicht über den Herbst in Berlin.",
        "Was ist der Unterschied zwischen Redis und Memcached?",
        "Plane eine Wanderung durch den Schwarzwald.",
        "Erkläre die Relativitätstheorie von Einstein einfach.",
        "Wie richte ich einen Cronjob unter Linux ein?",
        "Übersetze diesen Absatz ins Englische.",
    ],
    "fr": [
        "Explique la différence entre Kubernetes et Docker Swarm.",
        "Écris un poème sur la mer en Bretagne.",
        "Comment fonctionne une blockchain ?",
        "Quelle est l'histoire de la tour Eiffel ?",
        "Donne-moi une recette de ratatouille.",
        "Comment optimiser une requête SQL lente ?",
        "Résume la vie de Victor Hugo.",
    ],
    "es": [
        "Explica la diferencia entre React y Vue.",
        "Escribe un poema sobre Sevilla en primavera.",
        "¿Cómo funciona el protocolo HTTPS?",
        "Dame una receta de paella valenciana.",
        "Resume la obra de Cervantes.",
        "¿Qué es la computación cuántica?",
        "Planifica un viaje de una semana por México.",
    ],
    "zh": [
        "请解释一下Redis和PostgreSQL的区别。",
        "写一首关于长城的诗。",
        "如何在Kubernetes中配置自动扩缩容？",
        "介绍一下北京的历史。",
        "用Python写一个快速排序。",
        "什么是机器学习？",
    ],
    "ja": [
        "RedisとPostgreSQLの違いを説明してください。",
        "京都の秋についての俳句を書いてください。",
        "Pythonでクイックソートを書いてください。",
        "東京タワーの歴史を教えてください。",
        "機械学習とは何ですか？",
        "Dockerのイメージを小さくする方法は？",
    ],
    "ar": [
        "اشرح الفرق بين Redis و PostgreSQL.",
        "اكتب قصيدة عن النيل.",
        "كيف يعمل الذكاء الاصطناعي؟",
        "حدثني عن تاريخ القاهرة.",
        "كيف أتعلم البرمجة بلغة بايثون؟",
    ],
    "hi": [
        "Redis और PostgreSQL में क्या अंतर है?",
        "ताजमहल के इतिहास के बारे में बताओ।",
        "पायथन में क्विकसॉर्ट लिखो।",
        "मशीन लर्निंग क्या है?",
        "दिल्ली में घूमने की जगहें बताओ।",
    ],
    "ru": [
        "Объясни разницу между Redis и PostgreSQL.",
        "Напиши стихотворение о зиме в Москве.",
        "Как работает Kubernetes?",
        "Расскажи историю Санкт-Петербурга.",
        "Напиши быструю сортировку на Python.",
        "Что такое машинное обучение?",
    ],
}  # fmt: skip

DECOYS: dict[str, Callable[[random.Random], str]] = {
    "VERSION": lambda r: r.choice([
        f"{r.randrange(1, 12)}.{r.randrange(0, 30)}.{r.randrange(0, 20)}.{r.randrange(0, 500)}",
        f"v{r.randrange(1, 5)}.{r.randrange(0, 40)}.{r.randrange(0, 12)}",
        f"10.0.{r.randrange(17000, 26000)}.{r.randrange(1, 5000)}",
        f"{r.randrange(1, 30)}.{r.randrange(0, 12)}"]),
    "ORDER_ID": lambda r: r.choice([
        f"ORD-{r.randrange(2020, 2027)}-{r.randrange(100000, 999999)}",
        f"#{r.randrange(10000, 99999)}-{''.join(r.choice('ABCDEFGHJK') for _ in range(2))}",
        f"INV{r.randrange(1000000, 9999999)}",
        f"{r.randbytes(4).hex()}-{r.randbytes(2).hex()}-{r.randbytes(2).hex()}-{r.randbytes(2).hex()}-{r.randbytes(6).hex()}"]),
    "TECH": lambda r: r.choice([
        "Redis", "PostgreSQL", "Kubernetes", "Grafana", "Kafka", "Django", "React", "Terraform",
        "nginx", "iptables", "Elasticsearch", "MongoDB", "Prometheus", "Ansible", "Jenkins",
        "Docker", "FastAPI", "TensorFlow", "PyTorch", "Spark", "Airflow", "Vault", "Consul"]),
    "PRODUCT": lambda r: r.choice(["Acme", "Globex", "Initech", "Contoso", "Northwind"]),
    "PLACE": lambda r: r.choice([
        "Paris", "Rome", "London", "Tokyo", "Berlin", "the Great Wall of China", "Kyoto",
        "New York", "Istanbul", "Cairo", "Mumbai", "Moscow", "Madrid", "the Alps"]),
    "FAMOUS": lambda r: r.choice([
        "Einstein", "Marie Curie", "Shakespeare", "Leonardo da Vinci", "Isaac Newton",
        "Ada Lovelace", "Alan Turing", "Gandhi", "Napoleon", "Confucius", "Tolstoy", "Goethe"]),
}  # fmt: skip

# --- filling --------------------------------------------------------------------------------

_SLOT = re.compile(r"\[\[(~?)([A-Z_]+)(?::([a-z0-9_]+))?\]\]")


@dataclass
class Persona:
    """One person's values, so a snippet is coherent (her e-mail is made from her name)."""

    lang: str
    rng: random.Random
    name: str = ""
    extra_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = v.person(self.rng, self.lang)


def _value(kind: str, variant: str | None, persona: Persona, count: dict[str, int]) -> str:
    rng, lang = persona.rng, persona.lang
    if kind == "PERSON":
        seen = count.get("PERSON", 0)
        count["PERSON"] = seen + 1
        name = persona.name
        if seen and variant is None:  # a second full name in the snippet is someone else
            name = v.person(rng, lang)
        if variant in ("first", "lower"):
            first = persona.name.split()[0] if lang not in ("zh", "ja") else persona.name
            if lang == "ja":
                first = persona.name.split()[-1]
            return first.lower() if variant == "lower" else first
        if variant == "hl7":
            first, *rest = name.split()
            return f"{' '.join(rest) or first}^{first}"
        return name
    if kind == "EMAIL_ADDRESS":
        return v.email(rng, persona.name)
    if kind == "PHONE_NUMBER":
        if variant == "in_domestic":
            return f"{rng.choice('6789')}{rng.randrange(1000, 9999)} {rng.randrange(10000, 99999)}"
        return v.phone(rng, lang)
    if kind == "CREDIT_CARD":
        return v.card(rng)
    if kind == "IBAN_CODE":
        country = {"de": "DE", "fr": "FR", "es": "ES", "ar": "SA", "en": "GB"}.get(lang)
        return v.iban(rng, country if rng.random() < 0.6 else None)
    if kind == "IP_ADDRESS":
        return v.ipv6(rng) if rng.random() < 0.2 else v.ipv4(rng)
    if kind == "CRYPTO":
        return v.eth_address(rng) if rng.random() < 0.6 else v.btc_address(rng)
    if kind == "SECRET":
        if variant == "password":
            return v.secret_password(rng)
        if variant == "private_key":
            return v.private_key(rng)
        if variant is not None:
            return v.secret_of(rng, variant)
        return v.secret(rng)[1]
    if kind == "DATE_OF_BIRTH":
        born = v.birth_date(rng, lang)
        if variant == "iso":
            return v.birth_date_iso(rng)
        if variant == "hl7":
            return v.birth_date_iso(rng).replace("-", "")
        return born
    if kind == "STREET_ADDRESS":
        return v.street_address(rng, lang)
    if kind == "PASSPORT":
        return v.PASSPORTS[lang](rng)
    if kind == "NATIONAL_ID":
        return v.NATIONAL_IDS[variant or "us_ssn"](rng)
    if kind == "MEDICAL_RECORD_NUMBER":
        return v.medical_record_number(rng)
    raise ValueError(kind)


def fill(template: str, lang: str, rng: random.Random) -> dict[str, Any]:
    persona = Persona(lang, rng)
    out: list[str] = []
    spans: list[dict[str, Any]] = []
    decoys: list[dict[str, Any]] = []
    count: dict[str, int] = {}
    position = 0
    length = 0
    for match in _SLOT.finditer(template):
        literal = template[position : match.start()]
        out.append(literal)
        length += len(literal)
        decoy, kind, variant = match.group(1), match.group(2), match.group(3)
        if kind == "URL_TOKEN":
            prefix, token, suffix = v.url_with_token(rng)
            out.append(prefix + token + suffix)
            spans.append({"start": length + len(prefix), "end": length + len(prefix) + len(token),
                          "type": "SECRET", "value": token})  # fmt: skip
            length += len(prefix) + len(token) + len(suffix)
        elif decoy:
            value = DECOYS[kind](rng)
            out.append(value)
            decoys.append(
                {"start": length, "end": length + len(value), "kind": kind, "value": value}
            )
            length += len(value)
        else:
            value = _value(kind, variant, persona, count)
            out.append(value)
            spans.append(
                {"start": length, "end": length + len(value), "type": kind, "value": value}
            )
            length += len(value)
        position = match.end()
    out.append(template[position:])
    return {"text": "".join(out), "spans": spans, "decoys": decoys}


def generate(seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for lang in LANGS:
        templates = T[lang]
        # every template at least once, then more draws up to ~110 PII snippets per language
        draws = [*templates] + [rng.choice(templates) for _ in range(max(0, 110 - len(templates)))]
        for index, (fmt, template) in enumerate(draws):
            record = fill(template, lang, rng)
            records.append({"id": f"{lang}-{index:03d}", "lang": lang, "format": fmt, **record})
        for index, text in enumerate(PII_FREE[lang]):
            records.append(
                {
                    "id": f"{lang}-free-{index:02d}",
                    "lang": lang,
                    "format": "chat",
                    "text": text,
                    "spans": [],
                    "decoys": [],
                }
            )
    for record in records:
        for span in record["spans"]:
            assert record["text"][span["start"] : span["end"]] == span["value"], record["id"]
    return records


def dump(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def load(path: Path = PATH) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


HELDOUT = Path(__file__).with_name("pii_heldout.txt")
_MARK = re.compile(r"\[\[(~?)([A-Z_]+)\|(.*?)\]\]")


def load_heldout(path: Path = HELDOUT) -> list[dict[str, Any]]:
    """The hand-written held-out snippets (see the file's header) as corpus records."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        lang, marked = line.split("|", 1)
        marked = marked.replace("\\n", "\n")
        text, spans, decoys, position = [], [], [], 0
        length = 0
        for match in _MARK.finditer(marked):
            literal = marked[position : match.start()]
            text.append(literal)
            length += len(literal)
            value = match.group(3)
            entry = {"start": length, "end": length + len(value), "value": value}
            if match.group(1):
                decoys.append({**entry, "kind": match.group(2)})
            else:
                spans.append({**entry, "type": match.group(2)})
            text.append(value)
            length += len(value)
            position = match.end()
        text.append(marked[position:])
        records.append({"id": f"heldout-{number:03d}", "lang": lang, "format": "chat",
                        "text": "".join(text), "spans": spans, "decoys": decoys})  # fmt: skip
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in file is stale")
    args = parser.parse_args(argv)
    text = dump(generate())
    if args.check:
        if PATH.read_text(encoding="utf-8") != text:
            print(f"{PATH} is stale: run `uv run python -m bench.pii_corpus`", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text, encoding="utf-8")
    records = load()
    spans = sum(len(r["spans"]) for r in records)
    decoys = sum(len(r["decoys"]) for r in records)
    free = sum(not r["spans"] for r in records)
    print(f"{len(records)} snippets, {spans} PII spans, {decoys} decoys, {free} PII-free -> {PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
