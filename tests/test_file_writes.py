"""The one way Hakim writes a file another stage reads: whole or not at all, JSON Lines with Malay kept as written."""

import json

from hakim.file_writes import jsonl, write_atomically


def test_an_atomic_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "LATEST"
    target.write_text("old\n")
    write_atomically(target, "new\n")
    write_atomically(tmp_path / "shard.pt", b"\x00\x01")
    assert target.read_text() == "new\n" and (tmp_path / "shard.pt").read_bytes() == b"\x00\x01"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["LATEST", "shard.pt"]


def test_jsonl_is_one_object_per_line_with_non_ascii_kept():
    rows = [{"claim": "Adakah Kuala Lumpur ibu negara?", "label": 1}, {"claim": "café “petikan”", "label": 0}]
    text = jsonl(rows)
    assert text.endswith("\n") and [json.loads(line) for line in text.splitlines()] == rows
    assert "“petikan”" in text and jsonl([]) == ""
