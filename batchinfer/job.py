"""The job file: a typed schema (pydantic), TOML loading, `--set` overrides and path resolution.

Everything here is checked before any work starts; errors name the key and the allowed values.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from batchinfer.errors import JobFileError, ModelError
from batchinfer.tasks.base import TaskOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Compression = Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"]


SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas", "connection_string", "signature")


def redact(options: dict[str, Any]) -> dict[str, Any]:
    """A copy of storage options safe to print: values of secret-looking keys become '***'."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, dict):
            out[k] = redact(v)
        elif any(word in str(k).lower() for word in SECRET_WORDS):
            out[k] = "***"
        else:
            out[k] = v
    return out


def secret_values(spec: "JobSpec") -> list[str]:
    """Every secret-looking storage option value in a job, to scrub from messages."""
    found: list[str] = []

    def walk(options: dict[str, Any]) -> None:
        for k, v in options.items():
            if isinstance(v, dict):
                walk(v)
            elif isinstance(v, str) and len(v) >= 4 and any(w in str(k).lower() for w in SECRET_WORDS):
                found.append(v)

    for options in (spec.input.storage_options, spec.output.storage_options, spec.input.catalog,
                    spec.output.catalog):
        walk(options)
    return found


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CsvOptions(_Section):
    delimiter: str | None = Field(None, min_length=1, max_length=1,
                                  description="default: a tab for .tsv files, else a comma")
    quote_char: str = Field('"', min_length=1, max_length=1)
    header: bool = True
    encoding: str = "utf8"
    infer_types: bool = Field(True, description="false reads every column as a string (keeps leading zeros)")
    empty_as_null: bool = Field(True, description="an empty unquoted field is null (a quoted \"\" stays empty "
                                                  "text), as polars reads CSV; false reads it as empty text")


