"""The rules: each turns one sentence of a document into a claim with a known label, or gives None.

Consistent (label 1): `sentence` (the sentence itself), `shorter` (an independent part dropped), `reordered` (two
list items swapped). Inconsistent (label 0): `entity_swap` (a name replaced by another name of the same document
and kind), `number` (a quantity changed), `date` (a year, month or weekday changed), `negation` (polarity turned
around once) and `role_swap` (two names of the sentence change places). Each rule says what it changed in
`Edit.change`; the guards every claim must pass (it differs from the sentence, an inconsistent one is nowhere in
the document) live with the caller, hakim.data.perturb.maker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from hakim.data.perturb.consistent import reordered_versions, shorter_versions
from hakim.data.perturb.dates import date_changes
from hakim.data.perturb.entities import TITLES, Entity, apposed, document_entities, sentence_entities
from hakim.data.perturb.negation import polarity_change
from hakim.data.perturb.numbers import document_values, number_changes
from hakim.data.perturb.places import same_level
from hakim.data.perturb.text import WORD, Document, Sentence, replace_span

# Between two names these make the relation symmetric or a list ("A bertemu B", "A dengan B", "A dan B"),
# so swapping the names could leave the claim true.
SYMMETRIC_WORDS = frozenset(
    "dan serta atau dengan bersama antara menentang bertemu berbanding lawan "
    "and or with against between versus vs met".split()
)
# Kinds a name may be swapped within; `other` names are swapped only with names that share their head word.
SWAPPABLE_KINDS = frozenset({"person", "place", "org", "acronym"})


@dataclass(frozen=True)
class Edit:
    claim: str
    change: dict


class Facts:
    """What the rules look up in the whole document, computed once per document."""

    def __init__(self, document: Document):
        self.document = document
        self._entities: dict[int, list[Entity]] = {}

    @cached_property
    def kinds(self) -> dict[str, str]:
        return document_entities(self.document)

    @cached_property
    def values(self) -> set:
        return document_values(self.document.passage, self.document.language)

    def kind(self, entity: Entity) -> str:
        return self.kinds.get(entity.text, entity.kind)

    def entities(self, sentence: Sentence) -> list[Entity]:
        """The sentence's names, found once: three rules read them."""
        if sentence.index not in self._entities:
            self._entities[sentence.index] = sentence_entities(sentence.text, self.document)
        return self._entities[sentence.index]


def _words(name: str) -> set[str]:
    return {word.lower() for word in name.split()}


def sentence_rule(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    return Edit(sentence.text, {})


def shorter(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    versions = shorter_versions(sentence.text)
    return Edit(**vars(rng.choice(versions))) if versions else None


def reordered(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    versions = reordered_versions(sentence.text, document, facts.kinds, rng)
    return Edit(**vars(rng.choice(versions))) if versions else None


def _replacements(entity: Entity, kind: str, sentence: Sentence, document: Document, facts: Facts) -> list[str]:
    """Names of the document that could stand where `entity` stands and make the sentence false: another name of
    its head word ("Sungai Balui" for "Sungai Rajang"), else of its kind; never one the sentence already holds,
    one sharing a word with it, one the document writes beside it, or a region, country or state for a name of
    another level (hakim.data.perturb.places)."""
    same_head, same_kind = [], []
    others = {word for other in facts.entities(sentence) if other != entity for word in other.words}
    for name, other_kind in facts.kinds.items():
        shares_head = name.split()[0].lower() == entity.head and len(name.split()) > 1 and len(entity.text.split()) > 1
        if not shares_head and not (other_kind == kind and kind in SWAPPABLE_KINDS):
            continue
        if (_words(name) & entity.words) - ({entity.head} if shares_head else set()):
            continue
        if name in sentence.text or _words(name) & others:  # "penduduk Sik ... ke Daerah Sik": already there, in part
            continue
        if not same_level(entity.text, name) or apposed(document, entity.text, name):
            continue
        (same_head if shares_head else same_kind).append(name)
    return sorted(same_head or same_kind)


def entity_swap(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    options = []
    for entity in facts.entities(sentence):
        pool = _replacements(entity, facts.kind(entity), sentence, document, facts)
        if pool:
            options.append((entity, pool))
    if not options:
        return None
    entity, pool = rng.choice(options)
    name = rng.choice(pool)
    claim = replace_span(sentence.text, entity.start, entity.end, name)
    return Edit(claim, {"from": entity.text, "to": name, "kind": facts.kind(entity)})


def role_swap(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    entities = facts.entities(sentence)
    pairs = []
    for index, first in enumerate(entities):
        for second in entities[index + 1 :]:
            kind = facts.kind(first)
            if (
                kind != facts.kind(second)
                or kind not in SWAPPABLE_KINDS
                or first.words & second.words
                or not same_level(first.text, second.text)
            ):
                continue
            # Something must relate them: only names and commas between them is a list ("Jepun, New Zealand, Korea
            # Selatan"), only titles one person named twice ("Datuk Bandar Ipoh, Datuk Rumaizi Baharin").
            between = {
                word for word in WORD.findall(sentence.text[first.end : second.start]) if word.islower()
            } - TITLES
            if between and not between & SYMMETRIC_WORDS:
                pairs.append((first, second))
    if not pairs:
        return None
    first, second = rng.choice(pairs)
    text = sentence.text
    claim = text[: first.start] + second.text + text[first.end : second.start] + first.text + text[second.end :]
    return Edit(claim, {"swapped": [first.text, second.text], "kind": facts.kind(first)})


def number(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    changes = number_changes(sentence.text, facts.values, document.language, rng)
    if not changes:
        return None
    change = rng.choice(changes)
    return Edit(
        replace_span(sentence.text, change.start, change.end, change.new), {"from": change.old, "to": change.new}
    )


def date(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    changes = date_changes(sentence.text, document.passage, facts.values, document.language, rng)
    if not changes:
        return None
    change = rng.choice(changes)
    claim = replace_span(sentence.text, change.start, change.end, change.new)
    return Edit(claim, {"from": change.old, "to": change.new, "kind": change.kind})


def negation(sentence: Sentence, document: Document, facts: Facts, rng: random.Random) -> Edit | None:
    change = polarity_change(sentence.text, document.language)
    if change is None:
        return None
    claim = replace_span(sentence.text, change.start, change.end, change.new)
    if change.start == 0 and not change.new:  # "Tidak ramai ..." -> "Ramai ..."
        claim = claim[:1].upper() + claim[1:]
    return Edit(claim, {"from": change.old.strip(), "to": change.new.strip(), "direction": change.direction})


@dataclass(frozen=True)
class Rule:
    name: str
    label: int
    make: Callable[[Sentence, Document, Facts, random.Random], Edit | None]


RULES = {
    rule.name: rule
    for rule in (
        Rule("sentence", 1, sentence_rule),
        Rule("shorter", 1, shorter),
        Rule("reordered", 1, reordered),
        Rule("entity_swap", 0, entity_swap),
        Rule("number", 0, number),
        Rule("date", 0, date),
        Rule("negation", 0, negation),
        Rule("role_swap", 0, role_swap),
    )
}
