"""What a run will ask before it asks: de-duplication savings and the dry-run cost estimate."""

from __future__ import annotations

from hakim.data.records import JudgeRecord
from hakim.data.teacher.client import cost_usd
from hakim.data.teacher.prompts import estimate_tokens, reasoning_request, translation_request
from hakim.data.teacher.result import TeacherStats
from hakim.data.teacher.settings import TeacherSettings

# Malay runs a little longer than the English it comes from.
TRANSLATION_OUTPUT_RATIO = 1.3
REASONING_OUTPUT_TOKENS = 250


def rows_to_translate(records: list[JudgeRecord], settings: TeacherSettings) -> list[JudgeRecord]:
    return [record for record in records if settings.translate and record.language == "en"]


def translation_texts(records: list[JudgeRecord], settings: TeacherSettings) -> list[str]:
    """Each distinct passage and claim once, in first-seen order."""
    texts: dict[str, None] = {}
    for record in rows_to_translate(records, settings):
        texts.setdefault(record.passage)
        texts.setdefault(record.claim)
    return list(texts)


def count_deduplication(records: list[JudgeRecord], settings: TeacherSettings, stats: TeacherStats) -> None:
    """Compare asking each distinct text once with asking one request per row (passage + claim)."""
    rows = rows_to_translate(records, settings)
    texts = translation_texts(records, settings)
    stats.rows_to_translate = len(rows)
    stats.unique_passages = len({record.passage for record in rows})
    stats.unique_claims = len({record.claim for record in rows})
    stats.translation_requests = len(texts)
    stats.whole_row_requests = len(rows)
    stats.requests_saved = stats.whole_row_requests - stats.translation_requests
    stats.translation_tokens = sum(estimate_tokens(text) for text in texts)
    stats.whole_row_tokens = sum(estimate_tokens(record.passage) + estimate_tokens(record.claim) for record in rows)
    stats.tokens_saved = stats.whole_row_tokens - stats.translation_tokens


def estimate(records: list[JudgeRecord], settings: TeacherSettings, stats: TeacherStats) -> None:
    """Requests, tokens and dollars of a run from scratch; reasoning on English rows is sized on the English."""
    requests = input_tokens = output_tokens = 0
    for text in translation_texts(records, settings):
        requests += 1
        input_tokens += translation_request(text, settings).estimated_input_tokens()
        output_tokens += int(estimate_tokens(text) * TRANSLATION_OUTPUT_RATIO)
    if settings.reasoning:
        for record in records:
            requests += 1
            input_tokens += reasoning_request(record.passage, record.claim, record.label, settings, 0).estimated_input_tokens()
            output_tokens += REASONING_OUTPUT_TOKENS
    stats.estimated_requests = requests
    stats.estimated_input_tokens = input_tokens
    stats.estimated_output_tokens = output_tokens
    stats.estimated_cost_usd = cost_usd(settings, input_tokens, output_tokens, batch=settings.batch_api)
