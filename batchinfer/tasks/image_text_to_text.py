"""image-text-to-text (alias image-to-text): text generated from an image, on the generation machinery.

Two kinds of model. Captioning models made of an image encoder and a text decoder (`VisionEncoderDecoderModel`:
ViT, DeiT, Swin encoders with GPT-2, BERT or TrOCR decoders) run as the encoder-decoder text tasks do: three
graphs on ort and openvino (the image encoder, the decoder's cross-attention keys and values, the decoder step).
Vision-language models (LLaVA-style: an image tower, a projector, a decoder-only language model) take a text
`prompt` beside each image, wrapped in the processor's chat template (`chat`, default: when it has one); on ort
and openvino they are three graphs too (the image features, the token embeddings, the language model's step
over embeddings), merged as the model's own forward merges them. On torch, transformers' `generate` runs the
model. Same generation options, per-row seeded sampling and columns as the text tasks; the reference is
`model.generate`, token for token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.model.vlm_export import PARTS as VLM_PARTS
from batchinfer.model.vlm_export import is_vlm
from batchinfer.tasks.base import ImageTask
from batchinfer.tasks.generative import GenerationOptions, GenerativeTask


class ImageTextOptions(GenerationOptions):
    prompt: str = Field("", description="vision-language models: the text asked of every image")
    chat: bool | None = Field(None, description="vision-language models: wrap image and prompt in the processor's "
                                                "chat template (default: when it has one)")


class ImageTextToText(GenerativeTask, ImageTask):
    name = "image-text-to-text"
    aliases = ("image-to-text",)
    modality = "image"
    roles = ("image",)
    required_roles = ("image",)
    auto_class = "AutoModelForImageTextToText"
    Options = ImageTextOptions
    parts = ("encoder", "cross", "decoder")  # an encoder-decoder's three graphs (seq2seq_export.py)
    text_inputs = True  # the tokenizer: the decoder writes tokens (a vision-language model also reads them)
    call_options = GenerativeTask.call_options | {"timeout", "prompt", "chat"}

    def __init__(self, config: dict[str, Any], processor: Any, options: ImageTextOptions | None = None, *,
                 tokenizer: Any = None, **kwargs: Any) -> None:
        self.processor = processor
        self.vlm = is_vlm(config)
        if self.vlm and tokenizer is not None:
            tokenizer.padding_side = "left"  # a decoder-only model: prompts end where generation starts
        super().__init__(config, tokenizer, options, **kwargs)
        self._joint = None  # a vision-language model's processor (images and prompts together)

    @classmethod
    def model_parts(cls, config: dict[str, Any]) -> tuple[str, ...]:
        return VLM_PARTS if is_vlm(config) else cls.parts

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if config.get("model_type") != "vision-encoder-decoder" and not is_vlm(config):
            raise ModelError(f"model {model_name} is a {config.get('model_type')!r} model; image-text-to-text runs "
                             "captioning models of an image encoder and a text decoder (VisionEncoderDecoderModel) "
                             "and LLaVA-style vision-language models",
                             hint="use a model with an image tower and a text decoder")

    def prompt_limit(self, requested: int | None) -> int:
        return 0  # the prompt is the task's own (a job option), not a column

    def preprocess(self, images: list[Any]) -> dict[str, np.ndarray]:
        if not self.vlm:
            return ImageTask.preprocess(self, images)
        joint = self._processor()
        enc = joint(images=images, text=[self._prompt_text(joint)] * len(images), padding=True, return_tensors="np")
        out = {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
        out["pixel_values"] = np.asarray(enc["pixel_values"], dtype=np.float32)
        return out

    def _processor(self):
        if self._joint is None:
            from transformers import AutoProcessor

            self._joint = AutoProcessor.from_pretrained(self.tokenizer.name_or_path)
            self._joint.tokenizer.padding_side = "left"
        return self._joint

    def _prompt_text(self, joint) -> str:
        chat = self.options.chat if self.options.chat is not None else bool(getattr(joint, "chat_template", None))
        if chat:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.options.prompt}]}]
            return joint.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return f"{joint.image_token}{self.options.prompt}"
