"""The sync engine at scale: API calls and wall time per night, against Autodesk's figures.

A generated account (default 1,000 projects x 100 folders, Autodesk's blog's example) is
served by the simulator in its own process with Autodesk's documented rate limits scaled by
BENCH_RATE_SCALE; the client budgets the same scaled rates. Measured nights:

- first full copy;
- no change (Autodesk's rollup-first approach: ~1,007 calls);
- 5% of projects changed in one folder each (Autodesk's approach: ~6,500 calls);
- the same two nights for a naive walker (every folder listed, projects one after another),
  on a sample of projects and scaled up, since it is slow by design;
(One big file's throughput and peak memory: bench_big_file.py.)

Each night's wall time is compared with the lower bound the rate limits imply at their
steady rate: for every rate-limit class, calls / (documented rpm x scale / 60), the largest
of those. (Short nights can beat it: a fresh budget starts with a few seconds of burst.)
Environment: BENCH_PROJECTS, BENCH_FOLDERS, BENCH_FILES, BENCH_RATE_SCALE, BENCH_WORKERS,
BENCH_NAIVE_SAMPLE, BENCH_BIG_FILE_MB.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import requests

from aps_mirror.aps import endpoints
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import ApsConnection, AuthMode
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary

PROJECTS = int(os.environ.get("BENCH_PROJECTS", "1000"))
FOLDERS = int(os.environ.get("BENCH_FOLDERS", "100"))
FILES = int(os.environ.get("BENCH_FILES", "1"))
RATE_SCALE = float(os.environ.get("BENCH_RATE_SCALE", "10"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))  # parallel projects, like mapped tasks
NAIVE_SAMPLE = int(os.environ.get("BENCH_NAIVE_SAMPLE", "20"))
BIG_FILE_MB = int(os.environ.get("BENCH_BIG_FILE_MB", "5120"))
BIN = Path(sys.executable).parent
AUTODESK = {"no_change_calls": 1007, "five_percent_calls": 6500}


def _start(args: list[str], first_line: bool) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline() if first_line else ""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lower_bound_seconds(calls: dict[str, int]) -> float:
    """The least time the rate limits allow for these calls."""
    per_budget: dict[str, int] = {}
    for endpoint, n in calls.items():
        budget = endpoints.budget_of(endpoint)
        if endpoints.documented_rpm(budget):
            per_budget[budget] = per_budget.get(budget, 0) + n
    return max((n / (endpoints.documented_rpm(b) * RATE_SCALE / 60) for b, n in per_budget.items()),
               default=0.0)


class Bench:
    def __init__(self, projects: int = PROJECTS, folders: int = FOLDERS, files: int = FILES) -> None:
        spec = f"projects={projects},folders={folders},files={files},max_size=2048"
        self.sim_proc, line = _start([str(BIN / "aps-mirror"), "simulator", "serve", "--port", "0",
                                      "--generate", spec, "--rate-scale", str(RATE_SCALE)], True)
        self.sim = json.loads(line)
        port = _free_port()
        self.s3_proc, _ = _start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], False)
        self.s3_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(self.s3_url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        self.s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")
        self.s3.create_bucket(Bucket="bench")

    def close(self) -> None:
        for proc in (self.sim_proc, self.s3_proc):
            proc.terminate()
            proc.wait(30)

    def client(self) -> ApsClient:
        conn = ApsConnection("bench", self.sim["client_id"], self.sim["client_secret"],
                             self.sim["base_url"], AuthMode.CLIENT_CREDENTIALS, rate_scale=RATE_SCALE)
        return ApsClient(ApsTransport(conn))

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sim['base_url']}/_sim/stats", timeout=30).json()

    def night(self, name: str, *, prefix: str = "mirror", workers: int = WORKERS,
              project_limit: int | None = None, **config: Any) -> dict[str, Any]:
        requests.post(f"{self.sim['base_url']}/_sim/reset-stats", timeout=30)
        client = self.client()
        engine = MirrorEngine(client, self.s3, MirrorConfig(bucket="bench", prefix=prefix, **config))
        started = time.monotonic()
        projects = engine.list_projects()[:project_limit]
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(engine.sync_project, projects))
        wall = time.monotonic() - started
        summary = RunSummary.combine(results)
        served = self.stats()
        calls = {k: v for k, v in served["requests"].items() if k != "download"}
        throttled = sum(1 for r in served.get("log", []) if r["status"] == 429)
        total = sum(calls.values())
        bound = lower_bound_seconds(calls)
        figures = {
            "projects": len(projects), "api_calls": total, "calls_by_endpoint": calls,
            "downloads": served.get("downloads", 0), "files_copied": summary.files_copied,
            "files_renamed": summary.files_renamed, "files_failed": summary.files_failed,
            "wall_seconds": round(wall, 1), "rate_limit_bound_seconds": round(bound, 1),
            "wall_over_bound": round(wall / bound, 2) if bound else None,
            "throttled_429s": client.transport.counter.throttled.total(),
            "share_429": round(client.transport.counter.throttled.total() / total, 4) if total else 0,
            "log_429s_in_last_1000": throttled,
        }
        print(f"  {name}: {json.dumps(figures)}", flush=True)
        return figures

    def big_file(self) -> dict[str, Any]:
        """Copy one BIG_FILE_MB file in a child process; report throughput and its peak RSS."""
        files = requests.get(f"{self.sim['base_url']}/_sim/files", timeout=600).json()["files"]
        anchor = files[0]
        # A new version of one file, BIG_FILE_MB large (generated on demand, never stored).
        created = requests.post(f"{self.sim['base_url']}/_sim/items/{quote(anchor['item_id'], safe='')}/versions",
                                timeout=60, json={"size": BIG_FILE_MB * 1024 * 1024}).json()
        code = (
            "import json, resource, sys, time\n"
            "from benchmarks.bench_sync import Bench, one_project_copy\n"
            "print(json.dumps(one_project_copy(sys.argv[1:])))\n"
        )
        args = [self.sim["base_url"], self.sim["client_id"], self.sim["client_secret"], self.s3_url,
                anchor["project"]]
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1], timeout=7200)
        if out.returncode != 0:
            return {"error": out.stderr[-2000:], "created": created}
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        figures["size_mb"] = BIG_FILE_MB
        print(f"  big file: {json.dumps(figures)}", flush=True)
        return figures


def one_project_copy(args: list[str]) -> dict[str, Any]:
    """(child process) Mirror the project holding the big file; report speed and peak RSS."""
    base_url, client_id, secret, s3_url, project_name = args
    conn = ApsConnection("bench", client_id, secret, base_url, AuthMode.CLIENT_CREDENTIALS, rate_scale=0)
    client = ApsClient(ApsTransport(conn))
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    engine = MirrorEngine(client, s3, MirrorConfig(bucket="bench", prefix="bigfile",
                                                   project_filter=(project_name,)))
    started = time.monotonic()
    results = [engine.sync_project(p) for p in engine.list_projects()]
    wall = time.monotonic() - started
    copied = sum(r.bytes_copied for r in results)
    return {"bytes_copied": copied, "files_failed": sum(r.files_failed for r in results),
            "errors": [e for r in results for e in r.errors][:3], "wall_seconds": round(wall, 1),
            "throughput_mb_s": round(copied / wall / 1024 / 1024, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """The measured nights against Autodesk's figures for 1,000 projects, per project and at 1,000."""
    projects = figures["account"]["projects"]

    def at_1000(calls: int) -> int:
        """Token and hubs once, one projects page per 200 projects, the rest per project."""
        fixed = 2 + math.ceil(projects / 200)
        return round(2 + 5 + (calls - fixed) / projects * 1000)

    no_change = figures["no_change_night"]["api_calls"]
    dirty = figures["five_percent_night"]["api_calls"]
    return {
        "no_change_calls_at_1000_projects": at_1000(no_change),
        "no_change_autodesk_target": AUTODESK["no_change_calls"],
        "five_percent_calls_at_1000_projects": at_1000(dirty),
        "five_percent_target_third_of_autodesk": AUTODESK["five_percent_calls"] // 3,
        "first_copy_wall_over_rate_limit_bound": figures["first_full_copy"]["wall_over_bound"],
        "first_copy_429_share": figures["first_full_copy"]["share_429"],
        "naive_no_change_calls_at_1000_projects": round(
            figures["naive_no_change_night_extrapolated"]["api_calls"] * 1000 / projects),
    }


