"""The repository's mirror: one account into s3://$APS_MIRROR_BUCKET/$APS_MIRROR_PREFIX, nightly.

What the DAG does is in its own documentation (the DAG's page in the UI, or
`aps_mirror.airflow_provider.dags.mirror_dag`). More mirrors in one deployment: one
`build_mirror_dag(...)` call each, with its own dag_id, bucket, prefix and options.
"""

from aps_mirror.airflow_provider.assets import DEFAULT_MIRROR, default_location
from aps_mirror.airflow_provider.dags import build_mirror_dag

bucket, prefix = default_location()
build_mirror_dag(DEFAULT_MIRROR, bucket=bucket, prefix=prefix, schedule="@daily")
