"""Names in a sentence, found without a tagger: runs of capitalized words, typed by the words around them.

A run that starts a sentence loses its first word when that word is a function word or one the document also
writes in lower case ("Pasukan Kedah ..." when "pasukan" occurs elsewhere); months and weekdays are dates, not
names. A kind comes from a title before the name (person), a place preposition or head word (place), an
organisation head word (org) or capitals only (acronym); everything else is `other`. The rules only swap names
that share a kind or a head word, so "Sungai Rajang" becomes "Sungai Balui", not "Encik Zulkifli".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hakim.data.checks import ENGLISH_FUNCTION_WORDS, MALAY_FUNCTION_WORDS
from hakim.data.perturb.dates import MONTHS, WEEKDAYS
from hakim.data.perturb.places import place_level
from hakim.data.perturb.text import WORD, Document

TITLES = frozenset(
    "encik en puan pn cik tuan tn datuk dato dato' datin tun tunku tengku haji hj hajah dr prof "
    "mr mrs ms miss sir dame professor".split()
)
# Lower-case nouns for people just before a name ("penyerang Faris Ramli", "striker Faris Ramli").
PERSON_ROLES = frozenset(
    "pemain penyerang kapten jurulatih pengasas arkitek pelajar guru pengarah pegawai pengerusi presiden "
    "pengurus pemandu penyanyi pelakon penulis wartawan suspek mangsa angkasawan graduan pelari penjaring "
    "player striker captain coach founder architect student teacher director officer chairman president manager "
    "driver singer actor writer reporter suspect victim astronaut midfielder defender goalkeeper forward".split()
)
# Capitalized words of a post ("Pengurus Besar", "Ketua Pegawai Eksekutif", "Naib Canselor"): never a name themselves.
ROLE_WORDS = PERSON_ROLES | frozenset(
    "besar urusan eksekutif canselor naib ketua timbalan setiausaha agung perdana menteri dipertua kanan "
    "chief executive deputy vice prime minister secretary general senior".split()
)
PLACE_PREPOSITIONS = frozenset("di ke dari berhampiran dekat in at from near".split())
DEMONYM_ENDINGS = ("ish", "ese", "ian")  # "Scottish", "Japanese", "Malaysian": adjectives, not places
PLACE_HEADS = frozenset(
    "kampung kg pulau sungai gunung bandar daerah negeri jalan taman selat laut lautan tasik bukit lembah "
    "tanjung teluk kuala stadium pelabuhan lapangan village island river mount mountain city town county "
    "district state street road park lake bay port stadium valley".split()
)
# An organisation's name opens with one of ORG_HEADS or closes with one of ORG_TAILS ("Amerika Syarikat" is a place).
ORG_HEADS = frozenset(
    "syarikat jabatan kementerian lembaga majlis bank universiti polis perbadanan kesatuan persatuan pertubuhan "
    "institut suruhanjaya akademi kelab pasukan parti hospital sekolah "
    "ministry department council university police club association institute agency party commission academy "
    "hospital school bank".split()
)
ORG_TAILS = frozenset("berhad bhd sdn company corporation inc ltd plc fc united university council".split())
# Lower-case words inside a name: "Hang Tuah bin Mahmud", "Bank of England", "Alfonso de Albuquerque".
CONNECTORS = frozenset("bin binti bt of de da van von al el la".split())
STARTERS = (
    MALAY_FUNCTION_WORDS
    | ENGLISH_FUNCTION_WORDS
    | frozenset(
        "pada setiap seramai sebanyak selain namun bagaimanapun malangnya kini sejak menurut beliau kemudian "
        "sebahagian kebanyakan semua seluruh kedua-dua kira-kira a after before during despite however meanwhile "
        "since while although according".split()
    )
)
DATE_WORDS = frozenset(name for table in (*MONTHS.values(), *WEEKDAYS.values()) for name in table)


@dataclass(frozen=True)
class Entity:
    text: str
    start: int  # offsets in the sentence
    end: int
    kind: str  # person | place | org | acronym | other

    @property
    def head(self) -> str:
        return self.text.split()[0].lower()

    @property
    def words(self) -> set[str]:
        return {word.lower() for word in self.text.split()}


def _capitalized(word: str) -> bool:
    """A word that can be part of a name; "RM612" and "TMA-11" hold digits, they are amounts and labels."""
    return word[:1].isupper() and not any(char.isdigit() for char in word)


def _runs(sentence: str, lowercase_words: set[str]) -> list[tuple[int, int, list[re.Match]]]:
    """(start, end, words) of each run of capitalized words joined by single spaces or connectors."""
    words = list(WORD.finditer(sentence))
    runs, index = [], 0
    while index < len(words):
        if not _capitalized(words[index].group()) or words[index].group() in DATE_WORDS:
            index += 1
            continue
        run = [words[index]]
        index += 1
        while index < len(words) and not _possessive(run[-1].group()):
            gap = sentence[run[-1].end() : words[index].start()]
            word = words[index].group()
            initial = gap == ". " and len(run[-1].group()) == 1  # "Courtney B. Vance" is one name
            if gap != " " and not initial:
                break
            if _capitalized(word) and word not in DATE_WORDS:
                run.append(words[index])
                index += 1
            elif (
                word in CONNECTORS
                and index + 1 < len(words)
                and _capitalized(words[index + 1].group())
                and sentence[words[index].end() : words[index + 1].start()] == " "
            ):
                run.extend(words[index : index + 2])
                index += 2
            else:
                break
        opening = run[0].group().lower()
        if run[0].start() == 0 and (opening in STARTERS or opening in lowercase_words):
            run.pop(0)  # "Pada ...": a capital for the sentence, not for a name
        while run and run[0].group().lower() in ROLE_WORDS:  # "Pengurus Besar syarikat": a post, not a name
            run.pop(0)
        while run and (run[0].group().lower() in TITLES or [w.group() for w in run[:2]] == ["Tan", "Sri"]):
            run[: 2 if run[0].group() == "Tan" else 1] = []  # the title says who; it is no part of the swapped name
        if run:
            end = run[-1].end() - (2 if _possessive(run[-1].group()) else 0)
            runs.append((run[0].start(), end, run))
    return runs


def _possessive(word: str) -> bool:
    """ "Prince's Paisley Park" is two names, the first without its 's."""
    return word.endswith(("'s", "’s"))


