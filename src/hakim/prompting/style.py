"""The prompt style: what varies between recipes in how a judge is asked and how it answers.

One object from the command line (`style=v3 style.claim_position=before`, conf/style/) to the run
directory (`style:` in config.yaml), an exported model (hakim_judge.json), the probe and the OpenAI judge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

VARIANTS = ("v2", "v3")
INSTRUCTION_LANGUAGES = ("ms", "en")
CLAIM_POSITIONS = ("after", "before", "both")


@dataclass(frozen=True)
class PromptStyle:
    """The variant (V2: verdict only; V3: reasoning and verdict), the instruction language, the verdict's
    place in a V3 answer, and where the claim stands relative to the passage (a decoder reads left to
    right: a claim placed before the passage lets every passage token be read in its light)."""

    variant: str = "v2"
    instruction_language: str = "ms"
    reasoning_first: bool = True  # V3 only: reasoning, then verdict (must generate) | verdict first (can be scored)
    claim_position: str = "after"  # after | before | both (before and again after the passage)
    passage_sentences: int | None = None  # keep only the N sentences closest to the claim (passage_focus)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"style.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.instruction_language not in INSTRUCTION_LANGUAGES:
            raise ValueError(
                f"style.instruction_language must be one of {INSTRUCTION_LANGUAGES}, got {self.instruction_language!r}"
            )
        if self.claim_position not in CLAIM_POSITIONS:
            raise ValueError(f"style.claim_position must be one of {CLAIM_POSITIONS}, got {self.claim_position!r}")
        if self.passage_sentences is not None and self.passage_sentences < 1:
            raise ValueError(f"style.passage_sentences must be at least 1 or null, got {self.passage_sentences!r}")

    @property
    def writes_reasoning(self) -> bool:
        return self.variant == "v3"

    @property
    def must_generate(self) -> bool:
        """A reasoning-first V3 answer has its verdict after free text: it cannot be scored in one pass."""
        return self.variant == "v3" and self.reasoning_first

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PromptStyle:
        """From a config node or a stored file; `_target_` (Hydra's) is ignored, unknown keys are refused."""
        fields = {key: value for key, value in dict(values).items() if key != "_target_"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown prompt style keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**fields)
