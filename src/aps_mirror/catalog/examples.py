"""Example questions over the catalog, as DuckDB SQL: the demo, the example DAG and the docs
ask the same ones, so they stay runnable."""

from __future__ import annotations

from typing import Any

import duckdb

LARGEST_FILES = """
SELECT project_name, path, version_number, round(size / 1048576, 1) AS mib, modified_by
FROM files
WHERE status IN ('mirrored', 'outdated')
ORDER BY size DESC, path
LIMIT 10
"""

# What the latest run (the newest run_id in `events`) did, file by file.
CHANGED_IN_LATEST_RUN = """
WITH latest AS (SELECT run_id FROM events ORDER BY "at" DESC LIMIT 1)
SELECT action, project_name, path, version_number, size, reason
FROM events
WHERE run_id = (SELECT run_id FROM latest)
ORDER BY action, project_name, path
"""

# Docs and Vault side by side: what each source holds in the mirror.
FILES_BY_SOURCE = """
SELECT source, project_name, count(*) AS files, round(sum(size) / 1048576, 2) AS mib
FROM files
WHERE status IN ('mirrored', 'outdated')
GROUP BY ALL
ORDER BY source, project_name
"""

PROJECT_FRESHNESS = """
SELECT hub_name, project_name, files, bytes, last_run_status, last_success_at
FROM projects
ORDER BY hub_name, project_name
"""


def ask(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one query."""
    result = con.sql(sql)
    return list(result.columns), result.fetchall()


def format_rows(columns: list[str], rows: list[tuple[Any, ...]], empty: str = "(no rows)") -> str:
    """A plain-text table, for logs and terminals alike."""
    if not rows:
        return empty
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in text]
    return "\n".join(lines)
