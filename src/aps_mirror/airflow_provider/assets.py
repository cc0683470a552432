"""The assets a mirror DAG updates: the mirror itself and one per catalog table, named after the
mirror's DAG id so that two mirrors in one deployment never wake each other's consumers.

`build_mirror_dag("acme")` updates `acme` (s3://bucket/prefix) and `acme_catalog_files`, ...;
a downstream DAG schedules on the same objects (`catalog_assets("acme", bucket, prefix)`): a DAG
scheduled on references by name gets no triggering events in its runs (Airflow 3.3).
"""

from __future__ import annotations

import os

from airflow.sdk import Asset

CATALOG_TABLES = ("files", "versions", "folders", "projects", "runs", "events")
# Airflow's asset groups: how the dashboard finds every mirror of a deployment, whatever its name.
MIRROR_GROUP = "aps-mirror"
CATALOG_GROUP = "aps-mirror-catalog"
VERIFICATION_GROUP = "aps-mirror-verification"
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


LIVE_GROUP = "aps-mirror-live"


def live_asset_name(mirror: str) -> str:
    return f"{mirror}_live"


def live_asset(mirror: str, bucket: str, prefix: str) -> Asset:
    """Autodesk's change events for a mirror: the webhook receiver adds one asset event per
    accepted delivery, and the mirror's live DAG is scheduled on it."""
    return Asset(uri=f"s3://{bucket}/{prefix}/_aps_mirror/live", name=live_asset_name(mirror), group=LIVE_GROUP)


def verification_asset(verifier: str, bucket: str, prefix: str) -> Asset:
    """A verify DAG's asset, named after it: updated with each verification's counts. Its URI is
    the catalog's `verifications` table, told apart per DAG (an asset's URI names one asset)."""
    return Asset(uri=f"s3://{bucket}/{prefix}/_aps_mirror/catalog/verifications/{verifier}", name=verifier,
                 group=VERIFICATION_GROUP)
