"""How far a source's CSV files have been read, and the input's row count estimated from it.

A CSV file's rows are known only once it is read to its end; counting them up front would read every file
twice (a second download from object storage). Instead the reader counts, per file, the line ends in what
it has read and the bytes it has read from storage (compressed bytes for a `.csv.gz`), both at the same
point (Arrow reads ahead of the rows it has parsed). Lines per byte scale each CSV file's size to an
estimate, which turns exact as each file ends. Parquet files' rows come from their footers. The progress bar
shows the estimate as `~N`. (A quoted field with line breaks counts as several lines until its file ends.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _File:
    position: Callable[[], int]  # bytes read from storage so far
    lines: Callable[[], int]  # line ends in what was read so far
    header: int  # lines that are not rows
    rows: int | None = None  # exact, once read to the end


class ReadProgress:
    """Lines and bytes read per CSV file (counted by the reading thread, read by the progress thread)."""

    def __init__(self) -> None:
        self._files: dict[int, _File] = {}

    def opened(self, index: int, raw, lines: Callable[[], int], *, header: bool) -> None:
        """File `index` is read from `raw` (the storage file object, before any decompression); `lines()`
        gives the line ends read from it so far."""
        last = [0]

        def position() -> int:
            try:
                last[0] = int(raw.tell())
            except (ValueError, OSError):  # closed: where it stopped
                pass
            return last[0]

        self._files[index] = _File(position, lines, int(header))

    def finished(self, index: int, rows: int) -> None:
        """File `index` was read to its end and held `rows` rows (good and bad ones)."""
        self._files[index].rows = rows

    def estimate(self, known: list[int | None], sizes: Callable[[], list[int | None]]) -> tuple[int, bool] | None:
        """(rows, exact) over all files: `known` rows per file (Parquet footers, None for CSV) and the files'
        `sizes` in bytes; None while no CSV line has been read or a CSV file's size is unknown."""
        if None not in known:
            return sum(known), True
        files = dict(self._files)
        read = {i: (f.position(), max(f.lines() - f.header, 0)) for i, f in files.items() if f.rows is None}
        read_bytes, read_lines = sum(b for b, _ in read.values()), sum(n for _, n in read.values())
        finished = [f for f in files.values() if f.rows is not None]
        if not read_lines and not finished:
            return None
        all_sizes = sizes()
        if read_bytes:
            per_byte = read_lines / read_bytes
        else:  # only finished files to go by
            done = [(f.rows, all_sizes[i]) for i, f in files.items() if f.rows is not None and all_sizes[i]]
            per_byte = sum(r for r, _ in done) / sum(b for _, b in done) if done else 0.0
        total, exact = 0, True
        for i, rows in enumerate(known):
            f = files.get(i)
            if rows is None and f is not None and f.rows is not None:
                rows = f.rows
            if rows is not None:
                total += rows
                continue
            if all_sizes[i] is None:
                return None
            exact = False
            if i in read and read[i][0] > 0:  # this file's own lines per byte
                total += round(read[i][1] * all_sizes[i] / read[i][0])
            else:
                total += round(all_sizes[i] * per_byte)
        return total, exact
