"""Open the catalog for querying: Arrow tables, a DuckDB connection, or a local copy.

Objects are fetched with the boto3 client the caller already has (the CLI's, or Airflow's
S3Hook's), each in one GET, so a reader never mixes two publishes inside one object. DuckDB's
httpfs extension is not needed (it is downloaded at run time, which not every site allows).

`runs` and `events` hold one object per run (`run_date=<date>/<run_id>.parquet`), written
whole by the publish; objects of the older layout (one per project run,
`<run_id>__<project_id>__<started>-<random>.parquet`) sit next to them and are read the same
way. The project records the sync engine stages until the publish folds them live outside
the catalog's folder (`_aps_mirror/catalog_staging/`) and are never listed here.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pyarrow as pa

from aps_mirror.catalog import parquet
from aps_mirror.catalog.layout import catalog_prefix, partitions_of, schema_key, table_prefix
from aps_mirror.catalog.schema import RUN_DATE_PARTITION, TABLES

FETCH_WORKERS = 16  # one object per run and table (more in catalogs of the older layout)


def list_objects(s3: Any, bucket: str, prefix: str, table: str, *, since: date | None = None) -> list[str]:
    """Keys of a table's Parquet objects; for date-partitioned tables, from `since` on."""
    root = table_prefix(prefix, table)
    start = {}
    if since is not None and TABLES[table].partition is RUN_DATE_PARTITION:
        # Keys sort by date, and `run_date=D` sorts before every key of day D and after
        # every key of the days before: the listing begins at the first wanted day.
        start = {"StartAfter": f"{root}{RUN_DATE_PARTITION.name}={since.isoformat()}"}
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root, **start):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return keys


def read_table(s3: Any, bucket: str, prefix: str, table: str, *, since: date | None = None) -> pa.Table:
    """One catalog table as Arrow, in the current schema (empty when nothing is written yet)."""
    spec = TABLES[table]
    root = table_prefix(prefix, table)
    keys = list_objects(s3, bucket, prefix, table, since=since)

    def fetch(key: str) -> pa.Table | None:
        try:
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:  # removed since the listing (a vanished hub): not there
            return None
        return parquet.decode(spec, data, partitions_of(key[len(root):]), f"s3://{bucket}/{key}")

    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        parts = [part for part in pool.map(fetch, keys) if part is not None]
    return _concat(table, parts)


def read_catalog(s3: Any, bucket: str, prefix: str, *, tables: Iterable[str] = TABLES,
                 since: date | None = None) -> dict[str, pa.Table]:
    """Several tables; `since` limits `runs` and `events` to the days from then on."""
    return {t: read_table(s3, bucket, prefix, t, since=since) for t in tables}


def connect(s3: Any, bucket: str, prefix: str, *, tables: Iterable[str] = TABLES,
            since: date | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per table (`files`, `versions`, ...)."""
    return connect_tables(read_catalog(s3, bucket, prefix, tables=tables, since=since))


def connect_tables(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # timestamps come back in UTC whatever the machine says
    for name, table in tables.items():
        con.register(name, table)
    return con


def download_catalog(s3: Any, bucket: str, prefix: str, destination: str | os.PathLike) -> Path:
    """Copy the catalog to a local folder, same layout as in S3, for plain DuckDB or pandas:
    `read_parquet('<folder>/files/*/*.parquet', hive_partitioning = true)`."""
    root = Path(destination)
    base = catalog_prefix(prefix) + "/"
    keys = [schema_key(prefix)] if _exists(s3, bucket, schema_key(prefix)) else []
    for table in TABLES:
        keys += list_objects(s3, bucket, prefix, table)

    def fetch(key: str) -> None:
        target = root / key[len(base):]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        partial.replace(target)  # a crash never leaves a half file under the real name

    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        list(pool.map(fetch, keys))
    return root


def read_local(folder: str | os.PathLike, table: str) -> pa.Table:
    """A table of a downloaded catalog (see download_catalog), in the current schema."""
    root = Path(folder) / table
    spec = TABLES[table]
    parts = [parquet.decode(spec, path.read_bytes(), partitions_of(path.relative_to(root).as_posix()),
                            str(path))
             for path in sorted(root.rglob("*.parquet"))] if root.is_dir() else []
    return _concat(table, parts)


def connect_local(folder: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    return connect_tables({t: read_local(folder, t) for t in TABLES})


def read_schema_document(s3: Any, bucket: str, prefix: str) -> dict | None:
    """`_schema.json` as the last writer left it; None before the first write."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=schema_key(prefix))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _concat(table: str, parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(parts) if parts else parquet.empty(TABLES[table])


def _exists(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))
