"""Runtimes, one module each, in one registry: found by name or alias, with what each declares it offers.

A module is imported on the first look-up (importing one loads no runtime: that happens when a backend is
built). Adding a backend is adding a module here and its name to MODULES.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from pathlib import Path

from batchinfer.backends.base import Backend, default_threads
from batchinfer.errors import ModelError
from batchinfer.model import ModelGraph

MODULES = ("ort", "openvino", "ipex", "pytorch")  # batchinfer.backends.<module>.BACKEND, in order of listing


@cache
def _classes() -> dict[str, type[Backend]]:
    classes = (importlib.import_module(f"{__name__}.{module}").BACKEND for module in MODULES)
    return {cls.name: cls for cls in classes}


def backend_names() -> tuple[str, ...]:
    """The canonical backend names: ort, openvino, ipex, torch."""
    return tuple(_classes())


def aliases() -> dict[str, str]:
    """Other accepted names, each to its canonical name (ov -> openvino)."""
    return {alias: cls.name for cls in _classes().values() for alias in cls.aliases}


def backend_class(name: str) -> type[Backend]:
    """The backend class called `name` or one of its aliases."""
    found = _classes().get(aliases().get(name, name))
    if found is None:
        raise ModelError(f"unknown backend {name!r}; choose one of {_choices()}")
    return found


def _choices() -> str:
    """'ort', 'openvino', 'ov', 'ipex' or 'torch' (or 'onnxruntime' for 'ort', ...): each name with its
    abbreviations, then the longer aliases."""
    listed, longer = [], []
    for cls in _classes().values():
        listed += [repr(cls.name)] + [repr(a) for a in cls.aliases if len(a) < len(cls.name)]
        longer += [f"{a!r} for {cls.name!r}" for a in cls.aliases if len(a) >= len(cls.name)]
    text = _either(listed)
    return f"{text} (or {', '.join(longer)})" if longer else text


def _either(items: list[str], word: str = "or") -> str:
    """'a', 'b' or 'c'."""
    return f" {word} ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def backend_installed(name: str) -> bool:
    """Whether the module backend `name` needs can be imported (it is not imported to find out)."""
    return importlib.util.find_spec(backend_class(name).requires) is not None


def _not_offered(cls: type[Backend], option: str, value: str, offers: str) -> str:
    offering = [c.name for c in _classes().values() if value in getattr(c, offers)]
    if not offering:
        every = dict.fromkeys(v for c in _classes().values() for v in getattr(c, offers))
        return f"{option} = {value!r} is offered by no backend; choose one of {_either([repr(v) for v in every])}"
    names = _either(offering, "and")
    own = getattr(cls, offers)[1:]  # what this backend offers besides the default
    instead = f" ({cls.name}: {_either([f'{option} = {v!r}' for v in own])})" if own else ""
    return f"{option} = {value!r} is offered by the {names} backend{'s' if len(offering) > 1 else ''} only{instead}"


def check_options(name: str, *, precision: str = "fp32", quantize: str = "none") -> type[Backend]:
    """The backend class for `name`, if it offers `precision` and `quantize`; else a ModelError saying which
    backends offer them."""
    cls = backend_class(name)
    if quantize not in cls.quantizations:
        raise ModelError(_not_offered(cls, "quantize", quantize, "quantizations"))
    if precision not in cls.precisions:
        raise ModelError(_not_offered(cls, "precision", precision, "precisions"))
    return cls


def load_backend(name: str, graph: ModelGraph, *, threads: int = 0, cache_dir: Path, precision: str = "fp32",
                 quantize: str = "none", device: str = "cpu") -> Backend:
    """Build backend `name` (or an alias) for `graph`; `threads = 0`: one per core this process may use;
    `device`: runtime.device ('cpu', 'cuda:1', 'auto', ...), checked against the backend and this machine."""
    cls = check_options(name, precision=precision, quantize=quantize)
    modality = graph.modality
    if modality not in cls.modalities:
        able = [other for other, c in _classes().items() if modality in c.modalities]
        raise ModelError(f"backend {cls.name!r} does not run {modality} models", hint=f"use {' or '.join(able)}")
    if not backend_installed(cls.name):
        raise ModelError(f"backend {cls.name!r} needs the {cls.requires} package, which is not installed",
                         hint=cls.install_hint)
    if graph.part is not None and not cls.runs_graphs:
        raise ModelError(f"backend {cls.name!r} runs the whole transformers model, not its {graph.part} alone")
    return cls(graph, threads=threads or default_threads(), cache_dir=cache_dir, precision=precision,
               quantize=quantize, device=device_for(cls.name, device))


def device_for(name: str, device: str):
    """The devices.Device backend `name` runs on for runtime.device = `device`; DeviceError if it cannot."""
    from batchinfer.devices import parse_device, resolve_device

    cls = backend_class(name)
    kind = getattr(parse_device(device), "kind", None)
    others = [c.name for c in _classes().values() if kind in c.devices and c is not cls]
    return resolve_device(device, cls, others=others)


def load_parts(name: str, graphs: dict[str, ModelGraph], **options) -> Backend:
    """One backend per part of a model (an encoder-decoder's encoder and decoder step), as one Backend whose
    `parts` the caller drives (`generation/runtime_lm.py`)."""
    from batchinfer.backends.parts import PartedBackend

    return PartedBackend({part: load_backend(name, graph, **options) for part, graph in graphs.items()})


__all__ = ["MODULES", "Backend", "aliases", "backend_class", "backend_installed", "backend_names", "check_options",
           "default_threads", "device_for", "load_backend", "load_parts"]
