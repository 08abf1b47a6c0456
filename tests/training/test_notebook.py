"""notebooks/ml_training.ipynb runs top to bottom in a real kernel (nbclient, ipykernel) on small sizes,
learns from the labeled file and the feedback store it is given, saves a version that production serves,
and is committed without outputs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from bot.store import open_store, rating_for
from engine.registry import ModelRegistry
from tests.training.test_feedback import ACTIONS, record
from training import NotebookMLService
from training.gate import GATE_SYNTHETIC_ROWS
from training.synthetic import generate_incidents
from training.train import TrainingError

pytestmark = pytest.mark.slow  # runs the notebook in a kernel, training

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ml_training.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_the_notebook_is_committed_without_outputs() -> None:
    code = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_the_notebook_service_says_what_to_do_first(tmp_path: Path) -> None:
    service = NotebookMLService(tmp_path / "models")
    with pytest.raises(TrainingError, match=r"load_or_train_models\(\), load_models\(\) or train_models"):
        service.predict_incident_severity("disk 97% on db-prod-3")
    with pytest.raises(TrainingError, match=r"train_models\(\) first"):
        service.save_models()
    with pytest.raises(TrainingError, match="no trained model"):
        service.load_models()
    assert not (tmp_path / "models").exists(), "nothing is written before a save"


def test_the_training_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = tmp_path / "history.jsonl"
    rows = generate_incidents(20, seed=3)
    labeled = ({k: getattr(r, k) for k in ("title", "description", "service", "severity")} for r in rows)
    history.write_text("".join(json.dumps(row) + "\n" for row in labeled))
    db_url = f"sqlite:///{tmp_path / 'oncall.db'}"

    async def rate() -> None:  # 10 decisions people confirmed: 8 to train on, the newest 2 for the gate
        store = await open_store(db_url)
        for i, r in enumerate(generate_incidents(10, seed=4)):
            await store.record_decision(record(str(10 + i), r.text))
            await store.rate("C1", str(10 + i), "U1", "+1", rating_for("+1", ACTIONS))
        await store.close()

    asyncio.run(rate())
    for name, value in {
        "ONCALL_NOTEBOOK_SAMPLES": "300",
        "ONCALL_NOTEBOOK_FOLDS": "1",
        "ONCALL_NOTEBOOK_DATA": str(history),
        "ONCALL_DB_URL": db_url,
        "ML_MODEL_PATH": str(tmp_path / "models"),
        # As in a fresh clone: the status-page evaluation is skipped (the alert rules' runs; CI stays fast).
        "ONCALL_REAL_DATA": str(tmp_path / "no-real-data"),
    }.items():
        monkeypatch.setenv(name, value)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # a failing cell raises CellExecutionError with its traceback

    registry = ModelRegistry(tmp_path / "models")
    metadata = registry.active().metadata
    assert [f["path"] for f in metadata["data"]["files"]] == [str(history)]
    assert metadata["data"]["by_source"]["history"] == 20 and metadata["data"]["by_source"]["feedback"] == 8
    assert metadata["promotions"][-1]["gate"]["rows"] == GATE_SYNTHETIC_ROWS + 2
    outputs = "\n".join(_text(c) for c in notebook.cells if c.cell_type == "code")
    assert "10 rated decisions in the feedback store" in outputs
    assert "alert rules, unseen mixins: n=" in outputs and "status-page evaluation is skipped" in outputs
    assert f"production ({registry.active_id()}) predicts exactly what the notebook predicts" in outputs
