"""Write and read a versioned prepared dataset: one Parquet file per split plus manifest.json.

Each split in the manifest carries its row counts per source × language × label, a fingerprint of the
whole split and one per column, so two versions can be compared column by column (COLUMN_FINGERPRINT
says how to recompute one from the Parquet file).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hakim.data.records import JudgeRecord
from hakim.file_writes import write_atomically

SPLIT_FILES = ("train", "validation", "test", "eval")
LATEST_POINTER = "LATEST"
COLUMNS = ("id", "source", "language", "passage", "claim", "label", "doc_id", "split", "reasoning", "extra")
COLUMN_FINGERPRINT = (
    "sha256 over the column's values as stored in the Parquet file, each JSON-encoded on its own line, in row order"
)


def fingerprint(records: list[JudgeRecord]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def _stored_rows(records: list[JudgeRecord]) -> list[dict]:
    rows = [record.to_dict() for record in records]
    for row in rows:
        row["extra"] = json.dumps(row["extra"], ensure_ascii=False, sort_keys=True)
    return rows


def _table(records: list[JudgeRecord]) -> pa.Table:
    schema = pa.schema([(name, pa.int64() if name == "label" else pa.string()) for name in COLUMNS])
    return pa.Table.from_pylist(_stored_rows(records), schema=schema)


def column_fingerprints(records: list[JudgeRecord]) -> dict[str, str]:
    """One sha256 per column (see COLUMN_FINGERPRINT): a changed translation shows up in `passage` alone."""
    digests = {name: hashlib.sha256() for name in COLUMNS}
    for row in _stored_rows(records):
        for name, digest in digests.items():
            digest.update(json.dumps(row[name], ensure_ascii=False).encode() + b"\n")
    return {name: digest.hexdigest() for name, digest in digests.items()}


def counts_by_group(records: list[JudgeRecord]) -> dict[str, int]:
    counts = Counter(f"{r.source}/{r.language}/label={r.label}" for r in records)
    return dict(sorted(counts.items()))


def write_dataset(
    splits: dict[str, list[JudgeRecord]],
    root: Path,
    manifest_extra: dict,
    files: dict[str, str] | None = None,
    point_latest: bool = True,
) -> Path:
    """Write splits (and `files`: name -> text, e.g. rejects) under root/<version>/ and, if point_latest,
    point root/LATEST at it. The version is the content hash of the rows."""
    version = fingerprint([r for name in sorted(splits) for r in splits[name]])[:12]
    # A failed dataset never shares a directory with a published one holding the same rows.
    target = Path(root) / (version if point_latest else f"{version}-failed")
    target.mkdir(parents=True, exist_ok=True)
    for name, records in splits.items():
        pq.write_table(_table(records), target / f"{name}.parquet")
    for name, text in (files or {}).items():
        (target / name).write_text(text, encoding="utf-8")
    manifest = {
        "version": version,
        "splits": {
            name: {
                "rows": len(records),
                "fingerprint": fingerprint(records),
                "counts": counts_by_group(records),
                "column_fingerprints": column_fingerprints(records),
            }
            for name, records in splits.items()
        },
        "column_fingerprint": COLUMN_FINGERPRINT,
        **manifest_extra,
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if not point_latest:
        return target
    pointer = Path(root) / LATEST_POINTER
    write_atomically(pointer, version + "\n")
    return target


def resolve_dataset_dir(path: str | Path) -> Path:
    """Accept a version directory or a dataset root holding a LATEST pointer."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return path
    pointer = path / LATEST_POINTER
    if pointer.exists():
        return path / pointer.read_text().strip()
    raise FileNotFoundError(
        f"no prepared dataset at {path}: run `python prepare_data.py` first (expected manifest.json or LATEST)"
    )


def read_split(dataset_dir: str | Path, split: str) -> list[JudgeRecord]:
    path = resolve_dataset_dir(dataset_dir) / f"{split}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"split '{split}' not found: {path}")
    records = []
    for index, row in enumerate(pq.read_table(path).to_pylist()):
        row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        records.append(JudgeRecord.from_dict(row, f"{path}:row {index}"))
    return records


def read_manifest(dataset_dir: str | Path) -> dict:
    return json.loads((resolve_dataset_dir(dataset_dir) / "manifest.json").read_text())
