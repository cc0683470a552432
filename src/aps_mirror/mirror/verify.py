"""Verify: prove a mirror against its manifests, S3 and, optionally, Autodesk. Reads only.

What each category means (the report: verify_report.py):
- missing: an object a manifest references (a tip, or an earlier version versions=all kept)
  is not in S3.
- corrupt: its size, or the item and version its metadata names (`transfer.object_metadata`),
  is not the manifest's; with `deep`, the SHA-1 of its bytes is not the manifest's (or, when
  the manifest has none, Autodesk's; Vault gives none); a key the manifests give to two items.
- orphans: an object under a project's root (current or former, `mirror.json`) that no
  manifest references. The mirror's own `{prefix}/_aps_mirror/` holds none.
- stale_uploads: a multipart upload under the prefix begun before the verification (and
  before the run holding the prefix's lease, if one does): invisible, billed, never finished.
- outdated / not_mirrored, with an Autodesk client: a full walk of every mirrored project
  (the selection its manifest records) finds files the mirror holds at another version, or
  does not hold. A vault is checked against S3 only (a note says so).

Objects are checked in parallel by `workers` threads; a deep re-read streams each object
through SHA-1 in chunks, so memory stays bounded whatever the object's size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import unquote

from botocore.exceptions import ClientError, FlexibleChecksumError

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Hub, Project
from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.keys import ProjectKeys, meta_prefix, prefix_segments
from aps_mirror.mirror.lease import LeaseState, MirrorLease
from aps_mirror.mirror.manifest import Manifest, ManifestStore, now_iso
from aps_mirror.mirror.mirror_record import MirrorRecord
from aps_mirror.mirror.progress import Progress, ProgressListener
from aps_mirror.mirror.sources.chosen import VAULT
from aps_mirror.mirror.transfer import READ_CHUNK
from aps_mirror.mirror.verify_report import CheckedProject, Finding, VerifyReport
from aps_mirror.mirror.walk import ProjectRef, walk_project
from aps_mirror.threads import ContextThreadPool

log = logging.getLogger(__name__)

WALK_WORKERS = 4  # projects walked in Autodesk at once (all drawing on the client's rate budget)


@dataclass(frozen=True)
class HeldObject:
    """One object a manifest says the mirror holds: a tip, or a kept earlier version."""

    key: str
    item_id: str
    version_id: str
    size: int
    sha1: str | None
    path: str
    project_id: str
    source: str = "docs"  # the manifest's: only a Docs object's SHA-1 can be asked of Autodesk


@dataclass(frozen=True)
class _Checked:
    """What checking one object found (a fault or None), and what re-reading it cost."""

    held: HeldObject
    category: str | None = None
    why: str = ""
    bytes_read: int = 0
    read: bool = False
    note: str | None = None


def held_objects(manifest: Manifest) -> list[HeldObject]:
    """Every object a project's manifest references, with what it must hold."""
    held = []
    for item_id, entry in manifest.items.items():
        held.append(HeldObject(entry.key, item_id, entry.version_id, entry.size, entry.sha1,
                               entry.source_path, manifest.project_id, manifest.source))
        held += [HeldObject(h["kept_key"], item_id, h["version_id"], h["size"], h.get("sha1"),
                            h.get("source_path") or entry.source_path, manifest.project_id, manifest.source)
                 for h in entry.history if h.get("kept_key")]
    return held


def selection_of(manifest: Manifest) -> MirrorConfig:
    """The file selection the project's last walk used (its manifest records it): what the
    mirror is meant to hold, so a file the selection leaves out is not reported as missing."""
    default = MirrorConfig(bucket="-")
    if not manifest.selection:
        return default
    try:
        tops, extensions, excluded, max_size, *_ = json.loads(manifest.selection)
    except (ValueError, TypeError):
        log.warning("%s: unreadable selection %r in its manifest; comparing with the default selection",
                    manifest.project_name, manifest.selection)
        return default
    default_tops = json.loads(default.selection)[0]
    return replace(default, top_folders=() if tops == default_tops else tuple(tops),
                   extensions=tuple(extensions), exclude_extensions=tuple(excluded), max_file_size=max_size)


