"""The DAGs aps-mirror ships, as factories: a DAG file of a few lines declares one mirror or many.

    from aps_mirror.airflow_provider.dags import build_mirror_dag

    build_mirror_dag("acme_docs", bucket="acme-backup", prefix="autodesk")
    build_mirror_dag("acme_plans", bucket="acme-plans", prefix="aps", project_filter=["Plans*"],
                     autodesk_conn_id="autodesk_plans", schedule="0 2 * * *")

Each factory checks its arguments where they enter (a bad one is a one-line import error of the
DAG file) and returns the DAG; Airflow finds it without assigning it to a name.
"""

from aps_mirror.airflow_provider.dags.catalog_digest_dag import build_catalog_digest_dag
from aps_mirror.airflow_provider.dags.keepalive_dag import build_keepalive_dag
from aps_mirror.airflow_provider.dags.live_dag import build_live_dag
from aps_mirror.airflow_provider.dags.mirror_dag import build_mirror_dag
from aps_mirror.airflow_provider.dags.restore_dag import build_restore_dag
from aps_mirror.airflow_provider.dags.verify_dag import build_verify_dag

__all__ = ["build_catalog_digest_dag", "build_keepalive_dag", "build_live_dag", "build_mirror_dag",
           "build_restore_dag", "build_verify_dag"]
