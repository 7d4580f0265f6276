"""text2text-generation, summarization and translation: encoder-decoder models (T5, BART, Marian shapes).

transformers 5 removed these three pipelines (the models and `generate` remain); the reference is
`model.generate` and the output format of transformers 4.5x's pipelines (`generated_text`, `summary_text`,
`translation_text`). As there, the model config's `task_specific_params` for the task (T5's
`summarize: ` prefix and beam settings) apply under the job's options; translation looks up
`translation_{src_lang}_to_{tgt_lang}`. Inputs are right-padded and cut at the encoder's limit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Encoded
from batchinfer.tasks.generative import GenerationOptions, GenerativeTask


class TranslationOptions(GenerationOptions):
    src_lang: str | None = Field(None, description="source language code: picks the model's "
                                 "task_specific_params['translation_SRC_to_TGT'] (T5)")
    tgt_lang: str | None = Field(None, description="target language code (see src_lang)")


class Text2TextGeneration(GenerativeTask):
    name = "text2text-generation"
    auto_class = "AutoModelForSeq2SeqLM"
    parts = ("encoder", "cross", "decoder")  # three graphs where the backend runs graphs (seq2seq_export.py)
    params_key: ClassVar[str | None] = None  # the model config's task_specific_params entry for this task

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if not config.get("is_encoder_decoder"):
            raise ModelError(f"model {model_name} is not an encoder-decoder model; {cls.name} runs T5, BART and "
                             "Marian shapes", hint="use task = 'text-generation' for decoder-only models")

    def task_params(self) -> dict[str, Any]:
        key = self.params_key
        return dict((self.config.get("task_specific_params") or {}).get(key) or {}) if key else {}

    def prefix(self) -> str:
        return str(self.task_params().get("prefix") or self.config.get("prefix") or "")

    def encode(self, texts: list[Any]) -> Encoded:
        return super().encode(self._prefixed(texts))

    def preprocess(self, texts: list[Any]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(self._prefixed(texts), truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="np")
        return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def _prefixed(self, texts: list[Any]) -> list[str]:
        prefix = self.prefix()
        return [prefix + ("" if t is None else str(t)) for t in texts]

    def transformers_list(self, results: list[Any], call: dict[str, Any]) -> Any:
        """transformers 4.5x gave a flat list of dicts for a list of strings (one sequence each)."""
        return [r[0] if isinstance(r, list) and len(r) == 1 else r for r in results]


class Summarization(Text2TextGeneration):
    name = "summarization"
    transformers_key = "summary_text"
    params_key = "summarization"


class Translation(Text2TextGeneration):
    name = "translation"
    Options = TranslationOptions
    transformers_key = "translation_text"
    call_options = Text2TextGeneration.call_options | {"src_lang", "tgt_lang"}

    @property
    def params_key(self) -> str | None:  # type: ignore[override]
        o = self.options
        return f"translation_{o.src_lang}_to_{o.tgt_lang}" if o.src_lang and o.tgt_lang else None