class InputSpec(_Section):
    """Where rows come from. `path` is a file, a folder, a glob or a list of them, local or fsspec URL."""

    path: str | list[str] | None = Field(None, description="files, folders, globs; a Delta table or Lance "
                                                           "dataset (its folder or URL)")
    column: str | None = Field(None, min_length=1, description="the text or image column fed to the model")
    columns: dict[str, str] = Field({}, description="the task's input roles to columns, e.g. "
                                                    "{ text = 'query', text_pair = 'passage' }")
    template: str | None = Field(None, min_length=1, description="builds the text from several columns, e.g. "
                                                                 "'Title: {title}\\n{body}'")
    format: str = Field("auto", description="auto (from each file's name, or a table's folder), or a format in "
                                            "io/formats/: parquet, csv, jsonl, delta, iceberg, lance")
    table: str | None = Field(None, description="iceberg: the table's name in the catalog, e.g. 'nightly.reviews'")
    catalog: dict[str, Any] = Field({}, description="iceberg: the catalog's properties (pyiceberg load_catalog), "
                                                    "e.g. { type = 'sql', uri = 'sqlite:///cat.db', warehouse = ... }")
    version: int | None = Field(None, ge=0, description="a table's version to read (delta, lance) or snapshot id "
                                                        "(iceberg); default: the latest")
    as_of: str | None = Field(None, description="delta: the version current at this time (ISO 8601)")
    partition_filter: list[tuple[str, str, Any]] | None = Field(
        None, description="delta: read only these partitions, e.g. [['day', '=', '2026-12-01']]")
    row_filter: str | None = Field(None, description="iceberg: a row filter, e.g. \"day = '2026-12-01'\"")
    batch_rows: int = Field(8192, gt=0, description="rows per record batch read (and per output part)")
    csv: CsvOptions = CsvOptions()
    storage_options: dict[str, Any] = {}
    on_error: Literal["fail", "skip", "dead-letter"] = Field(
        "fail", description="what a bad row does: stop the run, be left out, or go to _dead_letter/")
    null_text: Literal["empty", "error", "null"] = Field(
        "empty", description="a null input: predicted as '', a bad row, or kept with null predictions")

    @property
    def paths(self) -> list[str]:
        return [] if self.path is None else [self.path] if isinstance(self.path, str) else list(self.path)

    def table_keys_not_of(self, fmt) -> list[str]:
        """The table options given (version, filters, ...) that input format `fmt` does not take."""
        return [k for k in ("table", "catalog", "version", "as_of", "partition_filter", "row_filter")
                if getattr(self, k) not in (None, {}) and k not in fmt.table_options]

    @model_validator(mode="after")
    def _where_from(self) -> "InputSpec":
        """input.path (or, for an Iceberg table, input.table and input.catalog); table options fit the format."""
        from batchinfer.io.formats import file_format

        fmt = None if self.format == "auto" else file_format(self.format)
        if fmt is not None and fmt.named_in_catalog:
            if not self.table or not self.catalog:
                raise ValueError(f"input.format = {self.format!r} reads a table from a catalog: give input.table "
                                 "and input.catalog")
        elif self.path is None:
            raise ValueError("input.path: required key is missing; name a file, folder, pattern or table")
        if fmt is not None:  # auto: checked once the input is found to be a table (Source)
            wrong = self.table_keys_not_of(fmt)
            if wrong:
                takes = [f.name for f in _formats() if wrong[0] in f.table_options]
                raise ValueError(f"input.{wrong[0]} is an option of input.format = {' or '.join(map(repr, takes))}, "
                                 f"not {self.format!r}")
        return self

    def roles(self, main_role: str) -> dict[str, str]:
        """Role -> input column (`column` feeds the task's first role); a template's role maps to no column."""
        if self.template is not None:
            return {main_role: ""}
        return {main_role: self.column} if self.column is not None else dict(self.columns)

    @property
    def template_columns(self) -> list[str]:
        """The columns a template names, in order of first use."""
        return list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(self.template or "")
                                  if name is not None))

    @property
    def read_columns(self) -> list[str]:
        """Every input column the model reads."""
        return self.template_columns if self.template is not None else \
            [self.column] if self.column is not None else list(dict.fromkeys(self.columns.values()))

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from batchinfer.io.formats import format_names

        if value != "auto" and value not in format_names():
            raise ValueError(f"unknown input format {value!r}; choose auto or one of {', '.join(format_names())}")
        return value

    @field_validator("template")
    @classmethod
    def _plain_fields(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            fields = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"{exc}; write {{column}} for a column and {{{{ or }}}} for a brace") from None
        names = [(name, spec, conv) for _, name, spec, conv in fields if name is not None]
        if not names:
            raise ValueError("a template names at least one column, e.g. 'Title: {title}\\n{body}'")
        odd = [name for name, spec, conv in names if not name or spec or conv]
        if odd:
            raise ValueError(f"{odd[0]!r}: a template field is a column name only, e.g. {{title}} "
                             "(no format specs or conversions)")
        return value

    @field_validator("path")
    @classmethod
    def _some_path(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return value
        paths = [value] if isinstance(value, str) else value
        if not paths:
            raise ValueError("give at least one file, folder or pattern")
        if any(not p.strip() for p in paths):
            raise ValueError("a path is empty")
        return value


class ModelSpec(_Section):
    """Which model, for which task, on which runtime. The task's own options (top_k, normalize, ...) are
    written here too, flat; they are validated by the task's options model and kept in `options`."""

    name: str = Field(..., min_length=1, description="hub id, local folder, sample:NAME or package:MODULE/SUBDIR")
    task: str = Field(..., description="a task name or alias (`batchinfer tasks` lists them)")
    backend: str = Field("ort", description="a name or alias in the backend registry (batchinfer.backends)")
    revision: str | None = None
    max_length: int | None = Field(None, gt=0, description="truncate inputs to this many tokens")
    truncation: bool = Field(True, description="false makes texts over max_length bad rows instead")
    precision: str = Field("fp32", description="fp32, or bf16 where the backend offers it and the CPU has it, "
                                               "fp16 on a GPU (torch); used only if its answers agree with fp32 "
                                               "(checked)")
    quantize: str = Field("none", description="none, or an int8 method the backend offers (dynamic-int8, "
                                              "int8-weights): used only if its answers agree with fp32 (checked)")
    min_agreement: float = Field(0.99, ge=0, le=1, description="int8/bf16 gate on the job's first rows: least "
                                 "share of labels equal to fp32 (embeddings: mean cosine)")
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model")
    allow_unsafe_weights: bool = Field(False, description="also load pickle (.bin) weights, not only safetensors")
    options: SerializeAsAny[TaskOptions] = Field(default_factory=TaskOptions,
                                                 description="the task's own options (its options model)")

    @model_validator(mode="wrap")
    @classmethod
    def _task_options(cls, data: Any, handler):
        """Validate the base keys and the task's options together, so that every error is reported."""
        if not isinstance(data, dict):
            return handler(data)
        from batchinfer.tasks import canonical_task, option_owners, task_class

        data = dict(data)
        options = dict(data.pop("options", None) or {})
        for key in [k for k in data if k not in cls.model_fields]:
            options[key] = data.pop(key)
        errors: list[dict[str, Any]] = []
        task = canonical_task(data["task"]) if isinstance(data.get("task"), str) else None
        if task is not None:
            data["task"] = task
        elif isinstance(data.get("task"), str):
            errors.append(_error("task", f"unknown task {data['task']!r}; choose one of: "
                                         f"{', '.join(_task_list())}", data["task"]))
        try:
            spec = handler(data)
        except ValidationError as exc:
            spec = None
            errors = [e for e in exc.errors() if e["loc"] != ("task",) or task is not None] + errors
        if task is not None:
            model = task_class(task).Options
            for key in [k for k in options if k not in model.model_fields]:
                owners = option_owners(key)
                allowed = sorted([*(f for f in cls.model_fields if f != "options"), *model.model_fields])
                errors.append(_error(key, f"{key} applies to {', '.join(owners)}, not {task}" if owners else
                                     f"unknown key; {_near(key, allowed)}allowed keys here: {', '.join(allowed)}",
                                     options.pop(key)))
            try:
                parsed = model.model_validate(options)
            except ValidationError as exc:
                errors += exc.errors()
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, [_detail(e) for e in errors])
        if task is not None:
            object.__setattr__(spec, "options", parsed)
        return spec

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from batchinfer.backends import backend_class

        try:
            return backend_class(value).name  # aliases become the canonical name
        except ModelError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _options_fit_backend(self) -> "ModelSpec":
        from batchinfer.backends import check_options

        try:
            check_options(self.backend, precision=self.precision, quantize=self.quantize)
        except ModelError as exc:  # names the backends that offer it
            raise ValueError(exc.message) from None
        return self

    @property
    def task_class(self):
        """The task's class (tasks/): its columns, roles, options model."""
        from batchinfer.tasks import task_class

        return task_class(self.task)


