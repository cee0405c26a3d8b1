"""Word lists the recognizers consult: given and family names in every script, and the ordinary
words of the major Latin and Cyrillic languages (words that are not names).

Distilled at build time, not loaded at run time: names-dataset holds 1.7 million names and
takes ~1.9 GB and 20 s to load; wordfreq's lists for eight languages take ~150 MB. The packaged
files keep what detection needs (~ a few MB in memory):

    uv run python -m infra.pii_recognizers.gazetteers     # rebuild data/*.txt.gz (dev deps)

- names.txt.gz: `name<TAB>strength` for names ranked in the top 1,500 of some country (the top
  5,000 for non-Latin scripts, which names-dataset holds fewer of); strength = 6 - log10(best
  rank), so a country's most popular name is 6 and the 1,000th is 3.
- places.txt.gz: country and subdivision names (pycountry's ISO 3166 data): a name that is a
  place ("Madrid", "Sevilla", "New York") is not taken for a person without a personal cue.
- words.txt.gz: lower-case words with a Zipf frequency of at least 3.3 in English, German,
  French, Spanish, Portuguese, Italian, Dutch, Russian, Arabic or Hindi whose frequency as a
  word clearly exceeds their popularity as a name ("will", "paris", "convert", "bitte" are words;
  "daniel", "grace", "smith" are names).
"""

from __future__ import annotations

import functools
import gzip
import math
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path

DATA = Path(__file__).with_name("data")
WORD_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "ru", "ar", "hi")
MIN_ZIPF = 3.3
WORD_MARGIN = 0.5  # a word is ordinary when its Zipf frequency beats its name strength by this


def _script(name: str) -> str:
    for ch in name:
        if ch.isalpha():
            return unicodedata.name(ch, "?").split()[0]
    return "?"


def name_strength(rank: int) -> float:
    return 6.0 - math.log10(max(rank, 1))


@functools.cache
def names() -> dict[str, float]:
    """Name (as written, case-folded) -> strength (higher: more popular somewhere)."""
    out: dict[str, float] = {}
    for line in _lines("names.txt.gz"):
        name, strength = line.split("\t")
        out[name] = float(strength)
    return out


@functools.cache
def places() -> frozenset[str]:
    """Case-folded names of countries and their subdivisions (ISO 3166-1 and -2)."""
    return frozenset(_lines("places.txt.gz"))


@functools.cache
def ordinary_words() -> frozenset[str]:
    """Lower-case frequent words that are not (mainly) names."""
    return frozenset(_lines("words.txt.gz"))


def _lines(file: str) -> Iterable[str]:
    with gzip.open(DATA / file, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def build() -> None:  # pragma: no cover - run by hand with the dev dependencies
    import pycountry
    import wordfreq
    from names_dataset import NameDataset

    place_names: set[str] = set()
    for country in pycountry.countries:
        for attribute in ("name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if value:
                place_names.add(value.casefold())
    for subdivision in pycountry.subdivisions:
        place_names.add(subdivision.name.casefold())

    dataset = NameDataset()
    strengths: dict[str, float] = {}
    for table in (dataset.first_names, dataset.last_names):
        for name, info in table.items():
            ranks = [r for r in (info.get("rank") or {}).values() if r]
            if not ranks or len(name) < 2:
                continue
            best = min(ranks)
            limit = 1500 if _script(name) == "LATIN" else 5000
            if best <= limit:
                key = name.casefold()
                strengths[key] = max(strengths.get(key, 0.0), name_strength(best))
    words: set[str] = set()
    for language in WORD_LANGUAGES:
        for word in wordfreq.top_n_list(language, 60_000):
            zipf = wordfreq.zipf_frequency(word, language)
            if zipf < MIN_ZIPF:
                break
            if not all(unicodedata.category(c)[0] in "LM" for c in word):  # letters and marks
                continue
            if zipf - strengths.get(word.casefold(), 0.0) >= WORD_MARGIN:
                words.add(word.casefold())
    DATA.mkdir(exist_ok=True)
    with gzip.open(DATA / "names.txt.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for name in sorted(strengths):
            out.write(f"{name}\t{strengths[name]:.2f}\n")
    with gzip.open(DATA / "words.txt.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for word in sorted(words):
            out.write(word + "\n")
    with gzip.open(DATA / "places.txt.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for place in sorted(place_names):
            out.write(place + "\n")
    print(f"{len(strengths)} names, {len(words)} ordinary words -> {DATA}", file=sys.stderr)


if __name__ == "__main__":
    build()
