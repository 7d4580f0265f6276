"""Progress of a run, for a person and for a scheduler.

On a terminal: one line redrawn in place, a bar where the total is known (Parquet: the footers' row counts;
CSV: `~N`, estimated from the rows per byte read so far, exact once the files are read), rows done, percent,
rows/s, elapsed time and ETA. Without a terminal (Airflow, cron, `--log-format json`): a
`progress` log line through the `batchinfer` logger every `interval` seconds (runtime.progress_interval), so
a scheduler's log shows the job is alive; in JSON its fields are `rows`, `total`, `percent`, `rows_per_second`,
`elapsed_s` and `eta_s` (and `total_exact`: false while the total is a CSV estimate).

Rows of units an earlier run committed (resume) start the count (`done_before`) but are not in the rate or
the ETA: the rate is this run's rows over this run's time.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger("batchinfer")

BAR_WIDTH = 24
REDRAW_SECONDS = 0.2


def duration(seconds: float | None) -> str:
    """12s, 3m05s, 2h10m."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts rows as model batches finish (`update`, any thread); draws on a terminal or logs at an interval.

    `total`: the input's rows if known up front; else `estimate()` gives (rows, exact) or None as reading goes.
    `enabled`: draw on `stream` (a terminal). `interval`: seconds between progress log lines when not drawing
    (0: none). `clock`: seconds, monotonic (tests pass a fake one). `heartbeat`: a background thread logs
    even while no batch finishes (a long first batch, a slow read); tests drive `tick()` themselves.
    """

    def __init__(self, total: int | None, *, enabled: bool, stream: TextIO | None = None,
                 interval: float = 0.0, done_before: int = 0, clock: Callable[[], float] = time.perf_counter,
                 heartbeat: bool = True, estimate: Callable[[], tuple[int, bool] | None] | None = None) -> None:
        self.total = total
        self.estimate = estimate
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval if not enabled else 0.0
        self.done_before = done_before
        self.rows = 0  # this run's rows
        self.clock = clock
        self.started = clock()
        self._last_draw = float("-inf")
        self._last_log = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.enabled:
            self._draw(self.started)  # the bar shows at once (0 rows, or the resumed count)
        elif self.interval > 0 and heartbeat:
            self._thread = threading.Thread(target=self._beat, name="batchinfer-progress", daemon=True)
            self._thread.start()

    # -- counting ------------------------------------------------------------------------------------
    def update(self, rows: int) -> None:
        """`rows` more rows of this run are done (predicted, or failed and skipped)."""
        with self._lock:
            self.rows += rows
        self.tick()

    def tick(self) -> None:
        """Draw or log if it is time to."""
        now = self.clock()
        if self.enabled:
            if now - self._last_draw >= REDRAW_SECONDS:
                self._draw(now)
        elif self.interval > 0:
            with self._lock:  # the heartbeat thread ticks too: one line per interval
                due = now - self._last_log >= self.interval
                if due:
                    self._last_log = now
            if due:
                self._log(now)

    def state(self, now: float | None = None) -> dict:
        """rows (all, resumed ones included), total, percent, this run's rows/s, elapsed and ETA (seconds)."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 0.0)
        rows = self.done_before + self.rows
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        total, exact = self._total()
        if total is not None and not exact:
            total = max(total, rows)  # an estimate never runs behind the rows done
        eta = None
        if total is not None and rate > 0:
            eta = max(total - rows, 0) / rate
        percent = min(100.0, 100.0 * rows / total) if total else None
        return {"rows": rows, "rows_this_run": self.rows, "total": total, "total_exact": exact,
                "percent": None if percent is None else round(percent, 1),
                "rows_per_second": round(rate, 1), "elapsed_s": round(elapsed, 1),
                "eta_s": None if eta is None else round(eta, 1)}

    def _total(self) -> tuple[int | None, bool]:
        if self.total is not None or self.estimate is None:
            return self.total, True
        try:
            got = self.estimate()
        except Exception:  # noqa: BLE001 - an estimate that cannot be made (a storage hiccup) shows no total
            got = None
        return (None, True) if got is None else got

    # -- showing -------------------------------------------------------------------------------------
    def line(self, now: float | None = None) -> str:
        """The terminal's line: [#####.....] 3,000/10,000 rows  30.0%  120 rows/s  elapsed 25s  ETA 58s."""
        s = self.state(now)
        rate = f"{s['rows_per_second']:,.0f} rows/s"
        clock = f"elapsed {duration(s['elapsed_s'])}"
        if s["total"]:
            filled = int(BAR_WIDTH * min(s["rows"], s["total"]) / s["total"])
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            return (f"[{bar}] {s['rows']:,}/{_total_text(s)} rows  {s['percent']:5.1f}%  {rate}  {clock}  "
                    f"ETA {duration(s['eta_s'])}")
        return f"{s['rows']:,} rows  {rate}  {clock}"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self.stream.write(f"\r  {self.line(now)}\033[K")
        self.stream.flush()

    def _log(self, now: float) -> None:
        s = self.state(now)
        total = f"/{_total_text(s)} rows ({s['percent']:.1f}%)" if s["total"] else " rows"
        eta = f", ETA {duration(s['eta_s'])}" if s["eta_s"] is not None else ""
        log.info("progress: %s%s, %s rows/s, elapsed %s%s", f"{s['rows']:,}", total, f"{s['rows_per_second']:,.1f}",
                 duration(s["elapsed_s"]), eta, extra={"fields": {"event": "progress", **s}})

    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, 1.0)):
            self.tick()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.enabled:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()


