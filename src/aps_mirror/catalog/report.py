"""The mirror's health in one summary: `aps-mirror report` and the Airflow dashboard show it.

Built with DuckDB SQL over the catalog tables (`projects`, `runs`, `events`, `verifications`),
the same views an analyst queries (see reader.connect), so the report and their queries agree.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from aps_mirror.catalog import reader
from aps_mirror.connection import DEFAULT_AWS_CONN_ID
from aps_mirror.mirror.progress import human_bytes
from aps_mirror.mirror.verify_report import CATEGORIES

OK, STALE, FAILING, NEVER = "ok", "stale", "failing", "never"
VERIFIED, FAULTS, UNVERIFIED = "verified", "faults", "unverified"
VERIFIED_FOR_DAYS = 8  # a weekly verification, with a day's slack
AUTODESK_CATEGORIES = ("outdated", "not_mirrored")  # counted only by a verification with --conn-id
VERIFY_DAG = "aps_mirror_verify"
ERRORS_KEPT = 20  # of what a verification could not check: the rest is in the catalog
ERRORS_SHOWN = 5  # of those, in the text report


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
    # The latest verification's faults in this project, by category ({}: it found none); None:
    # that verification did not check the project (or there is none).
    verify_faults: dict[str, int] | None = None


@dataclass
class Verification:
    """The mirror's latest `aps-mirror verify` (the catalog's `verifications`), and what it means."""

    status: str  # verified: clean and younger than VERIFIED_FOR_DAYS; faults: it found faults or
    #              could not check everything; unverified: none in the report's window, or too old
    summary: str  # the status in words
    advice: str | None  # what to do; None when verified
    verification_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    age_days: float | None = None  # days since it started
    deep: bool | None = None  # objects re-read and their SHA-1 checked
    sample: int | None = None  # deep on that many objects chosen at random; None: all (or not deep)
    against_autodesk: bool | None = None  # compared with a full walk of Autodesk (--conn-id)
    objects_checked: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    # Faults per category (verify_report.CATEGORIES); None: not checked (outdated and
    # not_mirrored need Autodesk).
    counts: dict[str, int | None] = field(default_factory=dict)
    unchecked: int = 0  # what could not be checked (its errors)
    errors: list[str] = field(default_factory=list)  # the first ERRORS_KEPT of those
    projects_checked: int = 0

    @property
    def faults(self) -> dict[str, int]:
        """The categories with faults, and how many."""
        return {c: n for c, n in self.counts.items() if n}


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
    verification: Verification | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.verification:
            data["verification"]["faults"] = self.verification.faults
        return data

    def format_text(self) -> str:
        """The report as plain text tables."""
        t = self.totals
        lines = [f"aps-mirror report for s3://{self.bucket}/{self.prefix.strip('/')} at {self.generated_at}",
                 f"{t['hubs']} hub(s), {t['projects']} project(s), {t['files']} files "
                 f"({human_bytes(t['bytes'])}), {t['unavailable']} not mirrored, "
                 f"{t['failing_projects']} failing project(s)"]
        lines += verification_lines(self.verification) if self.verification else []
        lines += ["", "Projects"]
        lines += text_table(*project_rows(self.projects))
        lines += ["", "Nights"] + (text_table(*night_rows(self.nights)) if self.nights else ["  no runs"])
        lines += ["", "Failures"] + (text_table(*failure_rows(self.failures)) if self.failures else ["  none"])
        return "\n".join(lines)


def build_report(s3: Any, bucket: str, prefix: str, *, stale_after_hours: float = 36, days: int = 30,
                 now: datetime | None = None, max_failures: int = 200,
                 aws_conn_id: str | None = None) -> CatalogReport:
    """The report over the catalog at s3://bucket/prefix: runs, events and verifications of the
    last `days`. `aws_conn_id` is the connection the reader used: the `aps-mirror verify` line
    the report advises names it."""
    now = now or datetime.now(timezone.utc)
    since = (now - timedelta(days=days)).date()
    con = reader.connect(s3, bucket, prefix, tables=("projects", "runs", "events", "verifications"),
                         since=since)
    try:
        projects = _projects(con, now, stale_after_hours)
        verification, by_project = _latest_verification(con, now, days, verify_command(bucket, prefix, aws_conn_id))
        for project in projects:
            project.verify_faults = by_project.get((project.hub_id, project.project_id))
        report = CatalogReport(
            generated_at=_iso(now), bucket=bucket, prefix=prefix, totals=_totals(projects),
            projects=projects, nights=_nights(con, since),
            failures=_failures(con, since, max_failures), verification=verification)
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


_LATEST_VERIFICATION_SQL = """
SELECT * FROM verifications
WHERE verification_id = (SELECT arg_max(verification_id, started_at) FROM verifications)
"""


def _latest_verification(con: duckdb.DuckDBPyConnection, now: datetime, days: int, command: str
                         ) -> tuple[Verification, dict[tuple[str, str], dict[str, int]]]:
    """The latest verification of the window (its rows: one per project checked, one for the
    rest), and each project's faults in it."""
    rows = _dicts(con.execute(_LATEST_VERIFICATION_SQL))
    if not rows:
        return Verification(
            UNVERIFIED, f"no verification recorded in the last {days} days", _verify_advice(command)), {}
    first = rows[0]
    checked_in_autodesk = bool(first["against_autodesk"])
    counts: dict[str, int | None] = {
        c: None if c in AUTODESK_CATEGORIES and not checked_in_autodesk else sum(int(r[c] or 0) for r in rows)
        for c in CATEGORIES}
    errors = [e for r in rows for e in (r["errors"] or [])]
    started = first["started_at"]
    age = (now - started).total_seconds() / 86400 if started else None
    v = Verification(
        UNVERIFIED, "", None, verification_id=first["verification_id"], started_at=_iso(started),
        finished_at=_iso(first["finished_at"]), age_days=round(age, 2) if age is not None else None,
        deep=bool(first["deep"]), sample=first["sample"], against_autodesk=checked_in_autodesk,
        objects_checked=sum(int(r["objects_checked"] or 0) for r in rows),
        objects_read=sum(int(r["objects_read"] or 0) for r in rows),
        bytes_read=sum(int(r["bytes_read"] or 0) for r in rows), counts=counts,
        unchecked=sum(int(r["error_count"] or 0) for r in rows), errors=errors[:ERRORS_KEPT],
        projects_checked=sum(r["project_id"] is not None for r in rows))
    old = age is not None and age >= VERIFIED_FOR_DAYS
    when = f"{_days(age)} ago" if age is not None else "at an unknown time"
    if not all(r["clean"] for r in rows):
        v.status = FAULTS
        found = [f"{c}: {n}" for c, n in v.faults.items()]
        found += [f"could not be checked: {v.unchecked}"] if v.unchecked else []
        v.summary = f"the latest verification, {when}, was not clean: {', '.join(found)}"
        again = (command + (f" --sample {v.sample}" if v.sample else " --deep" if v.deep else "")
                 + (" --conn-id AUTODESK_CONN_ID" if checked_in_autodesk else ""))
        v.advice = (f"For the list of faults, verify again with `{again} --json`, or read the log of the "
                    f"latest `{VERIFY_DAG}` DAG run (the catalog keeps them too: `verifications.findings`)."
                    + (f" It is older than {VERIFIED_FOR_DAYS} days: the mirror may have changed since."
                       if old else ""))
    elif old:
        v.summary = f"the latest verification, {when}, was clean, but is older than {VERIFIED_FOR_DAYS} days"
        v.advice = _verify_advice(command)
    else:
        v.status = VERIFIED
        v.summary = f"clean: {v.objects_checked:,} objects checked {when}"
    by_project = {(r["hub_id"], r["project_id"]): {c: int(r[c]) for c in CATEGORIES if r[c]}
                  for r in rows if r["project_id"] is not None}
    return v, by_project


