"""Rows <-> Parquet bytes for one catalog table, in that table's schema.

Encoding takes plain dicts (timestamps as ISO strings or datetimes) so the code building rows
needs nothing of Arrow. Decoding aligns a file to the current schema: columns an older file
lacks read as null (or as the column's default), and the Hive partition value from the key
becomes a column again.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.catalog.schema import CATALOG_FORMAT_VERSION, FORMAT_VERSION_KEY, TIMESTAMP, Table
from aps_mirror.errors import ConfigError

log = logging.getLogger(__name__)


def to_arrow(table: Table, rows: Iterable[dict[str, Any]]) -> pa.Table:
    """`rows` as an Arrow table in the table's file schema (no partition column)."""
    schema = table.file_schema()
    timestamps = [f.name for f in schema if f.type == TIMESTAMP]
    defaults = {c.name: c.default for c in table.columns if c.default is not None}
    prepared = []
    for row in rows:
        row = {name: row.get(name) for name in schema.names}
        for name in timestamps:
            row[name] = to_datetime(row[name])
        for name, default in defaults.items():  # a row built before the column existed
            if row[name] is None:
                row[name] = default
        prepared.append(row)
    return pa.Table.from_pylist(prepared, schema=schema)


def write(arrow: pa.Table, metadata: dict[bytes, bytes] | None = None) -> bytes:
    """One Parquet file (Snappy: every engine reads it); `metadata` is added to the file's
    key-value metadata."""
    if metadata:
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **metadata})
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="snappy")
    return buffer.getvalue()


def encode(table: Table, rows: Iterable[dict[str, Any]], metadata: dict[bytes, bytes] | None = None) -> bytes:
    """One Parquet file holding `rows` in the table's file schema."""
    return write(to_arrow(table, rows), metadata)


def read(data: bytes, where: str) -> pa.Table:
    """A Parquet file as written, after checking this aps-mirror can read its format."""
    found = pq.read_table(io.BytesIO(data))
    version = (found.schema.metadata or {}).get(FORMAT_VERSION_KEY)
    if version is not None and int(version) > CATALOG_FORMAT_VERSION:
        raise ConfigError(
            f"{where} has catalog format {int(version)}; this aps-mirror reads format "
            f"{CATALOG_FORMAT_VERSION}. Upgrade aps-mirror to read this catalog.")
    return found


def align(table: Table, found: pa.Table, partitions: dict[str, str] | None = None) -> pa.Table:
    """`found` in the table's current schema: columns it lacks (written before they existed)
    read as null, or as the column's default. With `partitions`, the partition column is added from them (the reader's
    view); without, the result is in the file schema (what the writer stores)."""
    fields = table.schema() if partitions is not None else table.file_schema()
    defaults = {c.name: c.default for c in table.columns if c.default is not None}
    columns = []
    for field in fields:
        if table.partition is not None and field.name == table.partition.name:
            value = partitions.get(field.name) if partitions is not None else None
            column = pa.array([value] * found.num_rows, pa.string()).cast(field.type)
        elif field.name in found.column_names:
            column = found.column(field.name).cast(field.type)
            if field.name in defaults:
                column = pc.fill_null(column, pa.scalar(defaults[field.name], field.type))
        elif field.name in defaults:  # written before the column existed: what it meant then
            column = pa.array([defaults[field.name]] * found.num_rows, field.type)
        else:  # written before the column existed
            column = pa.nulls(found.num_rows, field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=fields)


def decode(table: Table, data: bytes, partitions: dict[str, str], where: str) -> pa.Table:
    """A Parquet file of `table` in its current schema, partition column included."""
    return align(table, read(data, where), partitions)


def decode_file(table: Table, data: bytes, where: str) -> pa.Table:
    """A Parquet file of `table` in its current file schema (no partition column)."""
    return align(table, read(data, where))


def empty(table: Table) -> pa.Table:
    return table.schema().empty_table()


def to_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO string (any APS or Python form) or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return parse_timestamp(str(value))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:  # one odd value in a manifest must not stop the whole catalog
        log.warning("catalog: %r is not a timestamp; written as null", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
