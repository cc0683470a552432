"""The aps_mirror DAG on a real deployment at 2,000 projects, next to the CLI on the same nights.

api-server, scheduler and dag-processor run as processes (LocalExecutor on the local
PostgreSQL, Airflow's default configuration: max_map_length is 1,024), against a generated
account (BENCH_DAG_PROJECTS x BENCH_DAG_FOLDERS folders x BENCH_DAG_FILES files) that the
simulator serves in its own process with Autodesk's documented rate limits times
BENCH_RATE_SCALE (bench_sync's scale, default 10), and moto's S3 server. The `autodesk`
connection budgets the same scaled rates, shared by every task process through Redis
(`rate_budget_url`), as a deployment with several workers should.

Three nights: first copy, quiet night (nothing changed), 5%-dirty night (the simulator's
churn: one change in one folder of 5% of the projects). Each night the DAG runs (triggered
through the REST API; wall time = the run's start to end as Airflow records it), then
`aps-mirror sync` on the same account into another prefix (wall time of the subprocess). Per
night: wall times, task instances, API calls (the simulator's counts) and the rate-limit lower
bound (bench_sync's). Then a quiet night of 10 projects (a project filter) for its task-
instance count, and the deployment's fixed overhead: an empty DAG whose no-op tasks form a
chain as long as the quiet night's (its median wall time over 3 runs is the start-up allowance).
Targets: every run succeeds; quiet night's DAG wall <= 1.25 x the CLI's + the allowance;
quiet night's task instances the same for 10 projects as for all of them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import redis
import requests

from aps_mirror.aps.ratelimit import BURST_SECONDS
from benchmarks.bench_sync import BIN, RATE_SCALE, Bench, lower_bound_seconds
from tests.airflow_deployment import Deployment, mirror_connections, mirror_deployment

PROJECTS = int(os.environ.get("BENCH_DAG_PROJECTS", "2000"))
FOLDERS = int(os.environ.get("BENCH_DAG_FOLDERS", "2"))
FILES = int(os.environ.get("BENCH_DAG_FILES", "1"))
POOL_SLOTS = int(os.environ.get("BENCH_DAG_POOL", "4"))  # the autodesk_api pool, as documented
RUN_TIMEOUT = float(os.environ.get("BENCH_DAG_RUN_TIMEOUT", "3600"))
REDIS_DB = 15  # the shared rate budget's; a database no test uses
DAG_ID = "aps_mirror"
TEN_PROJECTS = "Project 1-0001?"  # Project 1-00010 .. 1-00019
QUIET_TARGET_RATIO = 1.25
EMPTY_DAG = '''"""No work: what the deployment itself costs to run {length} tasks one after another."""
from datetime import datetime

from airflow.sdk import chain, dag, task


@dag(dag_id="bench_empty", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def bench_empty():
    @task
    def step() -> None:
        pass

    chain(*[step.override(task_id=f"step_{{i}}")() for i in range({length})])


bench_empty()
'''


def settle() -> None:
    """Every run starts with full client rate budgets: none inherits the last one's debt."""
    time.sleep(BURST_SECONDS + 1)


def served_calls(bench: Bench) -> dict[str, Any]:
    """The simulator's counts since its last reset, with the rate limits' lower bound."""
    served = bench.stats()
    calls = {k: v for k, v in served["requests"].items() if k != "download"}
    return {"api_calls": sum(calls.values()), "calls_by_endpoint": calls, "downloads": served["downloads"],
            "rate_limit_bound_seconds": round(lower_bound_seconds(calls), 1),
            "log_429s_in_last_1000": sum(1 for r in served["log"] if r["status"] == 429)}


