"""The assets the `aps_mirror` DAG updates: the mirror itself and one per catalog table.

Where they point comes from APS_MIRROR_BUCKET / APS_MIRROR_PREFIX (the DAG's default params),
read each time a DAG file is parsed; downstream DAGs use `catalog_assets()` to schedule on them.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset

CATALOG_TABLES = ("files", "versions", "folders", "projects", "runs", "events")


def default_location() -> tuple[str, str]:
    """(bucket, prefix) of the mirror, as the deployment's environment sets them."""
    return os.environ.get("APS_MIRROR_BUCKET", "aps-mirror"), os.environ.get("APS_MIRROR_PREFIX", "autodesk")


def mirror_asset() -> Asset:
    bucket, prefix = default_location()
    return Asset(uri=f"s3://{bucket}/{prefix}", name="aps_mirror")


def catalog_assets() -> dict[str, Asset]:
    """One asset per catalog table, e.g. `aps_mirror_catalog_files`."""
    bucket, prefix = default_location()
    return {table: Asset(uri=f"s3://{bucket}/{prefix}/_aps_mirror/catalog/{table}",
                         name=f"aps_mirror_catalog_{table}") for table in CATALOG_TABLES}
