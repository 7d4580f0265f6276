"""Reading inputs and writing outputs on any fsspec filesystem."""

from batchinfer.io.sink import ParquetSink
from batchinfer.io.source import Source, SourceBatch


def open_sink(spec):
    """The sink of output.format: a Parquet folder (io/sink.py), or a table (io/table_sink.py)."""
    if spec.format == "parquet":
        return ParquetSink(spec)
    from batchinfer.io.table_sink import TableSink

    return TableSink(spec)


__all__ = ["ParquetSink", "Source", "SourceBatch", "open_sink"]
