"""Proves the repository's mirror (s3://$APS_MIRROR_BUCKET/$APS_MIRROR_PREFIX) every week: every
object present and intact, no orphans, no stale uploads; the run fails unless it is clean. What
the DAG does is in its own documentation (`aps_mirror.airflow_provider.dags.verify_dag`)."""

from aps_mirror.airflow_provider.assets import default_location
from aps_mirror.airflow_provider.dags import build_verify_dag

bucket, prefix = default_location()
build_verify_dag("aps_mirror_verify", bucket=bucket, prefix=prefix, schedule="@weekly")
