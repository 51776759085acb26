"""What a run will ask before it asks: de-duplication savings and the dry-run cost estimate."""

from __future__ import annotations

from hakim.data.records import JudgeRecord
from hakim.data.teacher.cache import TeacherCache
from hakim.data.teacher.client import cost_usd
from hakim.data.teacher.requests import (
    TeacherRequest,
    Translation,
    estimate_tokens,
    reasoning_request,
    translation_request,
)
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


def estimate(
    records: list[JudgeRecord],
    settings: TeacherSettings,
    stats: TeacherStats,
    cache: TeacherCache | None = None,
    retry_rejects: bool = False,
) -> None:
    """What is left to pay: answers in the cache are counted but not priced, as are questions that failed
    before (unless retry_rejects); reasoning is sized on the cached translation, else on the English."""
    to_send = input_tokens = output_tokens = 0

    def count(request: TeacherRequest, expected_output: int) -> None:
        nonlocal to_send, input_tokens, output_tokens
        if cache is not None and cache.get(request.key) is not None:
            stats.estimated_cached += 1
        elif cache is not None and not retry_rejects and cache.failure(request.key) is not None:
            stats.estimated_failed_before += 1
        else:
            to_send += 1
            input_tokens += request.estimated_input_tokens()
            output_tokens += expected_output

    for text in translation_texts(records, settings):
        count(translation_request(text, settings), int(estimate_tokens(text) * TRANSLATION_OUTPUT_RATIO))
    if settings.reasoning:
        for record in records:
            passage, claim = record.passage, record.claim
            if settings.translate and record.language == "en" and cache is not None:
                passage, claim = (_cached_translation(text, settings, cache) for text in (passage, claim))
            count(reasoning_request(passage, claim, record.label, settings, 0), REASONING_OUTPUT_TOKENS)
    stats.estimated_requests = to_send
    stats.estimated_input_tokens = input_tokens
    stats.estimated_output_tokens = output_tokens
    stats.estimated_cost_usd = cost_usd(settings, input_tokens, output_tokens, batch=settings.batch_api)


def _cached_translation(text: str, settings: TeacherSettings, cache: TeacherCache) -> str:
    hit = cache.get(translation_request(text, settings).key)
    return Translation.model_validate_json(hit.output).text if hit else text
