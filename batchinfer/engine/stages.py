"""Overlapping stages: reading ahead and writing behind the inference thread, with bounded queues.

The runtimes, the Rust tokenizer and Arrow's Parquet/CSV code release the GIL, so a reader thread and a
writer thread overlap with inference. Queues hold at most `depth` items, so memory stays bounded by
depth x batch size. An error in a stage thread is raised in the caller at its next step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(items: Iterable[T], *, depth: int = 2, name: str = "batchinfer-reader") -> Iterator[T]:
    """Iterate `items` in a background thread, at most `depth` items ahead of the consumer."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(_Failure(exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


class WriteBehind:
    """Run `write(*args)` calls in order on a background thread, at most `depth` calls queued."""

    def __init__(self, write: Callable[..., None], *, depth: int = 2, name: str = "batchinfer-writer") -> None:
        self._write = write
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._write(*item[0], **item[1])
                except BaseException as exc:
                    self._error = exc

    def submit(self, *args: Any, **kwargs: Any) -> None:
        if self._error is not None:
            self.close()
        self._q.put((args, kwargs))

    def close(self) -> None:
        """Wait for every queued write; raise the first error a write had."""
        if self._thread.is_alive():
            self._q.put(_DONE)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
