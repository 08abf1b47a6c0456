"""Labeled JSONL reading (training/dataset.py): each bad line reported with its reason, the rest kept."""

from __future__ import annotations

from pathlib import Path

from training.dataset import load_jsonl


def test_malformed_lines_are_reported_with_file_and_line_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"title": "DB down", "severity": "critical", "category": "database", "actions": ["failover"]}\n'
        b"{not json\n"
        b"\n"
        b'{"title": "", "description": ""}\n'
        b'{"title": "x", "severity": "urgent"}\n'
        b'{"title": "y", "actions": ["reboot_the_world"]}\n'
        b'"just a string"\n'
        b"\xff\xfe bad bytes\n"
        b'{"description": "only a body", "severity": null, "category": null}\n'
    )
    loaded = load_jsonl(path)
    assert [r.title or r.description for r in loaded.rows] == ["DB down", "only a body"]
    assert loaded.rows[1].severity is None and loaded.rows[0].actions == ("failover",)
    reasons = {b.line: b.reason for b in loaded.bad_lines}
    assert set(reasons) == {2, 4, 5, 6, 7, 8}
    assert "JSON" in reasons[2] and "neither title nor description" in reasons[4]
    assert "severity" in reasons[5] and "action" in reasons[6] and "UTF-8" in reasons[8]


def test_a_line_that_is_not_json_is_reported_with_the_whole_reason_and_its_column(tmp_path: Path) -> None:
    """json's message ends "... at" and the position is apart: both are given, never a cut-off reason."""
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b'{"title": "fine"}\n'
        b'{"title": "tab\there"}\n'  # a raw control character inside a string
        b'{"title": "unclosed"\n'  # the line ends where json expects a comma
        b'{"title": "x"} trailing\r\n'
        b'{"title": "caf\xe9"}\n'
    )
    reasons = {b.line: str(b) for b in load_jsonl(path).bad_lines}
    assert reasons == {
        2: f"{path}:2: not valid JSON: Invalid control character at column 15",
        3: f"{path}:3: not valid JSON: Expecting ',' delimiter at column 21",
        4: f"{path}:4: not valid JSON: Extra data at column 16",
        5: f"{path}:5: not valid UTF-8 at byte 15",
    }
