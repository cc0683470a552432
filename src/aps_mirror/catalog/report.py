"""The mirror's health in one summary: `aps-mirror report` and the Airflow dashboard show it.

Built with DuckDB SQL over the catalog tables (`projects`, `runs`, `events`), the same views
an analyst queries (see reader.connect), so the report and their queries agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from aps_mirror.catalog import reader
from aps_mirror.mirror.progress import human_bytes

OK, STALE, FAILING, NEVER = "ok", "stale", "failing", "never"


@dataclass
class ProjectStatus:
    hub_id: str
    hub_name: str
    project_id: str
    project_name: str
    last_run_at: str | None  # when the latest run of the project finished (ISO 8601 UTC)
    last_success_at: str | None  # when the latest successful run finished
    freshness_hours: float | None  # hours since last_success_at
    status: str  # never: no run yet; failing: the latest run failed or partly failed;
    #              stale: no success for stale_after_hours; ok
    files: int  # files mirrored
    bytes: int
    unavailable: int  # files listed but not (or not currently) mirrored
    last_error: str | None


@dataclass
class NightlyChanges:
    day: str  # YYYY-MM-DD (UTC date the runs started)
    copied: int  # new files
    new_versions: int
    renamed: int
    moved: int
    deleted: int  # deleted or trashed
    failed: int  # files whose copy failed
    bytes_copied: int
    api_calls: int
    throttled: int  # API calls answered 429


@dataclass
class Failure:
    at: str  # ISO 8601 UTC
    hub_name: str
    project_name: str
    path: str | None  # the file, for kind file
    reason: str
    kind: str  # project: the project's sync failed; file: one file's copy failed


@dataclass
class CatalogReport:
    generated_at: str
    bucket: str
    prefix: str
    totals: dict[str, int]  # hubs, projects, files, bytes, unavailable, failing_projects
    projects: list[ProjectStatus] = field(default_factory=list)  # by hub, then project name
    nights: list[NightlyChanges] = field(default_factory=list)  # newest first, days with runs
    failures: list[Failure] = field(default_factory=list)  # newest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_text(self) -> str:
        """The report as plain text tables."""
        t = self.totals
        lines = [f"aps-mirror report for s3://{self.bucket}/{self.prefix.strip('/')} at {self.generated_at}",
                 f"{t['hubs']} hub(s), {t['projects']} project(s), {t['files']} files "
                 f"({human_bytes(t['bytes'])}), {t['unavailable']} not mirrored, "
                 f"{t['failing_projects']} failing project(s)", "", "Projects"]
        lines += text_table(*project_rows(self.projects))
        lines += ["", "Nights"] + (text_table(*night_rows(self.nights)) if self.nights else ["  no runs"])
        lines += ["", "Failures"] + (text_table(*failure_rows(self.failures)) if self.failures else ["  none"])
        return "\n".join(lines)


def build_report(s3: Any, bucket: str, prefix: str, *, stale_after_hours: float = 36, days: int = 30,
                 now: datetime | None = None, max_failures: int = 200) -> CatalogReport:
    """The report over the catalog at s3://bucket/prefix: runs and events of the last `days`."""
    now = now or datetime.now(timezone.utc)
    since = (now - timedelta(days=days)).date()
    con = reader.connect(s3, bucket, prefix, tables=("projects", "runs", "events"), since=since)
    try:
        projects = _projects(con, now, stale_after_hours)
        report = CatalogReport(
            generated_at=_iso(now), bucket=bucket, prefix=prefix, totals=_totals(projects),
            projects=projects, nights=_nights(con, since),
            failures=_failures(con, since, max_failures))
    finally:
        con.close()
    return report


_PROJECTS_SQL = """
WITH latest AS (
    SELECT hub_id, project_id,
           arg_max(hub_name, finished_at) AS hub_name,
           arg_max(project_name, finished_at) AS project_name,
           max(finished_at) AS last_run_at,
           arg_max(status, finished_at) AS last_status,
           arg_max(errors, finished_at) AS last_errors,
           max(finished_at) FILTER (WHERE status = 'success') AS last_success_at
    FROM runs WHERE status <> 'dry_run'
    GROUP BY hub_id, project_id
)
SELECT coalesce(p.hub_id, l.hub_id) AS hub_id,
       coalesce(l.hub_name, p.hub_name, '') AS hub_name,
       coalesce(p.project_id, l.project_id) AS project_id,
       coalesce(l.project_name, p.project_name, '') AS project_name,
       -- runs older than the window are known to the snapshot's last_run_* columns
       greatest(l.last_run_at, p.last_run_finished_at) AS last_run_at,
       greatest(l.last_success_at, p.last_success_at) AS last_success_at,
       CASE WHEN l.last_run_at IS NULL OR p.last_run_finished_at > l.last_run_at
            THEN p.last_run_status ELSE l.last_status END AS last_status,
       CASE WHEN l.last_run_at IS NULL OR p.last_run_finished_at > l.last_run_at
            THEN p.last_error ELSE l.last_errors[-1] END AS last_error,
       coalesce(p.files, 0) AS files, coalesce(p.bytes, 0) AS bytes,
       coalesce(p.skipped_files, 0) AS unavailable
FROM projects p FULL OUTER JOIN latest l ON p.hub_id = l.hub_id AND p.project_id = l.project_id
ORDER BY hub_name, hub_id, project_name, project_id
"""


