"""The live mirror's latency and cost on a real deployment (api-server, scheduler, dag-processor
and triggerer as processes, LocalExecutor on the local PostgreSQL), the simulator calling its
webhook receiver as Autodesk would.

- Latency: BENCH_LIVE_CHANGES changes made one at a time (a new version of a file, in turn in
  each project); for each, the time from the change in the simulator to the manifest in S3
  naming the new version (the object is written before the manifest commits). p50 and p95.
- Burst: BENCH_LIVE_BURST changes made at once, spread over the projects; the live DAG runs
  they cost, and the time until the last is in S3.
Targets: p95 under 60 s; a burst costs a handful of runs (at most BURST_RUNS_TARGET), not one
per change.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from tests.airflow_deployment import wait_until
from tests.deploy.test_live_mirror import LIVE, Live, live_deployment

CHANGES = int(os.environ.get("BENCH_LIVE_CHANGES", "20"))
BURST = int(os.environ.get("BENCH_LIVE_BURST", "100"))
P95_TARGET_SECONDS = 60.0
BURST_RUNS_TARGET = 5
POLL = 0.25


def _latency(live: Live, item_id: str, size: int) -> float:
    started = time.monotonic()
    version = live.sim.add_version(item_id, size=size)
    while live.mirrored_version(item_id) != version:
        if time.monotonic() - started > 600:
            raise AssertionError(f"{item_id} at {version} never reached S3")
        time.sleep(POLL)
    return time.monotonic() - started


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run() -> dict[str, Any]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as home, \
                live_deployment(Path(home), f"http://{host}:{port}") as live:
            files = sorted(live.sim.iter_files(), key=lambda f: (f.project, f.item_id))
            by_project: dict[str, list] = {}
            for f in files:
                by_project.setdefault(f.project, []).append(f)
            rotation = [f for group in zip(*by_project.values()) for f in group] or files
            latencies = []
            for n in range(CHANGES):
                latencies.append(_latency(live, rotation[n % len(rotation)].item_id, 2000 + n))
                live.settle()
                print(f"change {n + 1}/{CHANGES}: {latencies[-1]:.1f} s", flush=True)

            runs_before = len(live.runs(LIVE))
            started = time.monotonic()
            wanted = {}
            for n in range(BURST):
                target = rotation[n % len(rotation)]
                wanted[target.item_id] = live.sim.add_version(target.item_id, size=5000 + n)
            wait_until(lambda: all(live.mirrored_version(i) == v for i, v in wanted.items()), 1200,
                       "the burst in S3")
            burst_seconds = time.monotonic() - started
            live.settle()
            burst_runs = len(live.runs(LIVE)) - runs_before
            live.assert_exact()
            return {
                "changes": CHANGES,
                "latency_p50_seconds": round(statistics.median(latencies), 1),
                "latency_p95_seconds": round(_percentile(latencies, 0.95), 1),
                "latency_max_seconds": round(max(latencies), 1),
                "p95_target_seconds": P95_TARGET_SECONDS,
                "p95_within_target": _percentile(latencies, 0.95) < P95_TARGET_SECONDS,
                "burst_changes": BURST,
                "burst_distinct_files": len(wanted),
                "burst_live_runs": burst_runs,
                "burst_runs_target": BURST_RUNS_TARGET,
                "burst_within_target": burst_runs <= BURST_RUNS_TARGET,
                "burst_seconds_to_s3": round(burst_seconds, 1),
                "projects": len(by_project),
            }
    finally:
        moto.stop()
