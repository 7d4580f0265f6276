"""A tiny random CLIP (both towers, projections) with the offline MiniLM tokenizer and a 32-pixel image
processor: for image-feature-extraction, CLIP text embeddings and zero-shot-image-classification tests."""

from __future__ import annotations

from pathlib import Path


def build_clip(path: Path, seed: int = 4) -> Path:
    import torch
    import transformers

    from tests.conftest import minilm_path

    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_path()),
                                                     model_input_names=["input_ids", "attention_mask"])
    tok.model_max_length = 32
    text = transformers.CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                       num_attention_heads=2, max_position_embeddings=32,
                                       eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
                                       bos_token_id=tok.cls_token_id, projection_dim=16)
    vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=32, patch_size=8,
                                           projection_dim=16)
    config = transformers.CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16,
                                     initializer_factor=2.0)
    torch.manual_seed(seed)
    transformers.CLIPModel(config).eval().save_pretrained(str(path))
    tok.save_pretrained(str(path))
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        str(path))
    return path
