"""The real alerting rules shipped in the package: present, licensed, learned from once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from training.bundled import ALERT_RULES, alert_rules
from training.train import TrainConfig, collect_data


def test_the_rules_ship_with_their_notice_and_their_authors_grades() -> None:
    rows = alert_rules()
    assert len(rows) == 807 and len({r.id for r in rows}) == 807
    assert Counter(r.severity for r in rows) == {"medium": 453, "critical": 330, "low": 24}
    assert {r.source for r in rows} == {"alertrules/mixins"}
    notice = " ".join((ALERT_RULES.parent / "NOTICE").read_text(encoding="utf-8").split())
    assert "monitoring-mixins/website" in notice and "Apache License, Version 2.0" in notice
    assert "training/data/alert_rules_mixins.jsonl" in (Path(__file__).parents[2] / "NOTICE").read_text()


def test_training_takes_the_rules_unless_told_not_to_and_never_twice(tmp_path: Path) -> None:
    rows, summary = collect_data(TrainConfig(samples=20))
    assert summary["by_source"]["alertrules/mixins"] == 807 and summary["bundled"]["rows"] == 807
    assert summary["bundled"]["sha256"] and len(rows) == 827
    rows, summary = collect_data(TrainConfig(samples=20, bundled=False))
    assert "alertrules/mixins" not in summary["by_source"] and summary["bundled"] is None
    # A --data file holding some of the same rules (the shared copy, say): each rule is learned once.
    copy = tmp_path / "rules.jsonl"
    copy.write_text("".join(ALERT_RULES.read_text(encoding="utf-8").splitlines(True)[:100]), encoding="utf-8")
    rows, summary = collect_data(TrainConfig(samples=20, data_files=[copy]))
    assert summary["by_source"]["alertrules/mixins"] == 807 and summary["bundled"]["rows"] == 707
