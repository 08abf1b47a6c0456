"""Training: data, fitting, validation, the promotion gate; ``NotebookMLService`` for notebooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.notebook import NotebookMLService

__all__ = ["NotebookMLService"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import training.dataset` (the CLI's light commands, the fuzzers) stays light.
    if name == "NotebookMLService":
        from training.notebook import NotebookMLService

        return NotebookMLService
    raise AttributeError(f"module 'training' has no attribute {name!r}")