class MirrorVerifier:
    """One audit of the mirror at s3://bucket/prefix; `run()` returns its report."""

    def __init__(self, s3: Any, bucket: str, prefix: str, *, client: ApsClient | None = None,
                 deep: bool = False, sample: int | None = None, workers: int = 8,
                 progress_listeners: Iterable[ProgressListener] = (), rng: random.Random | None = None) -> None:
        if sample is not None and sample < 1:
            raise ConfigError(f"--sample {sample} is not accepted: re-read at least 1 object, or leave "
                              "it out to re-read them all")
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.client = client
        self.deep = deep or sample is not None
        self.sample = sample
        self.workers = max(1, workers)
        self.progress_listeners = tuple(progress_listeners)
        self.rng = rng or random.Random()
        self._versions: dict[tuple[str, str], dict[str, Any]] = {}  # (project, item) -> version id -> Version
        self._versions_lock = threading.Lock()

    def run(self) -> VerifyReport:
        started = datetime.now(timezone.utc)
        report = VerifyReport(verification_id=f"verify__{now_iso()}", bucket=self.bucket, prefix=self.prefix,
                              started_at=started.isoformat(), deep=self.deep, sample=self.sample,
                              against_autodesk=self.client is not None)
        lease_before = self._live_lease(report)
        manifests = ManifestStore(self.s3, self.bucket, self.prefix).load_all()
        if not manifests:
            raise ConfigError(f"s3://{self.bucket}/{meta_prefix(self.prefix)}/manifests/ holds no manifest: "
                              "there is no mirror to verify here; check --bucket and --prefix")
        projects = {m.project_id: CheckedProject(m.hub_id, m.hub_name, m.project_id, m.project_name)
                    for m in sorted(manifests, key=lambda m: (m.hub_name, m.project_name))}
        report.projects = list(projects.values())
        self._check_objects(manifests, projects, report)
        roots = self._project_roots(manifests)
        self._find_orphans(manifests, roots, report)
        cutoff = min([started] + ([_parse(lease_before.acquired_at)] if lease_before else []))
        self._find_stale_uploads(roots, cutoff, report)
        if self.client is not None:
            self._compare_with_autodesk(manifests, report)
        busy = {lease.holder: lease for lease in (lease_before, self._live_lease(report)) if lease}
        for lease in busy.values():
            report.notes.append(f"run {lease.holder} ({lease.description}) held the mirror's lease during "
                                "the verification: its work in progress may show as faults; verify again "
                                "when it is done")
        report.finished_at = now_iso()
        report.sort()
        log.info("%s", report.summary_line())
        return report

    # -- objects against the manifests ------------------------------------------------------
    def _check_objects(self, manifests: list[Manifest], projects: dict[str, CheckedProject],
                       report: VerifyReport) -> None:
        owners: dict[str, list[HeldObject]] = {}
        for manifest in manifests:
            for held in held_objects(manifest):
                owners.setdefault(held.key, []).append(held)
        for key, holders in owners.items():
            if len({h.item_id for h in holders}) > 1:
                report.add("corrupt", Finding(key, holders[0].item_id, holders[0].path,
                                              f"the manifests give this key to {len(holders)} items "
                                              f"({', '.join(sorted({h.item_id for h in holders}))}): a "
                                              "damaged manifest", holders[0].project_id))
        unique = [holders[0] for holders in owners.values()]
        reread = self._to_reread(unique)
        progress = Progress(f"verify s3://{self.bucket}/{self.prefix.strip('/')}", len(unique),
                            sum(h.size for h in unique if h.key in reread), listeners=self.progress_listeners)
        with ContextThreadPool(max_workers=self.workers, thread_name_prefix="aps-mirror-verify") as pool:
            futures = {pool.submit(self._check_object, h, h.key in reread, progress): h for h in unique}
            for future in as_completed(futures):
                held = futures[future]
                progress.file_done()
                try:
                    checked = future.result()
                except Exception as exc:  # one unreadable object must not stop the audit
                    report.errors.append(f"s3://{self.bucket}/{held.key}: could not be checked ({exc})")
                    continue
                project = projects[held.project_id]
                project.objects_checked += 1
                report.objects_checked += 1
                if checked.read:
                    project.objects_read += 1
                    project.bytes_read += checked.bytes_read
                    report.objects_read += 1
                    report.bytes_read += checked.bytes_read
                if checked.note:
                    report.notes.append(checked.note)
                if checked.category:
                    report.add(checked.category, Finding(held.key, held.item_id, held.path, checked.why,
                                                         held.project_id))
        progress.finish()

    def _to_reread(self, held: list[HeldObject]) -> set[str]:
        """The keys a deep verification reads in full: all, or `sample` chosen at random."""
        if not self.deep:
            return set()
        keys = sorted(h.key for h in held)
        return set(keys if self.sample is None else self.rng.sample(keys, min(self.sample, len(keys))))

    def _check_object(self, held: HeldObject, reread: bool, progress: Progress) -> _Checked:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=held.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return _Checked(held, "missing", f"not in S3; the manifest says it holds version "
                                                 f"{held.version_id} ({held.size} bytes)")
            raise
        problems = _head_problems(held, head)
        if problems:
            return _Checked(held, "corrupt", "; ".join(problems))
        if not reread:
            return _Checked(held)
        try:
            sha1, size = self._read_sha1(held.key, progress)
        except FlexibleChecksumError as exc:  # S3's own checksum of the object (checksum_algorithm)
            return _Checked(held, "corrupt", f"its bytes do not match the checksum S3 stored for them ({exc})",
                            read=True)
        expected, source = held.sha1, "the manifest's"
        if not expected:
            expected, source = self._autodesk_sha1(held), "Autodesk's"
        if not expected:
            ask = "Vault tells none" if held.source == VAULT else "pass --conn-id to ask Autodesk"
            return _Checked(held, bytes_read=size, read=True,
                            note=f"{held.key}: re-read, but no SHA-1 is known to compare with (none in the "
                                 f"manifest; {ask})")
        if expected.lower() != sha1:
            return _Checked(held, "corrupt", f"the SHA-1 of its bytes is {sha1}, {source} is {expected.lower()}",
                            size, read=True)
        return _Checked(held, bytes_read=size, read=True)

    def _read_sha1(self, key: str, progress: Progress) -> tuple[str, int]:
        """SHA-1 and length of an object's bytes, streamed: one chunk in memory at a time. With
        an S3 additional checksum over the whole object, botocore checks the bytes against it as
        they stream (FlexibleChecksumError at the end when they differ)."""
        digest, size = hashlib.sha1(), 0
        body = self.s3.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")["Body"]
        try:
            for chunk in body.iter_chunks(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                progress.add_bytes(len(chunk))
        finally:
            body.close()
        return digest.hexdigest(), size

    def _autodesk_sha1(self, held: HeldObject) -> str | None:
        """Autodesk's SHA-1 of the version an object holds (its signed download's), if told."""
        if self.client is None or held.source == VAULT:  # Vault tells no checksum
            return None
        with self._versions_lock:
            versions = self._versions.get((held.project_id, held.item_id))
        if versions is None:
            versions = {v.id: v for v in self.client.item_versions(held.project_id, held.item_id)}
            with self._versions_lock:
                self._versions[(held.project_id, held.item_id)] = versions
        version = versions.get(held.version_id)
        if version is None or version.storage_location() is None:
            return None
        return self.client.signed_download(version).sha1

    # -- objects nothing references ----------------------------------------------------------
    def _project_roots(self, manifests: list[Manifest]) -> dict[str, str]:
        """Root prefix -> project id, for every project's current and former roots: those its
        manifest records, and those mirror.json pins (projects without a manifest included)."""
        record = MirrorRecord.load(self.s3, self.bucket, self.prefix)
        pairs: dict[str, set[tuple[str, str]]] = {}
        for manifest in manifests:
            if len(manifest.root_segments) == 2:
                pairs.setdefault(manifest.project_id, set()).add(
                    (manifest.root_segments[0], manifest.root_segments[1]))
        for project_id, entry in record.projects.items():
            hub_segment = record.segment_for("hub", entry["hub_id"])
            if hub_segment is None:
                continue
            hubs = [hub_segment, *record.former_segments("hub", entry["hub_id"])]
            projects = [entry["segment"], *record.former_segments("project", project_id)]
            pairs.setdefault(project_id, set()).update((h, p) for h in hubs for p in projects)
        roots = {}
        for project_id, held in pairs.items():
            for hub, project in held:
                roots[ProjectKeys(self.prefix, hub, project).root] = project_id
        return roots

    def _find_orphans(self, manifests: list[Manifest], roots: dict[str, str], report: VerifyReport) -> None:
        referenced = {key for m in manifests for key in m.referenced_keys()}
        journalled = {key: m for m in manifests for key in m.pending_deletes}
        interrupted = {m.project_id: m.interrupted_run for m in manifests if m.interrupted_run}
        strays = []
        for root, project_id in sorted(roots.items()):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root):
                strays += [(o["Key"], project_id) for o in page.get("Contents", []) if o["Key"] not in referenced]
        with ContextThreadPool(max_workers=self.workers, thread_name_prefix="aps-mirror-verify") as pool:
            heads = list(pool.map(lambda stray: self._metadata(stray[0]), strays))
        for (key, project_id), meta in zip(strays, heads):
            if key in journalled:
                why = "no manifest references it; its manifest journals it for removal: the next sync removes it"
            elif project_id in interrupted:
                why = (f"no manifest references it; run {interrupted[project_id]} was interrupted: the next "
                       "sync adopts it if it holds a wanted version, and removes it otherwise")
            else:
                why = "no manifest references it: not written by a sync of this mirror, or a damaged manifest"
            source = meta.get("aps-source-path")
            report.add("orphans", Finding(key, meta.get("aps-item-id"), unquote(source) if source else None,
                                          why, project_id))

    def _metadata(self, key: str) -> dict[str, str]:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
        except ClientError:  # removed since the listing: its key is all there is to say
            return {}

    def _find_stale_uploads(self, roots: dict[str, str], cutoff: datetime, report: VerifyReport) -> None:
        where = "/".join(prefix_segments(self.prefix)) + "/"
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=where)
        for page in pages:
            for upload in page.get("Uploads", []):
                initiated = upload["Initiated"]
                if initiated >= cutoff:  # a run working now: not stale
                    continue
                key = upload["Key"]
                project_id = next((p for root, p in roots.items() if key.startswith(root)), None)
                report.add("stale_uploads", Finding(
                    key, None, None, f"multipart upload {upload['UploadId']} begun {initiated.isoformat()} "
                    "and never completed: invisible, but its parts are billed; the next sync of its "
                    "project aborts it (or: aws s3api abort-multipart-upload)", project_id))

    def _live_lease(self, report: VerifyReport) -> LeaseState | None:
        """The lease of a run working on the mirror now, if any (its work may look like faults)."""
        try:
            state = MirrorLease(self.s3, self.bucket, self.prefix, holder="aps-mirror verify").read()
        except ApsMirrorError as exc:
            report.notes.append(f"the mirror's lease could not be read ({exc})")
            return None
        return state if state is not None and state.live_at(datetime.now(timezone.utc)) else None

    # -- the mirror against Autodesk ------------------------------------------------------
    def _compare_with_autodesk(self, manifests: list[Manifest], report: VerifyReport) -> None:
        assert self.client is not None
        hubs = {h.id: h for h in self.client.hubs()}
        listed: dict[str, dict[str, Project]] = {}
        for hub_id in sorted({m.hub_id for m in manifests} & set(hubs)):
            try:
                listed[hub_id] = {p.id: p for p in self.client.projects(hub_id)}
            except ApsMirrorError as exc:  # the other hubs can still be compared
                report.errors.append(f"hub {hubs[hub_id].name}: its projects could not be listed ({exc})")
        walkable = []
        for manifest in manifests:
            if manifest.source == VAULT:  # not in Autodesk Docs: its objects were checked against S3 only
                report.notes.append(f"{manifest.hub_name} / {manifest.project_name}: a Vault vault, not compared "
                                    "with its source (--conn-id compares Autodesk Docs projects only)")
                continue
            if manifest.hub_id in hubs and manifest.hub_id not in listed:
                continue  # its hub's error says it
            project = listed.get(manifest.hub_id, {}).get(manifest.project_id)
            if project is None or len(manifest.root_segments) != 2:
                report.notes.append(f"{manifest.hub_name} / {manifest.project_name}: not listed in Autodesk "
                                    "(deleted, or no longer visible to this connection); not compared")
                continue
            walkable.append((manifest, _project_ref(manifest, hubs[manifest.hub_id], project)))
        with ContextThreadPool(max_workers=min(WALK_WORKERS, max(1, len(walkable))),
                               thread_name_prefix="aps-mirror-verify-walk") as pool:
            futures = {pool.submit(self._compare_project, manifest, ref): ref for manifest, ref in walkable}
            for future in as_completed(futures):
                ref = futures[future]
                try:
                    findings, errors = future.result()
                except Exception as exc:  # one project's walk must not stop the others
                    report.errors.append(f"{ref.label}: could not be listed in Autodesk ({exc})")
                    continue
                report.errors += errors
                for category, finding in findings:
                    report.add(category, finding)

    def _compare_project(self, manifest: Manifest, ref: ProjectRef) -> tuple[list[tuple[str, Finding]], list[str]]:
        selection = selection_of(manifest)
        listing = walk_project(self.client, ref, manifest, None, full_walk=True,  # type: ignore[arg-type]
                               top_folders=selection.top_folders)
        log.info("%s: %d files listed in Autodesk in %d folders", ref.label, len(listing.files),
                 listing.folders_listed)
        findings = []
        for remote in listing.files:
            if not selection.selects(remote):
                continue
            entry = manifest.items.get(remote.item_id)
            waiting = manifest.unavailable.get(remote.item_id, {}).get("reason")
            because = f"; the last sync: {waiting}" if waiting else ""
            number = remote.version.version_number
            if entry is None or entry.deleted_at:
                findings.append(("not_mirrored", Finding(
                    None, remote.item_id, remote.source_path,
                    f"in Autodesk (version {number}), not in the mirror{because}", ref.project_id)))
            elif entry.version_id != remote.version.id:
                findings.append(("outdated", Finding(
                    entry.key, remote.item_id, remote.source_path,
                    f"the mirror holds version {entry.version_number}, Autodesk's is version {number}{because}",
                    ref.project_id)))
        return findings, [f"{ref.label}: {error}" for error in listing.errors]


