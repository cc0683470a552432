"""Where the catalog's objects live in S3, and how their keys encode Hive partitions.

    {prefix}/_aps_mirror/catalog/_schema.json
    {prefix}/_aps_mirror/catalog/<table>/[<partition>=<value>/]<object>.parquet
    {prefix}/_aps_mirror/catalog/runs/run_date=<date>/<run_id>.parquet      one object per run
    {prefix}/_aps_mirror/catalog/events/run_date=<date>/<run_id>.parquet
    {prefix}/_aps_mirror/catalog_staging/<run_id>/<record_id>.parquet       not part of the catalog

The staging area is outside `catalog/`: no reader, engine or `catalog download` lists it. The
sync engine stages one object per project run there; `publish_snapshot` folds a run's staged
objects into its `runs` and `events` objects and then deletes them.

Partition values and object names are made key-safe here (ASCII letters, digits, `.`, `_`,
`-`), so no Hive or URL escaping is ever needed, in any engine.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

from aps_mirror.mirror.manifest import meta_prefix

CATALOG_DIR = "catalog"
STAGING_DIR = "catalog_staging"
SCHEMA_FILE = "_schema.json"
RUN_DATE = "run_date"  # the partition of the per-run tables (schema.RUN_DATE_PARTITION)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def catalog_prefix(prefix: str) -> str:
    """`{prefix}/_aps_mirror/catalog` (no trailing slash)."""
    return f"{meta_prefix(prefix)}/{CATALOG_DIR}"


def table_prefix(prefix: str, table: str) -> str:
    """The key prefix of one table, ending in `/`."""
    return f"{catalog_prefix(prefix)}/{table}/"


def schema_key(prefix: str) -> str:
    return f"{catalog_prefix(prefix)}/{SCHEMA_FILE}"


def run_object_name(run_id: str) -> str:
    """The name of a run's object in `runs` and `events` (the same in both)."""
    return f"{key_safe(run_id)}.parquet"


def run_object_key(prefix: str, table: str, run_date: date, run_id: str) -> str:
    """`.../catalog/<table>/run_date=<date>/<run_id>.parquet`: all of one run's rows of a table."""
    return f"{table_prefix(prefix, table)}{RUN_DATE}={run_date.isoformat()}/{run_object_name(run_id)}"


def staging_prefix(prefix: str) -> str:
    """`{prefix}/_aps_mirror/catalog_staging/`: project records not yet folded into the catalog."""
    return f"{meta_prefix(prefix)}/{STAGING_DIR}/"


def staged_key(prefix: str, run_id: str, record_id: str) -> str:
    """Where one project run's record waits for the publish: one folder per run."""
    return f"{staging_prefix(prefix)}{key_safe(run_id)}/{key_safe(record_id)}.parquet"


def key_safe(value: str, max_length: int = 80) -> str:
    """`value` as a key segment of safe characters; changed or cut values get a short hash,
    so two different values never share a segment."""
    safe = _UNSAFE.sub("_", value).strip("._") or "_"
    if safe == value and len(value) <= max_length:
        return value
    digest = hashlib.sha1(value.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:max_length]}-{digest}"


def partitions_of(relative_key: str) -> dict[str, str]:
    """The Hive partition values in a key relative to its table: `hub=x/files.parquet` -> {hub: x}."""
    return dict(part.split("=", 1) for part in relative_key.split("/")[:-1] if "=" in part)
