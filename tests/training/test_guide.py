"""The Model Integration Guide (../shared/docs/model-integration-guide.md) works as written.

Its usage snippets are copied here as the guide writes them and run in one namespace, as a reader would
type them into a notebook, in a fresh directory with ``models/`` relative to it. The guide's class
sketches (NotebookMLService, MLService, AIDecisionEngine, reload_models, the settings) are not run: they
describe implementations, whose behaviour the usage snippets exercise. docs/guide-mapping.md says how
its names map onto the project.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from engine.registry import ARTIFACT_FILES, ModelRegistry
from tests.conftest import small_config
from training import NotebookMLService

GUIDE = Path(__file__).resolve().parents[2].parent / "shared" / "docs" / "model-integration-guide.md"

# The imports the guide leaves out.
PREAMBLE = """\
from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService
from training import NotebookMLService
"""

# "Model Update Process", 1. Retraining Models: first here, so a fresh directory gets its one training.
RETRAINING = """\
# In notebook - retrain with new data
service = NotebookMLService()
service.train_models()  # Train with latest data
service.save_models()   # Overwrite existing models
"""

DEVELOPMENT_TESTING = """\
# In notebook
service = NotebookMLService()
service.load_or_train_models()

# Test prediction
test_incident = "Database connection timeout in api-service"
severity, confidence = service.predict_incident_severity(test_incident)
print(f"Predicted: {severity} (confidence: {confidence:.2f})")
"""

PRODUCTION_TESTING = """\
# In production
ml_service = MLService()
await ml_service.initialize()

# Test same prediction
test_incident = "Database connection timeout in api-service"
severity, confidence = await ml_service.predict_incident_severity(test_incident)
print(f"Production predicted: {severity} (confidence: {confidence:.2f})")
"""

INTEGRATION_TESTING = """\
ai_engine = AIDecisionEngine()
await ai_engine.start()

test_incident = IncidentCreate(
    title="Database Connection Timeout",
    description="Application experiencing timeouts when connecting to PostgreSQL",
    service="api-service",
    severity="high",
    tags=["database", "timeout"]
)

# This uses ML Service models loaded from disk
category, confidence = await ai_engine.predict_incident_category(test_incident)
print(f"AI Engine predicted: {category} (confidence: {confidence:.2f})")
"""

PRODUCTION_DEPLOYMENT = """\
# Production service will load updated models
ml_service = MLService()
await ml_service.initialize()  # Loads latest models from disk
"""

MODEL_LOADING_ISSUES = """\
# Verify model files exist
from pathlib import Path
import joblib

models_dir = Path("models")
required_files = [
    "incident_classifier.joblib",
    "action_recommender.joblib",
    "text_vectorizer.joblib"
]

for file in required_files:
    path = models_dir / file
    if path.exists():
        try:
            model = joblib.load(path)
            print(f"✅ {file} loaded successfully")
        except Exception as e:
            print(f"❌ {file} failed to load: {e}")
    else:
        print(f"⚠️  {file} not found")
"""

PREDICTION_FAILURES = """\
# Test ML Service initialization
ml_service = MLService()
await ml_service.initialize()

# Check model loading status
for model_name, metadata in ml_service.model_metadata.items():
    print(f"{model_name}: loaded={metadata['loaded']}")

# Test individual predictions
if ml_service.incident_classifier:
    # Test prediction
    pass
"""

VERSION_COMPATIBILITY = """\
# Check scikit-learn version
import sklearn
print(f"scikit-learn version: {sklearn.__version__}")

# Models trained with different versions may show warnings
# But should still work for basic operations
"""

SNIPPETS = (
    RETRAINING,
    DEVELOPMENT_TESTING,
    PRODUCTION_TESTING,
    INTEGRATION_TESTING,
    PRODUCTION_DEPLOYMENT,
    MODEL_LOADING_ISSUES,
    PREDICTION_FAILURES,
    VERSION_COMPATIBILITY,
)


async def run(snippet: str, namespace: dict[str, Any]) -> None:
    """Run a snippet as a notebook cell runs it: top-level ``await`` allowed, names kept for the next."""
    code = compile(snippet, "<guide>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if code.co_flags & inspect.CO_COROUTINE:
        await result


def _lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines())


def test_the_snippets_here_are_the_guides() -> None:
    if not GUIDE.is_file():
        pytest.skip(f"{GUIDE} is not present (a fresh clone)")
    guide = _lines(GUIDE.read_text(encoding="utf-8"))
    for snippet in SNIPPETS:
        assert f"```python\n{_lines(snippet)}\n```" in guide, snippet  # trailing spaces aside


@pytest.mark.asyncio
@pytest.mark.slow
async def test_the_guides_snippets_work_as_written_in_a_fresh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ML_MODEL_PATH", raising=False)
    # Small, so the test is fast: the guide's NotebookMLService() trains with the default recipe.
    monkeypatch.setattr(NotebookMLService, "default_config", small_config(samples=400))
    ns: dict[str, Any] = {}
    await run(PREAMBLE, ns)

    await run(RETRAINING, ns)
    registry = ModelRegistry("models")
    saved = registry.active_id()
    assert saved is not None and ns["service"].version == saved, "the retrained version is the active one"
    trained = ns["service"]

    await run(DEVELOPMENT_TESTING, ns)
    assert ns["service"].version == saved, "loaded, not trained again"
    notebook = ns["service"]
    assert notebook.text_vectorizer is None, "the joblib files are pickles: unloaded unless trusted"
    in_notebook = (ns["severity"], ns["confidence"])

    await run(PRODUCTION_TESTING, ns)
    production = ns["ml_service"]
    assert production.models.version == saved and not production.models.fallback
    assert (ns["severity"], ns["confidence"]) == in_notebook, "production predicts what the notebook did"
    text = ns["test_incident"]
    assert await production.recommend_action(text) == notebook.recommend_action(text)

    await run(INTEGRATION_TESTING, ns)
    incident = ns["test_incident"]
    assert ns["ai_engine"].ml.models.version == saved
    assert (ns["category"], ns["confidence"]) == notebook.predict_incident_category(incident.text)
    assert await ns["ai_engine"]._recommend_action_types(incident) == [
        action for action, _ in notebook.predict(incident.text).actions[:3]
    ]

    await run(PRODUCTION_DEPLOYMENT, ns)
    assert ns["ml_service"].models.version == saved
    assert (await ns["ml_service"].reload_models()).ok

    capsys.readouterr()
    await run(MODEL_LOADING_ISSUES, ns)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"✅ {name} loaded successfully" for name in ns["required_files"]]
    assert set(ns["required_files"]) <= set(ARTIFACT_FILES)
    # joblib.load of models/<name> (a person choosing to unpickle) gives the objects the notebook trained.
    assert type(ns["model"]) is type(trained.text_vectorizer)

    await run(PREDICTION_FAILURES, ns)
    printed = capsys.readouterr().out.splitlines()
    assert "incident_classifier: loaded=True" in printed and "action_recommender: loaded=True" in printed
    assert ns["ml_service"].incident_classifier

    await run(VERSION_COMPATIBILITY, ns)
    assert capsys.readouterr().out.startswith("scikit-learn version: ")
