"""The APS simulator's own capacity: requests/s served to parallel clients, start time and memory at scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

BIG = "projects=1000,folders=100,files=2"
MILLION = "projects=1000,folders=100,files=10"  # 100,000 folders and 1,000,000 items
DURATION = float(os.environ.get("BENCH_SIM_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_SIM_CLIENTS", "8"))
SRC = str(Path(__file__).resolve().parents[1] / "src")

# Run in a child process: build the big account, then report its start time and peak RSS.
_MEASURE = """
import json, resource, sys, time
started = time.perf_counter()
from aps_mirror.simulator import Simulator
sim = Simulator(seed=sys.argv[1], rate_scale=0)
built = time.perf_counter() - started
folders = len(sim.account._folders)
items = len(sim.account._items)
t = time.perf_counter(); files = sum(1 for _ in sim.iter_files()); walk = time.perf_counter() - t
t = time.perf_counter(); sim.churn(0.05, 10, seed=1); churn = time.perf_counter() - t
print(json.dumps({"start_seconds": round(built, 2), "folders": folders, "items": items, "files": files,
                  "iter_files_seconds": round(walk, 2), "churn_5pct_x10_seconds": round(churn, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def _enc(value: str) -> str:
    return quote(value, safe="")


def measure_scale(spec: str = BIG) -> dict[str, Any]:
    """Start time and peak RSS of a ``generate:`` account, measured in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", _MEASURE, f"generate:{spec}"], capture_output=True, text=True,
                         env=env, check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _targets(base: str, client_id: str, secret: str, sim: Any) -> tuple[dict[str, str], list[str]]:
    token = requests.post(f"{base}/authentication/v2/token", auth=(client_id, secret),
                          data={"grant_type": "client_credentials", "scope": "data:read"}).json()["access_token"]
    urls: list[str] = []
    for entry in list(sim.iter_files())[:200]:
        item = sim.account.item(entry.item_id)
        urls.append(f"{base}/data/v1/projects/{_enc(item.project.id)}/folders/{_enc(item.parent.id)}/contents")
        key = (entry.tip.storage_urn or "").split("/", 1)[1]
        urls.append(f"{base}/oss/v2/buckets/wip.dm.prod/objects/{_enc(key)}/signeds3download")
    return {"Authorization": f"Bearer {token}"}, urls


def measure_throughput(duration: float = DURATION, clients: int = CLIENTS) -> dict[str, Any]:
    """Parallel clients on 127.0.0.1 alternating folder contents and signeds3download for ``duration`` s."""
    from aps_mirror.simulator import Simulator, SimulatorServer

    with SimulatorServer(Simulator(seed="generate:projects=20,folders=20,files=2", rate_scale=0)) as server:
        headers, urls = _targets(server.base_url, server.client_id, server.client_secret, server.sim)
        counts = [0] * clients
        errors = [0] * clients
        stop = time.monotonic() + duration

        def worker(n: int) -> None:
            session = requests.Session()
            i = n
            while time.monotonic() < stop:
                r = session.get(urls[i % len(urls)], headers=headers)
                counts[n] += 1
                errors[n] += r.status_code != 200
                i += clients

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    total = sum(counts)
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": total, "errors": sum(errors),
            "requests_per_second": round(total / elapsed, 1)}


def run() -> dict[str, Any]:
    print(f"simulator: {CLIENTS} clients for {DURATION:.0f} s ...", flush=True)
    throughput = measure_throughput()
    print(f"simulator: building generate:{BIG} in a subprocess ...", flush=True)
    scale = measure_scale()
    figures = {"throughput": throughput, "scale_1000x100x2": scale}
    if os.environ.get("BENCH_SIM_MILLION", "1") != "0":
        print(f"simulator: building generate:{MILLION} in a subprocess ...", flush=True)
        figures["scale_1000x100x10"] = measure_scale(MILLION)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
