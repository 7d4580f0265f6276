"""Tasks, one module each, looked up by their transformers pipeline name."""

from __future__ import annotations

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task
from batchinfer.tasks.feature_extraction import FeatureExtraction
from batchinfer.tasks.image_classification import ImageClassification
from batchinfer.tasks.text_classification import TextClassification
from batchinfer.tasks.token_classification import TokenClassification
from batchinfer.tasks.zero_shot import ZeroShotClassification

TASKS: dict[str, type[Task]] = {t.name: t for t in (TextClassification, FeatureExtraction, ImageClassification,
                                                    TokenClassification, ZeroShotClassification)}


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except KeyError:
        raise ModelError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "Task", "task_class"]
