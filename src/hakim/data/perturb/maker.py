"""Rule-made claims for one document: which sentences, which rules, and the guards every claim must pass.

Every rule is tried on every sentence of suitable length. A sentence gives a minimal pair, a consistent claim and
an inconsistent one from the same sentence, so a judge sees the one edit that flips the label; a sentence that no
enabled rule of one label can change is skipped, which keeps the labels balanced. Of the rules that apply, the one
used least so far in the corpus is taken (negation applies to almost every sentence, a role swap to few), and so
is the sentence that offers it. Every rule draws from its own generator seeded by (seed, document, sentence,
rule), so a rule writes the same claim whichever other rules are on; which claims are kept depends on the seed
and the corpus's order of documents.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from hakim.data.perturb.rules import RULES, Facts
from hakim.data.perturb.text import Document, Sentence, normalize, word_count


@dataclass(frozen=True)
class Claim:
    """A synthetic claim before it becomes a record: its rule, label, text and where it came from."""

    rule: str
    label: int
    claim: str
    sentence: Sentence
    change: dict


@dataclass
class RuleCounts:
    """Per rule: sentences it was tried on, claims it made, claims the guards refused (by reason), claims kept."""

    tried: Counter = field(default_factory=Counter)
    made: Counter = field(default_factory=Counter)
    refused: dict[str, Counter] = field(default_factory=dict)
    kept: Counter = field(default_factory=Counter)

    def refuse(self, rule: str, reason: str) -> None:
        self.refused.setdefault(rule, Counter())[reason] += 1

    def to_dict(self) -> dict:
        names = [name for name in RULES if self.tried[name]]
        return {
            name: {
                "sentences_tried": self.tried[name],
                "claims_made": self.made[name],
                "refused": dict(sorted(self.refused.get(name, {}).items())),
                "rows_kept": self.kept[name],
            }
            for name in names
        }


def refusal(claim: Claim, document: Document, real_claims: set[str], min_words: int) -> str | None:
    """Why a claim cannot be kept, or None: a rule that could not really change the sentence makes nothing."""
    text = normalize(claim.claim)
    if word_count(claim.claim) < min_words:
        return "too short"
    if claim.rule != "sentence" and text == normalize(claim.sentence.text):
        return "same words as the sentence"
    if claim.label == 0 and document.contains(claim.claim):
        return "stated in the document"
    if text in real_claims:
        return "a real row's claim"
    return None


def _rng(seed: int, document: Document, *parts) -> random.Random:
    return random.Random(":".join(str(part) for part in (seed, document.doc_id, *parts)))


def rule_claims(
    document: Document,
    rules: list[str],
    max_rows: int,
    min_words: int,
    max_words: int,
    seed: int,
    counts: RuleCounts,
    used: Counter,
) -> list[list[Claim]]:
    """The document's rule-made claims as units (a consistent/inconsistent pair, or one claim when only one label's
    rules are enabled), at most max_rows claims in all. `used` counts the rules taken so far, across documents."""
    facts = Facts(document)
    real_claims = {normalize(row.claim) for row in document.rows}
    groups = [
        group
        for group in (
            [name for name in rules if RULES[name].label == 1],
            [name for name in rules if RULES[name].label == 0],
        )
        if group
    ]
    eligible = [sentence for sentence in document.sentences if min_words <= word_count(sentence.text) <= max_words]
    candidates = []  # per usable sentence, in seeded order: the claims each group's rules made of it
    for sentence in _rng(seed, document, "order").sample(eligible, len(eligible)):
        made_by_group = []
        for group in groups:
            made = []
            for name in group:
                counts.tried[name] += 1
                edit = RULES[name].make(sentence, document, facts, _rng(seed, document, sentence.index, name))
                if edit is None:
                    continue
                counts.made[name] += 1
                claim = Claim(name, RULES[name].label, edit.claim, sentence, edit.change)
                reason = refusal(claim, document, real_claims, min_words)
                if reason:
                    counts.refuse(name, reason)
                else:
                    made.append(claim)
            made_by_group.append(_rng(seed, document, sentence.index, "pick").sample(made, len(made)))
        if all(made_by_group):
            candidates.append(made_by_group)
    units: list[list[Claim]] = []
    while candidates and len(units) * len(groups) + len(groups) <= max_rows:
        # The sentence offering the least used rule of the last group (the inconsistent one when both are on) first.
        best = min(range(len(candidates)), key=lambda index: (min(used[c.rule] for c in candidates[index][-1]), index))
        unit = [min(made, key=lambda claim: used[claim.rule]) for made in candidates.pop(best)]
        used.update(claim.rule for claim in unit)
        units.append(unit)
    return units
