"""The sync engine: list -> plan -> transfer -> commit, one project at a time.

Knows nothing of Airflow or the CLI; both drive it the same way:
`MirrorEngine(client, s3, config).list_projects()` then `.sync_project(ref)` for each.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Iterable

from aps_mirror.aps.client import ApsClient
from aps_mirror.mirror.keys import object_key
from aps_mirror.mirror.manifest import ManifestEntry, ManifestStore
from aps_mirror.mirror.plan import Action, ActionKind, plan
from aps_mirror.mirror.progress import Progress, human_bytes
from aps_mirror.mirror.transfer import NotDownloadable, Transferred, copy_version, server_side_copy
from aps_mirror.mirror.walk import ProjectRef, list_projects, walk_project

log = logging.getLogger(__name__)

__all__ = ["Counts", "MirrorConfig", "MirrorEngine", "ProjectRef", "ProjectResult", "RunSummary"]


@dataclass(frozen=True)
class MirrorConfig:
    bucket: str
    prefix: str = "autodesk"
    dry_run: bool = False
    project_filter: tuple[str, ...] = ()
    workers: int = 4  # parallel transfers per project


@dataclass(kw_only=True)
class Counts:
    """What a sync did, file by file; adds up over projects."""

    files_listed: int = 0
    files_copied: int = 0
    files_renamed: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    files_unavailable: int = 0
    bytes_copied: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    planned: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SUMMED = ("files_listed", "files_copied", "files_renamed", "files_skipped", "files_failed",
           "files_unavailable", "bytes_copied")


@dataclass(kw_only=True)
class ProjectResult(Counts):
    """What one project's sync did; JSON-able for XCom and `--json`."""

    project: str
    hub_id: str
    project_id: str
    listing_complete: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectResult:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(kw_only=True)
