"""
### {dag_id}: an example of a DAG downstream of the mirror's catalog

Runs whenever the `{mirror}` DAG has published the catalog's `files` and `events` tables
(their assets, `{mirror}_catalog_files` and `{mirror}_catalog_events`), and logs what the
latest run changed and the ten largest files, answered by DuckDB over the Parquet catalog.
Copy it as a start for your own: load the tables into a warehouse, alert on failures, report
to a channel. The catalog's tables and columns: docs/catalog.md.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import DAG, dag, task
from aps_mirror.airflow_provider.assets import DEFAULT_MIRROR, catalog_assets
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id
from aps_mirror.options import SYNC_OPTIONS

log = logging.getLogger(__name__)


def build_catalog_digest_dag(dag_id: str = "aps_mirror_catalog_digest", *, mirror: str = DEFAULT_MIRROR,
                             bucket: str, prefix: str) -> DAG:
    """A digest of each run of the mirror DAG `mirror` (of s3://bucket/prefix), scheduled on its
    catalog's `files` and `events` assets; each publish's event says where the catalog is."""
    check_dag_id(dag_id)
    check_dag_id(mirror)
    for option in SYNC_OPTIONS:
        if option.name in ("bucket", "prefix"):
            option.value({"bucket": bucket, "prefix": prefix}, cli=False)
    # The assets themselves, not references by name: a run scheduled on references is given no
    # triggering events (Airflow 3.3), and the digest needs the publish's.
    tables = catalog_assets(mirror, bucket, prefix)
    catalog = {"files": tables["files"], "events": tables["events"]}

    @dag(
        dag_id=dag_id,
        description="Example: a digest of each mirror run, from the catalog (DuckDB over Parquet)",
        schedule=(catalog["files"] & catalog["events"]),  # one publish updates both
        catchup=False,
        doc_md=__doc__.format(dag_id=dag_id, mirror=mirror),
        tags=["autodesk", "aps-mirror", "example"],
    )
    def digest_pipeline() -> None:
        @task
        def digest(triggering_asset_events: Any = None) -> dict[str, Any]:
            """Ask the catalog two questions; return the counts (the rows go to the log)."""
            from aps_mirror.airflow_provider.mirror import mirror_s3
            from aps_mirror.catalog import examples, reader

            event = triggering_asset_events[catalog["files"]][-1]  # the newest publish
            where = event.extra
            con = reader.connect(mirror_s3(where), where["bucket"], where["prefix"], tables=("files", "events"))
            answers = {}
            for title, sql in (("changed in the latest run", examples.CHANGED_IN_LATEST_RUN),
                               ("ten largest files", examples.LARGEST_FILES)):
                columns, rows = examples.ask(con, sql)
                log.info("%s (%d):\n%s", title, len(rows), examples.format_rows(columns, rows))
                answers[title] = len(rows)
            return {"run_id": where.get("run_id"), **answers}

        digest()

    built = digest_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built
