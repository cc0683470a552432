"""The sync engine: list -> plan -> transfer -> commit, one project (scope) at a time.

Knows nothing of Airflow or the CLI; both drive it the same way:
`MirrorEngine(client, s3, config).list_projects()` then `.sync_project(ref)` for each.
What it mirrors comes from its sources (`sources.Source`: an APS client stands for the Autodesk
Docs source), through their neutral records only.
Every key it writes or deletes comes from the project's `ProjectKeys` and is checked there.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from aps_mirror.catalog.records import CatalogEvent, CatalogSink, EventAction, ProjectRun
from aps_mirror.errors import ConfigError, s3_write
from aps_mirror.mirror.adoption import RecordedTip, Strays
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.events import DELETE_REASONS, ProjectEvents, event_action
from aps_mirror.mirror.keys import VERSIONS_DIR, KeySpaceViolation, ProjectKeys
from aps_mirror.mirror.lease import MirrorLease
from aps_mirror.mirror.manifest import Manifest, ManifestStore, now_iso
from aps_mirror.mirror.mirror_record import MirrorRecord, SegmentTaken
from aps_mirror.mirror.plan import Action, ActionKind, DeletePolicy, plan
from aps_mirror.mirror.progress import Progress, ProgressListener, human_bytes
from aps_mirror.mirror.protection import copy_args, retained_until, tagging
from aps_mirror.mirror.results import Counts, ProjectResult, RunSummary
from aps_mirror.mirror.sources import Source
from aps_mirror.mirror.sources.docs import DocsSource
from aps_mirror.mirror.sources.records import ProjectRef
from aps_mirror.mirror.transfer import NotDownloadable, Transferred, copy_version, server_side_copy
from aps_mirror.mirror.versions import VersionKeeper
from aps_mirror.threads import ContextThreadPool

if TYPE_CHECKING:
    from aps_mirror.aps.client import ApsClient

log = logging.getLogger(__name__)

__all__ = ["Counts", "MirrorConfig", "MirrorEngine", "ProjectRef", "ProjectResult", "RunSummary",
           "VERSIONS_DIR"]


class MirrorEngine:
    def __init__(self, sources: Source | Mapping[str, Source] | ApsClient, s3: Any, config: MirrorConfig, *,
                 catalog: CatalogSink | None = None, run_id: str | None = None,
                 trigger: str = "cli", progress_listeners: Iterable[ProgressListener] = ()) -> None:
        # Source name -> source: each scope is listed, walked and downloaded by its own.
        self.sources = _sources_by_name(sources)
        self.progress_listeners = tuple(progress_listeners)  # e.g. the CLI's progress bars
        self.config = config
        self.s3 = config.protection.install(s3)  # every request of the run carries the protection
        self.manifests = ManifestStore(s3, config.bucket, config.prefix)
        # Where each project's run record and events go (the catalog); None records nothing.
        self.catalog = catalog
        self.run_id = run_id or f"{trigger}__{now_iso()}"
        self.trigger = trigger
        self.lease: MirrorLease | None = None  # while `locked()` holds the prefix

    @contextmanager
    def locked(self, wait_seconds: float = 0.0, *, break_lock: bool = False) -> Iterator[MirrorEngine]:
        """Hold the mirror prefix's lease while the block runs (one run at a time per prefix).

        Processes of one run (an Airflow DAG run's tasks) share it through the run id. Another
        run's live lease makes this wait up to `wait_seconds`, then raise MirrorLocked naming it;
        `break_lock` first releases a lease an operator knows to be dead. A dry run writes
        nothing and takes no lease.
        """
        if self.config.dry_run:
            yield self
            return
        self.config.protection.check_bucket(self.s3, self.config.bucket)  # before the first write
        lease = MirrorLease(self.s3, self.config.bucket, self.config.prefix, holder=self.run_id,
                            command=f"aps-mirror {self.trigger} run {self.run_id}")
        if break_lock:
            lease.break_lock()
        with lease.hold(wait_seconds):
            self.lease = lease
            try:
                yield self
            finally:
                self.lease = None

    @contextmanager
    def _leased(self) -> Iterator[None]:
        """Every writing entry point runs under the prefix's lease: the one `locked()` holds, or
        one taken for the call, so no caller can write beside another run."""
        if self.lease is not None or self.config.dry_run:
            yield
            return
        with self.locked(self.config.lock_wait_seconds):
            yield

    def _check_lease(self) -> None:
        """Before a commit: a run that lost its lease must not write over the next holder's."""
        if self.lease is not None:
            self.lease.check()

    def list_projects(self) -> list[ProjectRef]:
        """The projects (scopes) each source's filters select, with the key segments they hold.

        The prefix's record (`_aps_mirror/mirror.json`) must belong to this account (else a
        ConfigError, unless `allow_other_account`); it pins every hub's and project's segment,
        so a newcomer never takes one, and a rename's former segment stays the project's own.
        """
        with self._leased():
            return self._list_projects()

    def _list_projects(self) -> list[ProjectRef]:
        config = self.config
        for attempt in range(3):
            record = MirrorRecord.load(self.s3, config.bucket, config.prefix)
            refs = [ref for source in self.sources.values()
                    for ref in source.list_scopes(config, record, self.manifests)]
            if config.dry_run:
                break
            try:
                record.save()
                break
            except SegmentTaken:  # another process recorded a segment meanwhile: decide again
                if attempt == 2:
                    raise
        return [replace(ref, former_segments=tuple(
            (hub, project) for hub in [ref.hub_segment, *record.former_segments("hub", ref.hub_id)]
            for project in [ref.project_segment, *record.former_segments("project", ref.project_id)]
            if (hub, project) != (ref.hub_segment, ref.project_segment))) for ref in refs]

    def _source(self, scope: ProjectRef) -> Source:
        """The source that lists and serves `scope`."""
        try:
            return self.sources[scope.source]
        except KeyError:
            raise ConfigError(f"{scope.label} comes from source {scope.source!r}, which this run does not "
                              f"have (it has {', '.join(sorted(self.sources))})") from None

    def keys_for(self, project: ProjectRef) -> ProjectKeys:
        return ProjectKeys(self.config.prefix, project.hub_segment, project.project_segment,
                           project.former_segments)

    def retire_missing_projects(self, listed: list[ProjectRef],
                                results: Iterable[ProjectResult | None]) -> list[ProjectResult]:
        """Apply the delete policy to mirrored projects Autodesk no longer lists.

        Only after a clean run (`results`: every listed project's, none with an error; rclone's
        rule: after any error the listing may be wrong), only projects of hubs that were listed,
        and that the hub and project filters select: a hub missing altogether may be an
        unreachable region, not a deletion, and what the filters leave out is neither copied
        nor deleted. The same guards as for files apply (max_delete, dry run).
        """
        with self._leased():
            return self._retire_missing_projects(listed, list(results))

    def _retire_missing_projects(self, listed: list[ProjectRef], results: list[ProjectResult | None]) -> list[ProjectResult]:
        unclean = len(listed) - sum(1 for r in results if r is not None and not r.errors and not r.files_failed)
        if unclean:
            log.warning("not retiring projects gone from Autodesk: %d of %d project sync(s) did not "
                        "finish cleanly this run", unclean, len(listed))
            return []
        listed_ids = {p.project_id for p in listed}
        hub_names = {p.hub_id: p.hub_name for p in listed}
        retired = []
        for manifest in self.manifests.load_all(except_for=listed):
            if (manifest.project_id in listed_ids or manifest.hub_id not in hub_names
                    or not self.config.selects_project(hub_names[manifest.hub_id], manifest.hub_id,
                                                       manifest.project_name, manifest.project_id)):
                continue
            gone = sorted(i for i, e in manifest.items.items() if not e.deleted_at)
            if not gone or len(manifest.root_segments) != 2:
                continue
            result = ProjectResult(project=f"{manifest.project_name} (no longer in Autodesk)",
                                   hub_id=manifest.hub_id, project_id=manifest.project_id,
                                   dry_run=self.config.dry_run)
            log.warning("project %r is no longer listed in Autodesk: %s policy for its %d files",
                        manifest.project_name, self.config.delete_policy.value, len(gone))
            ref = ProjectRef(hub_id=manifest.hub_id, hub_name=hub_names[manifest.hub_id],
                             project_id=manifest.project_id, project_name=manifest.project_name,
                             hub_segment=manifest.root_segments[0], project_segment=manifest.root_segments[1],
                             source=manifest.source)
            events = ProjectEvents(self.run_id, ref)
            started = now_iso()
            self._apply_deletes(manifest, self.keys_for(ref), gone, result, events)
            if result.files_deleted and not self.config.dry_run:
                manifest.root_rollup = None
                self.manifests.save(manifest)
                self._finish_pending_deletes(manifest, self.keys_for(ref))
            if self.catalog is not None and not self.config.dry_run:
                self._record_run(ref, result, events.rows, started, 0, None)
            retired.append(result)
        return retired

    # -- a run: scan, then sync what needs it ------------------------------------------------
    def mirror_projects(self, projects: list[ProjectRef]) -> list[ProjectResult]:
        """A whole run over `projects`, as the CLI does it: scan them all, then sync those that
        need a walk; one result per project, in order."""
        scanned = self.scan_projects(projects)
        dirty = [p for p, r in zip(projects, scanned) if r.needs_walk is not None]
        synced = iter(self.sync_projects(dirty))
        return [next(synced).after_scan(r) if r.needs_walk is not None else r for r in scanned]

    def scan_projects(self, projects: list[ProjectRef], parallel: int = 16) -> list[ProjectResult]:
        """Decide, at about one API call per project, which projects need a walk tonight.

        Each result says why in `needs_walk`; a project that needs none is done: its result (and
        its `unchanged` run record in the catalog) is its whole night. Many projects are checked
        at once, all drawing on their source's shared rate budget; the unchanged projects' run
        records go to the catalog together at the end (a few PUTs, not one per project).
        """
        unchanged: list[ProjectRun] = []
        with self._leased():
            results = self._each(projects, partial(self.scan_project, unchanged_runs=unchanged), parallel)
        if unchanged:
            try:
                self.catalog.record_project_runs([(run, []) for run in unchanged])  # type: ignore[union-attr]
            except Exception as exc:  # only the records are missing; the scan's outcome stands
                log.warning("could not write the run records of %d unchanged project(s) to the catalog "
                            "(%s); the catalog's runs table misses them for this run", len(unchanged), exc)
        return results

    def sync_projects(self, projects: list[ProjectRef]) -> list[ProjectResult]:
        """Sync projects `project_workers` at a time; a project that fails is a result with its
        error, never an exception that would stop the others."""
        with self._leased():
            return self._each(projects, self.sync_project, self.config.project_workers)

    def _each(self, projects: list[ProjectRef], work: Any, parallel: int) -> list[ProjectResult]:
        def guarded(project: ProjectRef) -> ProjectResult:
            try:
                return work(project)
            except Exception as exc:  # one project's failure must not stop the others
                log.error("project %s failed: %s", project.label, exc)
                return ProjectResult.failed(project, exc, self.config.dry_run)

        if len(projects) <= 1 or parallel <= 1:
            return [guarded(p) for p in projects]
        pool = ContextThreadPool(max_workers=min(parallel, len(projects)), thread_name_prefix="aps-mirror-project")
        try:
            results = list(pool.map(guarded, projects))
        except BaseException:  # a timeout or an interrupt: start no other project, wait for none
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results

    def scan_project(self, project: ProjectRef, unchanged_runs: list[ProjectRun] | None = None) -> ProjectResult:
        """One project's check: its manifest, and its root folder's rollup unless the manifest
        already says a walk is due. Unchanged: its night is recorded (or its run record added
        to `unchanged_runs`, for the caller to record), and done."""
        started = now_iso()
        manifest = self.manifests.load(project)
        result = ProjectResult(project=project.label, hub_id=project.hub_id,
                               project_id=project.project_id, dry_run=self.config.dry_run)
        source = self._source(project)
        with source.count_calls() as calls:
            result.needs_walk = self._walk_due(manifest, project)
            if result.needs_walk is None and source.may_have_changed(project, manifest):
                result.needs_walk = "changed since the last run"
        result.api_calls = calls.snapshot()
        if result.needs_walk is None:
            result.files_skipped = sum(1 for e in manifest.items.values() if not e.deleted_at)
            log.info("%s: unchanged since the last run", project.label)
            if self.catalog is not None and not self.config.dry_run:
                if unchanged_runs is None:
                    self._record_run(project, result, [], started, 0, None)
                else:
                    unchanged_runs.append(self._project_run(project, result, started, 0, None))
        else:
            log.info("%s: needs a walk (%s)", project.label, result.needs_walk)
        return result

    def _walk_due(self, manifest: Manifest, project: ProjectRef) -> str | None:
        """Why the manifest alone says the project must be walked; None when only its root's
        rollup can tell."""
        if manifest.etag is None:
            return "new project"
        if manifest.interrupted_run:
            return "the last run was interrupted"
        if manifest.pending_deletes:
            return "removals to finish"
        if manifest.root_rollup is None:
            if project.source in self.sources and not self.sources[project.source].has_change_dates:
                return "listed every run (the source keeps no change dates)"
            return "the last walk left work (failures, waiting deletes, or an incomplete listing)"
        return self._full_walk_reason(manifest, project)

    def sync_project(self, project: ProjectRef) -> ProjectResult:
        """Mirror one project; the manifest records exactly what succeeded.

        The catalog gets the project's run record and events once the manifest is committed,
        and a `failed` record when the sync stops on an error (which is then raised).
        """
        result = ProjectResult(project=project.label, hub_id=project.hub_id,
                               project_id=project.project_id, dry_run=self.config.dry_run)
        started = now_iso()
        events = ProjectEvents(self.run_id, project)
        failure: Exception | None = None
        with self._source(project).count_calls() as calls:  # this project's, whatever thread sends
            try:
                with self._leased(), tagging(project.hub_id, project.project_id):
                    self._sync(project, result, events)
            except Exception as exc:
                failure = exc
                raise
            finally:
                result.api_calls = calls.snapshot()
                if self.catalog is not None and not self.config.dry_run:
                    self._record_run(project, result, events.rows, started,
                                     sum(calls.throttled_snapshot().values()), failure)
        return result

    def _sync(self, project: ProjectRef, result: ProjectResult, events: ProjectEvents) -> None:
        started = datetime.now(timezone.utc)
        keys = self.keys_for(project)
        manifest = self.manifests.load(project)
        manifest.hub_name = project.hub_name
        manifest.project_name = project.project_name
        strays = Strays()
        if not self.config.dry_run:
            strays = self._strays_of_interrupted_run(manifest, keys)
            self._finish_pending_deletes(manifest, keys)
            self._abort_stale_uploads(keys, started)
        # After an interrupted run every item is listed, so whatever it copied can be adopted.
        full_walk = self._full_walk_due(manifest, project) or bool(manifest.interrupted_run)
        listing = self._source(project).walk(project, manifest, full_walk=full_walk,
                                             top_folders=self.config.top_folders)
        excluded = [f for f in listing.files if not self.config.selects(f)]
        if excluded:
            listing.files = [f for f in listing.files if self.config.selects(f)]
            result.files_excluded = len(excluded)
        result.full_walk = listing.full_walk
        result.listing_complete = listing.complete
        result.errors += listing.errors
        result.folders_listed = listing.folders_listed
        covered = manifest.covered_items(listing) | {f.item_id for f in excluded}
        result.folders_pruned = len(manifest.subtree(listing.pruned)) if listing.pruned else 0
        result.files_listed = len(listing.files) + len(listing.unavailable) + len(excluded)
        result.files_unavailable = len(listing.unavailable)
        for missing in listing.unavailable:
            log.info("not downloadable: %s (%s)", missing.name, missing.reason)

        actions = plan(listing.files, {f.item_id: keys.file_key(f.folder_segments, f.name_segment)
                                       for f in listing.files}, manifest.items)
        _check_distinct_keys(manifest, actions, keys)
        work = [a for a in actions if a.kind is not ActionKind.SKIP]
        result.files_skipped = len(actions) - len(work) + len(covered)
        if not listing.project_unchanged:
            log.info("%s: %d files listed in %d folders (%d pruned); %d to copy (%s), %d unchanged",
                     project.label, result.files_listed, listing.folders_listed,
                     result.folders_pruned, len(work), human_bytes(sum(a.size for a in work)),
                     result.files_skipped)
        gone = manifest.gone_items(listing, covered)

        if self.config.dry_run:  # the plan, under the same guards as a real run
            result.planned = [{"action": a.kind.value, "key": a.key, "size": a.size,
                               "reason": a.reason} for a in work]
            self._apply_deletes(manifest, keys, gone, result, events)
            return
        if listing.project_unchanged:
            return
        for action in actions:  # unchanged files: keep Autodesk's metadata (names, locks) current
            if action.kind is ActionKind.SKIP and action.previous is not None:
                action.previous.refresh_metadata(action.remote)
        if self.config.versions == "all":  # items mirrored before versions=all: fetch their past
            work += [replace(a, kind=ActionKind.KEEP_VERSIONS, reason="keep earlier versions")
                     for a in actions if a.kind is ActionKind.SKIP and a.previous is not None
                     and not a.previous.versions_kept and (a.remote.version.version_number or 1) > 1]
        if work:  # before the first write: a crash from here on is known to the next run
            self._check_lease()
            manifest.interrupted_run = self.run_id
            self.manifests.save(manifest)
        work = self._adopt(strays, work, manifest, result, events)
        manifest.pending_deletes += strays.leftovers()  # unclaimed: removed after the commit
        retry_later = self._execute(project, keys, work, manifest, result, events)
        for missing in listing.unavailable:
            retry_later.add(missing.item_id)
            manifest.mark_unavailable(missing.item_id, missing.reason, missing.source_path, missing.version,
                                      missing.folder_id)
            events.add(EventAction.UNAVAILABLE, missing.item_id, missing.source_path, reason=missing.reason,
                       version=missing.version)
        if listing.full_walk and listing.complete:  # a full walk saw every selected item
            manifest.forget_unavailable({f.item_id for f in listing.files} | {u.item_id for u in listing.unavailable})
        self._apply_deletes(manifest, keys, gone, result, events)
        # Folders to list again next run: where something failed, or deletes waited.
        folder_of = {f.item_id: f.folder_id for f in listing.files}
        recheck = {folder_of[i] for i in retry_later if folder_of.get(i)}
        if result.deletes_refused:
            recheck |= {manifest.items[i].folder_id for i in gone if manifest.items[i].folder_id}
        clean = not result.files_failed and not result.deletes_refused
        manifest.record_walk(listing, project, recheck, clean, self.config.selection)
        manifest.interrupted_run = None
        self._check_lease()
        self.manifests.save(manifest)
        self._finish_pending_deletes(manifest, keys)

    def _record_run(self, project: ProjectRef, result: ProjectResult, events: list[CatalogEvent],
                    started: str, throttled: int, failure: Exception | None) -> None:
        """Send the project's run record and events to the catalog; never fails the sync."""
        run = self._project_run(project, result, started, throttled, failure)
        try:
            self.catalog.record_project_run(run, events)  # type: ignore[union-attr]
        except Exception as exc:  # only the record is missing; the sync's outcome stands as it is
            log.warning("%s: could not write the run record to the catalog (%s); the catalog's "
                        "runs/events tables miss this run (status %s)", project.label, exc, run.status)

    def _project_run(self, project: ProjectRef, result: ProjectResult, started: str, throttled: int,
                     failure: Exception | None) -> ProjectRun:
        """The catalog's run row of one project's night."""
        if failure is not None:
            status = "failed"
        elif result.errors or result.files_failed:
            status = "partial"
        else:
            status = "success"
        errors = list(result.errors) + ([f"{type(failure).__name__}: {failure}"] if failure else [])
        return ProjectRun(
            run_id=self.run_id, hub_id=project.hub_id, hub_name=project.hub_name,
            project_id=project.project_id, project_name=project.project_name,
            started_at=started, finished_at=now_iso(), status=status, trigger=self.trigger,
            full_walk=result.full_walk, listing_complete=result.listing_complete,
            api_calls=sum(result.api_calls.values()), api_calls_throttled=throttled,
            errors=errors, deletes_refused=result.deletes_refused, source=project.source,
            **result.counters(),
        )

    def _full_walk_due(self, manifest: Manifest, project: ProjectRef) -> bool:
        return self._full_walk_reason(manifest, project) is not None

    def _full_walk_reason(self, manifest: Manifest, project: ProjectRef) -> str | None:
        if self.config.full_walk:
            return "full walk asked for"
        if not manifest.last_full_walk:
            return "no full walk yet"
        if manifest.root_segments != [project.hub_segment, project.project_segment]:
            return "hub or project renamed: every key moves"
        if manifest.selection != self.config.selection:
            return "the selection changed: pruned folders may hold newly selected files"
        age = datetime.now(timezone.utc) - datetime.fromisoformat(manifest.last_full_walk)
        if age >= timedelta(days=self.config.full_walk_days):
            return f"last full walk {age.days} day(s) ago"
        return None

    # -- transferring -----------------------------------------------------------------------
    def _execute(self, project: ProjectRef, keys: ProjectKeys, work: list[Action], manifest: Manifest,
                 result: ProjectResult, events: ProjectEvents) -> set[str]:
        """Run copies in parallel; record each success. Returns the items to retry next run."""
        retry_later: set[str] = set()
        if not work:
            return retry_later
        progress = Progress(project.label, len(work), sum(a.size for a in work), listeners=self.progress_listeners)
        owners = {key: ids[0] for key, ids in manifest.key_owners().items()}
        source = self._source(project)
        keeper = VersionKeeper(source, self.s3, self.config.bucket, project, keys, owners)
        checkpoint = _Checkpoint()
        with ContextThreadPool(max_workers=self.config.workers, thread_name_prefix="aps-mirror-copy") as pool:
            futures = {pool.submit(self._run_action, source, keys, keeper, a, progress): a for a in work}
            for future in as_completed(futures):
                if checkpoint.due():  # what is recorded so far survives a kill
                    self._check_lease()
                    with checkpoint.saving():
                        self.manifests.save(manifest)
                action = futures[future]
                item_id = action.remote.item_id
                try:
                    transferred, kept = future.result()
                except NotDownloadable as exc:
                    result.files_unavailable += 1
                    manifest.mark_unavailable(item_id, str(exc), action.remote.source_path,
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
                    manifest.mark_unavailable(item_id, f"copy failed: {exc}", action.remote.source_path,
                                              action.remote.version, action.remote.folder_id)
                    retry_later.add(item_id)
                    log.error("failed: %s: %s", action.remote.source_path, exc)
                    continue
                finally:
                    progress.file_done()
                if action.kind is ActionKind.KEEP_VERSIONS:
                    manifest.record_kept_versions(item_id, kept)
                    continue
                if action.kind is ActionKind.SERVER_COPY or transferred.reused:
                    result.files_renamed += 1
                else:
                    result.files_copied += 1
                    result.bytes_copied += transferred.size
                manifest.record_copy(action.remote, action.key, transferred.size, transferred.sha1, kept,
                                     versions_kept=self.config.versions == "all")
                if action.source_key:  # adopted from another key: that object is now a leftover
                    manifest.pending_deletes.append(action.source_key)
                reason = action.reason
                checkpoint.add(transferred.size)
                if transferred.reused and action.kind is ActionKind.COPY:
                    reason += ": the same bytes as the mirrored version, copied inside S3 (no download)"
                events.add(event_action(action, transferred), item_id, action.remote.source_path,
                           key=action.key, previous_key=action.previous.key if action.previous else None,
                           version=action.remote.version, size=transferred.size, reason=reason)
        progress.finish()
        return retry_later

    def _run_action(self, source: Source, keys: ProjectKeys, keeper: VersionKeeper, action: Action,
                    progress: Progress) -> tuple[Transferred, dict[str, dict[str, Any]]]:
        """Do one action; with versions=all also keep earlier versions (version id -> record)."""
        previous = action.previous
        if action.kind is ActionKind.KEEP_VERSIONS and previous is not None:
            kept = keeper.fetch_earlier(action.remote, previous, set())
            return Transferred(previous.size, previous.sha1 or "", reused=True), kept
        if action.kind is ActionKind.SERVER_COPY:
            source = action.source_key or previous.key  # type: ignore[union-attr]
            # The bytes' SHA-1: an adopted object's own; else the entry's, of this same version.
            sha1 = action.source_sha1 if action.source_key else (previous.sha1 if previous else None)
            server_side_copy(self.s3, self.config.bucket, keys.check_own(source), action.key, action.remote, sha1)
            progress.add_bytes(action.size)
            return Transferred(action.size, sha1 or "", reused=True), {}
        log.debug("copy %s -> s3://%s/%s (%s)", action.remote.source_path, self.config.bucket,
                  action.key, action.reason)
        kept: dict[str, dict[str, Any]] = {}
        keep_all = self.config.versions == "all"
        replaces_version = (previous is not None and not previous.deleted_at
                            and previous.version_id != action.remote.version.id)
        if keep_all and replaces_version:
            kept.update(keeper.set_tip_aside(action.remote, previous))  # type: ignore[arg-type]
        mirrored = None
        if previous is not None and not previous.deleted_at and previous.sha1:
            mirrored = (keys.check_own(previous.key), previous.size, previous.sha1)
        transferred = copy_version(source, self.s3, self.config.bucket, keys.check(action.key),
                                   action.remote, on_bytes=progress.add_bytes, mirrored=mirrored)
        if keep_all:
            kept.update(keeper.fetch_earlier(action.remote, previous, set(kept)))
        return transferred, kept

    # -- deleting ---------------------------------------------------------------------------
    def _apply_deletes(self, manifest: Manifest, keys: ProjectKeys, gone: list[str], result: ProjectResult,
                       events: ProjectEvents) -> None:
        """Apply the delete policy to items gone from Autodesk, unless a guard says no.

        A dry run passes the same guards and lists what it would delete, changing nothing."""
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
            for item_id in gone if not self.config.dry_run else ():
                entry = manifest.items[item_id]
                events.add(EventAction.DELETE_REFUSED, item_id, entry.source_path, key=entry.key,
                           size=entry.size, reason=result.deletes_refused)
            return
        if self.config.dry_run:
            result.files_deleted += len(gone)
            result.planned += [{"action": f"delete ({policy.value})", "key": manifest.items[i].key,
                                "size": manifest.items[i].size, "reason": "no longer in Autodesk"} for i in gone]
            return
        now = now_iso()
        for item_id in gone:
            entry = manifest.items[item_id]
            if policy is DeletePolicy.KEEP:
                entry.deleted_at = now
            else:
                for key in entry.held_keys() if policy is DeletePolicy.TRASH else ():
                    self.s3.copy({"Bucket": self.config.bucket, "Key": keys.check_own(key)},
                                 self.config.bucket, keys.trash_key(key, now[:10]), ExtraArgs=copy_args(self.s3))
                manifest.remove_item(item_id)
            log.info("%s %s: no longer in Autodesk", policy.value, entry.source_path)
            result.files_deleted += 1
            events.add(EventAction.TRASHED if policy is DeletePolicy.TRASH else EventAction.DELETED,
                       item_id, entry.source_path, key=entry.key, size=entry.size,
                       reason=self._delete_reason(policy), version_id=entry.version_id,
                       version_number=entry.version_number)

    def _delete_reason(self, policy: DeletePolicy) -> str:
        """The event's reason; on a locked mirror, what the delete could not remove, and why."""
        kept = retained_until(self.config.protection) if policy is not DeletePolicy.KEEP else None
        return f"{DELETE_REASONS[policy]} ({kept})" if kept else DELETE_REASONS[policy]

    def _finish_pending_deletes(self, manifest: Manifest, keys: ProjectKeys) -> None:
        """Remove the objects the committed manifest no longer references (journalled).

        Only keys in the project's own root are removed, whatever the journal says."""
        if not manifest.pending_deletes:
            return
        for key in manifest.deletable_pending():
            if not keys.owns(key):
                log.error("%s: the manifest's journal names s3://%s/%s, outside the project's root %s; "
                          "not deleting it (the entry is dropped)", manifest.project_name,
                          self.config.bucket, key, keys.root)
                continue
            # Refused: the project fails here; the committed manifest still journals the key.
            with s3_write(self.config.bucket, key, prefix=self.config.prefix, action="delete"):
                self.s3.delete_object(Bucket=self.config.bucket, Key=key)
            log.debug("removed s3://%s/%s", self.config.bucket, key)
        manifest.pending_deletes = []
        self.manifests.save(manifest)

    def _strays_of_interrupted_run(self, manifest: Manifest, keys: ProjectKeys) -> Strays:
        """After a run that died between its first write and its commit: the objects it left
        unrecorded, to adopt (`_adopt`) or remove. Nothing to look for otherwise."""
        if not manifest.interrupted_run:
            return Strays()
        tips = {e.key: RecordedTip(e.version_id, e.size) for e in manifest.items.values() if not e.deleted_at}
        strays = Strays.find(self.s3, self.config.bucket, keys, manifest.referenced_keys(), tips,
                             manifest.saved_at)
        log.info("%s: run %s was interrupted; %d object(s) it copied without recording them are "
                 "adopted where they hold a wanted version, removed otherwise",
                 manifest.project_name, manifest.interrupted_run, len(strays))
        return strays

    def _adopt(self, strays: Strays, work: list[Action], manifest: Manifest, result: ProjectResult,
               events: ProjectEvents) -> list[Action]:
        """Record copies an interrupted run made instead of downloading them again: in place, or
        moved inside S3 (renamed since). Returns the work left."""
        if not len(strays):
            return work
        left = []
        for action in work:
            stray = strays.take(action.remote, action.key) if action.kind is ActionKind.COPY else None
            if stray is None:
                left.append(action)
            elif stray.key == action.key:
                # versions=all fetches its earlier versions on the next run (KEEP_VERSIONS).
                manifest.record_copy(action.remote, action.key, stray.size, stray.sha1)
                result.files_skipped += 1
                adopted = Transferred(stray.size, stray.sha1 or "")  # a copy, or a new version over its key
                events.add(event_action(action, adopted), action.remote.item_id, action.remote.source_path,
                           key=action.key, previous_key=action.previous.key if action.previous else None,
                           version=action.remote.version, size=stray.size,
                           reason="adopted: copied by an interrupted run, which did not record it")
            else:
                left.append(replace(action, kind=ActionKind.SERVER_COPY, source_key=stray.key,
                                    source_sha1=stray.sha1,
                                    reason=f"{action.reason}; copied by an interrupted run at another key"))
        return left

    def _abort_stale_uploads(self, keys: ProjectKeys, started: datetime) -> None:
        """Abort multipart uploads a killed run left under this project (invisible, but billed).

        One run at a time works on a mirror (the prefix's lock; conditional manifest writes
        catch the rest), so an upload begun before this run started belongs to a dead one.
        """
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.config.bucket, Prefix=keys.root)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < started:
                    self.s3.abort_multipart_upload(Bucket=self.config.bucket, Key=keys.check(upload["Key"]),
                                                   UploadId=upload["UploadId"])
                    log.info("aborted an unfinished upload of %s left by an interrupted run", upload["Key"])


class _Checkpoint:
    """When a long sync saves its manifest on the way: every CHECKPOINT_FILES files,
    CHECKPOINT_BYTES bytes or CHECKPOINT_SECONDS, whichever comes first. A run killed later
    loses only what it copied since (and the next run adopts even that: see adoption.py).

    A save rewrites the whole manifest, so its cost grows with the scope: a vault of 100,000
    files makes a manifest of tens of MB. Saving every 1,000 files made such a first copy
    quadratic; a checkpoint now also waits SAVE_SHARE times as long as the last save took, so
    saving never takes more than about 1/SAVE_SHARE of the run, whatever the scope's size."""

    def __init__(self) -> None:
        self.last_save_seconds = 0.0
        self._reset()

    def _reset(self) -> None:
        self.files, self.bytes, self.since = 0, 0, time.monotonic()

    @contextmanager
    def saving(self) -> Iterator[None]:
        began = time.monotonic()
        yield
        self.last_save_seconds = time.monotonic() - began
        self._reset()

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size

    def due(self) -> bool:
        waited = time.monotonic() - self.since
        return (bool(self.files) and waited >= SAVE_SHARE * self.last_save_seconds
                and (self.files >= CHECKPOINT_FILES or self.bytes >= CHECKPOINT_BYTES
                     or waited >= CHECKPOINT_SECONDS))


CHECKPOINT_FILES = 1000
CHECKPOINT_BYTES = 4 << 30
CHECKPOINT_SECONDS = 60.0
SAVE_SHARE = 20


def _check_distinct_keys(manifest: Manifest, actions: list[Action], keys: ProjectKeys) -> None:
    """The last line of defence: no two items may end up holding one key. Nothing is written
    when the plan would break that (a bug in the key space, or a damaged manifest)."""
    planned = {a.remote.item_id: a.key for a in actions}
    holders: dict[str, set[str]] = {}
    for item_id, entry in manifest.items.items():
        for key in [planned.pop(item_id, entry.key)] + entry.held_keys()[1:]:
            holders.setdefault(key, set()).add(item_id)
    for item_id, key in planned.items():
        holders.setdefault(key, set()).add(item_id)
    shared = {key: ids for key, ids in holders.items() if len(ids) > 1}
    if shared:
        key, ids = next(iter(sorted(shared.items())))
        raise KeySpaceViolation(f"{len(shared)} key(s) would be shared by two items (first: {key!r}, "
                                f"items {sorted(ids)}); nothing was written. Report this as a bug.")


def _sources_by_name(given: Source | Mapping[str, Source] | ApsClient) -> dict[str, Source]:
    """The run's sources by name: as given, or one, or the Docs source of an APS client."""
    if isinstance(given, Mapping):
        sources = dict(given)
        for name, source in sources.items():
            if source.name != name:
                raise ValueError(f"source {source.name!r} given under the name {name!r}")
        return sources
    source = given if isinstance(given, Source) else DocsSource(given)
    return {source.name: source}
