"""The sync engine: list -> plan -> transfer -> commit, one project at a time.

Knows nothing of Airflow or the CLI; both drive it the same way:
`MirrorEngine(client, s3, config).list_projects()` then `.sync_project(ref)` for each.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Version
from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.catalog.records import CatalogEvent, CatalogSink, EventAction, ProjectRun
from aps_mirror.mirror.keys import object_key, safe_segment
from aps_mirror.mirror.manifest import (FolderRecord, Manifest, ManifestEntry, ManifestStore,
                                        meta_prefix, now_iso)
from aps_mirror.mirror.plan import Action, ActionKind, DeleteLimit, DeletePolicy, plan
from aps_mirror.mirror.progress import Progress, ProgressListener, human_bytes
from aps_mirror.mirror.transfer import NotDownloadable, Transferred, copy_version, server_side_copy
from aps_mirror.mirror.walk import (Listing, ProjectRef, RemoteFile, is_selected, list_projects,
                                    walk_project)

log = logging.getLogger(__name__)

__all__ = ["Counts", "MirrorConfig", "MirrorEngine", "ProjectRef", "ProjectResult", "RunSummary"]


# Stands for an empty `top_folders` in `MirrorConfig.selection`: before it, empty meant every
# top folder, so manifests of that time get a full walk once.
_DEFAULT_TOP_FOLDERS = "(default: Project Files in ACC and BIM 360 hubs, all in others)"


@dataclass(frozen=True)
class MirrorConfig:
    bucket: str
    prefix: str = "autodesk"
    dry_run: bool = False
    # Which projects: globs (fnmatch, case-insensitive) on the name or id of hubs and projects,
    # ids with or without their `b.` prefix; empty includes = all; an exclude wins over an include.
    project_filter: tuple[str, ...] = ()  # projects to include
    workers: int = 4  # parallel transfers per project
    # Rollups may miss deletes, moves and permission changes: list everything this often.
    full_walk_days: float = 7.0
    full_walk: bool = False  # list every folder this run, whatever the rollups say
    delete_policy: DeletePolicy = DeletePolicy.KEEP
    # "tip": the mirror holds each item's latest version. "all": also every earlier version,
    # under {project}/_versions/<folders>/<name>.v<N>.<ext> (see MirrorEngine._keep_versions).
    versions: str = "tip"
    max_delete: DeleteLimit = field(default_factory=lambda: DeleteLimit(percent=10.0))
    # Selection. Like rclone's filters, what is not selected is neither copied nor deleted.
    exclude_projects: tuple[str, ...] = ()
    hub_filter: tuple[str, ...] = ()  # hubs to include
    exclude_hubs: tuple[str, ...] = ()
    # Globs on top folder names (see walk.select_top_folders). Empty = the default: "Project
    # Files" only in ACC / BIM 360 hubs, every non-system top folder in other hubs (Fusion
    # Team, A360). ("*",) = every non-system top folder of every hub. ACC system folders
    # (Photos, issue_*, ...) only when a pattern not starting with a wildcard names them.
    top_folders: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # e.g. ("rvt", "dwg"); empty = every file
    exclude_extensions: tuple[str, ...] = ()
    max_file_size: int | None = None  # bytes

    @property
    def selection(self) -> str:
        """The filters that choose files inside a project, as one string, recorded in its
        manifest: a change forces a full walk, since pruned subtrees hide what it would select.

        The hub and project filters are not in it: they choose whole projects, and a project
        they select is walked the same whatever they are (a one-off run with a project filter
        must not cost a full walk the next night). The top folder default gets its own token.
        """
        return json.dumps([sorted(self.top_folders) or [_DEFAULT_TOP_FOLDERS],
                           sorted(e.casefold() for e in self.extensions),
                           sorted(e.casefold() for e in self.exclude_extensions), self.max_file_size]
                          + (["versions=all"] if self.versions == "all" else []))

    def selects_project(self, hub_name: str, hub_id: str, project_name: str, project_id: str) -> bool:
        """Whether the hub and project filters select this project."""
        return (is_selected(self.hub_filter, self.exclude_hubs, hub_name, hub_id)
                and is_selected(self.project_filter, self.exclude_projects, project_name, project_id))

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
    def __init__(self, client: ApsClient, s3: Any, config: MirrorConfig, *,
                 catalog: CatalogSink | None = None, run_id: str | None = None,
                 trigger: str = "cli", progress_listeners: Iterable[ProgressListener] = ()) -> None:
        self.client = client
        self.progress_listeners = tuple(progress_listeners)  # e.g. the CLI's progress bars
        self.s3 = s3
        self.config = config
        self.manifests = ManifestStore(s3, config.bucket, config.prefix)
        # Where each project's run record and events go (the catalog); None records nothing.
        self.catalog = catalog
        self.run_id = run_id or f"{trigger}__{now_iso()}"
        self.trigger = trigger

    def list_projects(self) -> list[ProjectRef]:
        """The projects the hub and project filters select."""
        config = self.config
        return list_projects(self.client, config.project_filter, exclude_projects=config.exclude_projects,
                             hub_filter=config.hub_filter, exclude_hubs=config.exclude_hubs)

    def retire_missing_projects(self, listed: list[ProjectRef]) -> list[ProjectResult]:
        """Apply the delete policy to mirrored projects Autodesk no longer lists.

        Only projects of hubs that were listed, and that the hub and project filters select,
        are retired: a hub missing altogether may be an unreachable region, not a deletion,
        and what the filters leave out is neither copied nor deleted.
        The same guards as for files apply (max_delete, dry run).
        """
        listed_ids = {p.project_id for p in listed}
        hub_names = {p.hub_id: p.hub_name for p in listed}
        results = []
        for manifest in self.manifests.load_all():
            if (manifest.project_id in listed_ids or manifest.hub_id not in hub_names
                    or not self.config.selects_project(hub_names[manifest.hub_id], manifest.hub_id,
                                                       manifest.project_name, manifest.project_id)):
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
                started = now_iso()
                segments = (list(manifest.root_segments) + ["", ""])[:2]
                ref = ProjectRef(hub_id=manifest.hub_id, hub_name=hub_names[manifest.hub_id],
                                 project_id=manifest.project_id, project_name=manifest.project_name,
                                 hub_segment=segments[0], project_segment=segments[1])
                events = _Events(self.run_id, ref)
                self._apply_deletes(manifest, gone, result, events)
                if result.files_deleted:
                    manifest.root_rollup = None
                    self.manifests.save(manifest)
                    self._finish_pending_deletes(manifest)
                if self.catalog is not None:
                    self._record_run(ref, result, events.rows, started, 0, None)
            results.append(result)
        return results

    def sync_project(self, project: ProjectRef) -> ProjectResult:
        """Mirror one project; the manifest records exactly what succeeded.

        The catalog gets the project's run record and events once the manifest is committed,
        and a `failed` record when the sync stops on an error (which is then raised).
        """
        counter = self.client.transport.counter
        calls_before, throttled_before = Counter(counter.snapshot()), Counter(counter.throttled_snapshot())
        result = ProjectResult(project=project.label, hub_id=project.hub_id,
                               project_id=project.project_id, dry_run=self.config.dry_run)
        started = now_iso()
        events = _Events(self.run_id, project)
        failure: Exception | None = None
        try:
            self._sync(project, result, events)
        except Exception as exc:
            failure = exc
            raise
        finally:
            calls = Counter(counter.snapshot())
            calls.subtract(calls_before)
            result.api_calls = {k: v for k, v in sorted(calls.items()) if v}
            throttled = Counter(counter.throttled_snapshot())
            throttled.subtract(throttled_before)
            if self.catalog is not None and not self.config.dry_run:
                self._record_run(project, result, events.rows, started, sum(throttled.values()), failure)
        return result

    def _sync(self, project: ProjectRef, result: ProjectResult, events: _Events) -> None:
        started = datetime.now(timezone.utc)
        manifest = self.manifests.load(project)
        manifest.hub_name = project.hub_name
        manifest.project_name = project.project_name
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
            for action in actions:  # unchanged files: keep Autodesk's metadata (names, locks) current
                if action.kind is ActionKind.SKIP and action.previous is not None:
                    _refresh_metadata(action.previous, action.remote)
            if self.config.versions == "all":  # items mirrored before versions=all: fetch their past
                work += [replace(a, kind=ActionKind.KEEP_VERSIONS, reason="keep earlier versions")
                         for a in actions if a.kind is ActionKind.SKIP and a.previous is not None
                         and not a.previous.versions_kept and (a.remote.version.version_number or 1) > 1]
            retry_later = self._execute(project, work, manifest, result, events)
            for item, reason in listing.unavailable:
                retry_later.add(item.id)
                folder_id, names = listing.unavailable_at.get(item.id, (None, ()))
                _mark_unavailable(manifest, item.id, reason, "/".join([*names, item.name]), item.tip, folder_id)
                events.add(EventAction.UNAVAILABLE, item.id, manifest.unavailable[item.id]["source_path"],
                           reason=reason, version=item.tip)
            if listing.full_walk and listing.complete:  # a full walk saw every selected item
                seen = {f.item.id for f in listing.files} | {i.id for i, _ in listing.unavailable}
                for item_id in set(manifest.unavailable) - seen:
                    del manifest.unavailable[item_id]
            self._apply_deletes(manifest, gone, result, events)
            # Folders to list again next run: where something failed, or deletes waited.
            folder_of = {f.item.id: f.folder_id for f in listing.files}
            recheck = {folder_of[i] for i in retry_later if folder_of.get(i)}
            if result.deletes_refused:
                recheck |= {manifest.items[i].folder_id for i in gone if manifest.items[i].folder_id}
            self._record_walk(manifest, listing, project, recheck, result, self.config.selection)
            self.manifests.save(manifest)
            self._finish_pending_deletes(manifest)

    def _record_run(self, project: ProjectRef, result: ProjectResult, events: list[CatalogEvent],
                    started: str, throttled: int, failure: Exception | None) -> None:
        """Send the project's run record and events to the catalog; never fails the sync."""
        if failure is not None:
            status = "failed"
        elif result.errors or result.files_failed:
            status = "partial"
        else:
            status = "success"
        errors = list(result.errors) + ([f"{type(failure).__name__}: {failure}"] if failure else [])
        run = ProjectRun(
            run_id=self.run_id, hub_id=project.hub_id, hub_name=project.hub_name,
            project_id=project.project_id, project_name=project.project_name,
            started_at=started, finished_at=now_iso(), status=status, trigger=self.trigger,
            full_walk=result.full_walk, listing_complete=result.listing_complete,
            api_calls=sum(result.api_calls.values()), api_calls_throttled=throttled,
            errors=errors, deletes_refused=result.deletes_refused,
            **{name: getattr(result, name) for name in _SUMMED},
        )
        try:
            self.catalog.record_project_run(run, events)  # type: ignore[union-attr]
        except Exception as exc:  # the mirror and manifest are right; only the record is missing
            log.warning("%s: could not write the run record to the catalog (%s); the mirror is "
                        "complete, the catalog's runs/events tables miss this run", project.label, exc)

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
                 result: ProjectResult, events: _Events) -> set[str]:
        """Run copies in parallel; record each success. Returns the items to retry next run."""
        retry_later: set[str] = set()
        if not work:
            return retry_later
        progress = Progress(project.label, len(work), sum(a.size for a in work), listeners=self.progress_listeners)
        with ThreadPoolExecutor(max_workers=self.config.workers,
                                thread_name_prefix="aps-mirror-copy") as pool:
            # Who holds each kept-version key, so a re-created item cannot overwrite another's.
            version_owners = {h["kept_key"]: item_id for item_id, e in manifest.items.items()
                              for h in e.history if h.get("kept_key")}
            futures = {pool.submit(self._run_action, project, a, progress, version_owners): a for a in work}
            for future in as_completed(futures):
                action = futures[future]
                item_id = action.remote.item.id
                try:
                    transferred, kept = future.result()
                except NotDownloadable as exc:
                    result.files_unavailable += 1
                    _mark_unavailable(manifest, item_id, str(exc), action.remote.source_path,
                                      action.remote.version, action.remote.folder_id)
                    events.add(EventAction.UNAVAILABLE, item_id, action.remote.source_path, reason=str(exc),
                               version=action.remote.version, key=action.key)
                    retry_later.add(item_id)
                    log.info("not downloadable: %s (%s)", action.remote.source_path, exc)
                    continue
                except Exception as exc:  # one file's failure must not stop the project
                    result.files_failed += 1
                    result.errors.append(f"{action.remote.source_path}: {exc}")
                    events.add(EventAction.FAILED, item_id, action.remote.source_path, reason=str(exc),
                               version=action.remote.version, key=action.key)
                    # The catalog lists it as skipped (or outdated) with why, until a copy succeeds.
                    _mark_unavailable(manifest, item_id, f"copy failed: {exc}", action.remote.source_path,
                                      action.remote.version, action.remote.folder_id)
                    retry_later.add(item_id)
                    log.error("failed: %s: %s", action.remote.source_path, exc)
                    continue
                finally:
                    progress.file_done()
                if action.kind is ActionKind.KEEP_VERSIONS:
                    action.previous.history = _entry(action, transferred, kept).history  # type: ignore[union-attr]
                    action.previous.versions_kept = True  # type: ignore[union-attr]
                    continue
                if action.kind is ActionKind.SERVER_COPY or transferred.reused:
                    result.files_renamed += 1
                else:
                    result.files_copied += 1
                    result.bytes_copied += transferred.size
                manifest.items[item_id] = _entry(action, transferred, kept)
                manifest.items[item_id].versions_kept = self.config.versions == "all"
                manifest.unavailable.pop(item_id, None)
                reason = action.reason
                if transferred.reused and action.kind is ActionKind.COPY:
                    reason += ": the same bytes as the mirrored version, copied inside S3 (no download)"
                events.add(_event_action(action, transferred), item_id, action.remote.source_path,
                           key=action.key, previous_key=action.previous.key if action.previous else None,
                           version=action.remote.version, size=transferred.size, reason=reason)
                if action.replaces_key:  # removed only after the manifest no longer needs it
                    manifest.pending_deletes.append(action.replaces_key)
        progress.finish()
        return retry_later

    def _run_action(self, project: ProjectRef, action: Action, progress: Progress,
                    version_owners: dict[str, str]) -> tuple[Transferred, dict[str, dict[str, Any]]]:
        """Do one action; with versions=all also keep earlier versions (version id -> record)."""
        previous = action.previous
        if action.kind is ActionKind.KEEP_VERSIONS and previous is not None:
            kept = self._keep_versions(project, action, version_owners, set())
            return Transferred(previous.size, previous.sha1 or "", reused=True), kept
        if action.kind is ActionKind.SERVER_COPY and previous is not None:
            server_side_copy(self.s3, self.config.bucket, previous.key, action.key, action.remote)
            progress.add_bytes(action.size)
            return Transferred(action.size, previous.sha1 or "", reused=True), {}
        log.debug("copy %s -> s3://%s/%s (%s)", action.remote.source_path, self.config.bucket,
                  action.key, action.reason)
        kept: dict[str, dict[str, Any]] = {}
        keep_all = self.config.versions == "all"
        if keep_all and previous is not None and not previous.deleted_at \
                and previous.version_id != action.remote.version.id:
            # Before the new tip overwrites it: the old tip is already in S3, copy it aside.
            key = self._version_key(project, action.remote, previous.version_number, previous.name,
                                    version_owners)
            self.s3.copy({"Bucket": self.config.bucket, "Key": previous.key}, self.config.bucket, key)
            kept[previous.version_id] = {"kept_key": key}
        mirrored = None
        if previous is not None and not previous.deleted_at and previous.sha1:
            mirrored = (previous.key, previous.size, previous.sha1)
        transferred = copy_version(self.client, self.s3, self.config.bucket, action.key, action.remote,
                                   on_bytes=progress.add_bytes, mirrored=mirrored)
        if keep_all:
            kept.update(self._keep_versions(project, action, version_owners, set(kept)))
        return transferred, kept

    def _keep_versions(self, project: ProjectRef, action: Action, version_owners: dict[str, str],
                       just_kept: set[str]) -> dict[str, dict[str, Any]]:
        """Copy the item's earlier versions the mirror does not hold yet (versions=all)."""
        remote, previous = action.remote, action.previous
        held = {h["version_id"] for h in previous.history if h.get("kept_key")} if previous else set()
        versions = list(self.client.item_versions(project.project_id, remote.item.id))
        created = {v.id: v.create_time or v.last_modified for v in versions}
        newer = {v.id: n for v, n in zip(versions[1:], versions)}  # newest first: the next one up
        kept: dict[str, dict[str, Any]] = {}
        for version in versions:
            if version.id == remote.version.id or version.id in held | just_kept:
                continue
            if version.is_tombstone or version.storage_location() is None:
                continue  # nothing to keep: a deletion marker, or no stored file
            key = self._version_key(project, remote, version.version_number, version.name, version_owners)
            try:
                done = copy_version(self.client, self.s3, self.config.bucket, key,
                                    replace(remote, version=version))
            except NotDownloadable as exc:
                log.info("version %s of %s not kept: %s", version.version_number, remote.source_path, exc)
                continue
            successor = newer.get(version.id)
            kept[version.id] = {
                "version_id": version.id, "version_number": version.version_number, "size": done.size,
                "sha1": done.sha1, "key": None, "kept_key": key, "source_path": remote.source_path,
                "modified_at": _iso(created[version.id]), "copied_at": now_iso(),
                "superseded_at": _iso(created.get(successor.id)) if successor else None,
            }
        return kept

    def _version_key(self, project: ProjectRef, remote: RemoteFile, number: int | None,
                     name: str | None, version_owners: dict[str, str]) -> str:
        """Where an earlier version is kept: `_versions/<folders>/<stem>.v<N><.ext>` in the project.

        An item deleted and re-created under the same name would reuse those keys, so a key
        another item already holds gets the new item's short id appended.
        """
        stem, dot, extension = safe_segment(name or remote.version.name).rpartition(".")
        if not stem:
            stem, dot, extension = extension, "", ""
        segment = f"{stem}.v{number or 0}{dot}{extension}"
        key = object_key(self.config.prefix, project.hub_segment, project.project_segment,
                         (VERSIONS_DIR, *remote.folder_segments), segment)
        if version_owners.get(key, remote.item.id) != remote.item.id:
            short = hashlib.sha1(remote.item.id.encode()).hexdigest()[:8]
            key = object_key(self.config.prefix, project.hub_segment, project.project_segment,
                             (VERSIONS_DIR, *remote.folder_segments), f"{stem}.v{number or 0}~{short}{dot}{extension}")
        return key

    # -- deleting ---------------------------------------------------------------------------
    def _apply_deletes(self, manifest: Manifest, gone: list[str], result: ProjectResult,
                       events: _Events | None = None) -> None:
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
            for item_id in gone if events is not None else ():
                entry = manifest.items[item_id]
                events.add(EventAction.DELETE_REFUSED, item_id, entry.source_path, key=entry.key,  # type: ignore[union-attr]
                           size=entry.size, reason=result.deletes_refused)
            return
        now = now_iso()
        for item_id in gone:
            entry = manifest.items[item_id]
            if policy is DeletePolicy.KEEP:
                entry.deleted_at = now
            else:
                held = [entry.key] + [h["kept_key"] for h in entry.history if h.get("kept_key")]
                for key in held if policy is DeletePolicy.TRASH else ():
                    trash_key = f"{meta_prefix(self.config.prefix)}/trash/{now[:10]}/{key}"
                    self.s3.copy({"Bucket": self.config.bucket, "Key": key}, self.config.bucket, trash_key)
                manifest.pending_deletes += held
                del manifest.items[item_id]
            log.info("%s %s: no longer in Autodesk", policy.value, entry.source_path)
            result.files_deleted += 1
            if events is not None:
                events.add(EventAction.TRASHED if policy is DeletePolicy.TRASH else EventAction.DELETED,
                           item_id, entry.source_path, key=entry.key, size=entry.size,
                           reason=_DELETE_REASONS[policy], version_id=entry.version_id,
                           version_number=entry.version_number)

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
        kept = manifest.subtree(listing.pruned | listing.unwalked_tops)  # unselected tops stay mirrored
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