def run() -> dict[str, Any]:
    bench = Bench()
    try:
        figures: dict[str, Any] = {
            "account": {"projects": PROJECTS, "folders_per_project": FOLDERS, "files_per_folder": FILES,
                        "rate_scale": RATE_SCALE, "workers": WORKERS},
            "autodesk_blog": AUTODESK,
        }
        figures["first_full_copy"] = bench.night("first full copy")
        figures["no_change_night"] = bench.night("no-change night")
        requests.post(f"{bench.sim['base_url']}/_sim/churn", timeout=600,
                      json={"projects_fraction": 0.05, "folders_per_project": 1, "seed": 1})
        figures["five_percent_night"] = bench.night("5% night")
        # The naive walker: every folder, every night, one project after another (sampled).
        sample = min(NAIVE_SAMPLE, PROJECTS)
        bench.night("naive first copy (sample)", prefix="naive", workers=1, project_limit=sample,
                    full_walk=True)
        naive = bench.night("naive no-change night (sample)", prefix="naive", workers=1,
                            project_limit=sample, full_walk=True)
        scale = PROJECTS / sample
        figures["naive_no_change_night_extrapolated"] = {
            "sampled_projects": sample, "api_calls": round(naive["api_calls"] * scale),
            "wall_seconds": round(naive["wall_seconds"] * scale)}
        figures["targets"] = targets(figures)
        return figures
    finally:
        bench.close()
