"""A text model's tokenizer, read without transformers once a snapshot of it is in the cache.

Importing transformers (and torch, which it imports) takes over a second, and a job whose export is cached needs
neither but for its tokenizer. The first load goes through transformers and snapshots the fast tokenizer as
transformers configured it (its `tokenizer.json`) with the attributes tasks read; later loads read the snapshot.
Either way the task gets a `LeanTokenizer`, which tokenizes batches with the `tokenizers` library exactly as
transformers' fast tokenizer does, and hands every other call to the transformers tokenizer (loaded then).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from batchinfer.digest import digest
from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import TOKENIZERS
from batchinfer.model.cache_folder import build_once, damage, is_built
from batchinfer.model.ref import ModelRef
from batchinfer.versions import version_of

log = logging.getLogger("batchinfer")

FORMAT = 1
SPECIAL = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")
ATTRIBUTES = ("model_input_names", "padding_side", "truncation_side", "model_max_length", "pad_token_type_id",
              *(f"{s}_token" for s in SPECIAL), *(f"{s}_token_id" for s in SPECIAL))
# what transformers' fast tokenizer does on a call; a class that changes one of them is not snapshotted
_CALL_PATH = ("__call__", "_call_one", "_encode_plus", "_batch_encode_plus", "set_truncation_and_padding",
              "_convert_encoding", "encode_plus", "batch_encode_plus")
_KWARGS = {"text_pair", "truncation", "max_length", "padding", "return_tensors", "return_token_type_ids",
           "return_attention_mask", "add_special_tokens", "verbose"}


def load_tokenizer(ref: ModelRef, cache_dir: Path, *, lean: bool, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer: a `LeanTokenizer` where `lean` (the task only tokenizes batches and reads
    attributes) and the tokenizer allows it, else transformers' own."""
    if not lean or trust_remote_code:
        return load_full(ref, trust_remote_code)
    folder = Path(cache_dir) / TOKENIZERS.folder / snapshot_key(ref)
    if is_built(folder, TOKENIZERS.marker) and damage(folder, TOKENIZERS.marker) is None:
        try:
            return LeanTokenizer.read(folder, ref)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # rebuilt below
            log.debug("tokenizer snapshot %s unreadable (%s); loading the tokenizer anew", folder, exc)
    full = load_full(ref, trust_remote_code)
    attributes = snapshot_attributes(full)
    if attributes is None:
        return full
    tokenizer_json = full.backend_tokenizer.to_str()
    try:
        build_once(folder, TOKENIZERS.marker, lambda tmp: _write(tmp, ref, tokenizer_json, attributes),
                   what="tokenizer snapshot", broken="unreadable" if is_built(folder, TOKENIZERS.marker) else None)
    except ModelError as exc:  # a read-only cache: the job goes on with transformers' tokenizer
        log.debug("tokenizer snapshot not written: %s", exc)
    return LeanTokenizer(tokenizer_json, attributes, ref, full=full)


