"""An example downstream of the `aps_mirror` DAG: a digest of each run from its catalog
(DuckDB over the Parquet tables). Copy the factory's module as a start for your own DAG."""

from aps_mirror.airflow_provider.assets import default_location
from aps_mirror.airflow_provider.dags import build_catalog_digest_dag

bucket, prefix = default_location()
build_catalog_digest_dag("aps_mirror_catalog_digest", mirror="aps_mirror", bucket=bucket, prefix=prefix)