VERSIONS_DIR = "_versions"  # earlier versions (versions=all), beside the project's top folders

_DELETE_REASONS = {
    DeletePolicy.KEEP: "no longer in Autodesk; policy keep: marked deleted, the object stays",
    DeletePolicy.TRASH: "no longer in Autodesk; policy trash: moved under the trash prefix",
    DeletePolicy.DELETE: "no longer in Autodesk; policy delete: removed from the mirror",
}


class _Events:
    """The catalog events of one project's sync, collected as it goes."""

    def __init__(self, run_id: str, project: ProjectRef) -> None:
        self.run_id = run_id
        self.project = project
        self.rows: list[CatalogEvent] = []

    def add(self, action: str, item_id: str, path: str, *, key: str | None = None,
            previous_key: str | None = None, version: Version | None = None,
            version_id: str | None = None, version_number: int | None = None,
            size: int | None = None, reason: str | None = None) -> None:
        self.rows.append(CatalogEvent(
            run_id=self.run_id, at=now_iso(), hub_id=self.project.hub_id,
            project_id=self.project.project_id, item_id=item_id, action=action, path=path,
            key=key, previous_key=previous_key,
            version_id=version.id if version else version_id,
            version_number=version.version_number if version else version_number,
            size=size if size is not None else (version.storage_size if version else None),
            reason=reason))