def _kind(sentence: str, start: int, text: str) -> str:
    before = WORD.findall(sentence[:start])
    previous = before[-1].lower() if before else ""
    words = [word.lower() for word in text.split()]
    if place_level(text.removesuffix("'s").removesuffix("’s")):
        return "place"  # "Menteri Besar Kedah": a state after a post is still the state
    # After a capitalized post a single word is the office's field ("Pengarah Kesihatan"), not a person's name.
    post = previous in ROLE_WORDS and not (before[-1][:1].isupper() and len(words) < 2)
    if previous in TITLES or post or {"bin", "binti"} & set(words):
        return "person"
    if len(words) == 1 and text.isupper() and len(text) > 1:
        return "acronym"
    if words[0] in ORG_HEADS or words[-1] in ORG_TAILS:
        return "org"
    # "at Prince's home": a possessive names who owns the place, not the place
    demonym = len(words) == 1 and words[0].endswith(DEMONYM_ENDINGS)
    if previous in PLACE_PREPOSITIONS and not text.endswith(("'s", "’s")) and not demonym:
        return "place"
    if words[0] in PLACE_HEADS or previous in PLACE_HEADS:
        return "place"  # "Sungai Rajang", "negeri Kelantan"
    return "other"


def _quoted(sentence: str, start: int) -> bool:
    """Inside quotation marks: part of a title or of someone's words ("Bahasa Jiwa Bangsa di Era Digital")."""
    before = sentence[:start]
    return before.count('"') % 2 == 1 or before.count("“") > before.count("”")


def _head_word_alone(text: str, start: int, document: Document) -> bool:
    """A lone capitalized word opening the sentence that elsewhere opens longer names ("Pelabuhan utama ..." beside
    "Pelabuhan Klang"), or is a head or title word: a common noun, not a name."""
    if start != 0 or " " in text:
        return False
    word = text.lower()
    if word in PLACE_HEADS or word in ORG_HEADS or word in TITLES:
        return True
    following = (match.group(1) for match in re.finditer(rf"(?<!\w){re.escape(text)} (\w)", document.passage))
    return any(char.isupper() for char in following)


def sentence_entities(sentence: str, document: Document) -> list[Entity]:
    """The names in one sentence of `document`, each with its kind."""
    found = []
    for start, end, run in _runs(sentence, document.lowercase_words):
        text = sentence[start:end]
        if _quoted(sentence, start) or _head_word_alone(text, start, document):
            continue
        if " " not in text and re.match(r" \d", sentence[end:]):  # "Kilometer 41", "Taipei 101": a label
            continue
        found.append(Entity(text, start, end, _kind(sentence, start, sentence[start : run[-1].end()])))
    return found


def document_entities(document: Document) -> dict[str, str]:
    """Every name of the document and its kind; a name typed `person` anywhere is a person everywhere, and so
    is a shorter mention of a person's name ("Nur Aisyah" after "Nur Aisyah Kamal")."""
    kinds: dict[str, str] = {}
    for sentence in document.sentences:
        for entity in sentence_entities(sentence.text, document):
            known = kinds.get(entity.text, "other")
            kinds[entity.text] = entity.kind if known == "other" else known
    people = [name for name, kind in kinds.items() if kind == "person"]
    for name in kinds:
        if any(name != person and f" {name} " in f" {person} " for person in people):
            kinds[name] = "person"
    return kinds


def apposed(document: Document, first: str, second: str) -> bool:
    """Whether the document writes the two names side by side ("Taman Kinabalu, Sabah", "Melaka (Malacca)"):
    one then likely names or contains the other, and a swap between them could still be true."""
    text = document.passage
    return any(
        f"{one}{separator}{other}" in text
        for one, other in ((first, second), (second, first))
        for separator in (", ", ",", " (", "(")
    )
