"""text-generation: a prompt per row (a column, a template, optionally in the tokenizer's chat template) in,
generated text out, decoded by transformers' own `generate` on any backend (`batchinfer/generation/`).

Options are named as in transformers' GenerationConfig; the model's generation_config.json gives the
defaults. Sampling is seeded per row (`seed` and the row's position), so a resumed run regenerates the same
text. Prompts are left-padded; a prompt too long for the model is cut from the left (its end is kept), or is
a bad row with `truncation = false`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Encoded, Task, TaskOptions

DEFAULT_NEW_TOKENS = 128  # a job's max_new_tokens when neither the job nor the model's generation config sets it
FINISH = ("eos", "stop", "length")
# what transformers 5's text-generation pipeline adds where the model's generation config and the call are silent
TRANSFORMERS_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}


class GenerationOptions(TaskOptions):
    max_new_tokens: int | None = Field(None, gt=0, description="tokens to generate at most (default: the model's "
                                       f"generation config, else {DEFAULT_NEW_TOKENS})")
    min_new_tokens: int | None = Field(None, ge=0, description="tokens to generate at least")
    do_sample: bool | None = Field(None, description="sample (seeded per row) instead of greedy or beam search")
    temperature: float | None = Field(None, gt=0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    num_beams: int | None = Field(None, gt=0, description="beam search with this many beams")
    stop: list[str] = Field(default_factory=list, description="stop at the first of these strings (not kept)")
    return_full_text: bool = Field(False, description="the prompt followed by the generated text")
    seed: int = Field(0, description="sampling seed; each row draws from its own stream of it")
    chat: bool = Field(False, description="wrap each prompt in the tokenizer's chat template as a user message")
    system_prompt: str | None = Field(None, description="with chat = true: a system message before each prompt")
    transformers_max_length: int | None = Field(None, ge=0, description="internal: a transformers pipeline "
                                                "call's max_length (prompt + new tokens; 0: the model's)")

    @model_validator(mode="after")
    def _sampling_with_beams(self):
        if self.do_sample and (self.num_beams or 1) > 1:
            raise ValueError("do_sample with num_beams > 1 is not offered: per-row seeded sampling draws one "
                             "sequence per row; use one or the other")
        if self.system_prompt is not None and not self.chat:
            raise ValueError("system_prompt needs chat = true")
        return self


class TextGeneration(Task):
    name = "text-generation"
    auto_class = "AutoModelForCausalLM"
    output_name = "logits"
    generates = True
    encodes_once = True
    roles = ("text",)
    Options = GenerationOptions
    columns = ("generated_text", "finish_reason", "prompt_tokens", "completion_tokens")
    call_options = frozenset({"batch_size", "max_new_tokens", "min_new_tokens", "do_sample", "temperature",
                              "top_k", "top_p", "repetition_penalty", "num_beams", "stop_strings",
                              "return_full_text", "seed", "max_length"})
    keeps_call_batches = True

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: GenerationOptions | None = None,
                 **kwargs: Any) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.options = options if options is not None else self.Options(**{k: v for k, v in kwargs.items()
                                                                            if k != "max_length"})
        self._decoder = None
        self.generation = self._generation_config()
        self.max_new_tokens = int(self.generation.max_new_tokens or self.generation.max_length or 0)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # new tokens follow every prompt's last token
            tokenizer.truncation_side = "left"  # a long prompt keeps its end
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
        self.max_length = self._prompt_limit(kwargs.get("max_length"))

    # -- configuration -------------------------------------------------------------------------------
    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if config.get("is_encoder_decoder"):
            raise ModelError(f"model {model_name} is an encoder-decoder model; text-generation runs decoder-only "
                             "models (GPT-2, Llama, Qwen2, Mistral, Phi, Gemma shapes)")

    def _generation_config(self):
        """The model's generation_config.json (else the one transformers derives from config.json), with the
        job's options over it."""
        from pathlib import Path

        from transformers import GenerationConfig

        folder = getattr(self.tokenizer, "name_or_path", None)
        if folder and (Path(folder) / "generation_config.json").is_file():
            generation = GenerationConfig.from_pretrained(folder)
        else:
            generation = GenerationConfig(**{k: self.config[k] for k in ("bos_token_id", "eos_token_id",
                                                                          "pad_token_id") if k in self.config})
        o = self.options
        given = {k: getattr(o, k) for k in ("max_new_tokens", "min_new_tokens", "do_sample", "temperature",
                                             "top_k", "top_p", "repetition_penalty", "num_beams")
                 if getattr(o, k) is not None}
        generation.update(**given)
        if o.transformers_max_length is not None:  # a transformers pipeline call: its defaults
            set_params = {**generation.to_diff_dict(), **given}
            if o.transformers_max_length:
                generation.max_length = set_params["max_length"] = o.transformers_max_length
            added = {k: v for k, v in TRANSFORMERS_DEFAULTS.items() if k not in set_params
                     and not (k == "max_new_tokens" and "max_length" in set_params)}
            if not {**set_params, **added}.get("do_sample"):
                added.pop("temperature", None)
            generation.update(**added)
        elif generation.max_new_tokens is None:  # a job: room left for a prompt
            generation.max_new_tokens = min(DEFAULT_NEW_TOKENS, max(1, self._positions() // 2))
        if generation.pad_token_id is None:
            generation.pad_token_id = (self.tokenizer.pad_token_id if self.tokenizer is not None
                                       and self.tokenizer.pad_token_id is not None else generation.eos_token_id)
        if isinstance(generation.pad_token_id, list):
            generation.pad_token_id = generation.pad_token_id[0]
        return generation

    def _positions(self) -> int:
        """The most tokens (prompt and new ones) the model's position embeddings take."""
        positions = [self.config.get(k) for k in ("max_position_embeddings", "n_positions", "n_ctx")]
        positions = [int(p) for p in positions if isinstance(p, int) and 0 < p < 10_000_000]
        return min(positions) if positions else 1_000_000

    def _prompt_limit(self, requested: int | None) -> int:
        """The longest prompt: the model's positions less the tokens to generate."""
        limit = self._positions()
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

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        return super().token_lengths(texts)

    def preprocess(self, texts: list[Any]) -> dict[str, np.ndarray]:
        prompts = self.prompts(texts)
        enc = self.tokenizer(prompts, truncation=True, max_length=self.max_length, padding=True, return_tensors="np")
        out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        out = self._start_empty(out)
        return {**out, "prompt_text": np.array(prompts, dtype=object)}  # return_full_text (runtimes ignore it)

    def pad(self, encoded: Encoded, rows: np.ndarray) -> dict[str, np.ndarray]:
        out = super().pad(encoded, rows)
        out.pop("token_type_ids", None)
        return self._start_empty(out)

    def _start_empty(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An empty prompt starts from the BOS token (the end token where there is none), as transformers'
        generate does without input ids."""
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

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        """Tokens a row holds in the key/value cache at its end, times its beams: the batch token budget."""
        return (encoded.kept + self.max_new_tokens) * max(1, int(self.generation.num_beams or 1))

    # -- generating ------------------------------------------------------------------------------------
    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]) -> dict:
        from batchinfer.generation.decode import decoder, generate_batch, model_configs

        if self._decoder is None:
            config, _ = model_configs(self.tokenizer.name_or_path)
            self._decoder = decoder(backend, config, self.generation)
        done = generate_batch(self._decoder, inputs, self.generation, keys=keys, seed=self.options.seed,
                              stop=self.options.stop or None, tokenizer=self.tokenizer)
        return {"tokens": done.tokens, "finish": done.finish, "values": values}

    def postprocess(self, outputs, inputs):
        prompt_ids = [row[mask.astype(bool)] for row, mask in zip(inputs["input_ids"], inputs["attention_mask"])]
        texts, finish = [], list(outputs["finish"])
        for i, (prompt, new) in enumerate(zip(prompt_ids, outputs["tokens"])):
            text = self._new_text(prompt, new)
            for stop in self.options.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, finish[i] = text[:cut], "stop"
            texts.append(text)
        if self.options.return_full_text:
            given = inputs.get("prompt_text")
            prompts = list(given) if given is not None else self.prompts(outputs["values"])
            texts = [p + t for p, t in zip(prompts, texts)]
        return {"generated_text": np.array(texts, dtype=object), "finish_reason": np.array(finish, dtype=object),
                "prompt_tokens": inputs["attention_mask"].sum(1).astype(np.int32),
                "completion_tokens": np.array([len(t) for t in outputs["tokens"]], dtype=np.int32)}

    def _new_text(self, prompt: np.ndarray, new: np.ndarray) -> str:
        """The new tokens' text as transformers' pipeline cuts it: the whole sequence decoded, less the
        decoded prompt (so a word split across the boundary reads as the model wrote it)."""
        decode = self.tokenizer.decode
        whole = decode(np.concatenate([prompt, new]).tolist(), skip_special_tokens=True)
        return whole[len(decode(prompt.tolist(), skip_special_tokens=True)):]

    def output_schema(self) -> pa.Schema:
        return pa.schema([("generated_text", pa.string()), ("finish_reason", pa.string()),
                          ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32())])

    def to_arrow(self, results):
        return {"generated_text": pa.array(results["generated_text"].tolist(), pa.string()),
                "finish_reason": pa.array(results["finish_reason"].tolist(), pa.string()),
                "prompt_tokens": pa.array(results["prompt_tokens"], pa.int32()),
                "completion_tokens": pa.array(results["completion_tokens"], pa.int32())}

    # -- the transformers pipeline contract --------------------------------------------------------------
    @classmethod
    def probe_options(cls) -> GenerationOptions:
        return cls.Options(max_new_tokens=1)

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {k: v for k, v in kwargs.items() if k in cls.Options.model_fields and v is not None}
        if kwargs.get("stop_strings"):
            stop = kwargs["stop_strings"]
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        options.setdefault("return_full_text", True)  # transformers' default
        options["transformers_max_length"] = int(kwargs.get("max_length") or 0)  # a call: transformers' defaults
        return options

    def transformers_rows(self, outputs, inputs, values, call):
        """[{"generated_text": ...}] per row, as transformers' pipeline returns (one sequence per prompt)."""
        out = self.postprocess(outputs, inputs)
        return [[{"generated_text": t}] for t in out["generated_text"]]

    def compare(self, got, want):
        key = "generated_text"
        same = [g == w for g, w in zip(got[key].to_pylist(), want[key].to_pylist())]
        return float(np.mean(same)) if same else 1.0, "share of equal generated_text"
