"""One big file (BENCH_BIG_FILE_MB, default 5,120 = 5 GB): throughput and peak memory of its copy.

A Revit model of several GB is the transfer's hard case: it goes as parallel byte ranges into
an S3 multipart upload, with memory bounded by the parts in flight. The copy runs in a child
process (the engine, as a mapped task would run it) so its peak RSS is its own.
"""

from __future__ import annotations

from typing import Any

from benchmarks.bench_sync import BIG_FILE_MB, Bench


def run() -> dict[str, Any]:
    bench = Bench(projects=1, folders=1, files=1)
    try:
        return {"size_mb": BIG_FILE_MB, **bench.big_file()}
    finally:
        bench.close()