def _event_action(action: Action, transferred: Transferred) -> str:
    """Name what a successful action did, for the events table."""
    previous = action.previous
    if previous is None:
        return EventAction.COPIED
    if previous.deleted_at:
        return EventAction.RESTORED
    if previous.version_id != action.remote.version.id and not transferred.reused:
        return EventAction.NEW_VERSION
    if previous.key == action.key:
        return EventAction.NEW_VERSION  # same bytes, same place: only the version moved on
    return EventAction.RENAMED if previous.folder_id == action.remote.folder_id else EventAction.MOVED


def _mark_unavailable(manifest: Manifest, item_id: str, reason: str, source_path: str,
                      version: Version | None, folder_id: str | None = None) -> None:
    """Record why an item is not mirrored (kept until it is, or is gone), and since when."""
    before = manifest.unavailable.get(item_id) or {}
    manifest.unavailable[item_id] = {
        "reason": reason, "source_path": source_path, "folder_id": folder_id,
        "version_id": version.id if version else None,
        "version_number": version.version_number if version else None,
        "since": before.get("since") or now_iso(),
    }


def _refresh_metadata(entry: ManifestEntry, remote: RemoteFile) -> None:
    """Autodesk's metadata of an unchanged version can still change (a lock); keep it current."""
    item, version = remote.item, remote.version
    entry.name = version.name
    entry.file_type = version.file_type
    entry.created_at = _iso(item.create_time) or entry.created_at
    entry.created_by = item.create_user or entry.created_by
    entry.modified_at = _iso(version.last_modified or version.create_time) or entry.modified_at
    entry.modified_by = version.last_modified_user or version.create_user or entry.modified_by
    entry.reserved = item.reserved


def _entry(action: Action, transferred: Transferred,
           kept: dict[str, dict[str, Any]] | None = None) -> ManifestEntry:
    """The manifest entry for a version just mirrored; the one it replaces goes to history,
    with the key it is kept at when versions=all kept it."""
    kept = dict(kept or {})
    previous = action.previous
    history = [dict(h, **kept.pop(h["version_id"], {})) for h in (previous.history if previous else [])]
    if previous is not None and previous.version_id != action.remote.version.id:
        history.append({"version_id": previous.version_id, "version_number": previous.version_number,
                        "size": previous.size, "sha1": previous.sha1, "key": previous.key,
                        "kept_key": None, "source_path": previous.source_path,
                        "modified_at": previous.modified_at, "copied_at": previous.copied_at,
                        "superseded_at": now_iso(), **kept.pop(previous.version_id, {})})
    history += kept.values()  # earlier versions seen for the first time
    history.sort(key=lambda h: h.get("version_number") or 0)
    entry = _new_entry(action, transferred)
    entry.history = history
    _refresh_metadata(entry, action.remote)
    return entry


def _new_entry(action: Action, transferred: Transferred) -> ManifestEntry:
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
