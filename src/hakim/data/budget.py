"""The failure budget: a dataset is only published when every source kept rows and lost few of them.

Each source is judged stage by stage (read, translate, reasoning) on the share of its rows that stage
failed; a teacher that never answers, or a file full of bad rows, then stops the run instead of
producing an "ok" dataset with nothing in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hakim.errors import HakimError


class BudgetExceeded(HakimError, RuntimeError):
    """The prepared rows failed the budget; the message holds one line per source."""


@dataclass
class FailureBudget:
    max_fraction: float
    stages: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # source -> stage -> (failed, total)
    kept: dict[str, int] = field(default_factory=dict)

    def add(self, source: str, stage: str, failed: int, total: int) -> None:
        self.stages.setdefault(source, {})[stage] = (failed, total)

    def over(self, source: str) -> list[str]:
        """Why this source fails the budget (empty when it passes)."""
        reasons = [
            f"{stage} lost {failed / total:.0%}"
            for stage, (failed, total) in self.stages.get(source, {}).items()
            if total and failed / total > self.max_fraction
        ]
        if self.kept.get(source, 1) == 0:
            reasons.append("no rows left")
        return reasons

    @property
    def passed(self) -> bool:
        return not any(self.over(source) for source in self.stages)

    def lines(self) -> list[str]:
        """One line per source: what each stage lost, the rows kept, and the verdict."""
        lines = []
        for source, stages in self.stages.items():
            parts = [f"{stage} {failed}/{total} failed" for stage, (failed, total) in stages.items() if total]
            if source in self.kept:
                parts.append(f"{self.kept[source]} rows kept")
            reasons = self.over(source)
            verdict = f"FAILED ({'; '.join(reasons)}; max_reject_fraction={self.max_fraction})" if reasons else "ok"
            lines.append(f"{source}: {', '.join(parts) or 'no rows'}: {verdict}")
        return lines

    def to_dict(self) -> dict:
        return {
            "max_reject_fraction": self.max_fraction,
            "passed": self.passed,
            "sources": {
                source: {
                    **{stage: {"failed": failed, "total": total} for stage, (failed, total) in stages.items()},
                    "rows_kept": self.kept.get(source),
                    "over_budget": self.over(source),
                }
                for source, stages in self.stages.items()
            },
        }