def verify_command(bucket: str, prefix: str, aws_conn_id: str | None = None) -> str:
    """The `aps-mirror verify` line for this mirror."""
    connection = (f" --aws-conn-id {shlex.quote(aws_conn_id)}"
                  if aws_conn_id and aws_conn_id != DEFAULT_AWS_CONN_ID else "")
    return f"aps-mirror verify --bucket {shlex.quote(bucket)} --prefix {shlex.quote(prefix)}{connection}"


def _verify_advice(command: str) -> str:
    return (f"Verify it: `{command}` (add `--conn-id AUTODESK_CONN_ID` to compare with Autodesk, `--deep` "
            f"to re-read every object's bytes), or unpause the weekly `{VERIFY_DAG}` DAG.")


# -- rendering (plain text here; the CLI renders the same rows with rich) -----------------------
def verification_lines(v: Verification) -> list[str]:
    """The verification in a few lines of text: status, what was checked, counts, what to do."""
    lines = [f"Verification: {v.status}: {v.summary}"]
    if v.verification_id:
        lines.append(f"  latest: {v.started_at}, {verification_scope(v)}")
        lines.append("  " + ", ".join(f"{c}: {'not checked' if n is None else n}" for c, n in v.counts.items())
                     + (f"; could not be checked: {v.unchecked}" if v.unchecked else ""))
    lines += [f"  could not be checked: {_short(error, 200)}" for error in v.errors[:ERRORS_SHOWN]]
    if v.advice:
        lines.append(f"  what to do: {v.advice}")
    return lines


def verification_scope(v: Verification) -> str:
    """What the verification checked: objects, bytes re-read, Autodesk or not."""
    if not v.deep:
        how = "not deep (presence, size, metadata)"
    elif v.sample:
        how = f"deep on a sample of {v.sample} ({v.objects_read:,} re-read, {human_bytes(v.bytes_read)})"
    else:
        how = f"deep ({v.objects_read:,} re-read, {human_bytes(v.bytes_read)})"
    autodesk = "against Autodesk" if v.against_autodesk else "S3 only (not against Autodesk)"
    return f"{v.objects_checked:,} objects checked in {v.projects_checked} project(s), {how}, {autodesk}"


def project_verification(faults: dict[str, int] | None) -> str:
    """A project's part of the latest verification, in a table cell."""
    if faults is None:
        return "-"
    return ", ".join(f"{c}: {n}" for c, n in faults.items()) or "clean"

def project_rows(projects: list[ProjectStatus]) -> tuple[list[str], list[list[str]]]:
    headers = ["hub", "project", "status", "last success", "age (h)", "files", "size", "not mirrored",
               "verified", "last error"]
    rows = [[p.hub_name, p.project_name, p.status, p.last_success_at or "-",
             f"{p.freshness_hours:.1f}" if p.freshness_hours is not None else "-", str(p.files),
             human_bytes(p.bytes), str(p.unavailable), project_verification(p.verify_faults),
             _short(p.last_error)] for p in projects]
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


def _days(days: float) -> str:
    if days * 24 < 1:
        return "less than an hour"
    return f"{days * 24:.0f} h" if days < 2 else f"{days:.1f} days"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")