def _task_list() -> list[str]:
    from batchinfer.tasks import task_names

    return task_names()


def _near(key: str, allowed: list[str]) -> str:
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}? " if near else ""


def _error(key: str, message: str, value: Any) -> dict[str, Any]:
    return {"type": PydanticCustomError("job_key", message), "loc": (key,), "input": value}


def _detail(error: dict[str, Any]) -> dict[str, Any]:
    """A collected error (from `errors()` or `_error`) as pydantic's InitErrorDetails."""
    detail = {"type": error["type"], "loc": error["loc"], "input": error.get("input")}
    if "ctx" in error:
        detail["ctx"] = error["ctx"]
    return detail


class BatchingSpec(_Section):
    batch_size: int = Field(32, gt=0, description="rows per model call")
    max_tokens: int | None = Field(None, gt=0, description="cap on batch rows x padded length")
    sort_by_length: bool = True


class OutputSpec(_Section):
    path: str = Field(..., description="the output folder; a Delta table's or Lance dataset's folder; for "
                                       "iceberg, the folder where a run's units are staged")
    format: str = Field("parquet", description="parquet (a folder of parts), delta, iceberg, lance")
    mode: Literal["error", "overwrite", "resume", "append"] = Field(
        "error", description="parquet: error, overwrite, resume; tables: error, append (or resume), overwrite")
    partition_by: list[str] = Field([], description="columns whose values split the output into folders "
                                                    "(parquet, delta)")
    run_id: str | None = Field(None, min_length=1, description="tables: names this run; a retry with the same "
                                                               "run_id never commits twice, whatever the input did")
    table: str | None = Field(None, description="iceberg: the table's name in the catalog, e.g. 'nightly.scores'")
    catalog: dict[str, Any] = Field({}, description="iceberg: the catalog's properties (pyiceberg load_catalog)")
    keep_columns: list[str] | None = Field(None, description="input columns to copy; default all")
    columns: dict[str, str] = Field({}, description="rename prediction columns, e.g. label = 'sentiment'")
    compression: Compression = "zstd"
    compression_level: int | None = None
    storage_options: dict[str, Any] = {}

    @field_validator("path")
    @classmethod
    def _some_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the output folder is empty; name a folder, e.g. path = 'out'")
        return value

    @field_validator("keep_columns", "partition_by")
    @classmethod
    def _each_column_once(cls, value: list[str] | None) -> list[str] | None:
        twice = sorted({c for c in value or [] if value.count(c) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; list each column once")
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from batchinfer.io.formats import output_format_names

        if value not in output_format_names():
            raise ValueError(f"unknown output format {value!r}; choose one of {', '.join(output_format_names())}")
        return value

    @model_validator(mode="after")
    def _fits_format(self) -> "OutputSpec":
        """Each format's modes and options (io/formats/: a table format's `writes`)."""
        from batchinfer.io.formats import table_writer

        writer = table_writer(self.format)
        if writer is None:
            if self.mode == "append" and not self.partition_by:
                raise ValueError("output.mode = 'append' adds to a table (delta, iceberg, lance) or a partitioned "
                                 "Parquet folder; a Parquet folder of parts takes error, overwrite or resume")
            wrong = [k for k in ("run_id", "table") if getattr(self, k)] + (["catalog"] if self.catalog else [])
        else:
            wrong = [k for k in ("partition_by", "table", "catalog", "run_id")
                     if getattr(self, k) not in (None, [], {}) and k not in writer.options]
            if writer.named_in_catalog and (not self.table or not self.catalog):
                raise ValueError(f"output.format = {self.format!r} writes a table in a catalog: give output.table "
                                 "and output.catalog (output.path is where runs are staged)")
        if wrong:
            raise ValueError(f"output.{wrong[0]} is not an option of output.format = {self.format!r}")
        return self


class RuntimeSpec(_Section):
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = one per core (per actor on Ray: 1)")
    device: str = Field("cpu", description="cpu, cuda, cuda:N (NVIDIA: ort, torch), gpu, gpu:N (openvino), or "
                                           "auto (a GPU where the backend runs on one and one is found, else cpu)")
    cache_dir: str | None = None
    progress: Literal["auto", "always", "never"] = "auto"
    progress_interval: float = Field(30.0, ge=0, description="seconds between progress log lines when no bar is "
                                                             "drawn (no terminal, --log-format json); 0 = none")
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="a running Ray cluster (ray://host:10001, host:6379, "
                                                         "'auto'); none: start a local instance on loopback")
    ray_actors: int = Field(0, ge=0, description="model actors; 0 = the cluster's CPUs / cpus_per_actor")
    ray_cpus_per_actor: float = Field(0, ge=0, description="CPUs each actor reserves; 0 = threads, less a share "
                                                           "left free for Ray's own tasks")
    ray_max_retries: int = Field(2, ge=0, description="restarts of a dead actor, and retries of its work item")

    @field_validator("device")
    @classmethod
    def _device_form(cls, value: str) -> str:
        from batchinfer.devices import check_form

        return check_form(value.strip().lower())


class JobSpec(_Section):
    input: InputSpec
    model: ModelSpec
    output: OutputSpec
    batching: BatchingSpec = BatchingSpec()
    runtime: RuntimeSpec = RuntimeSpec()

    @model_validator(mode="after")
    def _inputs_fit_task(self) -> "JobSpec":
        """input.column, input.columns or input.template: one of them, naming the task's input roles."""
        task = self.model.task_class
        given = [k for k in ("column", "columns", "template") if getattr(self.input, k)]
        if not given:
            raise PydanticCustomError("job_key", f"input.column: required key is missing (or give input.columns or "
                                                 f"input.template); {task.name} takes {_roles_text(task)}")
        if len(given) > 1:
            raise PydanticCustomError("job_key", f"input: give one of input.column, input.columns or input.template, "
                                                 f"not {' and '.join(given)}; {task.name} takes {_roles_text(task)}")
        if self.input.template is not None and task.modality != "text":
            raise PydanticCustomError("job_key", f"input.template builds a text; {task.name} takes {task.modality}s")
        roles = self.input.roles(task.roles[0])
        unknown = [r for r in roles if r not in task.roles]
        missing = [r for r in task.required_roles if r not in roles]
        if unknown or missing:
            problem = (f"{', '.join(map(repr, unknown))} is not an input of {task.name}" if unknown else
                       f"{task.name} needs {', '.join(map(repr, missing))}")
            raise PydanticCustomError("job_key", f"input.columns: {problem}; it takes {_roles_text(task)}")
        return self


def _formats():
    from batchinfer.io.formats import formats

    return formats().values()


def _roles_text(task) -> str:
    optional = [r for r in task.roles if r not in task.required_roles]
    return (f"{', '.join(task.required_roles)}" + (f" (and optionally {', '.join(optional)})" if optional else "")
            + f", e.g. input.columns = {{ {', '.join(f'{r} = {chr(34)}...{chr(34)}' for r in task.roles)} }}")


def _is_url(path: str) -> bool:
    return "://" in path


def _resolve(path: str, base: Path) -> str:
    """Relative local paths are taken relative to the job file's folder (cron runs from anywhere)."""
    if _is_url(path) or os.path.isabs(path):
        return path
    return str((base / path).resolve())


def _resolve_model_name(name: str, base: Path) -> str:
    """A model name that is a local folder (or looks like a path) becomes absolute; hub ids stay as they are."""
    if _is_url(name) or name.startswith(("package:", "sample:")):
        return name
    local = base / name
    if name.startswith((".", "/", "~")) or local.is_dir():
        return str((Path(name).expanduser() if name.startswith("~") else local).resolve())
    return name


def resolve_paths(spec: JobSpec, base: Path) -> JobSpec:
    """Relative local paths (input, output, cache, model folder) are taken relative to `base`."""
    spec = spec.model_copy(deep=True)
    if spec.input.path is not None:
        resolved = [_resolve(p, base) for p in spec.input.paths]
        spec.input.path = resolved[0] if isinstance(spec.input.path, str) else resolved
    spec.output.path = _resolve(spec.output.path, base)
    if spec.runtime.cache_dir:
        spec.runtime.cache_dir = _resolve(spec.runtime.cache_dir, base)
    spec.model.name = _resolve_model_name(spec.model.name, base)
    return spec


# `--set` keys whose values are local paths: relative to the working folder, where they were typed
_PATH_KEYS = {"input.path": _resolve, "output.path": _resolve, "runtime.cache_dir": _resolve,
              "model.name": _resolve_model_name}


def _resolve_override(key: str, value: Any, base: Path) -> Any:
    resolve = _PATH_KEYS.get(key)
    if resolve is None:
        return value
    if isinstance(value, list):
        return [resolve(v, base) if isinstance(v, str) and v.strip() else v for v in value]
    return resolve(value, base) if isinstance(value, str) and value.strip() else value


def _parse_value(text: str) -> Any:
    """`--set` values are TOML literals when they parse as one, else plain strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], *, base: Path | None = None) -> dict[str, Any]:
    """Set each `section.key=value` in `data`; path values (input.path, output.path, runtime.cache_dir, a model
    folder) are made absolute against `base` (default: the working folder), not against the job file."""
    base = base or Path.cwd()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise JobFileError(f"--set {item!r}: expected section.key=value, e.g. model.backend=torch")
        parts = key.strip().split(".")
        if len(parts) < 2:
            raise JobFileError(f"--set {item!r}: the key needs a section, e.g. batching.batch_size=64")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise JobFileError(f"--set {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = _resolve_override(".".join(parts), _parse_value(value.strip()), base)
    return data


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = JobSpec
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            break
        model = field.annotation
    return list(model.model_fields)


def _format_error(err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not str(p).startswith(("function-after", "str", "list[")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return f"{key}: unknown key; {_near(str(loc[-1]), fields)}allowed keys here: {', '.join(fields)}"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    if err["type"] == "job_key":  # our own messages (the task checks) say what was wrong, and where
        return err["msg"] if not loc else f"{key}: {err['msg']}"
    shown = err.get("input")
    if any(word in key.lower() for word in SECRET_WORDS) or "storage_options" in key:
        shown = "***"
    return f"{key}: {err['msg']} (got {shown!r})"


def parse_job(data: dict[str, Any], *, source: str = "job", base: Path | None = None) -> JobSpec:
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        lines = sorted({_format_error(e) for e in exc.errors()})
        raise JobFileError(f"{source} is not a valid job:\n  " + "\n  ".join(lines)) from None
    return resolve_paths(spec, base or Path.cwd())


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate_env(value: Any, key: str) -> Any:
    """Replace ${VAR} in storage option strings by the environment variable (secrets stay out of job files)."""
    if isinstance(value, dict):
        return {k: interpolate_env(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, key) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise JobFileError(f"{key}: environment variable {name} is not set",
                               hint=f"export {name}=... before running, or remove ${{{name}}} from the job")
        return os.environ[name]

    return _ENV_REF.sub(lookup, value)


def _interpolate_storage_options(data: dict[str, Any]) -> dict[str, Any]:
    for section in ("input", "output"):
        options = data.get(section, {}).get("storage_options") if isinstance(data.get(section), dict) else None
        if isinstance(options, dict):
            data[section]["storage_options"] = interpolate_env(options, f"{section}.storage_options")
    return data


def load_job(path: str | os.PathLike[str], overrides: list[str] = ()) -> JobSpec:
    """Read, override, validate and resolve a TOML job file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows may start the file with a BOM
    except FileNotFoundError:
        raise JobFileError(f"job file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError(f"job file {path} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(f"job file {path} is not valid TOML: {exc}") from None
    data = _interpolate_storage_options(apply_overrides(data, list(overrides)))
    return parse_job(data, source=f"job file {path}", base=path.resolve().parent)
