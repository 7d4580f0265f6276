"""text-generation: decoder-only models (GPT-2, Llama, Qwen2, Mistral, Phi, Gemma shapes). A prompt per row
(a column, a template, optionally wrapped in the tokenizer's chat template) in; generated text out.

Prompts are left-padded (new tokens follow every prompt's last token); a prompt too long for the model (its
positions less max_new_tokens) is cut from the left, keeping its end, or is a bad row with
`truncation = false`. An empty prompt starts from the BOS token, as transformers' generate does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Encoded
from batchinfer.tasks.generative import GenerationOptions, GenerativeTask


class DecoderOptions(GenerationOptions):
    return_full_text: bool = Field(False, description="the prompt followed by the generated text")
    chat: bool = Field(False, description="wrap each prompt in the tokenizer's chat template as a user message")
    system_prompt: str | None = Field(None, description="with chat = true: a system message before each prompt")

    @model_validator(mode="after")
    def _system_needs_chat(self):
        if self.system_prompt is not None and not self.chat:
            raise ValueError("system_prompt needs chat = true")
        return self


class TextGeneration(GenerativeTask):
    name = "text-generation"
    auto_class = "AutoModelForCausalLM"
    Options = DecoderOptions
    call_options = GenerativeTask.call_options | {"return_full_text"}
    # what transformers 5's text-generation pipeline adds where the model's generation config and the call are silent
    transformers_defaults = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if config.get("is_encoder_decoder"):
            raise ModelError(f"model {model_name} is an encoder-decoder model; text-generation runs decoder-only "
                             "models", hint="use task = 'text2text-generation' (or summarization, translation)")

    def setup_tokenizer(self) -> None:
        super().setup_tokenizer()
        if self.tokenizer is not None:
            self.tokenizer.padding_side = "left"  # new tokens follow every prompt's last token
            self.tokenizer.truncation_side = "left"  # a long prompt keeps its end

    def prompt_limit(self, requested: int | None) -> int:
        """The longest prompt: the model's positions less the tokens to generate."""
        limit = self.positions()
        room = limit - self.max_new_tokens if self.generation.max_new_tokens else limit
        if room < 1:
            raise ModelError(f"max_new_tokens = {self.max_new_tokens} leaves no room for a prompt: the model "
                             f"takes {limit} positions")
        if requested is not None:
            if requested > room:
                raise ModelError(f"model.max_length = {requested} is more than the prompt may take ({room}: "
                                 f"{limit} positions less max_new_tokens)")
            return requested
        return room

    # -- prompts ---------------------------------------------------------------------------------------
    def prompts(self, values: list[Any]) -> list[str]:
        """Each row's prompt text: the value, or the value in the chat template (with the system prompt)."""
        texts = ["" if v is None else str(v) for v in values]
        if not self.options.chat:
            return texts
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError("model.chat = true, but the model's tokenizer has no chat template",
                             hint="leave chat out, or use a model whose tokenizer_config.json has chat_template")
        system = [{"role": "system", "content": self.options.system_prompt}] if self.options.system_prompt else []
        return [self.tokenizer.apply_chat_template([*system, {"role": "user", "content": t}], tokenize=False,
                                                   add_generation_prompt=True) for t in texts]

    def encode(self, texts: list[Any]) -> Encoded:
        return super().encode(self.prompts(texts))

    def preprocess(self, texts: list[Any]) -> dict[str, np.ndarray]:
        prompts = self.prompts(texts)
        enc = self.tokenizer(prompts, truncation=True, max_length=self.max_length, padding=True, return_tensors="np")
        out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        out = self._start_empty(out)
        return {**out, "prompt_text": np.array(prompts, dtype=object)}  # return_full_text (runtimes ignore it)

    def pad(self, encoded: Encoded, rows: np.ndarray) -> dict[str, np.ndarray]:
        return self._start_empty(super().pad(encoded, rows))

    def _start_empty(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An empty prompt starts from the BOS token (the end token where there is none)."""
        mask = inputs["attention_mask"]
        empty = mask.sum(1) == 0
        if not empty.any():
            return inputs
        start = self.generation.bos_token_id if self.generation.bos_token_id is not None else \
            self.tokenizer.eos_token_id
        ids = inputs["input_ids"]
        if ids.shape[1] == 0:
            ids, mask = np.zeros((len(ids), 1), np.int64), np.zeros((len(ids), 1), np.int64)
            ids[:] = self.generation.pad_token_id or 0
        ids, mask = ids.copy(), mask.copy()
        ids[empty, -1], mask[empty, -1] = int(start), 1
        return {**inputs, "input_ids": ids, "attention_mask": mask}

    # -- text -----------------------------------------------------------------------------------------------
    def postprocess(self, outputs, inputs):
        out = super().postprocess(outputs, inputs)
        if self.options.return_full_text:
            given = inputs.get("prompt_text")
            prompts = list(given) if given is not None else self.prompts(outputs["values"])
            out["generated_text"] = np.array([p + t for p, t in zip(prompts, out["generated_text"])], dtype=object)
        return out

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = super().from_call(kwargs)
        options.setdefault("return_full_text", True)  # transformers' default
        return options