def load_full(ref: ModelRef, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(ref.path), use_fast=True, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise ModelError(f"model folder {ref.path}: tokenizer cannot be loaded: {exc}",
                         hint="the folder needs tokenizer files (tokenizer.json or vocab) next to config.json") from None


def snapshot_key(ref: ModelRef) -> str:
    key = {"format": FORMAT, "model": ref.content_hash, "transformers": version_of("transformers"),
           "tokenizers": version_of("tokenizers")}
    return digest(key, 24)


def snapshot_attributes(full: Any) -> dict[str, Any] | None:
    """The attributes a `LeanTokenizer` stands in for, or None where `full` tokenizes otherwise than
    transformers' fast tokenizer (a slow tokenizer, a class with its own call path, split special tokens)."""
    backend = getattr(full, "backend_tokenizer", None)
    if backend is None or not getattr(full, "is_fast", False) or getattr(full, "split_special_tokens", False):
        return None
    base = _fast_base()
    if base is None or not isinstance(full, base):
        return None
    if any(getattr(type(full), name, None) is not getattr(base, name, None) for name in _CALL_PATH):
        return None
    attributes = {name: getattr(full, name, None) for name in ATTRIBUTES}
    attributes["model_input_names"] = list(attributes["model_input_names"] or [])
    attributes["class"] = type(full).__name__
    try:
        json.dumps(attributes)
    except TypeError:
        return None
    return attributes


def _fast_base() -> type | None:
    import transformers

    return getattr(transformers, "TokenizersBackend", None) or getattr(transformers, "PreTrainedTokenizerFast", None)


def _write(tmp: Path, ref: ModelRef, tokenizer_json: str, attributes: dict[str, Any]) -> None:
    (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    (tmp / TOKENIZERS.marker).write_text(json.dumps({"format": FORMAT, "model": ref.name, "attributes": attributes},
                                                    indent=2))


class LeanTokenizer:
    """A fast tokenizer's batch call and attributes, over the `tokenizers` library alone; anything else is
    asked of the transformers tokenizer, loaded on first need."""

    is_fast = True

    def __init__(self, tokenizer_json: str, attributes: dict[str, Any], ref: ModelRef, *, full: Any = None):
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_str(tokenizer_json)
        self._attributes = dict(attributes)
        self.__dict__.update({k: v for k, v in attributes.items() if k in ATTRIBUTES})
        self.name_or_path = str(ref.path)
        self._ref = ref
        self._full = full
        self._lock = threading.Lock()  # one backend tokenizer, configured per call

    @classmethod
    def read(cls, folder: Path, ref: ModelRef) -> LeanTokenizer:
        meta = json.loads((folder / TOKENIZERS.marker).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"snapshot format {meta.get('format')}")
        return cls((folder / "tokenizer.json").read_text(encoding="utf-8"), meta["attributes"], ref)

    @property
    def full(self) -> Any:
        """transformers' tokenizer for this model (imports transformers the first time)."""
        if self._full is None:
            self._full = load_full(self._ref)
        return self._full

    def __getattr__(self, name: str) -> Any:  # only for names not set here: transformers' tokenizer has them
        if name.startswith("__") or name in ("_full", "_ref", "_attributes", "_lock", "backend_tokenizer"):
            raise AttributeError(name)
        return getattr(self.full, name)

    def __len__(self) -> int:
        return len(self.full)

    def __getstate__(self) -> dict[str, Any]:
        return {"json": self.backend_tokenizer.to_str(), "attributes": self._attributes, "ref": self._ref}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["json"], state["attributes"], state["ref"])

    def __repr__(self) -> str:
        return f"LeanTokenizer({self._attributes.get('class')}, {self.name_or_path})"

    def __call__(self, text: Any = None, text_pair: Any = None, **kwargs: Any) -> dict[str, Any]:
        """As transformers' fast tokenizer on a batch of texts (or text pairs); other calls go to it."""
        strategies = self._strategies(text, text_pair, kwargs)
        if strategies is None:
            return self.full(text, text_pair, **kwargs) if text_pair is not None else self.full(text, **kwargs)
        truncation, padding = strategies
        tok = self.backend_tokenizer
        with self._lock:
            if truncation is None:
                tok.no_truncation()
            else:
                tok.enable_truncation(int(kwargs["max_length"]), stride=0, strategy=truncation,
                                      direction=self.truncation_side)
            if padding:
                tok.enable_padding(direction=self.padding_side, pad_id=self.pad_token_id, pad_token=self.pad_token,
                                   pad_type_id=self.pad_token_type_id)
            else:
                tok.no_padding()
            tok.encode_special_tokens = False
            inputs = text if text_pair is None else list(zip(text, text_pair))
            encodings = tok.encode_batch(inputs, add_special_tokens=kwargs.get("add_special_tokens", True))
        names = self.model_input_names
        keys = [("input_ids", "ids")]
        if kwargs.get("return_token_type_ids") or (kwargs.get("return_token_type_ids") is None
                                                   and "token_type_ids" in names):
            keys.append(("token_type_ids", "type_ids"))
        if kwargs.get("return_attention_mask") or (kwargs.get("return_attention_mask") is None
                                                   and "attention_mask" in names):
            keys.append(("attention_mask", "attention_mask"))
        out = {key: [getattr(e, field) for e in encodings] for key, field in keys}
        if kwargs.get("return_tensors") == "np":
            out = {key: np.asarray(value, dtype=np.int64).reshape(len(encodings), -1) for key, value in out.items()}
        return out

    def _strategies(self, text: Any, text_pair: Any, kwargs: dict[str, Any]) -> tuple[str | None, bool] | None:
        """(truncation strategy or None, pad?) as transformers reads the call, or None for a call left to it."""
        if not set(kwargs) <= _KWARGS or not _texts(text) or (text_pair is not None and not (
                _texts(text_pair) and len(text_pair) == len(text))):
            return None
        max_length, padding = kwargs.get("max_length"), kwargs.get("padding", False)
        truncation = kwargs.get("truncation")
        if truncation is None and max_length is not None and padding is False:
            truncation = "longest_first"
        truncation = {None: None, False: None, "do_not_truncate": None, True: "longest_first"}.get(truncation,
                                                                                                   truncation)
        if truncation not in (None, "longest_first", "only_first", "only_second"):
            return None
        if truncation is not None and not isinstance(max_length, int):
            return None  # transformers picks the length then (model_max_length)
        if padding not in (False, True, "longest", "do_not_pad"):
            return None
        padding = padding not in (False, "do_not_pad")
        if padding and (self.pad_token is None or self.pad_token_id is None or self.pad_token_id < 0):
            return None  # transformers says what to do
        if kwargs.get("return_tensors") not in (None, "np") or (
                kwargs.get("return_tensors") == "np" and not padding and len(text) > 1):
            return None  # other tensors, or ragged rows: transformers' own result or error
        return truncation, padding


def _texts(value: Any) -> bool:
    """A non-empty batch of texts (not one text, not pre-split words)."""
    return isinstance(value, list) and bool(value) and all(isinstance(t, str) for t in value)
