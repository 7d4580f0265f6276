"""Export a transformers model to ONNX once, into a cache folder keyed by a fingerprint.

The fingerprint covers everything that changes the artifact: the model's file contents, the Auto class and
output, the inputs, the opset and the library versions. An export is written to a temporary folder and renamed
into place when complete, so a half-written export is never loaded; one broken later is rebuilt
(`cache_folder`). The dynamic int8 version of an export is `quantize.py`'s.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from batchinfer.digest import digest
from batchinfer.errors import ModelError
from batchinfer.media import medium
from batchinfer.model.cache_dir import ONNX
from batchinfer.model.cache_folder import build_once
from batchinfer.model.graph import ModelGraph
from batchinfer.model.torch_model import load_torch_model, trace_to_onnx, trained_extras
from batchinfer.versions import version_of

log = logging.getLogger("batchinfer")

OPSET = 17
EXPORT_FORMAT = 3  # bump when the way we export changes (2: an encoder-decoder's cross graph; 3: eager attention)
COMPLETE = ONNX.marker  # written last inside the temp folder; its presence marks a whole export


def fingerprint(graph: ModelGraph, *, opset: int = OPSET) -> str:
    key = {
        "format": EXPORT_FORMAT,
        "model": graph.ref.content_hash,
        "revision": graph.ref.revision,
        "auto_class": graph.auto_class,
        "output": graph.output_name if not graph.extra_outputs else list(graph.outputs),
        "sequence_output": graph.sequence_output,
        "inputs": list(graph.input_names),
        "image_shape": list(graph.sample_shape) if graph.sample_shape else None,  # (an image's, as it was named)
        "with_past": graph.with_past,
        "part": graph.part,
        "opset": opset,
        "torch": version_of("torch"),  # read from metadata: a cached export is found without importing them
        "transformers": version_of("transformers"),
        "onnx": version_of("onnx"),
    }
    return digest(key, 24)


def _export(graph: ModelGraph, target: Path, opset: int) -> None:
    import torch

    # A whole model is traced with eager attention: its matmuls and softmax run faster on ONNX Runtime and
    # OpenVINO than the traced form of PyTorch's SDPA (bench/qa.py: a third less time at 384 tokens)
    plain = graph.part is None and not graph.with_past
    try:
        model = load_torch_model(graph, attention="eager" if plain else None)
    except ModelError:
        if not plain:
            raise
        model = load_torch_model(graph)  # a model (remote code) without an eager implementation
    if graph.part in ("vision", "embed", "lm"):  # a vision-language model's graphs
        from batchinfer.model import vlm_export

        if graph.part == "vision":
            return vlm_export.export_vision(model, target / "model.onnx", opset, graph.sample_shape)
        export = vlm_export.export_embed if graph.part == "embed" else vlm_export.export_lm_step
        return export(model, target / "model.onnx", opset)
    if graph.part is not None:
        from batchinfer.model import seq2seq_export

        if graph.part == "encoder":
            return seq2seq_export.export_encoder(model, target / "model.onnx", opset, graph.sample_shape,
                                                 graph.modality)
        export = {"cross": seq2seq_export.export_cross, "decoder": seq2seq_export.export_decoder_step}[graph.part]
        return export(model, target / "model.onnx", opset)
    if graph.with_past:
        from batchinfer.model.decoder_export import export_decoder

        return export_decoder(model, target / "model.onnx", opset)
    names = list(graph.input_names)
    media = graph.modality != "text"  # the medium's input first, then any text inputs (CLIP's label prompts)
    texts = "texts" if media else "batch"  # beside images, texts are a batch of their own
    dummy, axes = [], {}
    if media:
        sample, axes[names[0]] = medium(graph.modality).dummy(graph.sample_shape)
        dummy.append(sample)
    for name in names[len(dummy):]:
        dummy.append(torch.ones((3 if media else 2, 8), dtype=torch.long))
        axes[name] = {0: texts, 1: "sequence"}
    dummy = tuple(dummy)
    with torch.inference_mode():  # the extra outputs this model gives (a model without a pooler has none)
        given = model(**dict(zip(names, dummy)))
    outputs = [graph.output_name, *(n for n in trained_extras(model, graph) if getattr(given, n, None) is not None)]

    class _Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(names, args)))
            return tuple(getattr(out, name) for name in outputs)

    sequence = {0: "batch", 1: "sequence"}
    axes[graph.output_name] = sequence if graph.sequence_output else {0: "batch"}
    if media and len(names) > 1:  # images x texts (logits_per_image)
        axes[graph.output_name] = {0: "batch", 1: "texts"}
    axes |= {name: sequence if given[name].dim() > 2 else {0: "batch"} for name in outputs[1:]}
    trace_to_onnx(_Graph(), dummy, target / "model.onnx", names, outputs, axes, opset)


def export_onnx(graph: ModelGraph, cache_dir: Path, *, opset: int = OPSET, broken: str | None = None) -> Path:
    """Return the path of the cached ONNX model, exporting it first if no whole export exists.

    `broken`: why the cached export cannot be used (its runtime failed on it): it is rebuilt.
    """
    fp = fingerprint(graph, opset=opset)
    final = Path(cache_dir) / ONNX.folder / fp

    def build(tmp: Path) -> None:
        log.info("model: exporting %s to ONNX (opset %d) into %s", graph.ref.name, opset, final)
        started = time.perf_counter()
        _export(graph, tmp, opset)
        meta = {"model": graph.ref.name, "path": str(graph.ref.path), "fingerprint": fp,
                "auto_class": graph.auto_class, "output": graph.output_name, "inputs": list(graph.input_names),
                "opset": opset, "seconds": round(time.perf_counter() - started, 3)}
        (tmp / COMPLETE).write_text(json.dumps(meta, indent=2))
        log.info("model: exported in %.1f s", time.perf_counter() - started)

    build_once(final, COMPLETE, build, what=f"exporting {graph.ref.name} to ONNX", kind="ONNX export", broken=broken)
    return final / "model.onnx"