def _head_problems(held: HeldObject, head: dict[str, Any]) -> list[str]:
    """Why an object's size or metadata says it does not hold what the manifest says."""
    problems = []
    if head["ContentLength"] != held.size:
        problems.append(f"{head['ContentLength']} bytes in S3, the manifest says {held.size}")
    meta = head.get("Metadata", {})
    item_id = meta.get("aps-item-id")
    version_id = unquote(meta["aps-version-id"]) if meta.get("aps-version-id") else None
    if item_id != held.item_id:
        problems.append(f"its metadata names item {item_id!r}, the manifest {held.item_id!r}")
    if version_id != held.version_id:
        problems.append(f"its metadata names version {version_id!r}, the manifest {held.version_id!r}")
    return problems


def _project_ref(manifest: Manifest, hub: Hub, project: Project) -> ProjectRef:
    hub_segment, project_segment = manifest.root_segments
    return ProjectRef(hub.id, hub.name, project.id, project.name, hub_segment, project_segment,
                      project.root_folder_id, hub.extension_type)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def verify_mirror(s3: Any, bucket: str, prefix: str, **options: Any) -> VerifyReport:
    """Audit the mirror at s3://bucket/prefix (see MirrorVerifier for the options)."""
    return MirrorVerifier(s3, bucket, prefix, **options).run()
