"""Tiny random decoder-only models (GPT-2, Llama and Qwen2 shapes) with a small byte-level BPE tokenizer,
built locally for the generation tests (no hub)."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog", "summarise this ticket: the printer is broken again",
    "translate to french: good morning", "name: Ada Lovelace; born: 1815; field: mathematics",
    "Ünïcödé façade — naïve café 東京 😀", "numbers 12345 and symbols #$%&*", "ok", "hello world",
] * 20
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
POSITIONS = 96


def tiny_tokenizer(target: Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                  model_max_length=POSITIONS)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(str(target))
    return tok


def build_decoder(target: Path, kind: str, seed: int = 0) -> Path:
    """A random decoder of `kind` (gpt2, llama, qwen2), weights wide enough for clear argmax margins."""
    import torch
    import transformers

    tok = tiny_tokenizer(target)
    common = dict(vocab_size=len(tok), bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                  initializer_range=0.3)
    if kind == "gpt2":
        config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=POSITIONS, **common)
        cls = transformers.GPT2LMHeadModel
    elif kind == "llama":
        config = transformers.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=POSITIONS, **common)
        cls = transformers.LlamaForCausalLM
    elif kind == "qwen2":
        config = transformers.Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=POSITIONS, **common)
        cls = transformers.Qwen2ForCausalLM
    else:
        raise ValueError(kind)
    torch.manual_seed(seed)
    cls(config).eval().save_pretrained(str(target))
    return target


def build_seq2seq(target: Path, kind: str, seed: int = 0) -> Path:
    """A random encoder-decoder of `kind` (t5, bart, marian), with T5's summarization parameters in its config."""
    import torch
    import transformers

    tok = tiny_tokenizer(target)
    end = tok.eos_token_id
    params = {"summarization": {"prefix": "summarize: ", "num_beams": 2, "max_length": 12},
              "translation_en_to_fr": {"prefix": "translate English to French: "}}
    if kind == "t5":
        config = transformers.T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                                       decoder_start_token_id=end, pad_token_id=end, eos_token_id=end,
                                       initializer_factor=3.0, task_specific_params=params)
        cls = transformers.T5ForConditionalGeneration
    elif kind in ("bart", "marian"):
        shape = dict(vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=POSITIONS,
                     pad_token_id=end, eos_token_id=end, bos_token_id=end, decoder_start_token_id=end,
                     init_std=0.3, task_specific_params=params)
        if kind == "bart":
            config, cls = transformers.BartConfig(forced_eos_token_id=None, **shape), transformers.BartForConditionalGeneration
        else:
            config, cls = transformers.MarianConfig(**shape), transformers.MarianMTModel
    else:
        raise ValueError(kind)
    torch.manual_seed(seed)
    cls(config).eval().save_pretrained(str(target))
    return target


def ending_early(path: Path, texts: list[str], target: Path, new: int = 40) -> Path:
    """A copy of the model at `path` whose end token is the one its greedy rows over `texts` first write at the
    most different steps between 3 and 29, so that some rows end within the first calls and others never."""
    import collections
    import json
    import shutil

    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    config = transformers.AutoConfig.from_pretrained(str(path))
    auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    net = auto.from_pretrained(str(path)).eval()
    firsts = collections.defaultdict(dict)  # token -> {row: its first step}
    for row, text in enumerate(texts):
        enc = tok(text, return_tensors="pt")
        with torch.inference_mode():
            out = net.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.eos_token_id)
        start = 1 if config.is_encoder_decoder else enc["input_ids"].shape[1]
        for step, token in enumerate(out[0, start:].tolist()):
            firsts[token].setdefault(row, step)
    end = max(firsts, key=lambda t: len({s for s in firsts[t].values() if 2 < s < 30}))
    shutil.copytree(path, target)
    for name in ("config.json", "generation_config.json"):
        if (target / name).exists():
            data = json.loads((target / name).read_text())
            data["eos_token_id"] = int(end)
            (target / name).write_text(json.dumps(data))
    return target


def generate_call_sizes(monkeypatch) -> list[int]:
    """The batch size of each generate call batchinfer makes from now on (finished rows leave between calls)."""
    from batchinfer.generation import decode

    sizes: list[int] = []
    real = decode._generate
    monkeypatch.setattr(decode, "_generate", lambda model, ids, *a, **k: sizes.append(len(ids)) or
                        real(model, ids, *a, **k))
    return sizes