class RunSummary(Counts):
    """A whole run, added up over its projects."""

    projects: int = 0
    projects_failed: int = 0

    @classmethod
    def combine(cls, results: Iterable[ProjectResult],
                extra_api_calls: dict[str, int] | None = None) -> RunSummary:
        summary = cls()
        calls: Counter[str] = Counter(extra_api_calls or {})
        for result in results:
            summary.projects += 1
            summary.projects_failed += bool(result.errors or result.files_failed)
            for name in _SUMMED:
                setattr(summary, name, getattr(summary, name) + getattr(result, name))
            calls.update(result.api_calls)
            summary.errors += [f"{result.project}: {e}" for e in result.errors]
            summary.dry_run = summary.dry_run or result.dry_run
            summary.planned += result.planned
        summary.api_calls = dict(sorted(calls.items()))
        return summary

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_calls_total"] = sum(self.api_calls.values())
        return data

    def format_text(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        copied = len(self.planned) if self.dry_run else self.files_copied
        size = sum(p["size"] for p in self.planned) if self.dry_run else self.bytes_copied
        lines = [
            f"{self.projects} project(s): {self.files_listed} files listed, {verb} {copied} "
            f"({human_bytes(size)}), {self.files_renamed} renamed/moved, "
            f"{self.files_skipped} unchanged, {self.files_unavailable} not downloadable, "
            f"{self.files_failed} failed; {sum(self.api_calls.values())} API calls",
        ]
        if self.errors:
            lines.append(f"{len(self.errors)} error(s); first: {self.errors[0]}")
        return "\n".join(lines)


class MirrorEngine:
    def __init__(self, client: ApsClient, s3: Any, config: MirrorConfig) -> None:
        self.client = client
        self.s3 = s3
        self.config = config
        self.manifests = ManifestStore(s3, config.bucket, config.prefix)

    def list_projects(self) -> list[ProjectRef]:
        return list_projects(self.client, self.config.project_filter)

    def sync_project(self, project: ProjectRef) -> ProjectResult:
        """Mirror one project; the manifest records exactly what succeeded."""
        counter = self.client.transport.counter
        calls_before = Counter(counter.snapshot())
        result = ProjectResult(project=project.label, hub_id=project.hub_id,
                               project_id=project.project_id, dry_run=self.config.dry_run)
        manifest = self.manifests.load(project)
        listing = walk_project(self.client, project)
        result.listing_complete = listing.complete
        result.errors += listing.errors
        result.files_listed = len(listing.files) + len(listing.unavailable)
        result.files_unavailable = len(listing.unavailable)
        for item, reason in listing.unavailable:
            log.info("not downloadable: %s (%s)", item.name, reason)

        keys = {f.item.id: object_key(self.config.prefix, project.hub_segment,
                                      project.project_segment, f.folder_segments, f.name_segment)
                for f in listing.files}
        actions = plan(listing.files, keys, manifest.items)
        work = [a for a in actions if a.kind is not ActionKind.SKIP]
        result.files_skipped = len(actions) - len(work)
        log.info("%s: %d files listed in %d folders; %d to copy (%s), %d unchanged",
                 project.label, result.files_listed, listing.folders, len(work),
                 human_bytes(sum(a.size for a in work)), result.files_skipped)

        if self.config.dry_run:
            result.planned = [{"action": a.kind.value, "key": a.key, "size": a.size,
                               "reason": a.reason} for a in work]
        else:
            changed = self._execute(project, work, manifest.items, result)
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if listing.complete:  # only a full listing proves an item is gone
                listed = {f.item.id for f in listing.files} | {i.id for i, _ in listing.unavailable}
                for item_id, entry in manifest.items.items():
                    if item_id not in listed and not entry.deleted_at:
                        entry.deleted_at = now
                        changed = True
            if changed or manifest.updated_at is None:
                self.manifests.save(manifest)
        after = Counter(counter.snapshot())
        after.subtract(calls_before)
        result.api_calls = {k: v for k, v in sorted(after.items()) if v}
        return result

    def _execute(self, project: ProjectRef, work: list[Action],
                 entries: dict[str, ManifestEntry], result: ProjectResult) -> bool:
        """Run copies in parallel; record each success in `entries`. True if any succeeded."""
        if not work:
            return False
        progress = Progress(project.label, len(work), sum(a.size for a in work))
        changed = False
        with ThreadPoolExecutor(max_workers=self.config.workers,
                                thread_name_prefix="aps-mirror-copy") as pool:
            futures = {pool.submit(self._run_action, a, progress): a for a in work}
            for future in as_completed(futures):
                action = futures[future]
                try:
                    transferred = future.result()
                except NotDownloadable as exc:
                    result.files_unavailable += 1
                    log.info("not downloadable: %s (%s)", action.remote.source_path, exc)
                    continue
                except Exception as exc:  # one file's failure must not stop the project
                    result.files_failed += 1
                    result.errors.append(f"{action.remote.source_path}: {exc}")
                    log.error("failed: %s: %s", action.remote.source_path, exc)
                    continue
                finally:
                    progress.file_done()
                if action.kind is ActionKind.SERVER_COPY:
                    result.files_renamed += 1
                else:
                    result.files_copied += 1
                    result.bytes_copied += transferred.size
                entries[action.remote.item.id] = _entry(action, transferred, entries.get(action.remote.item.id))
                changed = True
        progress.finish()
        return changed

    def _run_action(self, action: Action, progress: Progress) -> Transferred:
        if action.kind is ActionKind.SERVER_COPY and action.source_key:
            server_side_copy(self.s3, self.config.bucket, action.source_key, action.key, action.remote)
            progress.add_bytes(action.size)
            return Transferred(action.size, "")
        log.debug("copy %s -> s3://%s/%s (%s)", action.remote.source_path, self.config.bucket,
                  action.key, action.reason)
        return copy_version(self.client, self.s3, self.config.bucket, action.key, action.remote,
                            on_bytes=progress.add_bytes)


def _entry(action: Action, transferred: Transferred, previous: ManifestEntry | None) -> ManifestEntry:
    version = action.remote.version
    # A server-side copy moves bytes already verified: keep their checksum.
    sha1 = transferred.sha1 or (previous.sha1 if previous else None)
    return ManifestEntry(
        version_id=version.id,
        version_number=version.version_number,
        key=action.key,
        size=transferred.size,
        source_path=action.remote.source_path,
        sha1=sha1,
        copied_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
