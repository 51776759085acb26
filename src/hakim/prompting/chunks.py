"""Chunked judging: a passage read as sentence-packed chunks, so evidence past max_length is still read.

Cut at max_length, a long passage loses its end, and a claim supported only there is judged unsupported.
With `Chunking(chunk_tokens)` a judge reads the passage in consecutive chunks of whole sentences (at most
`chunk_tokens` tokens each, fewer when the claim leaves less room in max_length), scores the claim against
every chunk, and the claim holds if some chunk supports it: P(1) is the maximum over chunks (MiniCheck's
rule). With `split_claim`, each sentence of a multi-sentence claim is judged on its own and must be
supported somewhere: P(1) is the minimum over claim sentences of their maxima (hakim.verdict.deciding_cell).

A chunk is a slice of the passage as written (its spacing and line breaks kept), so a passage that fits
in one chunk is read exactly as without chunking. Only a sentence longer than a chunk is cut, into
pieces of a chunk each, marked like any cut passage; the verdict then says truncated. The claim is never
cut: one too long to fit even without a passage is refused, as without chunking.

Sentences are split by hakim.prompting.passage_focus (after . ! ? and whitespace: Malay and English alike).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hakim.prompting.passage_focus import sentence_spans
from hakim.prompting.prompt import passage_fits, passage_room, pieces_that_fit, token_count
from hakim.prompting.style import PromptStyle


@dataclass(frozen=True)
class Chunking:
    """How a judge reads a passage: in one pass, cut to fit max_length (chunk_tokens None), or in chunks."""

    chunk_tokens: int | None = None
    split_claim: bool = False

    def __post_init__(self):
        tokens = self.chunk_tokens
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
            raise ValueError(
                f"chunking.chunk_tokens must be a whole number of tokens, at least 1, or null (no "
                f"chunking), got {tokens!r}"
            )
        if self.split_claim and self.chunk_tokens is None:
            raise ValueError(
                "chunking.split_claim judges each claim sentence against the passage's chunks: "
                "set chunking.chunk_tokens too (e.g. chunking=sentences)"
            )

    @property
    def enabled(self) -> bool:
        return self.chunk_tokens is not None

    def check_style(self, style: PromptStyle) -> None:
        """Refuses chunks for a judge that reads focused passages: focus keeps the N sentences of the whole passage
        closest to the claim, chunking reads all of them, and a chunk focused again would be neither."""
        if self.enabled and style.passage_sentences is not None:
            raise ValueError(
                f"chunking.chunk_tokens reads every sentence of a passage, in chunks, but this judge reads "
                f"only the style.passage_sentences={style.passage_sentences} closest to the claim (as it "
                "was trained): judge it without chunking (chunking=truncate)"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> Chunking:
        """From a config node (conf/chunking/); `_target_` is ignored, unknown keys are refused."""
        fields = {key: value for key, value in dict(values or {}).items() if key != "_target_"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown chunking keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**fields)


@dataclass(frozen=True)
class Chunk:
    text: str
    cut: bool = False  # a piece of one sentence too long for a chunk


@dataclass(frozen=True)
class ChunkedRow:
    """One row to judge as chunks: every claim sentence (or the claim) against every chunk."""

    chunks: tuple[Chunk, ...]
    claims: tuple[str, ...]
    source: str

    def items(self) -> list[tuple[str, str, str]]:
        """(chunk, claim sentence, task) for each cell, claim sentence by claim sentence."""
        return [(chunk.text, claim, self.source) for claim in self.claims for chunk in self.chunks]

    def grid(self, values: list) -> list[list]:
        """`values` (one per item, in items' order) as rows per claim sentence, columns per chunk."""
        width = len(self.chunks)
        return [values[row * width : (row + 1) * width] for row in range(len(self.claims))]

    @property
    def cut(self) -> bool:
        return any(chunk.cut for chunk in self.chunks)


def claim_sentences(claim: str, split: bool) -> tuple[str, ...]:
    spans = sentence_spans(claim) if split else []
    return tuple(claim[start:end] for start, end in spans) if len(spans) > 1 else (claim,)


def chunk_row(
    tokenizer,
    passage: str,
    claim: str,
    source: str,
    style: PromptStyle,
    max_length: int,
    chunking: Chunking,
    max_new_tokens: int | None = None,
) -> ChunkedRow:
    """The passage as chunks for judging `claim` (scoring, or generating max_new_tokens): consecutive sentences
    packed while the chunk has at most chunk_tokens tokens and its prompt fits max_length. Chunks are sized
    for the whole claim, so each of its sentences fits beside every chunk too."""
    room = passage_room(tokenizer, claim, source, style, max_length, max_new_tokens)

    def fits(text: str) -> bool:
        return token_count(tokenizer, text) <= chunking.chunk_tokens and passage_fits(
            tokenizer, text, claim, source, style, max_length, max_new_tokens
        )

    def pieces(sentence: str) -> list[Chunk]:
        most = max(1, min(chunking.chunk_tokens, room))
        return [Chunk(piece, cut=True) for piece in pieces_that_fit(tokenizer, sentence, fits, most)]

    claims = claim_sentences(claim, chunking.split_claim)
    if fits(passage):  # most passages: one chunk, the passage exactly as it is
        return ChunkedRow((Chunk(passage),), claims, source)
    chunks: list[Chunk] = []
    start = end = None  # the chunk being packed: passage[start:end]
    for sentence_start, sentence_end in sentence_spans(passage):
        if start is not None and fits(passage[start:sentence_end]):
            end = sentence_end
            continue
        if start is not None:
            chunks.append(Chunk(passage[start:end]))
            start = None
        if fits(passage[sentence_start:sentence_end]):
            start, end = sentence_start, sentence_end
        else:
            chunks += pieces(passage[sentence_start:sentence_end])
    if start is not None:
        chunks.append(Chunk(passage[start:end]))
    # nothing but whitespace too long to fit: judged as it is, and cut like any passage that does not fit
    return ChunkedRow(tuple(chunks) or (Chunk(passage),), claims, source)
