"""The sync engine: list -> plan -> transfer -> commit, one project at a time.

Knows nothing of Airflow or the CLI; both drive it the same way:
`MirrorEngine(client, s3, config).list_projects()` then `.sync_project(ref)` for each.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.mirror.keys import object_key
from aps_mirror.mirror.manifest import (FolderRecord, Manifest, ManifestEntry, ManifestStore,
                                        meta_prefix, now_iso)
from aps_mirror.mirror.plan import Action, ActionKind, DeleteLimit, DeletePolicy, plan
from aps_mirror.mirror.progress import Progress, human_bytes
from aps_mirror.mirror.transfer import NotDownloadable, Transferred, copy_version, server_side_copy
from aps_mirror.mirror.walk import (Listing, ProjectRef, RemoteFile, list_projects, matches_filter,
                                    walk_project)

log = logging.getLogger(__name__)

__all__ = ["Counts", "MirrorConfig", "MirrorEngine", "ProjectRef", "ProjectResult", "RunSummary"]


@dataclass(frozen=True)
class MirrorConfig:
    bucket: str
    prefix: str = "autodesk"
    dry_run: bool = False
    project_filter: tuple[str, ...] = ()
    workers: int = 4  # parallel transfers per project
    # Rollups may miss deletes, moves and permission changes: list everything this often.
    full_walk_days: float = 7.0
    full_walk: bool = False  # list every folder this run, whatever the rollups say
    delete_policy: DeletePolicy = DeletePolicy.KEEP
    max_delete: DeleteLimit = field(default_factory=lambda: DeleteLimit(percent=10.0))
    # Selection. Like rclone's filters, what is not selected is neither copied nor deleted.
    top_folders: tuple[str, ...] = ()  # globs on top folder names; empty = all but ACC system ones
    extensions: tuple[str, ...] = ()  # e.g. ("rvt", "dwg"); empty = every file
    exclude_extensions: tuple[str, ...] = ()
    max_file_size: int | None = None  # bytes

    @property
    def selection(self) -> str:
        """The filters, as one string: pruned subtrees hide what a changed filter would select."""
        return json.dumps([sorted(self.top_folders), sorted(e.casefold() for e in self.extensions),
                           sorted(e.casefold() for e in self.exclude_extensions), self.max_file_size])

    def selects(self, remote: RemoteFile) -> bool:
        """Whether the file filters select this file (top folders are chosen by the walk)."""
        extension = remote.version.name.rpartition(".")[2].casefold() if "." in remote.version.name else ""
        if self.extensions and extension not in {e.lstrip(".").casefold() for e in self.extensions}:
            return False
        if extension and extension in {e.lstrip(".").casefold() for e in self.exclude_extensions}:
            return False
        size = remote.version.storage_size or 0
        return self.max_file_size is None or size <= self.max_file_size


@dataclass(kw_only=True)
class Counts:
    """What a sync did, file by file; adds up over projects."""

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
    api_calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    planned: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SUMMED = ("files_listed", "files_copied", "files_renamed", "files_skipped", "files_failed",
           "files_unavailable", "files_deleted", "files_excluded", "bytes_copied", "folders_listed",
           "folders_pruned")


@dataclass(kw_only=True)
class ProjectResult(Counts):
    """What one project's sync did; JSON-able for XCom and `--json`."""

    project: str
    hub_id: str
    project_id: str
    listing_complete: bool = True
    full_walk: bool = False
    deletes_refused: str | None = None  # why the delete policy did not run

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
            for name in _SUMMED:
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
        verb = "would copy" if self.dry_run else "copied"
        copied = len(self.planned) if self.dry_run else self.files_copied
        size = sum(p["size"] for p in self.planned) if self.dry_run else self.bytes_copied
        lines = [
            f"{self.projects} project(s): {self.files_listed} files listed, {verb} {copied} "
            f"({human_bytes(size)}), {self.files_renamed} renamed/moved, "
            f"{self.files_skipped} unchanged, {self.files_unavailable} not downloadable, "
            f"{self.files_deleted} deleted, {self.files_failed} failed; "
            f"{self.folders_listed} folders listed, {self.folders_pruned} pruned; "
            f"{sum(self.api_calls.values())} API calls",
        ]
        if self.errors:
            lines.append(f"{len(self.errors)} error(s); first: {self.errors[0]}")
        if self.deletes_refused:
            lines.append(self.deletes_refused)
        return "\n".join(lines)


