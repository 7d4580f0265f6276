"""image-text-to-text (alias image-to-text): text generated from an image, on the generation machinery.

Captioning models made of an image encoder and a text decoder (`VisionEncoderDecoderModel`: ViT, DeiT, Swin
encoders with GPT-2, BERT or TrOCR decoders) run as the encoder-decoder text tasks do: three graphs on ort and
openvino (the image encoder, the decoder's cross-attention keys and values, the decoder step), transformers'
`generate` on torch, the same generation options, per-row seeded sampling and columns. The reference is
`model.generate(pixel_values=...)`, token for token. Vision-language models that take a text prompt beside the
image are not offered yet.
"""

from __future__ import annotations

from typing import Any

from batchinfer.errors import ModelError
from batchinfer.tasks.base import ImageTask
from batchinfer.tasks.generative import GenerationOptions, GenerativeTask


class ImageTextToText(GenerativeTask, ImageTask):
    name = "image-text-to-text"
    aliases = ("image-to-text",)
    modality = "image"
    roles = ("image",)
    required_roles = ("image",)
    auto_class = "AutoModelForImageTextToText"
    parts = ("encoder", "cross", "decoder")  # three graphs where the backend runs graphs (seq2seq_export.py)
    text_inputs = True  # the tokenizer: its decoder writes tokens
    call_options = GenerativeTask.call_options | {"timeout"}

    def __init__(self, config: dict[str, Any], processor: Any, options: GenerationOptions | None = None, *,
                 tokenizer: Any = None, **kwargs: Any) -> None:
        self.processor = processor
        super().__init__(config, tokenizer, options, **kwargs)

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if config.get("model_type") != "vision-encoder-decoder":
            raise ModelError(f"model {model_name} is a {config.get('model_type')!r} model; image-text-to-text runs "
                             "image captioning models made of an image encoder and a text decoder "
                             "(VisionEncoderDecoderModel)", hint="vision-language models with prompts are not offered yet")

    def prompt_limit(self, requested: int | None) -> int:
        return 0  # no prompt: the image is the input
