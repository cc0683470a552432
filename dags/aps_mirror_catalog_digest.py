"""
### aps_mirror_catalog_digest: an example of a DAG downstream of the mirror's catalog

Runs whenever the `aps_mirror` DAG has published the catalog's `files` and `events` tables
(their assets, `aps_mirror_catalog_files` and `aps_mirror_catalog_events`), and logs what the
latest run changed and the ten largest files, answered by DuckDB over the Parquet catalog.
Copy it as a start for your own: load the tables into a warehouse, alert on failures, report
to a channel. The catalog's tables and columns: docs/catalog.md.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import dag, task

from aps_mirror.airflow_provider.assets import catalog_assets

CATALOG = catalog_assets()

log = logging.getLogger(__name__)


@dag(
    dag_id="aps_mirror_catalog_digest",
    description="Example: a digest of each mirror run, from the catalog (DuckDB over Parquet)",
    schedule=(CATALOG["files"] & CATALOG["events"]),
    catchup=False,
    doc_md=__doc__,
    tags=["autodesk", "aps-mirror", "example"],
)
def aps_mirror_catalog_digest() -> None:
    @task
    def digest(triggering_asset_events: Any = None) -> dict[str, Any]:
        """Ask the catalog two questions; return the counts (the rows go to the log)."""
        from aps_mirror.airflow_provider.mirror import mirror_s3
        from aps_mirror.catalog import examples, reader

        event = triggering_asset_events[CATALOG["files"]][-1]  # the newest publish
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


aps_mirror_catalog_digest()