def dag_night(deployment: Deployment, bench: Bench, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    settle()
    requests.post(f"{bench.sim['base_url']}/_sim/reset-stats", timeout=30)
    started = time.monotonic()
    run = deployment.trigger(DAG_ID, conf, wait=RUN_TIMEOUT)
    trigger_to_end = time.monotonic() - started
    instances = deployment.task_instances(run)
    figures = {
        "state": run["state"], "dag_run_id": run["dag_run_id"],
        "wall_seconds": round(deployment.run_seconds(run), 1),
        "trigger_to_end_seconds": round(trigger_to_end, 1),
        "task_instances": len(instances),
        "task_instances_by_task": dict(sorted((t, sum(1 for i in instances if i["task_id"] == t))
                                              for t in {i["task_id"] for i in instances})),
        "ran": sorted({i["task_id"] for i in instances if i["state"] == "success"}),
        "longest_seconds_by_task": task_seconds(instances),
        "not_successful": [f"{i['task_id']}[{i['map_index']}]: {i['state']}" for i in instances
                           if i["state"] not in ("success", "skipped")],
        **served_calls(bench),
    }
    print(f"  DAG {json.dumps(figures)}", flush=True)
    return figures


def task_seconds(instances: list[dict]) -> dict[str, float]:
    """Each task's run time (a mapped task's longest instance): where a night's time goes."""
    longest: dict[str, float] = {}
    for i in instances:
        if i["duration"] is not None:
            longest[i["task_id"]] = round(max(longest.get(i["task_id"], 0.0), i["duration"]), 1)
    return dict(sorted(longest.items()))


def cli_night(bench: Bench, connections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`aps-mirror sync` into prefix `cli`, with the DAG's connections as AIRFLOW_CONN_* variables."""
    settle()
    requests.post(f"{bench.sim['base_url']}/_sim/reset-stats", timeout=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update({f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()})
    started = time.monotonic()
    done = subprocess.run([str(BIN / "aps-mirror"), "sync", "--bucket", "bench", "--prefix", "cli", "--json"],
                          env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall = time.monotonic() - started
    summary = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    figures = {"exit_code": done.returncode, "wall_seconds": round(wall, 1),
               "files_copied": summary.get("files_copied"), **served_calls(bench)}
    if done.returncode:
        figures["stderr_tail"] = done.stderr[-1500:]
    print(f"  CLI {json.dumps(figures)}", flush=True)
    return figures


def chain_length(tasks: list[dict], ran: set[str]) -> int:
    """The most tasks that ran one after another (a mapped task mapped to nothing does not run)."""
    downstream = {t["task_id"]: t["downstream_task_ids"] for t in tasks}

    @cache
    def depth(task_id: str) -> int:
        return (task_id in ran) + max((depth(d) for d in downstream[task_id]), default=0)

    return max(depth(t) for t in downstream)


def empty_dag_seconds(deployment: Deployment, length: int, runs: int = 3) -> list[float]:
    """Wall times of an empty DAG of `length` chained no-op tasks (the deployment's own cost)."""
    folder = Path(deployment.env["AIRFLOW__CORE__DAGS_FOLDER"])
    (folder / "bench_empty.py").write_text(EMPTY_DAG.format(length=length))
    seconds = []
    for _ in range(runs):
        run = deployment.trigger("bench_empty", wait=600)
        assert run["state"] == "success", run
        seconds.append(round(deployment.run_seconds(run), 1))
    print(f"  empty DAG of {length} task(s): {seconds} s", flush=True)
    return seconds


def targets(nights: dict[str, dict[str, Any]], ten: dict[str, Any], allowance: float) -> dict[str, Any]:
    quiet = nights["quiet_night"]
    limit = QUIET_TARGET_RATIO * quiet["cli"]["wall_seconds"] + allowance
    runs = [n["dag"]["state"] == "success" and n["cli"]["exit_code"] == 0 for n in nights.values()]
    return {
        "every_run_succeeded": all(runs) and ten["state"] == "success",
        "startup_allowance_seconds": allowance,
        "quiet_dag_wall_limit_seconds": round(limit, 1),
        "quiet_dag_wall_seconds": quiet["dag"]["wall_seconds"],
        "quiet_dag_within_limit": quiet["dag"]["wall_seconds"] <= limit,
        "quiet_dag_over_cli": round(quiet["dag"]["wall_seconds"] / quiet["cli"]["wall_seconds"], 2),
        "quiet_task_instances": quiet["dag"]["task_instances"],
        "quiet_task_instances_10_projects": ten["task_instances"],
        "quiet_task_instances_independent_of_projects": quiet["dag"]["task_instances"] == ten["task_instances"],
    }


def run() -> dict[str, Any]:
    bench = Bench(PROJECTS, FOLDERS, FILES)
    budget = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    for key in budget.scan_iter("aps-mirror:rate:*"):
        budget.delete(key)
    connections = mirror_connections(
        aps_url=bench.sim["base_url"], client_id=bench.sim["client_id"], client_secret=bench.sim["client_secret"],
        s3_endpoint=bench.s3_url,
        autodesk_extra={"rate_scale": RATE_SCALE, "rate_budget_url": f"redis://127.0.0.1:6379/{REDIS_DB}"})
    figures: dict[str, Any] = {"account": {"projects": PROJECTS, "folders_per_project": FOLDERS,
                                           "files_per_folder": FILES, "rate_scale": RATE_SCALE,
                                           "autodesk_api_pool_slots": POOL_SLOTS}}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-dag-") as home, \
                mirror_deployment(Path(home), connections, bucket="bench", pool_slots=POOL_SLOTS) as deployment:
            nights: dict[str, dict[str, Any]] = {}
            for night in ("first_copy", "quiet_night", "five_percent_night"):
                print(f"  {night}", flush=True)
                if night == "five_percent_night":
                    requests.post(f"{bench.sim['base_url']}/_sim/churn", timeout=600,
                                  json={"projects_fraction": 0.05, "folders_per_project": 1, "seed": 1})
                nights[night] = {"dag": dag_night(deployment, bench), "cli": cli_night(bench, connections)}
            ten = dag_night(deployment, bench, {"project_filter": [TEN_PROJECTS]})
            length = chain_length(deployment.tasks(DAG_ID), set(nights["quiet_night"]["dag"]["ran"]))
            empty = empty_dag_seconds(deployment, length)
            figures.update(nights)
            figures["quiet_night_10_projects"] = {k: ten[k] for k in ("state", "wall_seconds", "task_instances",
                                                                       "api_calls")}
            figures["empty_dag"] = {"chained_tasks": length, "wall_seconds": empty}
            figures["targets"] = targets(nights, ten, statistics.median(empty))
        return figures
    finally:
        bench.close()
