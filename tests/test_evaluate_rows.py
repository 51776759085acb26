"""`evaluate.py rows=PATH`: judging a user's own file without preparing a dataset first."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import compose_config, run_entry_point
from hakim.data.files import SourceError
from hakim.data.records import BadRowError
from hakim.eval.evaluation import evaluate

# The user's own column names; the task of each row is in its own column.
HEADER = "teks,kenyataan,betul,tugas\n"
ROWS = [
    ("Sungai Rajang ialah sungai terpanjang.", "adakah rajang terpanjang", 1, "boolq"),
    ("Gunung Kinabalu di Sabah.", "adakah kinabalu di sarawak", 0, "boolq"),
    ("Pasukan itu menang piala.", "Pasukan itu kalah.", 0, "fib"),
    ("Hujan lebat menutup sekolah.", "Sekolah ditutup kerana hujan.", 1, "fib"),
    ("Jambatan dibuka pada bulan Mei.", "Jambatan dibuka pada bulan Mei.", 1, "fib"),
]
COLUMNS = [
    "columns.passage_column=teks",
    "columns.claim_column=kenyataan",
    "columns.label_column=betul",
    "columns.source_column=tugas",
    "columns.language=ms",
]


def write_csv(path, rows) -> str:
    path.write_text(HEADER + "".join(",".join(str(cell) for cell in row) + "\n" for row in rows))
    return str(path)


def test_a_constant_judge_scores_a_users_csv_end_to_end(tmp_path):
    rows = write_csv(tmp_path / "mine.csv", ROWS)

    result = run_entry_point("evaluate.py", tmp_path, "judge=always_one", f"rows={rows}", *COLUMNS, "hydra.run.dir=out")

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["extra"]["rows"] == rows and metrics["extra"]["rows_rejected"] == 0
    assert metrics["subsets"]["overall"]["n"] == len(ROWS)
    assert {"boolq", "fib"} <= {name.split("/")[0] for name in metrics["subsets"]}
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [(p["source"], p["label"], p["prediction"]) for p in predictions] == [
        (task, label, 1) for _, _, label, task in ROWS
    ]
    assert "mine.csv" in result.stdout and (tmp_path / "out" / "report.md").exists()


def test_majority_without_a_dataset_takes_the_rows_own_majority(tmp_path, workspace):
    rows = write_csv(tmp_path / "mine.csv", ROWS)
    summary = evaluate(
        compose_config("evaluate", workspace, tmp_path / "out", ["judge=majority", f"rows={rows}", *COLUMNS])
    )
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert {(p["prediction"], p["probability"]) for p in predictions} == {(1, 3 / 5)}
    assert summary["extra"]["baseline_split"] == "rows"


def test_bad_rows_are_named_like_prepare_data_and_can_be_skipped(tmp_path, workspace):
    rows = write_csv(tmp_path / "mine.csv", [*ROWS[:2], ("Teks.", "adakah ya", -1, "boolq"), *ROWS[2:]])

    with pytest.raises(BadRowError, match=rf"{rows}:4: field 'betul': .*unlabelled"):
        evaluate(compose_config("evaluate", workspace, tmp_path / "a", ["judge=always_one", f"rows={rows}", *COLUMNS]))
    summary = evaluate(
        compose_config(
            "evaluate", workspace, tmp_path / "b", ["judge=always_one", f"rows={rows}", *COLUMNS, "on_bad_row=reject"]
        )
    )
    assert summary["subsets"]["overall"]["n"] == len(ROWS) and summary["extra"]["rows_rejected"] == 1

    with pytest.raises(SourceError, match=rf"source 'rows': no file at {tmp_path / 'nope.csv'}"):
        evaluate(
            compose_config("evaluate", workspace, tmp_path / "c", ["judge=always_one", f"rows={tmp_path / 'nope.csv'}"])
        )


def test_repeated_rows_are_scored_with_a_warning_naming_their_lines(tmp_path, workspace, caplog):
    repeats = [ROWS[1], (ROWS[3][0], ROWS[3][1], 0, "fib")]  # lines 7 and 8 repeat lines 3 and 5, the second relabelled
    rows = write_csv(tmp_path / "mine.csv", [*ROWS, *repeats])
    with caplog.at_level(logging.WARNING):
        summary = evaluate(
            compose_config("evaluate", workspace, tmp_path / "out", ["judge=always_one", f"rows={rows}", *COLUMNS])
        )
    assert summary["subsets"]["overall"]["n"] == len(ROWS) + 2 and summary["extra"]["rows_repeated"] == 2
    warnings = [record.getMessage() for record in caplog.records if "repeat" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("2 rows repeat an earlier row's passage and claim")
    assert f"{rows}:7 repeats {rows}:3; {rows}:8 repeats {rows}:5 with another label" in warnings[0]
