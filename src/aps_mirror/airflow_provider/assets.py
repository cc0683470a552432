"""The assets a mirror DAG updates: the mirror itself and one per catalog table, named after the
mirror's DAG id so that two mirrors in one deployment never wake each other's consumers.

`build_mirror_dag("acme")` updates `acme` (s3://bucket/prefix) and `acme_catalog_files`, ...;
a downstream DAG schedules on them by name (`catalog_asset_refs("acme")`) or by object.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset

CATALOG_TABLES = ("files", "versions", "folders", "projects", "runs", "events")
# Airflow's asset groups: how the dashboard finds every mirror of a deployment, whatever its name.
MIRROR_GROUP = "aps-mirror"
CATALOG_GROUP = "aps-mirror-catalog"
DEFAULT_MIRROR = "aps_mirror"  # the repository's DAG, and the assets' names before the factory


def default_location() -> tuple[str, str]:
    """(bucket, prefix) of the mirror, as the deployment's environment sets them."""
    return os.environ.get("APS_MIRROR_BUCKET", "aps-mirror"), os.environ.get("APS_MIRROR_PREFIX", "autodesk")


def mirror_asset(mirror: str, bucket: str, prefix: str) -> Asset:
    """The mirror itself: updated by `summarize` with the run's counts."""
    return Asset(uri=f"s3://{bucket}/{prefix}", name=mirror, group=MIRROR_GROUP)


def catalog_asset_name(mirror: str, table: str) -> str:
    return f"{mirror}_catalog_{table}"


def catalog_assets(mirror: str, bucket: str, prefix: str) -> dict[str, Asset]:
    """One asset per catalog table, e.g. `aps_mirror_catalog_files`."""
    return {table: Asset(uri=f"s3://{bucket}/{prefix}/_aps_mirror/catalog/{table}",
                         name=catalog_asset_name(mirror, table), group=CATALOG_GROUP)
            for table in CATALOG_TABLES}


def catalog_asset_refs(mirror: str, tables: tuple[str, ...] = CATALOG_TABLES) -> dict[str, object]:
    """References by name to a mirror's catalog assets, for a DAG defined without its location."""
    unknown = set(tables) - set(CATALOG_TABLES)
    if unknown:
        raise ValueError(f"no catalog table {sorted(unknown)}: the tables are {', '.join(CATALOG_TABLES)}")
    return {table: Asset.ref(name=catalog_asset_name(mirror, table)) for table in tables}
