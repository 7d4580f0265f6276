"""What every generating task shares: generation options named as in transformers' GenerationConfig (the
model's generation_config.json gives the defaults), `generate` over any backend (`batchinfer/generation/`),
stop strings, and the prediction columns `generated_text`, `finish_reason` (eos / stop / length),
`prompt_tokens` and `completion_tokens`. Sampling is seeded per row (`seed` and the row's position), so a
resumed run regenerates the same text whatever its batches.

Not a task itself: `text_generation.py` (decoder-only) and `text2text_generation.py` (encoder-decoder) are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from batchinfer.tasks.base import Encoded, Task, TaskOptions

DEFAULT_NEW_TOKENS = 128  # a job's max_new_tokens where neither the job nor the model's generation config sets it
GENERATION_KEYS = ("max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_k", "top_p",
                   "repetition_penalty", "num_beams")


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
    seed: int = Field(0, description="sampling seed; each row draws from its own stream of it")
    keep_stop: bool = Field(False, json_schema_extra={"internal": True},
                            description="a transformers call's stop_strings: the text keeps what generate wrote")
    transformers_max_length: int | None = Field(None, ge=0, json_schema_extra={"internal": True},
                                                description="a transformers pipeline call's max_length (0: none "
                                                "given): that pipeline's generation defaults apply")

    @model_validator(mode="after")
    def _sampling_with_beams(self):
        if self.do_sample and (self.num_beams or 1) > 1:
            raise ValueError("do_sample with num_beams > 1 is not offered: per-row seeded sampling draws one "
                             "sequence per row; use one or the other")
        return self


class GenerativeTask(Task):
    """A task that decodes. Subclasses set the Auto class, padding and how new tokens become text."""

    output_name = "logits"
    generates = True
    encodes_once = True
    Options = GenerationOptions
    columns = ("generated_text", "finish_reason", "prompt_tokens", "completion_tokens")
    call_options = frozenset({"batch_size", "max_new_tokens", "min_new_tokens", "do_sample", "temperature",
                              "top_k", "top_p", "repetition_penalty", "num_beams", "stop_strings", "seed",
                              "max_length"})
    keeps_call_batches = True
    gate_rows = 32  # each compared row is generated twice (the reduced model and fp32)
    transformers_key: ClassVar[str] = "generated_text"  # the key of transformers' result dicts
    transformers_defaults: ClassVar[dict[str, Any]] = {}  # what its transformers pipeline adds to a call

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: GenerationOptions | None = None,
                 **kwargs: Any) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.options = options if options is not None else self.Options(**{k: v for k, v in kwargs.items()
                                                                            if k != "max_length"})
        self._decoder = None
        self.setup_tokenizer()
        self.generation = self._generation_config()
        self.max_new_tokens = int(self.generation.max_new_tokens or self.generation.max_length or 0)
        self.max_length = self.prompt_limit(kwargs.get("max_length"))

    # -- what subclasses decide -------------------------------------------------------------------------
    def setup_tokenizer(self) -> None:
        """Padding and truncation sides, a pad token."""
        if self.tokenizer is not None and self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def prompt_limit(self, requested: int | None) -> int:
        return self._max_length(requested)

    def task_params(self) -> dict[str, Any]:
        """Generation defaults the model's config keeps for this task (`task_specific_params`)."""
        return {}

    def new_text(self, prompt: np.ndarray, new: np.ndarray) -> str:
        """The new tokens decoded alone, as transformers 5's text-generation pipeline (and 4.5x's text2text
        pipelines) do."""
        return self.tokenizer.decode(new.tolist(), skip_special_tokens=True)

    def positions(self) -> int:
        """The most tokens the model's position embeddings take (large where positions are relative)."""
        decoder = self.config.get("decoder") if isinstance(self.config.get("decoder"), dict) else {}
        found = [c.get(k) for c in (self.config, decoder) for k in ("max_position_embeddings", "n_positions", "n_ctx")]
        found = [int(p) for p in found if isinstance(p, int) and 0 < p < 10_000_000]
        return min(found) if found else 1_000_000

    # -- configuration -------------------------------------------------------------------------------
    def _generation_config(self):
        """The model's generation_config.json (else the one transformers derives from config.json), the task's
        own parameters, then the job's options (or a transformers call's, with its pipeline's defaults)."""
        from transformers import GenerationConfig

        folder = getattr(self.tokenizer, "name_or_path", None)
        if folder and (Path(folder) / "generation_config.json").is_file():
            generation = GenerationConfig.from_pretrained(folder)
        else:
            generation = GenerationConfig(**{k: self.config[k] for k in ("bos_token_id", "eos_token_id",
                                                                          "pad_token_id", "decoder_start_token_id")
                                             if self.config.get(k) is not None})
        generation.update(**{k: v for k, v in self.task_params().items() if k != "prefix"})
        o = self.options
        given = {k: getattr(o, k) for k in GENERATION_KEYS if getattr(o, k) is not None}
        generation.update(**given)
        if o.transformers_max_length is not None:  # a transformers pipeline call: its defaults
            set_params = {**generation.to_diff_dict(), **given}
            if o.transformers_max_length:
                generation.max_length = set_params["max_length"] = o.transformers_max_length
            added = {k: v for k, v in self.transformers_defaults.items() if k not in set_params
                     and not (k == "max_new_tokens" and "max_length" in set_params)}
            if not {**set_params, **added}.get("do_sample"):
                added.pop("temperature", None)
            generation.update(**added)
        elif generation.max_new_tokens is None:  # a job: a known number of new tokens, room left for a prompt
            generation.max_new_tokens = min(DEFAULT_NEW_TOKENS, max(1, self.positions() // 2))
        if generation.pad_token_id is None:
            generation.pad_token_id = (self.tokenizer.pad_token_id if self.tokenizer is not None
                                       and self.tokenizer.pad_token_id is not None else generation.eos_token_id)
        if isinstance(generation.pad_token_id, list):
            generation.pad_token_id = generation.pad_token_id[0]
        return generation

    # -- batching and generating --------------------------------------------------------------------------
    def pad(self, encoded: Encoded, rows: np.ndarray) -> dict[str, np.ndarray]:
        out = super().pad(encoded, rows)
        out.pop("token_type_ids", None)
        return out

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        """Tokens a row holds in the key/value cache at its end, times its beams: the batch token budget."""
        return (encoded.kept + self.max_new_tokens) * max(1, int(self.generation.num_beams or 1))

    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]) -> dict:
        from batchinfer.generation.decode import decoder, generate_batch, model_config

        if self._decoder is None:
            self._decoder = decoder(backend, model_config(self.tokenizer.name_or_path), self.generation)
        done = generate_batch(self._decoder, inputs, self.generation, keys=keys, seed=self.options.seed,
                              stop=self.options.stop or None, tokenizer=self.tokenizer)
        return {"tokens": done.tokens, "finish": done.finish, "values": values}

    def postprocess(self, outputs, inputs):
        if "input_ids" in inputs:
            prompt_ids = [row[m.astype(bool)] for row, m in zip(inputs["input_ids"], inputs["attention_mask"])]
        else:  # an image is the input: no prompt tokens
            prompt_ids = [np.zeros(0, np.int64) for _ in outputs["tokens"]]
        texts, finish = [], list(outputs["finish"])
        for i, (prompt, new) in enumerate(zip(prompt_ids, outputs["tokens"])):
            text = self.new_text(prompt, new)
            for stop in self.options.stop:
                cut = text.find(stop)
                if cut >= 0:
                    finish[i] = "stop"
                    if not self.options.keep_stop:
                        text = text[:cut]
            texts.append(text)
        return {"generated_text": np.array(texts, dtype=object), "finish_reason": np.array(finish, dtype=object),
                "prompt_tokens": np.array([len(p) for p in prompt_ids], dtype=np.int32),
                "completion_tokens": np.array([len(t) for t in outputs["tokens"]], dtype=np.int32)}

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
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {k: v for k, v in kwargs.items() if k in cls.Options.model_fields and v is not None}
        if kwargs.get("stop_strings"):
            stop = kwargs["stop_strings"]
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
            options["keep_stop"] = True  # transformers' text keeps the stop string
        options["transformers_max_length"] = int(kwargs.get("max_length") or 0)  # a call: transformers' defaults
        return options

    @classmethod
    def probe_options(cls) -> GenerationOptions:
        return cls.Options(max_new_tokens=1)

    def transformers_rows(self, outputs, inputs, values, call):
        out = self.postprocess(outputs, inputs)
        return [[{self.transformers_key: t}] for t in out["generated_text"]]

    def compare(self, got, want):
        key = "generated_text"
        same = [g == w for g, w in zip(got[key].to_pylist(), want[key].to_pylist())]
        return float(np.mean(same)) if same else 1.0, "share of equal generated_text"
