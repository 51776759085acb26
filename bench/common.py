"""What the benchmarks share: the rows they run on, the models they load, memory probes, the table.

Rows are real BoolQ (Malay) and FIB (English) rows from ../shared/data when that folder exists, else
synthetic rows with the same length histogram (bench/length_histogram.json, derived from those files
by `python bench/common.py --write-histogram`), written with words from Hakim's bundled sample.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import yaml

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
HISTOGRAM_PATH = BENCH_DIR / "length_histogram.json"
MODEL_CACHE = ROOT / ".cache" / "hakim" / "models"

# file, source, language, claim column: the two real sets Hakim is trained on
REAL_FILES = (
    ("boolq-malay-validation.jsonl", "boolq", "ms", "question"),
    ("fib-english.jsonl", "fib", "en", "summary"),
)
PASSAGE_EDGES = [0, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000]
CLAIM_EDGES = [0, 25, 50, 75, 100, 150, 200, 300, 400, 600, 800]

MODELS = {
    # name (a conf/model/*.yaml): what it is
    "tiny_mistral": "2-layer random Mistral, hidden 64, vocab 1k",
    "smollm2_135m": "SmolLM2-135M-Instruct (30 layers, hidden 576, vocab 49k)",
    "gemma3_270m": "Gemma 3 270M base (18 layers, hidden 640, vocab 262k)",
}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ---------------------------------------------------------------- rows


def _real_rows() -> list[dict]:
    rows = []
    for name, source, language, claim_column in REAL_FILES:
        with open(SHARED_DATA / name, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, 1):
                row = json.loads(line)
                passage, claim = str(row["passage"]).strip(), str(row[claim_column]).strip()
                if not passage or not claim:  # Hakim's loader refuses these rows too
                    continue
                rows.append(
                    {
                        "id": f"{name}:{line_number}",
                        "source": source,
                        "language": language,
                        "passage": passage,
                        "claim": claim,
                        "label": int(row["answer"]),
                    }
                )
    return rows


def _bucket(length: int, edges: list[int]) -> int:
    for index in range(len(edges) - 1, -1, -1):
        if length >= edges[index]:
            return index
    return 0


def derive_histogram() -> dict:
    """Bucket counts of passage and claim lengths (characters) and label counts, per source."""
    histogram = {
        "passage_edges": PASSAGE_EDGES,
        "claim_edges": CLAIM_EDGES,
        "derived_from": [f[0] for f in REAL_FILES],
        "sources": {},
    }
    for row in _real_rows():
        entry = histogram["sources"].setdefault(
            row["source"],
            {
                "language": row["language"],
                "rows": 0,
                "label_1": 0,
                "passage": [0] * len(PASSAGE_EDGES),
                "claim": [0] * len(CLAIM_EDGES),
            },
        )
        entry["rows"] += 1
        entry["label_1"] += row["label"]
        entry["passage"][_bucket(len(row["passage"]), PASSAGE_EDGES)] += 1
        entry["claim"][_bucket(len(row["claim"]), CLAIM_EDGES)] += 1
    return histogram


def _sample_words() -> list[str]:
    words = []
    sample = resources.files("hakim.data") / "sample"
    for name in ("boolq_ms.jsonl", "fib_ms.jsonl"):
        for line in (sample / name).read_text(encoding="utf-8").splitlines():
            words.extend(json.loads(line)["passage"].split())
    return words


def _length_in_bucket(rng: random.Random, counts: list[int], edges: list[int]) -> int:
    index = rng.choices(range(len(counts)), weights=counts)[0]
    upper = edges[index + 1] if index + 1 < len(edges) else edges[index] * 2
    return rng.randint(max(edges[index], 8), max(upper - 1, 8))


def _text_of_length(rng: random.Random, words: list[str], length: int) -> str:
    text = []
    size = 0
    while size < length:
        word = rng.choice(words)
        text.append(word)
        size += len(word) + 1
    return " ".join(text)[:length].rstrip()


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    histogram = json.loads(HISTOGRAM_PATH.read_text())
    rng = random.Random(seed)
    words = _sample_words()
    sources = list(histogram["sources"])
    weights = [histogram["sources"][s]["rows"] for s in sources]
    rows = []
    for index in range(n):
        source = rng.choices(sources, weights=weights)[0]
        entry = histogram["sources"][source]
        rows.append(
            {
                "id": f"synthetic:{index}",
                "source": source,
                "language": entry["language"],
                "passage": _text_of_length(
                    rng, words, _length_in_bucket(rng, entry["passage"], histogram["passage_edges"])
                ),
                "claim": _text_of_length(rng, words, _length_in_bucket(rng, entry["claim"], histogram["claim_edges"])),
                "label": int(rng.random() < entry["label_1"] / entry["rows"]),
            }
        )
    return rows


def load_rows(n: int, seed: int = 0, synthetic: bool = False) -> tuple[list[dict], str]:
    """`n` rows drawn (seeded) from the real files in their natural BoolQ:FIB mix, or synthetic ones."""
    if not synthetic and all((SHARED_DATA / f[0]).exists() for f in REAL_FILES):
        rows = _real_rows()
        random.Random(seed).shuffle(rows)
        return rows[:n], f"real ({', '.join(f[0] for f in REAL_FILES)})"
    return synthetic_rows(n, seed), f"synthetic from {HISTOGRAM_PATH.name}"


def to_record(row: dict):
    from hakim.data.records import JudgeRecord, document_id

    return JudgeRecord(
        id=row["id"],
        source=row["source"],
        language=row["language"],
        passage=row["passage"],
        claim=row["claim"],
        label=row["label"],
        doc_id=document_id(row["source"], row["passage"]),
    )


def fit_rows(rows: list[dict], tokenizer, style, max_length: int, n: int) -> list[dict]:
    """The first `n` rows whose passage, cut by characters, lets Hakim encode them without truncating.

    Both sides then train on identical texts and neither truncates: trl would cut the end (the answer)
    where Hakim cuts the passage, and the comparison would no longer be of the same examples. Rows
    whose claim alone does not fit are skipped, as Hakim's data module skips them.
    """
    from hakim.prompting.prompt import encode_example
    from hakim.verdict import label_token_ids

    label_ids = label_token_ids(tokenizer)
    fitted = []
    for row in rows:
        row = dict(row)
        if encode_example(tokenizer, to_record({**row, "passage": "x"}), style, max_length, label_ids) is None:
            continue
        while True:
            encoded = encode_example(tokenizer, to_record(row), style, max_length, label_ids)
            if encoded is not None and not encoded.truncated:
                break
            row["passage"] = row["passage"][: max(1, int(len(row["passage"]) * 0.85))].rstrip() or "x"
        fitted.append(row)
        if len(fitted) == n:
            return fitted
    raise SystemExit(f"only {len(fitted)} of {n} rows fit in max_length={max_length}; raise --max-length")


# ---------------------------------------------------------------- models


def model_spec(name: str, **overrides):
    from hakim.models.loading import ModelSpec

    if name not in MODELS:
        raise SystemExit(f"--model must be one of {sorted(MODELS)}, got {name!r}")
    config = yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())
    config.update(cache_dir=str(MODEL_CACHE), **overrides)
    return ModelSpec.from_dict(config)


# ---------------------------------------------------------------- memory


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class PeakRss:
    """Poll this process's resident memory in a thread; `.peak` is the highest seen (MiB)."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


# ---------------------------------------------------------------- running sides


def run_worker(script: Path, arguments: list[str], threads: int, timeout: int = 1800) -> dict:
    """Run one benchmark side in a fresh interpreter; its last stdout line is a JSON result.

    `threads` pins OpenMP/MKL: on a machine shared with other work, two spinning OpenMP threads on two
    busy cores made every op of the tiny model ~50x slower than one thread (measured), which would
    turn the comparison into a measure of the neighbours' load.
    """
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    result = subprocess.run(
        [sys.executable, str(script), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{script.name} {' '.join(arguments)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    described = f"{os.cpu_count()} CPUs ({model})"
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        torch = sys.modules["torch"]
        described = f"{torch.cuda.get_device_name()} (torch {torch.__version__}), {described}"
    return described


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-histogram", action="store_true", help="derive bench/length_histogram.json from ../shared/data"
    )
    if parser.parse_args().write_histogram:
        HISTOGRAM_PATH.write_text(json.dumps(derive_histogram(), indent=1) + "\n")
        print(f"wrote {HISTOGRAM_PATH}")
