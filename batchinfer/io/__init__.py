"""Reading inputs and writing outputs on any fsspec filesystem."""

from batchinfer.io.sink import ParquetSink
from batchinfer.io.source import Source, SourceBatch


def open_sink(spec):
    """The sink of output.format: a Parquet folder of parts (io/sink.py), or a table or partitioned folder
    (io/table_sink.py)."""
    if spec.format == "parquet" and not spec.partition_by:
        return ParquetSink(spec)
    from batchinfer.io.table_sink import TableSink

    return TableSink(spec)


__all__ = ["ParquetSink", "Source", "SourceBatch", "open_sink"]
