"""Autodesk Vault as a source at scale: calls and wall time per night, against the Gateway's limit.

A generated Vault (default 100,000 tiny files in 2,000 folders) is served by the simulator in
this process over HTTP, with the Vault Gateway's limits on at the documented rate (40,000
requests per 5 minutes, rate scale 1; the client budgets the same rate); S3 is moto's server in
its own process. Measured nights:

- first full copy (recorded, not the point: every file is one content request);
- a quiet night: calls by endpoint class, wall time, bytes downloaded (must be 0);
- a night after 1% of the files got a new version (the simulator's Vault churn).

Each night's rate-limit bound is the least wall time the Gateway allows for its calls at its
steady rate: calls / (40,000 / 300 s). Calls per 1,000 files say how the cost grows.
Environment: BENCH_VAULT_FILES, BENCH_VAULT_FOLDERS, BENCH_VAULT_CHURN, BENCH_WORKERS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import requests

from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import ApsConnection, AuthMode, VaultSettings
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.sources.vault import VaultSource
from aps_mirror.simulator import Simulator, SimulatorServer
from aps_mirror.simulator.vault.gateway import GATEWAY_REQUESTS, GATEWAY_WINDOW_SECONDS
from aps_mirror.vault import VaultClient

FILES = int(os.environ.get("BENCH_VAULT_FILES", "100000"))
# About 50 files a folder: a design vault's project folders, nested 3 per parent.
FOLDERS = int(os.environ.get("BENCH_VAULT_FOLDERS", "2000"))
CHURN = float(os.environ.get("BENCH_VAULT_CHURN", "0.01"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))  # parallel transfers in the one vault
MAX_SIZE = 64  # bytes: the first copy costs requests, not bandwidth
BIN = Path(sys.executable).parent
GATEWAY_RPS = GATEWAY_REQUESTS / GATEWAY_WINDOW_SECONDS


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rate_limit_bound_seconds(calls: int) -> float:
    """The least time the Gateway's 40,000 requests per 5 minutes allows for ``calls``."""
    return calls / GATEWAY_RPS


class Bench:
    def __init__(self) -> None:
        started = time.monotonic()
        spec = f"generate:projects=0,vault_files={FILES},vault_folders={FOLDERS},max_size={MAX_SIZE}"
        self.server = SimulatorServer(Simulator(seed=spec, rate_scale=1.0))
        self.server.__enter__()
        self.sim = self.server.sim
        self.sim.vault.configure(gateway=True)
        self.build_seconds = round(time.monotonic() - started, 1)
        port = _free_port()
        self.s3_proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s3_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(s3_url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        self.s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")
        self.s3.create_bucket(Bucket="bench")

    def close(self) -> None:
        self.s3_proc.terminate()
        self.s3_proc.wait(30)
        self.server.__exit__(None, None, None)

    def client(self) -> VaultClient:
        """A Vault client as a mirror run builds it: the connection's 3-legged APS token (the demo
        user, mapped to a Vault user) through the Gateway, budgeted at the documented rate."""
        refresh = self.sim.user_tokens()["refresh_token"]
        conn = ApsConnection("bench", self.sim.client_id, self.sim.client_secret, self.server.base_url,
                             AuthMode.AUTHORIZATION_CODE, refresh_token=refresh, rate_scale=1.0)
        settings = VaultSettings(conn_id="bench", url=self.server.base_url)
        return VaultClient.connect(settings, ApsTransport(conn))

    def night(self, name: str) -> dict[str, Any]:
        self.sim.reset_stats()
        client = self.client()
        engine = MirrorEngine({"vault": VaultSource(client)}, self.s3,
                              MirrorConfig(bucket="bench", prefix="mirror", workers=WORKERS))
        started = time.monotonic()
        summary = RunSummary.combine(engine.mirror_projects(engine.list_projects()))
        wall = time.monotonic() - started
        served = self.sim.stats()
        # Vault calls only: the APS token refresh is not the Gateway's.
        calls = {k: v for k, v in sorted(served["requests"].items()) if k.startswith("vault")}
        total = sum(calls.values())
        bound = rate_limit_bound_seconds(total)
        throttled = client.transport.counter.throttled.total()
        figures = {
            "api_calls": total, "calls_by_endpoint": calls,
            "calls_per_1000_files": round(total / FILES * 1000, 1),
            "wall_seconds": round(wall, 1), "rate_limit_bound_seconds": round(bound, 1),
            "wall_over_bound": round(wall / bound, 2) if bound else None,
            "files_copied": summary.files_copied, "files_skipped": summary.files_skipped,
            "files_failed": summary.files_failed, "bytes_downloaded": served["bytes_served"],
            "throttled_429s": throttled, "errors": summary.errors[:3],
        }
        print(f"  {name}: {json.dumps(figures)}", flush=True)
        return figures


def run() -> dict[str, Any]:
    bench = Bench()
    try:
        figures: dict[str, Any] = {
            "vault": {"files": FILES, "folders": FOLDERS, "max_file_bytes": MAX_SIZE, "workers": WORKERS,
                      "simulator_build_seconds": bench.build_seconds},
            "gateway": {"requests": GATEWAY_REQUESTS, "window_seconds": GATEWAY_WINDOW_SECONDS,
                        "rate_scale": 1.0},
        }
        print(f"  vault of {FILES} files in {FOLDERS} folders built in {bench.build_seconds} s", flush=True)
        figures["first_full_copy"] = bench.night("first full copy")
        figures["quiet_night"] = bench.night("quiet night")
        changed = bench.sim.vault.churn(CHURN, seed=1)["count"]
        figures["one_percent_night"] = {"files_changed": changed, **bench.night(f"{CHURN:.0%} night")}
        return figures
    finally:
        bench.close()
