"""What a teacher run returns: the records, who was excluded or rejected, and what it cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hakim.data.records import JudgeRecord


@dataclass
class TeacherStats:
    """Counters for the run report; token savings are chars/4 estimates, the rest are measured."""

    rows: int = 0
    rows_out: int = 0
    rows_to_translate: int = 0
    unique_passages: int = 0
    unique_claims: int = 0
    translation_requests: int = 0  # unique texts: each repeated passage or claim is asked once
    whole_row_requests: int = 0  # one request per English row, passage and claim together
    requests_saved: int = 0  # whole_row_requests - translation_requests; negative when few passages repeat
    translation_tokens: int = 0
    whole_row_tokens: int = 0
    tokens_saved: int = 0
    requests: int = 0  # HTTP attempts sent by this run, retries included; batch lines count one each
    retries: int = 0
    failed_attempts: dict = field(default_factory=dict)  # cause (HTTP 429, timeout, invalid answer, ...) -> attempts
    answers_new: int = 0
    cache_hits: int = 0
    input_tokens: int = 0  # paid by this run, refused answers included
    output_tokens: int = 0
    cost_usd: float = 0.0
    timed_out_cost_usd: float = 0.0  # the estimated part of cost_usd: timed-out attempts the server may have billed
    # The answers the rows rely on, whichever run paid for them (from the cache): what the dataset cost.
    # Equal for a run killed and resumed and for one uninterrupted run; refused answers are not in it.
    answers_used: int = 0
    answers_input_tokens: int = 0
    answers_output_tokens: int = 0
    answers_cost_usd: float = 0.0
    translation_failed: int = 0
    reasoning_regenerated: int = 0
    reasoning_disagreed: int = 0
    reasoning_failed: int = 0
    batch_answers: int = 0
    failures_reused: int = 0  # questions that failed in an earlier run, not asked again (retry_rejects=true asks)
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0
    estimated_cached: int = 0  # dry run only: questions the cache answers, free
    estimated_failed_before: int = 0  # dry run only: failed in an earlier run, not sent unless retry_rejects=true
    estimated_requests: int = 0  # dry run only: questions still to send (regenerations of wrong reasoning not included)
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0
    estimated_cost_usd: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def cost_report(self) -> dict:
        """What a manifest records of a teacher stage's spending: the answers the version's rows use, across every
        run that paid for them (killed, resumed, cached reruns), and what this invocation sent and paid,
        retries and refused answers included."""
        return {
            "answers": self.answers_used,
            "input_tokens": self.answers_input_tokens,
            "output_tokens": self.answers_output_tokens,
            "cost_usd": self.answers_cost_usd,
            "this_run": {
                "requests": self.requests,
                "retries": self.retries,
                "failed_attempts": self.failed_attempts,
                "cache_hits": self.cache_hits,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd,
            },
        }


@dataclass
class TeacherResult:
    """records: every kept row once (translated to 'ms' and/or with reasoning where produced);
    v3_excluded: ids kept for V2 but without reasoning; rejects: one dict per failure (see runner._reject)."""

    records: list[JudgeRecord]
    v3_excluded: list[str] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    stats: TeacherStats = field(default_factory=TeacherStats)
