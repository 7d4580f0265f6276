"""A model run as several graphs (an encoder-decoder's encoder, cross-attention and decoder step), one backend each."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.backends.base import Backend


class PartedBackend:
    """The Backend protocol over parts: `parts[name].forward` runs one; `forward` picks the part whose graph
    takes the given inputs (a decoder step takes `decoder_input_ids`)."""

    def __init__(self, parts: dict[str, Backend]) -> None:
        self.parts = parts
        first = next(iter(parts.values()))
        self.name = first.name
        self.description = f"{first.description}, {', '.join(parts)} graphs"
        self.reduced = first.reduced
        self.artifact: Path | None = first.artifact

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        part = ("decoder" if "decoder_input_ids" in inputs else
                "cross" if "encoder_hidden_states" in inputs else "encoder")
        return self.parts[part].forward(inputs)
