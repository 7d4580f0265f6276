"""What a backend runs: a resolved model, the transformers Auto class that loads it, and its inputs and output."""

from __future__ import annotations

from dataclasses import dataclass

from batchinfer.model.ref import ModelRef


@dataclass(frozen=True)
class ModelGraph:
    """What to run: the model folder, which transformers Auto class loads it, and which output to return."""

    ref: ModelRef
    auto_class: str  # e.g. "AutoModelForSequenceClassification"
    output_name: str  # e.g. "logits" or "last_hidden_state"; the one a backend always returns
    input_names: tuple[str, ...]  # the tokenizer's model inputs, e.g. ("input_ids", "attention_mask")
    modality: str = "text"  # "text", or a medium (media/): "image", "audio"
    sample_shape: tuple[int, ...] | None = None  # a medium's one sample, e.g. (channels, height, width); -1: any length
    sequence_output: bool = False  # the output has a sequence axis (hidden states, per-token logits)
    trust_remote_code: bool = False
    allow_unsafe_weights: bool = False
    with_past: bool = False  # a decoder exported with its key/value cache as inputs and outputs (generation):
    # backends return every output (an encoder-decoder's cross graph too)
    part: str | None = None  # "encoder", "cross" or "decoder" of an encoder-decoder model (each its own graph)
    extra_outputs: tuple[str, ...] = ()  # more outputs, returned where the model gives them (e.g. pooler_output)

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.output_name, *self.extra_outputs)
