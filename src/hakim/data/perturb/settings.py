"""The knobs of the augment stage (conf/augment/perturb.yaml), checked before anything is read or paid for."""

from __future__ import annotations

from dataclasses import dataclass, fields

from hakim.data.perturb.rules import RULES
from hakim.data.records import SPLITS, JudgeRecord
from hakim.errors import HakimError

MAX_CLAIMS_PER_DOCUMENT = 20  # one request writes them all; more than this and the teacher starts repeating itself


class AugmentError(HakimError, ValueError):
    """A bad augment setting; the message names the key (augment.<key>) and what it accepts."""


@dataclass(frozen=True)
class AugmentSettings:
    rules: tuple[str, ...] = tuple(RULES)
    source: str = "perturb"
    max_per_document: int = 2
    max_ratio: float | None = 1.0
    min_words: int = 5
    max_words: int = 60
    splits: tuple[str, ...] = SPLITS
    keep_real_rows: bool | tuple[str, ...] = True  # or the sources whose real rows stay
    in_eval: bool = False
    seed: int = 42
    teacher_claims: bool = False
    claims_per_document: int = 4
    removals: bool = True
    check_removals: bool = True

    def keeps(self, record: JudgeRecord) -> bool:
        """Whether a real row stays in the dataset beside the synthetic ones."""
        if isinstance(self.keep_real_rows, bool):
            return self.keep_real_rows
        return record.source in self.keep_real_rows

    @property
    def consistent_rules(self) -> list[str]:
        return [name for name in RULES if name in self.rules and RULES[name].label == 1]

    @property
    def inconsistent_rules(self) -> list[str]:
        return [name for name in RULES if name in self.rules and RULES[name].label == 0]

    @classmethod
    def from_config(cls, options: dict, teacher_on: bool) -> AugmentSettings:
        """Every problem at once, in one line, each naming its key."""
        known = {item.name for item in fields(cls)}
        problems = [
            f"augment.{key}: no such setting (known: {', '.join(sorted(known))})" for key in options if key not in known
        ]
        values = {key: value for key, value in options.items() if key in known}
        for key in ("rules", "splits", "keep_real_rows"):
            if isinstance(values.get(key), (list, tuple)):
                values[key] = tuple(values[key])
        settings = cls(**values)
        problems += settings.problems(teacher_on)
        if problems:
            raise AugmentError("; ".join(problems))
        return settings

    def problems(self, teacher_on: bool) -> list[str]:
        found = []

        def whole(key: str, low: int, high: int | None = None) -> None:
            value = getattr(self, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < low
                or (high is not None and value > high)
            ):
                bound = f"from {low} to {high}" if high is not None else f"at least {low}"
                found.append(f"augment.{key}: must be a whole number {bound}, got {value!r}")

        if not isinstance(self.rules, tuple) or not all(isinstance(name, str) for name in self.rules):
            found.append(f"augment.rules: must be a list of rule names, got {self.rules!r}")
        else:
            unknown = [name for name in self.rules if name not in RULES]
            if unknown:
                found.append(f"augment.rules: unknown rule {unknown[0]!r} (known: {', '.join(RULES)})")
            if not self.rules and not self.teacher_claims:
                found.append("augment.rules: empty, and augment.teacher_claims is off: nothing would make a row")
        if not isinstance(self.source, str) or not self.source.strip():
            found.append(f"augment.source: must be a name for the synthetic rows, got {self.source!r}")
        whole("max_per_document", 1)
        if self.max_ratio is not None and (
            isinstance(self.max_ratio, bool) or not isinstance(self.max_ratio, (int, float)) or self.max_ratio <= 0
        ):
            found.append(f"augment.max_ratio: must be a number above 0, or null for no cap, got {self.max_ratio!r}")
        whole("min_words", 1)
        whole("max_words", self.min_words if isinstance(self.min_words, int) else 1)
        if not isinstance(self.splits, tuple) or not self.splits or any(name not in SPLITS for name in self.splits):
            found.append(f"augment.splits: must list some of {', '.join(SPLITS)}, got {self.splits!r}")
        kept = self.keep_real_rows
        if not isinstance(kept, bool) and (
            not isinstance(kept, tuple) or not kept or not all(isinstance(name, str) and name for name in kept)
        ):
            found.append(f"augment.keep_real_rows: must be true, false or a list of source names, got {kept!r}")
        for key in ("in_eval", "teacher_claims", "removals", "check_removals"):
            if not isinstance(getattr(self, key), bool):
                found.append(f"augment.{key}: must be true or false, got {getattr(self, key)!r}")
        whole("seed", 0)
        whole("claims_per_document", 1, MAX_CLAIMS_PER_DOCUMENT)
        if self.teacher_claims is True and not teacher_on:
            found.append(
                "augment.teacher_claims=true needs a teacher: add teacher=openai "
                "(with teacher.translate=false teacher.reasoning=false it only writes claims)"
            )
        return found
