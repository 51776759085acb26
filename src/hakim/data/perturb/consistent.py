"""Edits that keep a sentence true: so a consistent claim is not always a verbatim copy, and "the claim differs
from the document" cannot stand in for "the claim is wrong".

`shorter` drops a part the rest does not depend on: an opening discourse word ("Namun,", "However,"), an
opening concessive clause ("Walaupun ..., "), a parenthesis, or a closing non-restrictive clause
(", yang ...", ", iaitu ...", ", which ..."). Conditions ("Jika ...", "If ...") are never dropped: what
follows them is not stated as true. `reordered` swaps two items of a list whose items are names of one kind or
single words ("Kapit, Sibu dan Kanowit", "2008, 2012 dan 2016"); items of several lower-case words could be
clauses ("... Kalimantan dan bermuara di Laut China Selatan"), so their lists are left alone, and so are names
that could hold the conjunction themselves ("Dewan Bahasa dan Pustaka").
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from hakim.data.perturb.entities import sentence_entities
from hakim.data.perturb.text import WORD, Document

OPENERS = (
    r"(?:Namun|Bagaimanapun|Walau bagaimanapun|Selain itu|Malangnya|Sementara itu|Dalam pada itu|Justeru|Oleh itu|"
    r"Tambahan pula|However|Meanwhile|In addition|Moreover|Furthermore|Unfortunately|Nevertheless|Also),\s+"
)
CONCESSIVE = r"(?:Walaupun|Meskipun|Biarpun|Sungguhpun|Although|Though|Even though|Despite)\b[^,]*,\s+"
OPENING = re.compile(rf"^(?:{OPENERS}|{CONCESSIVE})")
PARENTHESIS = re.compile(r"\s*\([^()]*\)")
CLOSING = re.compile(r",\s+(?:yang|iaitu|which|who|whose|where|menjadikannya|sekali gus)\b[^,]*?(?=[.!?]?$)")
CONJUNCTIONS = frozenset({"dan", "serta", "atau", "and", "or"})
# A parenthesis that limits the claim ("(tidak termasuk blackjack)", "(except ...)") is no aside: dropping it
# would make the claim say more than the document.
LIMITING = re.compile(
    r"\b(?:tidak|bukan|tiada|kecuali|melainkan|hanya|sahaja|not|no|except|excluding|unless|only)\b", re.IGNORECASE
)
# Words that make a list's order part of what it says ("A, B dan C masing-masing", "from highest to lowest").
ORDERED = frozenset(
    "masing-masing respectively berturut-turut diikuti followed urutan order ranked kedudukan tertinggi "
    "terendah highest lowest".split()
)


@dataclass(frozen=True)
class Rewrite:
    claim: str
    change: dict


def shorter_versions(sentence: str) -> list[Rewrite]:
    """Each way of dropping one independent part of the sentence."""
    found = []
    opening = OPENING.match(sentence)
    if opening:
        found.append(Rewrite(_tidy(sentence[opening.end() :]), {"dropped": opening.group().strip()}))
    for match in PARENTHESIS.finditer(sentence):
        if not LIMITING.search(match.group()):
            found.append(
                Rewrite(_tidy(sentence[: match.start()] + sentence[match.end() :]), {"dropped": match.group().strip()})
            )
    closing = CLOSING.search(sentence)
    if closing:
        found.append(
            Rewrite(
                _tidy(sentence[: closing.start()] + sentence[closing.end() :]), {"dropped": closing.group()[1:].strip()}
            )
        )
    return found


def _tidy(text: str) -> str:
    """A sentence that lost its opening starts with a capital ("iPhone" stays); "Mia!." loses its extra stop."""
    text = text.strip()
    if text[:1].islower() and not text[1:2].isupper():
        text = text[0].upper() + text[1:]
    return re.sub(r"([!?])\.$", r"\1", text)


def _same_kind(texts: list[str], kinds: dict[str, str]) -> bool:
    """List items that are names must be one kind of name, and single words when their kind is unknown: so
    "Dewan Bahasa dan Pustaka" and "Kementerian Sains, Teknologi dan Inovasi" stay whole names."""
    found = {kinds.get(text, "other") for text in texts}
    return len(found) == 1 and (found != {"other"} or all(" " not in text for text in texts))


def _items(sentence: str, document: Document, kinds: dict[str, str]) -> list[list[tuple[int, int]]]:
    """The (start, end) of the items that can change places in each list of the sentence: lists whose every item
    is one name or one word."""
    names = {entity.start: entity.end for entity in sentence_entities(sentence, document)}
    name_ends = {end: start for start, end in names.items()}
    words = list(WORD.finditer(sentence))
    lists = []
    if {word.group().lower() for word in words} & ORDERED:
        return lists
    for index, word in enumerate(words):
        if word.group() not in CONJUNCTIONS or index + 1 >= len(words):
            continue
        after = words[index + 1]
        if after.start() in names:
            last, kind = (after.start(), names[after.start()]), "name"
        elif re.match(r"\s*(?:[.,;:!?)]|$)", sentence[after.end() :]):
            last, kind = (after.start(), after.end()), "word"
        else:
            continue
        chain = [last]
        cursor = word.start()
        separator = " "
        while True:
            before = sentence[:cursor]
            if not before.endswith(separator):
                break
            end = cursor - len(separator)
            if before[:end].endswith(","):  # "A, B, and C": the Oxford comma
                end -= 1
            if kind == "name" and end in name_ends:
                start = name_ends[end]
            elif kind == "word" and re.search(r"(?<![\w\-])\w+$", sentence[:end]):
                start = re.search(r"(?<![\w\-])\w+$", sentence[:end]).start()
                if sentence[start:end][:1].isupper() and start in names:
                    break
            else:
                break
            chain.insert(0, (start, end))
            cursor, separator = start, ", "
        opening = WORD.findall(sentence[: chain[0][0]])
        if kind == "name" and opening and opening[-1] in CONJUNCTIONS:  # "Hari Nenek dan Atuk" inside a longer list
            continue
        if kind == "name" and not _same_kind([sentence[start:end] for start, end in chain], kinds):
            continue
        if (
            kind == "name"
            and re.match(r", [^\W\d_]", sentence[chain[-1][1] :])
            and sentence[chain[-1][1] + 2].isupper()
        ):
            continue  # "ke Singapura dan Kuala Kangsar, Perak": the last item's place would move to another item
        # A word list's first item may be longer than its last word ("minyak masak, sabun dan kosmetik"): only the
        # items with a separator on both sides are known whole.
        swappable = chain if kind == "name" else chain[1:]
        if len(swappable) >= 2:
            lists.append(swappable)
    return lists


def reordered_versions(sentence: str, document: Document, kinds: dict[str, str], rng: random.Random) -> list[Rewrite]:
    """For each list in the sentence, the sentence with two of its items swapped; `kinds`: the document's names
    and their kinds (hakim.data.perturb.entities.document_entities)."""
    found = []
    for items in _items(sentence, document, kinds):
        texts = [sentence[start:end] for start, end in items]
        pairs = [(a, b) for a in range(len(items)) for b in range(a + 1, len(items)) if texts[a] != texts[b]]
        if not pairs:
            continue
        a, b = rng.choice(pairs)
        (a_start, a_end), (b_start, b_end) = items[a], items[b]
        claim = sentence[:a_start] + texts[b] + sentence[a_end:b_start] + texts[a] + sentence[b_end:]
        found.append(Rewrite(claim, {"swapped": [texts[a], texts[b]]}))
    return found