def _projects(con: duckdb.DuckDBPyConnection, now: datetime, stale_after_hours: float) -> list[ProjectStatus]:
    statuses = []
    for row in _dicts(con.execute(_PROJECTS_SQL)):
        success = row["last_success_at"]
        freshness = (now - success).total_seconds() / 3600 if success else None
        if row["last_run_at"] is None:
            status = NEVER
        elif row["last_status"] in ("failed", "partial"):
            status = FAILING
        elif freshness is None or freshness > stale_after_hours:
            status = STALE
        else:
            status = OK
        statuses.append(ProjectStatus(
            hub_id=row["hub_id"], hub_name=row["hub_name"], project_id=row["project_id"],
            project_name=row["project_name"], last_run_at=_iso(row["last_run_at"]),
            last_success_at=_iso(success),
            freshness_hours=round(freshness, 2) if freshness is not None else None, status=status,
            files=int(row["files"]), bytes=int(row["bytes"]), unavailable=int(row["unavailable"]),
            last_error=row["last_error"] if status == FAILING else None))
    return statuses


def _totals(projects: list[ProjectStatus]) -> dict[str, int]:
    return {"hubs": len({p.hub_id for p in projects}), "projects": len(projects),
            "files": sum(p.files for p in projects), "bytes": sum(p.bytes for p in projects),
            "unavailable": sum(p.unavailable for p in projects),
            "failing_projects": sum(p.status == FAILING for p in projects)}


_NIGHTS_SQL = """
WITH r AS (
    SELECT run_date, sum(files_failed) AS failed, sum(bytes_copied) AS bytes_copied,
           sum(api_calls) AS api_calls, sum(api_calls_throttled) AS throttled
    FROM runs WHERE run_date >= $since AND status <> 'dry_run' GROUP BY run_date
), e AS (
    SELECT run_date,
           count(*) FILTER (WHERE action = 'copied') AS copied,
           count(*) FILTER (WHERE action = 'new_version') AS new_versions,
           count(*) FILTER (WHERE action = 'renamed') AS renamed,
           count(*) FILTER (WHERE action = 'moved') AS moved,
           count(*) FILTER (WHERE action IN ('deleted', 'trashed')) AS deleted
    FROM events WHERE run_date >= $since GROUP BY run_date
)
SELECT strftime(run_date, '%Y-%m-%d') AS day,
       coalesce(copied, 0) AS copied, coalesce(new_versions, 0) AS new_versions,
       coalesce(renamed, 0) AS renamed, coalesce(moved, 0) AS moved, coalesce(deleted, 0) AS deleted,
       coalesce(failed, 0) AS failed, coalesce(bytes_copied, 0) AS bytes_copied,
       coalesce(api_calls, 0) AS api_calls, coalesce(throttled, 0) AS throttled
FROM r FULL OUTER JOIN e USING (run_date)
ORDER BY run_date DESC
"""


def _nights(con: duckdb.DuckDBPyConnection, since: Any) -> list[NightlyChanges]:
    return [NightlyChanges(**{k: v if k == "day" else int(v) for k, v in row.items()})
            for row in _dicts(con.execute(_NIGHTS_SQL, {"since": since}))]


_FAILURES_SQL = """
SELECT * FROM (
    SELECT finished_at AS "at", hub_name, project_name, NULL AS path,
           coalesce(errors[-1], 'failed') AS reason, 'project' AS kind
    FROM runs WHERE run_date >= $since AND status = 'failed'
    UNION ALL
    SELECT "at", hub_name, project_name, path, coalesce(reason, 'failed') AS reason, 'file' AS kind
    FROM events WHERE run_date >= $since AND action = 'failed'
) ORDER BY "at" DESC, kind DESC, path LIMIT $limit
"""


def _failures(con: duckdb.DuckDBPyConnection, since: Any, limit: int) -> list[Failure]:
    return [Failure(at=_iso(row["at"]) or "", hub_name=row["hub_name"] or "",
                    project_name=row["project_name"] or "", path=row["path"], reason=row["reason"],
                    kind=row["kind"])
            for row in _dicts(con.execute(_FAILURES_SQL, {"since": since, "limit": limit}))]


# -- rendering (plain text here; the CLI renders the same rows with rich) -----------------------
def project_rows(projects: list[ProjectStatus]) -> tuple[list[str], list[list[str]]]:
    headers = ["hub", "project", "status", "last success", "age (h)", "files", "size", "not mirrored",
               "last error"]
    rows = [[p.hub_name, p.project_name, p.status, p.last_success_at or "-",
             f"{p.freshness_hours:.1f}" if p.freshness_hours is not None else "-", str(p.files),
             human_bytes(p.bytes), str(p.unavailable), _short(p.last_error)] for p in projects]
    return headers, rows


def night_rows(nights: list[NightlyChanges]) -> tuple[list[str], list[list[str]]]:
    headers = ["day", "copied", "new versions", "renamed", "moved", "deleted", "failed", "copied size",
               "API calls", "429s"]
    rows = [[n.day, str(n.copied), str(n.new_versions), str(n.renamed), str(n.moved), str(n.deleted),
             str(n.failed), human_bytes(n.bytes_copied), str(n.api_calls), str(n.throttled)]
            for n in nights]
    return headers, rows


def failure_rows(failures: list[Failure]) -> tuple[list[str], list[list[str]]]:
    headers = ["at", "kind", "hub", "project", "path", "reason"]
    rows = [[f.at, f.kind, f.hub_name, f.project_name, f.path or "-", _short(f.reason, 100)]
            for f in failures]
    return headers, rows


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    render = lambda cells: "  " + "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [render(headers), render(["-" * w for w in widths]), *map(render, rows)]


def _short(text: str | None, limit: int = 60) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")
