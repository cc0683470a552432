"""What a sync run reports to the catalog: one row per project run, and its events.

The sync engine produces these; the catalog writer turns them into the `runs` and `events`
tables. Plain data, so the engine needs nothing of Parquet and the catalog nothing of the
engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol


class EventAction:
    """What happened to one item in one run (the `events.action` column)."""

    COPIED = "copied"  # new item, first mirrored
    NEW_VERSION = "new_version"  # a newer tip version replaced the mirrored one
    RENAMED = "renamed"  # same folder, new name: server-side copy, no download
    MOVED = "moved"  # another folder: server-side copy, no download
    RESTORED = "restored"  # was marked deleted, is back in Autodesk
    DELETED = "deleted"  # gone from Autodesk; with policy keep only marked, see `reason`
    TRASHED = "trashed"  # gone from Autodesk; moved under the trash prefix
    UNAVAILABLE = "unavailable"  # listed but not downloadable (reason says why); retried next run
    FAILED = "failed"  # the copy failed (reason says why); retried next run
    DELETE_REFUSED = "delete_refused"  # a guard kept it (reason says which)


@dataclass
class CatalogEvent:
    run_id: str
    at: str  # ISO 8601 UTC
    hub_id: str
    project_id: str
    item_id: str
    action: str  # an EventAction value
    path: str  # the path in Autodesk, folders/name
    key: str | None = None  # the S3 key it is (or was) mirrored at
    previous_key: str | None = None  # renamed/moved/new_version: the key it had before
    version_id: str | None = None
    version_number: int | None = None
    size: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class FileCounts:
    """What a project's sync did to its files and folders: the counters that add up over
    projects, shared by the engine's results and the catalog's `runs` table."""

    files_listed: int = 0
    files_copied: int = 0
    files_renamed: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    files_unavailable: int = 0
    files_deleted: int = 0  # marked deleted (keep), trashed or removed, by the delete policy
    files_excluded: int = 0  # listed but not selected by the file filters
    bytes_copied: int = 0
    folders_listed: int = 0
    folders_pruned: int = 0

    @classmethod
    def counter_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(FileCounts))

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.counter_names()}


@dataclass
class ProjectRun(FileCounts):
    """One project's part of one run (a row of the `runs` table)."""

    run_id: str
    hub_id: str
    hub_name: str
    project_id: str
    project_name: str
    started_at: str
    finished_at: str
    status: str  # success | partial (some files failed) | failed | dry_run
    trigger: str = "cli"  # cli | airflow
    full_walk: bool = False
    listing_complete: bool = True
    api_calls: int = 0
    api_calls_throttled: int = 0  # answered 429
    errors: list[str] = field(default_factory=list)
    deletes_refused: str | None = None
    source: str = "docs"  # the source of the project (docs or vault); its events carry it too

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CatalogSink(Protocol):
    """Where the engine sends each project's run record once the project is done."""

    def record_project_run(self, run: ProjectRun, events: list[CatalogEvent]) -> None: ...

    def record_project_runs(self, records: list[tuple[ProjectRun, list[CatalogEvent]]]) -> None:
        """Several projects' records at once (a scan's unchanged projects)."""
