"""The task registry: one module per task, looked up by its transformers pipeline name or an alias.

A new task is a module under `tasks/` defining one `Task` subclass, named in `TASK_MODULES`. Everything else
(the job schema, the CLI, the polars API, `batchinfer.pipeline`, the agreement gate) reads the class. A model
shape that runs an existing task differently (Whisper for speech recognition) is a module too, whose class
names the task in `variant_of`; `for_model` picks it for the models it `fits`.
"""

from __future__ import annotations

import importlib
from functools import cache

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task, TaskOptions

TASK_MODULES = ("text_classification", "feature_extraction", "token_classification", "zero_shot",
                "image_classification", "fill_mask", "text_generation",
                "text2text_generation", "question_answering",
                "image_feature_extraction", "zero_shot_image_classification",
                "image_text_to_text", "audio_classification",
                "speech_recognition", "whisper_recognition")


def _defined() -> list[type[Task]]:
    """The Task subclasses the modules in TASK_MODULES define (not those they import), in that order."""
    found = []
    for module_name in TASK_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        found += [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Task)
                  and value.__module__ == module.__name__]
    return found


@cache
def tasks() -> dict[str, type[Task]]:
    """Canonical name -> task class, in TASK_MODULES order."""
    return {cls.name: cls for cls in _defined() if "name" in vars(cls)}


@cache
def _variants() -> dict[str, list[type[Task]]]:
    """Task name -> its variants (classes with `variant_of`), in TASK_MODULES order."""
    found: dict[str, list[type[Task]]] = {}
    for cls in _defined():
        if vars(cls).get("variant_of"):
            found.setdefault(cls.variant_of, []).append(cls)
    return found


def for_model(cls: type[Task], config: dict) -> type[Task]:
    """The class that runs task `cls` for a model of `config`: a variant that fits it, else `cls`."""
    return next((v for v in _variants().get(cls.name, ()) if v.fits(config)), cls)


@cache
def _names() -> dict[str, str]:
    return {alias: cls.name for cls in tasks().values() for alias in (cls.name, *cls.aliases)}


def canonical_task(name: str) -> str | None:
    """The task's canonical name for a name or alias, or None if no task has it."""
    return _names().get(name)


def task_class(name: str) -> type[Task]:
    canonical = canonical_task(name)
    if canonical is None:
        raise ModelError(f"unknown task {name!r}; choose one of: {', '.join(tasks())}",
                         hint="`batchinfer tasks` lists every task with its aliases, inputs and options")
    return tasks()[canonical]


def task_names(*, aliases: bool = False) -> list[str]:
    """Every task's canonical name (and, with `aliases`, every alias too)."""
    return list(_names()) if aliases else list(tasks())


def option_owners(key: str) -> list[str]:
    """The tasks that have an option named `key`."""
    return [name for name, cls in tasks().items() if key in cls.Options.model_fields]


def shortcut_task(method: str) -> type[Task] | None:
    """The task a polars expression shortcut (`pl.col(...).infer.classify`) stands for."""
    return next((cls for cls in tasks().values() if cls.shortcut == method), None)


__all__ = ["TASK_MODULES", "Task", "TaskOptions", "canonical_task", "for_model", "option_owners", "shortcut_task",
           "task_class", "task_names", "tasks"]
