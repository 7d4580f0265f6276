"""The job file: a typed schema (pydantic), TOML loading, `--set` overrides and path resolution.

Everything here is checked before any work starts; errors name the key and the allowed values.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from batchinfer.errors import JobFileError, ModelError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TaskName = Literal["text-classification", "feature-extraction", "image-classification", "token-classification",
                   "zero-shot-classification"]
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

    walk(spec.input.storage_options)
    walk(spec.output.storage_options)
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


class InputSpec(_Section):
    """Where rows come from. `path` is a file, a folder, a glob or a list of them, local or fsspec URL."""

    path: str | list[str]
    column: str = Field(..., min_length=1, description="the text or image column fed to the model")
    format: Literal["auto", "parquet", "csv"] = "auto"
    batch_rows: int = Field(8192, gt=0, description="rows per record batch read (and per output part)")
    csv: CsvOptions = CsvOptions()
    storage_options: dict[str, Any] = {}
    on_error: Literal["fail", "skip", "dead-letter"] = Field(
        "fail", description="what a bad row does: stop the run, be left out, or go to _dead_letter/")
    null_text: Literal["empty", "error"] = Field("empty", description="predict nulls as '' or treat them as bad rows")

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)

    @field_validator("path")
    @classmethod
    def _some_path(cls, value: str | list[str]) -> str | list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths:
            raise ValueError("give at least one file, folder or pattern")
        if any(not p.strip() for p in paths):
            raise ValueError("a path is empty")
        return value


class ModelSpec(_Section):
    """Which model, for which task, on which runtime; task options live here too."""

    name: str = Field(..., min_length=1, description="hub id, local folder, sample:NAME or package:MODULE/SUBDIR")
    task: TaskName
    backend: str = Field("ort", description="a name or alias in the backend registry (batchinfer.backends)")
    revision: str | None = None
    max_length: int | None = Field(None, gt=0, description="truncate inputs to this many tokens")
    truncation: bool = Field(True, description="false makes texts over max_length bad rows instead")
    precision: str = Field("fp32", description="fp32, or bf16 where the backend offers it and the CPU has it; "
                                               "used only if its answers agree with fp32 (checked)")
    quantize: str = Field("none", description="none, or an int8 method the backend offers (dynamic-int8, "
                                              "int8-weights): used only if its answers agree with fp32 (checked)")
    min_agreement: float = Field(0.99, ge=0, le=1, description="int8/bf16 gate on the job's first rows: least "
                                 "share of labels equal to fp32 (embeddings: mean cosine)")
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model")
    allow_unsafe_weights: bool = Field(False, description="also load pickle (.bin) weights, not only safetensors")
    # text-classification
    top_k: int = Field(1, gt=0)
    function_to_apply: Literal["default", "softmax", "sigmoid", "none"] = "default"
    # feature-extraction
    normalize: bool = False
    # token-classification
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] = "simple"
    ignore_labels: list[str] = ["O"]
    # zero-shot-classification
    candidate_labels: list[str] = []
    hypothesis_template: str = "This example is {}."
    multi_label: bool = False

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

    @model_validator(mode="after")
    def _options_fit_task(self) -> "ModelSpec":
        if not self.task.endswith("classification"):
            if self.top_k != 1 or self.function_to_apply != "default":
                raise ValueError(f"top_k and function_to_apply apply to classification tasks, not {self.task}")
        if self.task != "feature-extraction" and self.normalize:
            raise ValueError(f"normalize applies to feature-extraction, not {self.task}")
        if self.task == "zero-shot-classification":
            if not self.candidate_labels:
                raise ValueError("zero-shot-classification needs candidate_labels, e.g. ['sports', 'politics']")
            if self.hypothesis_template.format("X") == self.hypothesis_template:
                raise ValueError("hypothesis_template needs a {} where the label goes")
        elif self.candidate_labels or self.multi_label:
            raise ValueError(f"candidate_labels and multi_label apply to zero-shot-classification, not {self.task}")
        return self


class BatchingSpec(_Section):
    batch_size: int = Field(32, gt=0, description="rows per model call")
    max_tokens: int | None = Field(None, gt=0, description="cap on batch rows x padded length")
    sort_by_length: bool = True


class OutputSpec(_Section):
    path: str = Field(..., description="the output folder")
    mode: Literal["error", "overwrite", "resume"] = "error"
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

    @field_validator("keep_columns")
    @classmethod
    def _each_column_once(cls, value: list[str] | None) -> list[str] | None:
        twice = sorted({c for c in value or [] if value.count(c) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; list each column once")
        return value


class RuntimeSpec(_Section):
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = one per core (per actor on Ray: 1)")
    cache_dir: str | None = None
    progress: Literal["auto", "always", "never"] = "auto"
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="a running Ray cluster (ray://host:10001, host:6379, "
                                                         "'auto'); none: start a local instance on loopback")
    ray_actors: int = Field(0, ge=0, description="model actors; 0 = the cluster's CPUs / cpus_per_actor")
    ray_cpus_per_actor: float = Field(0, ge=0, description="CPUs each actor reserves; 0 = threads, less a share "
                                                           "left free for Ray's own tasks")
    ray_max_retries: int = Field(2, ge=0, description="restarts of a dead actor, and retries of its work item")


class JobSpec(_Section):
    input: InputSpec
    model: ModelSpec
    output: OutputSpec
    batching: BatchingSpec = BatchingSpec()
    runtime: RuntimeSpec = RuntimeSpec()


def _is_url(path: str) -> bool:
    return "://" in path


def _resolve(path: str, base: Path) -> str:
    """Relative local paths are taken relative to the job file's folder (cron runs from anywhere)."""
    if _is_url(path) or os.path.isabs(path):
        return path
    return str((base / path).resolve())


def resolve_paths(spec: JobSpec, base: Path) -> JobSpec:
    spec = spec.model_copy(deep=True)
    resolved = [_resolve(p, base) for p in spec.input.paths]
    spec.input.path = resolved[0] if isinstance(spec.input.path, str) else resolved
    spec.output.path = _resolve(spec.output.path, base)
    if spec.runtime.cache_dir:
        spec.runtime.cache_dir = _resolve(spec.runtime.cache_dir, base)
    name = spec.model.name
    if not _is_url(name) and not name.startswith(("package:", "sample:")):
        local = base / name
        if name.startswith((".", "/", "~")) or local.is_dir():
            spec.model.name = str(local.expanduser().resolve())
    return spec


def _parse_value(text: str) -> Any:
    """`--set` values are TOML literals when they parse as one, else plain strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
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
        node[parts[-1]] = _parse_value(value.strip())
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
        near = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
        suggestion = f"did you mean {near[0]!r}? " if near else ""
        return f"{key}: unknown key; {suggestion}allowed keys here: {', '.join(fields)}"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
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
