"""Images: decoded with Pillow into EXIF-rotated RGB images (as transformers' load_image makes them); the
model's image processor makes `pixel_values` of one fixed shape."""

from __future__ import annotations

import io
from typing import Any

from batchinfer.media import Medium, read_bytes


class ImageMedium(Medium):
    name = "image"
    column_hint = "an image column holds bytes, {bytes, path} structs, or paths"

    def load_processor(self, path: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)

    def model_inputs(self, processor: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """`pixel_values` of (channels, height, width), read off one blank image."""
        from PIL import Image

        pixels = processor(images=[Image.new("RGB", (64, 64))], return_tensors="np")["pixel_values"]
        return ("pixel_values",), tuple(int(x) for x in pixels.shape[1:])

    def dummy(self, shape: tuple[int, ...]):
        import torch

        return torch.rand((2, *shape)), {0: "batch"}

    def decode(self, value: Any, *, base: str, fs, processor: Any) -> Any:
        data = read_bytes(value, base=base, fs=fs)
        if data is None:
            raise ValueError("image is null")
        return _decoded(data)

    def call_value(self, value: Any, processor: Any) -> Any:
        """A PIL image, a path, a URL or bytes."""
        from PIL import Image, ImageOps

        if isinstance(value, Image.Image):
            return ImageOps.exif_transpose(value).convert("RGB")
        if not isinstance(value, (bytes, bytearray, str)):
            raise TypeError(f"an image input must be a PIL image, a path, a URL or bytes, not {type(value).__name__}")
        return _decoded(read_bytes(value, base="", fs=None))


def _decoded(data: bytes):
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"image cannot be decoded: {exc}") from None