def _total_text(state: dict) -> str:
    return f"{state['total']:,}" if state["total_exact"] else f"~{state['total']:,}"


STAGES = ("read", "tokenize", "infer", "write")


class StageTimes:
    """Busy seconds per stage, each measured in the thread where it runs (reader: read, then decode and
    tokenize; this thread: infer; writer: write), and padding: real tokens over padded tokens.

    The stages overlap, so their seconds add up to more than the run's wall time.
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)  # each key is written by one thread only
        self.tokens = 0  # real tokens sent to the model
        self.padded = 0  # tokens sent, padding included

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    def timed(self, stage: str, fn: Callable) -> Callable:
        """`fn`, with the time of each call added to `stage`."""
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
        return call

    def timed_iter(self, stage: str, items):
        """`items`, with the time spent producing each one added to `stage`."""
        it = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.seconds[stage] += time.perf_counter() - start
                return
            self.seconds[stage] += time.perf_counter() - start
            yield item

    def count_batch(self, inputs: dict) -> None:
        """Real and padded tokens of one model batch (text: its attention mask; images have none)."""
        mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
        if mask is not None:
            self.tokens += int(mask.sum())
            self.padded += int(mask.size)

    @property
    def padding_efficiency(self) -> float | None:
        return self.tokens / self.padded if self.padded else None

    def counts(self) -> dict[str, float]:
        """Flat numbers (seconds per stage, tokens) that `add_counts` adds up: one worker's share."""
        return {**{f"{stage}_s": s for stage, s in self.seconds.items()}, "tokens": self.tokens,
                "padded_tokens": self.padded}

    def add_counts(self, counts: dict) -> None:
        """Add another StageTimes' `counts()` (a Ray actor's work item)."""
        for stage in STAGES:
            self.seconds[stage] += float(counts.get(f"{stage}_s", 0.0))
        self.tokens += int(counts.get("tokens", 0))
        self.padded += int(counts.get("padded_tokens", 0))

    def to_dict(self) -> dict:
        """`{stage}_s` busy seconds, and the token counts with their efficiency (text models)."""
        out: dict = {f"{stage}_s": round(s, 3) for stage, s in self.seconds.items()}
        if self.padded:
            out.update(tokens=self.tokens, padded_tokens=self.padded,
                       padding_efficiency=round(self.padding_efficiency, 4))
        return out