class MirrorEngine:
    def __init__(self, client: ApsClient, s3: Any, config: MirrorConfig) -> None:
        self.client = client
        self.s3 = s3
        self.config = config
        self.manifests = ManifestStore(s3, config.bucket, config.prefix)

    def list_projects(self) -> list[ProjectRef]:
        return list_projects(self.client, self.config.project_filter)

    def retire_missing_projects(self, listed: list[ProjectRef]) -> list[ProjectResult]:
        """Apply the delete policy to mirrored projects Autodesk no longer lists.

        Only projects of hubs that were listed, and that the project filter selects, are
        retired: a hub missing altogether may be an unreachable region, not a deletion.
        The same guards as for files apply (max_delete, dry run).
        """
        listed_ids = {p.project_id for p in listed}
        hubs = {p.hub_id for p in listed}
        results = []
        for manifest in self.manifests.load_all():
            if (manifest.project_id in listed_ids or manifest.hub_id not in hubs
                    or not matches_filter(self.config.project_filter, manifest.project_name, manifest.project_id)):
                continue
            gone = sorted(i for i, e in manifest.items.items() if not e.deleted_at)
            if not gone:
                continue
            result = ProjectResult(project=f"{manifest.project_name} (no longer in Autodesk)",
                                   hub_id=manifest.hub_id, project_id=manifest.project_id,
                                   dry_run=self.config.dry_run)
            log.warning("project %r is no longer listed in Autodesk: %s policy for its %d files",
                        manifest.project_name, self.config.delete_policy.value, len(gone))
            if self.config.dry_run:
                result.planned = [{"action": f"delete ({self.config.delete_policy.value})",
                                   "key": manifest.items[i].key, "size": manifest.items[i].size,
                                   "reason": "project no longer in Autodesk"} for i in gone]
            else:
                self._apply_deletes(manifest, gone, result)
                if result.files_deleted:
                    manifest.root_rollup = None
                    self.manifests.save(manifest)
                    self._finish_pending_deletes(manifest)
            results.append(result)
        return results

    def sync_project(self, project: ProjectRef) -> ProjectResult:
        """Mirror one project; the manifest records exactly what succeeded."""
        counter = self.client.transport.counter
        calls_before = Counter(counter.snapshot())
        result = ProjectResult(project=project.label, hub_id=project.hub_id,
                               project_id=project.project_id, dry_run=self.config.dry_run)
        started = datetime.now(timezone.utc)
        manifest = self.manifests.load(project)
        if not self.config.dry_run:
            self._finish_pending_deletes(manifest)
            self._abort_stale_uploads(project, started)
        full_walk = self._full_walk_due(manifest, project)
        listing = walk_project(self.client, project, manifest, parse_timestamp(manifest.root_rollup),
                               full_walk=full_walk, top_folders=self.config.top_folders)
        excluded = [f for f in listing.files if not self.config.selects(f)]
        if excluded:
            listing.files = [f for f in listing.files if self.config.selects(f)]
            result.files_excluded = len(excluded)
        result.full_walk = listing.full_walk
        result.listing_complete = listing.complete
        result.errors += listing.errors
        result.folders_listed = listing.folders_listed
        covered = self._covered_items(manifest, listing) | {f.item.id for f in excluded}
        result.folders_pruned = len(manifest.subtree(listing.pruned)) if listing.pruned else 0
        result.files_listed = len(listing.files) + len(listing.unavailable) + len(excluded)
        result.files_unavailable = len(listing.unavailable)
        for item, reason in listing.unavailable:
            log.info("not downloadable: %s (%s)", item.name, reason)

        keys = {f.item.id: object_key(self.config.prefix, project.hub_segment,
                                      project.project_segment, f.folder_segments, f.name_segment)
                for f in listing.files}
        actions = plan(listing.files, keys, manifest.items)
        work = [a for a in actions if a.kind is not ActionKind.SKIP]
        result.files_skipped = len(actions) - len(work) + len(covered)
        if not listing.project_unchanged:
            log.info("%s: %d files listed in %d folders (%d pruned); %d to copy (%s), %d unchanged",
                     project.label, result.files_listed, listing.folders_listed,
                     result.folders_pruned, len(work), human_bytes(sum(a.size for a in work)),
                     result.files_skipped)
        gone = self._gone_items(manifest, listing, covered)

        if self.config.dry_run:
            result.planned = [{"action": a.kind.value, "key": a.key, "size": a.size,
                               "reason": a.reason} for a in work]
            result.planned += [{"action": f"delete ({self.config.delete_policy.value})",
                                "key": manifest.items[i].key, "size": manifest.items[i].size,
                                "reason": "no longer in Autodesk"} for i in gone]
        elif not listing.project_unchanged:
            retry_later = self._execute(project, work, manifest, result)
            retry_later |= {item.id for item, _ in listing.unavailable}
            self._apply_deletes(manifest, gone, result)
            # Folders to list again next run: where something failed, or deletes waited.
            folder_of = {f.item.id: f.folder_id for f in listing.files}
            recheck = {folder_of[i] for i in retry_later if folder_of.get(i)}
            if result.deletes_refused:
                recheck |= {manifest.items[i].folder_id for i in gone if manifest.items[i].folder_id}
            self._record_walk(manifest, listing, project, recheck, result, self.config.selection)
            self.manifests.save(manifest)
            self._finish_pending_deletes(manifest)
        after = Counter(counter.snapshot())
        after.subtract(calls_before)
        result.api_calls = {k: v for k, v in sorted(after.items()) if v}
        return result

    # -- deciding what the walk covers -------------------------------------------------------
    def _full_walk_due(self, manifest: Manifest, project: ProjectRef) -> bool:
        if self.config.full_walk or not manifest.last_full_walk:
            return True
        if manifest.root_segments != [project.hub_segment, project.project_segment]:
            return True  # hub or project renamed: every key moves
        if manifest.selection != self.config.selection:
            return True  # other filters: pruned subtrees may hold newly selected files
        age = datetime.now(timezone.utc) - datetime.fromisoformat(manifest.last_full_walk)
        return age >= timedelta(days=self.config.full_walk_days)

    @staticmethod
    def _covered_items(manifest: Manifest, listing: Listing) -> set[str]:
        """Items the walk did not need to see: in pruned subtrees, or the whole project."""
        if listing.project_unchanged:
            return {i for i, e in manifest.items.items() if not e.deleted_at}
        folders = manifest.subtree(listing.pruned | listing.unwalked_tops)
        return {i for i, e in manifest.items.items() if e.folder_id in folders and not e.deleted_at}

    @staticmethod
    def _gone_items(manifest: Manifest, listing: Listing, covered: set[str]) -> list[str]:
        """Mirrored items that a complete walk proved are no longer in Autodesk."""
        if listing.project_unchanged or not listing.complete:
            return []
        seen = {f.item.id for f in listing.files} | {i.id for i, _ in listing.unavailable}
        return sorted(i for i, e in manifest.items.items()
                      if i not in seen and i not in covered and not e.deleted_at)

    # -- transferring -----------------------------------------------------------------------
    def _execute(self, project: ProjectRef, work: list[Action], manifest: Manifest,
                 result: ProjectResult) -> set[str]:
        """Run copies in parallel; record each success. Returns the items to retry next run."""
        retry_later: set[str] = set()
        if not work:
            return retry_later
        progress = Progress(project.label, len(work), sum(a.size for a in work))
        with ThreadPoolExecutor(max_workers=self.config.workers,
                                thread_name_prefix="aps-mirror-copy") as pool:
            futures = {pool.submit(self._run_action, a, progress): a for a in work}
            for future in as_completed(futures):
                action = futures[future]
                item_id = action.remote.item.id
                try:
                    transferred = future.result()
                except NotDownloadable as exc:
                    result.files_unavailable += 1
                    manifest.unavailable[item_id] = str(exc)
                    retry_later.add(item_id)
                    log.info("not downloadable: %s (%s)", action.remote.source_path, exc)
                    continue
                except Exception as exc:  # one file's failure must not stop the project
                    result.files_failed += 1
                    result.errors.append(f"{action.remote.source_path}: {exc}")
                    retry_later.add(item_id)
                    log.error("failed: %s: %s", action.remote.source_path, exc)
                    continue
                finally:
                    progress.file_done()
                if action.kind is ActionKind.SERVER_COPY or transferred.reused:
                    result.files_renamed += 1
                else:
                    result.files_copied += 1
                    result.bytes_copied += transferred.size
                manifest.items[item_id] = _entry(action, transferred)
                manifest.unavailable.pop(item_id, None)
                if action.replaces_key:  # removed only after the manifest no longer needs it
                    manifest.pending_deletes.append(action.replaces_key)
        progress.finish()
        return retry_later

    def _run_action(self, action: Action, progress: Progress) -> Transferred:
        previous = action.previous
        if action.kind is ActionKind.SERVER_COPY and previous is not None:
            server_side_copy(self.s3, self.config.bucket, previous.key, action.key, action.remote)
            progress.add_bytes(action.size)
            return Transferred(action.size, previous.sha1 or "", reused=True)
        log.debug("copy %s -> s3://%s/%s (%s)", action.remote.source_path, self.config.bucket,
                  action.key, action.reason)
        mirrored = None
        if previous is not None and not previous.deleted_at and previous.sha1:
            mirrored = (previous.key, previous.size, previous.sha1)
        return copy_version(self.client, self.s3, self.config.bucket, action.key, action.remote,
                            on_bytes=progress.add_bytes, mirrored=mirrored)

    # -- deleting ---------------------------------------------------------------------------
    def _apply_deletes(self, manifest: Manifest, gone: list[str], result: ProjectResult) -> None:
        """Apply the delete policy to items gone from Autodesk, unless a guard says no."""
        if not gone:
            return
        policy = self.config.delete_policy
        if result.errors or result.files_failed:
            # rclone's rule: after any error the listing may be wrong, so delete nothing.
            result.deletes_refused = (f"not deleting {len(gone)} file(s): this run had "
                                      f"{len(result.errors) or result.files_failed} error(s)")
        elif policy is not DeletePolicy.KEEP:
            live = sum(1 for e in manifest.items.values() if not e.deleted_at)
            refusal = self.config.max_delete.refuses(len(gone), live)
            if refusal:
                result.deletes_refused = (f"not deleting: {refusal}; if this is expected, raise "
                                          "max_delete or run with delete_policy=keep")
        if result.deletes_refused:
            log.warning("%s: %s", result.project, result.deletes_refused)
            return
        now = now_iso()
        for item_id in gone:
            entry = manifest.items[item_id]
            if policy is DeletePolicy.KEEP:
                entry.deleted_at = now
            else:
                if policy is DeletePolicy.TRASH:
                    trash_key = f"{meta_prefix(self.config.prefix)}/trash/{now[:10]}/{entry.key}"
                    self.s3.copy({"Bucket": self.config.bucket, "Key": entry.key},
                                 self.config.bucket, trash_key)
                manifest.pending_deletes.append(entry.key)
                del manifest.items[item_id]
            log.info("%s %s: no longer in Autodesk", policy.value, entry.source_path)
            result.files_deleted += 1

    def _finish_pending_deletes(self, manifest: Manifest) -> None:
        """Remove the objects the committed manifest no longer references (journalled)."""
        if not manifest.pending_deletes:
            return
        still_used = manifest.referenced_keys()
        for key in sorted(set(manifest.pending_deletes) - still_used):
            self.s3.delete_object(Bucket=self.config.bucket, Key=key)
            log.debug("removed s3://%s/%s", self.config.bucket, key)
        manifest.pending_deletes = []
        self.manifests.save(manifest)

    def _abort_stale_uploads(self, project: ProjectRef, started: datetime) -> None:
        """Abort multipart uploads a killed run left under this project (invisible, but billed).

        One run at a time works on a project (max_active_runs=1; conditional manifest writes
        catch the rest), so an upload begun before this run started belongs to a dead one.
        """
        root = object_key(self.config.prefix, project.hub_segment, project.project_segment, (), "")
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.config.bucket, Prefix=root)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < started:
                    self.s3.abort_multipart_upload(Bucket=self.config.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
                    log.info("aborted an unfinished upload of %s left by an interrupted run", upload["Key"])

    # -- remembering the walk ---------------------------------------------------------------
    @staticmethod
    def _record_walk(manifest: Manifest, listing: Listing, project: ProjectRef,
                     recheck: set[str], result: ProjectResult, selection: str) -> None:
        """Keep each folder's rollup for the next walk, except on the way to anything left to
        do (`recheck`): those folders must be listed again, so their rollup is forgotten."""
        dirty: set[str] = set()
        for start in recheck:
            folder_id: str | None = start
            while folder_id and folder_id not in dirty:
                dirty.add(folder_id)
                walked = listing.folders.get(folder_id)
                folder_id = walked.parent_id if walked else None
        if listing.errors:  # a folder could not be listed: list every folder next time
            dirty.update(listing.folders)
        kept = manifest.subtree(listing.pruned)
        manifest.folders = {fid: rec for fid, rec in manifest.folders.items() if fid in kept}
        for folder in listing.folders.values():
            if folder.id in listing.pruned:
                continue
            rollup = None if folder.id in dirty else _iso(folder.rollup)
            manifest.folders[folder.id] = FolderRecord(rollup, list(folder.segments),
                                                       list(folder.names), folder.parent_id)
        clean = not dirty and listing.complete and not result.files_failed and not result.deletes_refused
        manifest.root_rollup = _iso(listing.root_rollup) if clean else None
        manifest.root_segments = [project.hub_segment, project.project_segment]
        manifest.selection = selection
        if listing.full_walk and listing.complete:
            manifest.last_full_walk = now_iso()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _entry(action: Action, transferred: Transferred) -> ManifestEntry:
    version = action.remote.version
    return ManifestEntry(
        version_id=version.id,
        version_number=version.version_number,
        key=action.key,
        size=transferred.size,
        source_path=action.remote.source_path,
        sha1=transferred.sha1 or None,
        copied_at=now_iso(),
        folder_id=action.remote.folder_id,
    )
