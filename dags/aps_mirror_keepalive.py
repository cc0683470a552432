"""Keeps the repository's `autodesk_default` connection alive: its refresh token rotated every
12 hours, so the 15-day expiry never comes while no sync runs (see the DAG's documentation)."""

from datetime import timedelta

from aps_mirror.airflow_provider.dags import build_keepalive_dag

build_keepalive_dag("aps_mirror_keepalive", conn_ids=["autodesk_default"], schedule=timedelta(hours=12))
