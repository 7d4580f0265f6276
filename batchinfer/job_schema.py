"""The job file's JSON Schema (`batchinfer schema`), for editors that validate TOML."""

from __future__ import annotations

from batchinfer.job import JobSpec


def job_schema() -> dict:
    """JobSpec's JSON Schema, with the registries' choices and each task's options written flat in [model]."""
    from batchinfer.backends import aliases, backend_names
    from batchinfer.tasks import tasks

    found = JobSpec.model_json_schema()
    found["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    found["title"] = "batchinfer job file"
    model = found["$defs"]["ModelSpec"]
    model.pop("additionalProperties", None)
    model["unevaluatedProperties"] = False  # a key is either a base key or the chosen task's option
    registry = tasks()
    model["properties"]["task"]["enum"] = [n for name, cls in registry.items() for n in (name, *cls.aliases)]
    model["properties"]["backend"]["enum"] = [*backend_names(), *aliases()]
    model["properties"]["options"] = {"type": "object", "description": "the task's options (or write them flat)"}
    model["allOf"] = [_task_branch(name, cls, found["$defs"]) for name, cls in registry.items()]
    return found


def _task_branch(name: str, cls, defs: dict) -> dict:
    """If model.task is this task (or an alias): its options are allowed, flat or under `options`."""
    options = cls.Options.model_json_schema()
    hidden = set(cls.Options.model_fields) - set(cls.Options.public_fields())
    options["properties"] = {k: v for k, v in options.get("properties", {}).items() if k not in hidden}
    defs.update(options.pop("$defs", {}))
    props = options.get("properties", {})
    return {"if": {"properties": {"task": {"enum": [name, *cls.aliases]}}, "required": ["task"]},
            "then": {"properties": {**props, "options": {"type": "object", "properties": props,
                                                         "additionalProperties": False}}}}
