"""Reading inputs and writing outputs on any fsspec filesystem."""

from batchinfer.io.sink import ParquetSink
from batchinfer.io.source import Source, SourceBatch

__all__ = ["ParquetSink", "Source", "SourceBatch"]
