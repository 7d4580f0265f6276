"""Sample models that need no hub: a small trained part shipped with batchinfer plus an offline base model.

`sample:NAME` names one. On first use it is assembled into a standard transformers folder in the cache
(config, full weights, tokenizer), written to a temporary folder and renamed into place, so from then on it
goes through exactly the same path as any other local model folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import MODELS
from batchinfer.model.cache_folder import build_once
from batchinfer.model.folders import model_folder
from batchinfer.model.hash_memo import folder_hash

HERE = Path(__file__).resolve().parent
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
COMPLETE = MODELS.marker


def available(models_dir: Path = HERE) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if (p / "head.json").is_file())


def _head(name: str, models_dir: Path) -> tuple[Path, dict]:
    folder = models_dir / name
    if not (folder / "head.json").is_file():
        raise ModelError(f"unknown sample model {name!r}; available: {', '.join(available(models_dir)) or 'none'}")
    return folder, json.loads((folder / "head.json").read_text())


def assemble(name: str, cache_dir: Path, *, models_dir: Path = HERE) -> Path:
    """Return the folder of sample model NAME, assembling it into `cache_dir/models/` on first use."""
    folder, head = _head(name, models_dir)
    base = model_folder(head["base"]) if head.get("base") else None  # no base: the folder is the whole model
    key = hashlib.sha256((folder_hash(folder, cache_dir) + (folder_hash(base, cache_dir) if base else "")).encode()
                         ).hexdigest()[:16]
    final = Path(cache_dir) / MODELS.folder / f"{name}-{key}"

    def build(tmp: Path) -> None:
        if base is None:
            for item in folder.iterdir():
                if item.is_file() and item.name != "head.json":
                    shutil.copy2(item, tmp / item.name)
        else:
            _build(base, folder, head, tmp)
        (tmp / COMPLETE).write_text(json.dumps({"name": name, "base": head["base"], "key": key}, indent=2))

    return build_once(final, COMPLETE, build, what=f"assembling sample model {name!r}")


def _build(base: Path, folder: Path, head: dict, target: Path) -> None:
    from safetensors.numpy import load_file, save_file

    config = json.loads((base / "config.json").read_text())
    id2label = {str(k): v for k, v in head["id2label"].items()}
    config.update(architectures=[head["architecture"]], num_labels=len(id2label), id2label=id2label,
                  label2id={v: int(k) for k, v in id2label.items()})
    config.pop("_name_or_path", None)
    prefix = config["model_type"] + "."  # BertModel weights live under "bert." in BertForSequenceClassification
    weights = {k if k.startswith(prefix) else prefix + k: v for k, v in load_file(base / "model.safetensors").items()}
    trained = load_file(folder / "head.safetensors")
    weights.update({k: v.astype("float32") for k, v in trained.items()})
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    (target / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, target / name)
    tok_config = target / "tokenizer_config.json"
    if tok_config.is_file() and head.get("max_length"):
        data = json.loads(tok_config.read_text())
        data["model_max_length"] = head["max_length"]
        tok_config.write_text(json.dumps(data, indent=2))
