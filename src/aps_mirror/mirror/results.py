"""What a sync did: counts per project (`ProjectResult`) and added up over a run (`RunSummary`).

JSON-able both ways, for XCom, `--json` and the catalog's run records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

from aps_mirror.catalog.records import FileCounts
from aps_mirror.mirror.progress import human_bytes


@dataclass(kw_only=True)
class Counts(FileCounts):
    """What a sync did, file by file; adds up over projects."""

    api_calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    planned: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)




@dataclass(kw_only=True)
class ProjectResult(Counts):
    """What one project's sync did; JSON-able for XCom and `--json`."""

    project: str
    hub_id: str
    project_id: str
    listing_complete: bool = True
    full_walk: bool = False
    deletes_refused: str | None = None  # why the delete policy did not run
    # Set by a scan (`MirrorEngine.scan_projects`): why the project needs a walk; None when the
    # scan found it unchanged (and this result is its whole night).
    needs_walk: str | None = None

    def after_scan(self, scan: ProjectResult) -> ProjectResult:
        """This sync's result with the calls of the scan that sent it, and why it was due."""
        calls = Counter(self.api_calls)
        calls.update(scan.api_calls)
        self.api_calls = dict(sorted(calls.items()))
        self.needs_walk = scan.needs_walk
        return self

    @classmethod
    def failed(cls, project: Any, error: BaseException, dry_run: bool = False) -> ProjectResult:
        """The result of a project whose sync stopped on an error."""
        return cls(project=project.label, hub_id=project.hub_id, project_id=project.project_id,
                   dry_run=dry_run, listing_complete=False, errors=[str(error) or type(error).__name__])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectResult:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(kw_only=True)
class RunSummary(Counts):
    """A whole run, added up over its projects."""

    projects: int = 0
    projects_failed: int = 0
    deletes_refused: str | None = None  # the first project's reason, when any refused

    @classmethod
    def combine(cls, results: Iterable[ProjectResult],
                extra_api_calls: dict[str, int] | None = None) -> RunSummary:
        summary = cls()
        calls: Counter[str] = Counter(extra_api_calls or {})
        for result in results:
            summary.projects += 1
            summary.projects_failed += bool(result.errors or result.files_failed)
            for name in FileCounts.counter_names():
                setattr(summary, name, getattr(summary, name) + getattr(result, name))
            calls.update(result.api_calls)
            summary.errors += [f"{result.project}: {e}" for e in result.errors]
            summary.dry_run = summary.dry_run or result.dry_run
            if result.deletes_refused and not summary.deletes_refused:
                summary.deletes_refused = f"{result.project}: {result.deletes_refused}"
            summary.planned += result.planned
        summary.api_calls = dict(sorted(calls.items()))
        return summary

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_calls_total"] = sum(self.api_calls.values())
        return data

    def format_text(self) -> str:
        copy_verb, deleted = (("would copy", f"would delete {self.files_deleted}") if self.dry_run
                              else ("copied", f"{self.files_deleted} deleted"))
        copies = [p for p in self.planned if not p["action"].startswith("delete")]
        copied = len(copies) if self.dry_run else self.files_copied
        size = sum(p["size"] for p in copies) if self.dry_run else self.bytes_copied
        lines = [
            f"{self.projects} project(s): {self.files_listed} files listed, {copy_verb} {copied} "
            f"({human_bytes(size)}), {self.files_renamed} renamed/moved, "
            f"{self.files_skipped} unchanged, {self.files_unavailable} not downloadable, "
            f"{deleted}, {self.files_failed} failed; "
            f"{self.folders_listed} folders listed, {self.folders_pruned} pruned; "
            f"{sum(self.api_calls.values())} API calls",
        ]
        if self.errors:
            lines.append(f"{len(self.errors)} error(s); first: {self.errors[0]}")
        if self.deletes_refused:
            lines.append(self.deletes_refused)
        return "\n".join(lines)
