"""Test DAGs: many tasks spend one rotating refresh token at once (`aps_token_hammer`), and
one task makes a single authenticated call (`aps_token_probe`)."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import dag, task

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dag(dag_id="aps_token_hammer", schedule=None, start_date=START, catchup=False,
     default_args={"retries": 0}, params={"conn_id": "autodesk_default", "calls": 15})
def aps_token_hammer() -> None:
    @task(max_active_tis_per_dag=32)
    def hammer(worker: int, params: dict[str, Any]) -> dict[str, int]:
        from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook

        client = AutodeskHook(params["conn_id"]).get_conn()
        for _ in range(int(params["calls"])):
            # Access tokens live 2 s and are refreshed 60 s early: every call rotates.
            client.user_profile()
            time.sleep(random.uniform(0, 0.05))
        return {"worker": worker, "calls": int(params["calls"])}

    hammer.expand(worker=list(range(8)))


@dag(dag_id="aps_token_probe", schedule=None, start_date=START, catchup=False,
     default_args={"retries": 0}, params={"conn_id": "autodesk_default"})
def aps_token_probe() -> None:
    @task
    def probe(params: dict[str, Any]) -> str:
        from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook

        return AutodeskHook(params["conn_id"]).get_conn().user_profile().user_id

    probe()


aps_token_hammer()
aps_token_probe()
