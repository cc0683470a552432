"""Restores files from the repository's mirror back into Autodesk Docs, when triggered with params
(project, path, as_of, into or in_place, dry_run). What the DAG does is in its own documentation
(`aps_mirror.airflow_provider.dags.restore_dag`)."""

from aps_mirror.airflow_provider.assets import default_location
from aps_mirror.airflow_provider.dags import build_restore_dag

bucket, prefix = default_location()
build_restore_dag("aps_mirror_restore", bucket=bucket, prefix=prefix)
