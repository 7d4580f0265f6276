#!/usr/bin/env python
"""Write the sample digit images ``sample_data/digits/`` from scikit-learn's digits.

A fixed selection of ``PER_CLASS`` images of every digit, drawn (seeded) from
the images that ``scripts/train_digits.py`` holds out from training, rendered
exactly as that script renders them before augmentation: 28x28 grayscale,
white digit on black, the 8x8 digit scaled up to fill the central 20x20.

Output:

    sample_data/digits/images/<id>.png   one PNG per image
    sample_data/digits/digits.parquet    id (int64), image (struct{bytes: binary,
                                         path: string}, the PNG as in Hugging Face
                                         datasets), file (string, "images/<id>.png"),
                                         label (int64, the true digit)

Deterministic. Run from the repo root:

    python scripts/make_digit_images.py
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_digits import HELDOUT, SEED, load_sklearn_digits, stratified_split  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "sample_data" / "digits"
PER_CLASS = 6


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main() -> None:
    images, labels = load_sklearn_digits()
    _, heldout = stratified_split(labels, HELDOUT, SEED)
    rng = np.random.default_rng(SEED)
    chosen = [i for digit in range(10)
              for i in sorted(rng.choice(heldout[labels[heldout] == digit], PER_CLASS, replace=False))]
    order = rng.permutation(len(chosen))  # interleave the digits so any prefix is a mix
    chosen = [chosen[k] for k in order]

    shutil.rmtree(OUT_DIR / "images", ignore_errors=True)
    (OUT_DIR / "images").mkdir(parents=True)
    rows = []
    for n, index in enumerate(chosen, start=1):
        data = png_bytes(images[index])
        file = f"images/{n}.png"
        (OUT_DIR / file).write_bytes(data)
        rows.append({"id": n, "image": {"bytes": data, "path": file}, "file": file, "label": int(labels[index])})

    schema = pa.schema([
        ("id", pa.int64()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("file", pa.string()),
        ("label", pa.int64()),
    ])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), OUT_DIR / "digits.parquet", compression="zstd")
    size = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {len(rows)} images to {OUT_DIR} ({size:,} bytes)")


if __name__ == "__main__":
    main()
