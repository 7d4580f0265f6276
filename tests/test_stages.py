from __future__ import annotations

import threading
import time

import pytest

from batchinfer.engine.stages import WriteBehind, read_ahead


def test_read_ahead_keeps_order_and_is_bounded():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items(), depth=2):
        time.sleep(0.005)
        assert len(produced) - len(seen) <= 4  # depth in the queue, one in hand, one being put
        seen.append(item)
    assert seen == list(range(20))


def test_read_ahead_raises_the_producer_error_and_stops_early_cleanly():
    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(read_ahead(broken()))
    gen = read_ahead(iter(range(1000)), depth=1)
    assert next(gen) == 0
    gen.close()  # the producer thread is released
    assert not [t for t in threading.enumerate() if t.name == "batchinfer-reader"]


def test_write_behind_writes_in_order_and_reports_errors():
    written = []
    writer = WriteBehind(lambda x: (time.sleep(0.001), written.append(x)))
    for i in range(50):
        writer.submit(i)
    writer.close()
    assert written == list(range(50))

    def fails(x):
        if x == 3:
            raise OSError("no space left on device")
        written.append(x)

    written.clear()
    writer = WriteBehind(fails)
    with pytest.raises(OSError, match="no space"):
        for i in range(10):
            writer.submit(i)
            time.sleep(0.01)
        writer.close()
    assert written == [0, 1, 2]
