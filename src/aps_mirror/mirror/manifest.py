"""The per-project manifest: what the mirror holds, and what the last walk saw.

Kept in S3 next to the mirror (`{prefix}/_aps_mirror/manifests/...`), so the bucket alone
describes itself. It maps each item (by lineage id) to the version and key the mirror holds,
remembers each folder's `lastModifiedTimeRollup` so the next walk can skip unchanged
subtrees, and journals object removals (`pending_deletes`) so a crash between the manifest
commit and the removal leaves no orphan: the next run finishes the job.

A manifest is replaced whole in one conditional PUT (If-Match on the ETag it was read with,
If-None-Match for a new one): two runs racing on a project cannot lose each other's update.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from botocore.exceptions import ClientError

from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.errors import ApsMirrorError, ConfigError, s3_write
from aps_mirror.mirror.keys import META_DIR, meta_prefix, safe_segment
from aps_mirror.mirror.sources.records import FileVersion, Listing, ProjectRef, RemoteFile

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOAD_WORKERS = 16  # manifests read at once by load_all (the S3 client pools more connections)
__all__ = ["META_DIR", "Manifest", "ManifestConflict", "ManifestEntry", "ManifestStore", "meta_prefix", "now_iso"]


class ManifestConflict(ApsMirrorError):
    """Another run changed the manifest since this run read it."""


@dataclass
class ManifestEntry:
    """What the mirror holds for one item (keyed by lineage id in the manifest)."""

    version_id: str
    version_number: int | None
    key: str
    size: int
    source_path: str
    sha1: str | None = None
    copied_at: str | None = None
    deleted_at: str | None = None  # no longer listed in Autodesk (delete policy `keep`)
    folder_id: str | None = None
    # Autodesk's metadata, for the catalog (absent in manifests written before it existed).
    name: str | None = None
    file_type: str | None = None
    created_at: str | None = None  # the item's first version
    created_by: str | None = None
    modified_at: str | None = None  # this version
    modified_by: str | None = None
    reserved: bool = False  # locked in Autodesk
    # Versions mirrored before this one, oldest first: {version_id, version_number, size,
    # sha1, key, source_path, modified_at, copied_at, superseded_at}. Their objects are gone
    # (replaced at the same key, or removed) unless versions=all keeps them.
    history: list[dict[str, Any]] = field(default_factory=list)
    versions_kept: bool = False  # versions=all has fetched every earlier version (kept_key in history)
    # Ids only the item's source has (RemoteFile.source_ids), for the catalog. Written only when
    # there are some: Docs entries stay readable by aps-mirror versions that predate sources.
    source_ids: dict[str, str] = field(default_factory=dict)

    @property
    def segment(self) -> str:
        """The key segment the item holds in its folder (its key's last part)."""
        return self.key.rpartition("/")[2]

    def held_keys(self) -> list[str]:
        """The objects this entry holds: its tip, and the earlier versions versions=all kept."""
        return [self.key] + [h["kept_key"] for h in self.history if h.get("kept_key")]

    def refresh_metadata(self, remote: RemoteFile) -> None:
        """The source's metadata of an unchanged version can still change (a lock); keep it current."""
        version = remote.version
        self.name = version.name
        self.file_type = version.file_type
        self.created_at = _iso(remote.created_at) or self.created_at
        self.created_by = remote.created_by or self.created_by
        self.modified_at = _iso(version.modified_at or version.created_at) or self.modified_at
        self.modified_by = version.modified_by or version.created_by or self.modified_by
        self.reserved = remote.locked
        self.source_ids = dict(remote.source_ids)

    def to_dict(self) -> dict[str, Any]:
        # A shallow copy, not dataclasses.asdict: its deep copies made a 100,000-item save slow.
        body = dict(vars(self))
        if not body["source_ids"]:
            del body["source_ids"]
        return body


@dataclass
class FolderRecord:
    """A folder as the last walk saw it: enough to decide whether to descend next time."""

    rollup: str | None
    segments: list[str]  # safe key segments of its path, from the top folder down
    names: list[str]  # the same path in Autodesk's names
    parent_id: str | None = None


@dataclass
class Manifest:
    hub_id: str
    project_id: str
    project_name: str
    hub_name: str = ""
    items: dict[str, ManifestEntry] = field(default_factory=dict)
    folders: dict[str, FolderRecord] = field(default_factory=dict)
    root_rollup: str | None = None
    root_segments: list[str] = field(default_factory=list)  # hub and project key segments
    selection: str | None = None  # the filters of the last walk: a change means a full walk
    last_full_walk: str | None = None
    pending_deletes: list[str] = field(default_factory=list)
    # item id -> {reason, source_path, version_id, version_number, since}: listed but not
    # mirrored (not downloadable, or the copy failed); retried every run.
    unavailable: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The run that started writing objects and has not committed yet: set before its first
    # write, cleared by its commit. Still set at the next load, that run died mid-way.
    interrupted_run: str | None = None
    updated_at: str | None = None
    source: str = "docs"  # the source the project's files come from (ProjectRef.source)
    etag: str | None = field(default=None, repr=False)  # as read; None for a new manifest

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
            "source": self.source,
            "hub_id": self.hub_id,
            "project_id": self.project_id,
            "project_name": self.project_name,
            "hub_name": self.hub_name,
            "updated_at": self.updated_at,
            "root_rollup": self.root_rollup,
            "root_segments": self.root_segments,
            "selection": self.selection,
            "last_full_walk": self.last_full_walk,
            "pending_deletes": sorted(set(self.pending_deletes)),
            "interrupted_run": self.interrupted_run,
            "unavailable": dict(sorted(self.unavailable.items())),
            "folders": {k: asdict(v) for k, v in sorted(self.folders.items())},
            "items": {k: v.to_dict() for k, v in sorted(self.items.items())},
        }
        # One line: json's C encoder serves only unindented output, and a vault's manifest is
        # tens of MB (`jq .` reads it indented).
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str, etag: str | None = None) -> Manifest:
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT_VERSION:
                raise ConfigError(
                    f"Manifest {where} has format {body.get('format')!r}; this aps-mirror reads "
                    f"format {FORMAT_VERSION}. Upgrade aps-mirror, or move the manifest away to "
                    "re-mirror the project from scratch."
                )
            return cls(
                hub_id=body["hub_id"],
                project_id=body["project_id"],
                project_name=body.get("project_name", ""),
                hub_name=body.get("hub_name", ""),
                items={k: ManifestEntry(**v) for k, v in body["items"].items()},
                folders={k: FolderRecord(**v) for k, v in (body.get("folders") or {}).items()},
                root_rollup=body.get("root_rollup"),
                root_segments=list(body.get("root_segments") or []),
                selection=body.get("selection"),
                last_full_walk=body.get("last_full_walk"),
                pending_deletes=list(body.get("pending_deletes") or []),
                interrupted_run=body.get("interrupted_run"),
                unavailable={k: v if isinstance(v, dict) else {"reason": v}
                             for k, v in (body.get("unavailable") or {}).items()},
                updated_at=body.get("updated_at"),
                source=body.get("source") or "docs",  # manifests written before sources existed
                etag=etag,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Manifest {where} is damaged ({type(exc).__name__}: {exc}). Nothing was changed; "
                "restore it from the bucket's versions, or delete it to re-mirror the project."
            ) from None

    @property
    def saved_at(self) -> datetime | None:
        """When this manifest was last saved (None before its first save)."""
        return parse_timestamp(self.updated_at)

    def referenced_keys(self) -> set[str]:
        """Every object the mirror holds for this project: tips, and kept earlier versions."""
        return {key for entry in self.items.values() for key in entry.held_keys()}

    def key_owners(self) -> dict[str, list[str]]:
        """Object key -> the items that hold it; more than one owner is a broken mirror."""
        owners: dict[str, list[str]] = {}
        for item_id, entry in self.items.items():
            for key in entry.held_keys():
                owners.setdefault(key, []).append(item_id)
        return owners

    def known_rollup(self, folder_id: str) -> tuple[datetime | None, tuple[str, ...]] | None:
        """The rollup and path the last walk recorded for a folder (the walker's KnownTree)."""
        record = self.folders.get(folder_id)
        if record is None or record.rollup is None:
            return None
        return parse_timestamp(record.rollup), tuple(record.segments)

    def held_segments_by_folder(self) -> dict[str | None, dict[str, str]]:
        """Folder id (None: the top folders) -> entry id -> key segment held, for the files and
        folders of each folder, deleted and moved-away ones included (the walker's KnownTree).
        Built in one pass: a walk asks once per folder, and a vault has thousands of them."""
        held: dict[str | None, dict[str, str]] = {}
        for folder_id, record in self.folders.items():
            if record.segments:
                held.setdefault(record.parent_id, {})[folder_id] = record.segments[-1]
        for item_id, entry in self.items.items():
            if entry.folder_id is not None:
                held.setdefault(entry.folder_id, {})[item_id] = entry.segment
        return held

    def subtree(self, folder_ids: set[str]) -> set[str]:
        """The given folders and every recorded folder below them."""
        children: dict[str, list[str]] = {}
        for folder_id, record in self.folders.items():
            if record.parent_id:
                children.setdefault(record.parent_id, []).append(folder_id)
        found, stack = set(), list(folder_ids)
        while stack:
            folder_id = stack.pop()
            if folder_id not in found:
                found.add(folder_id)
                stack.extend(children.get(folder_id, []))
        return found

    def _with_ancestors(self, folder_ids: set[str]) -> set[str]:
        found: set[str] = set()
        for folder_id in folder_ids:
            while folder_id and folder_id in self.folders and folder_id not in found:
                found.add(folder_id)
                folder_id = self.folders[folder_id].parent_id
        return found

    # -- what a walk covers ---------------------------------------------------------------
    def covered_items(self, listing: Listing) -> set[str]:
        """Items the walk did not need to see: in pruned subtrees, or the whole project, or
        listed as `kept` (seen, but not readable)."""
        if listing.project_unchanged:
            return {i for i, e in self.items.items() if not e.deleted_at}
        folders = self.subtree(listing.pruned | listing.unwalked_tops)
        return {i for i, e in self.items.items()
                if (e.folder_id in folders or i in listing.kept) and not e.deleted_at}

    def gone_items(self, listing: Listing, covered: set[str]) -> list[str]:
        """Mirrored items that a complete walk proved are no longer in Autodesk."""
        if listing.project_unchanged or not listing.complete:
            return []
        seen = {f.item_id for f in listing.files} | {u.item_id for u in listing.unavailable}
        return sorted(i for i, e in self.items.items() if i not in seen and i not in covered and not e.deleted_at)

    def record_walk(self, listing: Listing, project: ProjectRef, recheck: set[str], clean: bool,
                    selection: str) -> None:
        """Keep each folder's rollup for the next walk, except on the way to anything left to
        do (`recheck`): those folders must be listed again, so their rollup is forgotten.
        `clean`: nothing failed or waited, so the root's rollup may prune the whole project."""
        dirty: set[str] = set()
        for start in recheck:
            folder_id: str | None = start
            while folder_id and folder_id not in dirty:
                dirty.add(folder_id)
                walked = listing.folders.get(folder_id)
                folder_id = walked.parent_id if walked else None
        if listing.errors:  # a folder could not be listed: list every folder next time
            dirty.update(listing.folders)
        kept = self.subtree(listing.pruned | listing.unwalked_tops)  # unselected tops stay mirrored
        if not listing.complete:  # what the walk did not reach keeps its keys, and is listed next time
            unreached = set(self.folders) - kept - set(listing.folders)
            for folder_id in unreached:
                self.folders[folder_id].rollup = None
            kept |= unreached
        # A folder gone from Autodesk whose items the mirror still holds (policy keep) keeps its
        # record too: its segment stays taken, so a namesake never lands on those items' keys.
        kept |= self._with_ancestors({e.folder_id for e in self.items.values() if e.folder_id})
        self.folders = {fid: rec for fid, rec in self.folders.items() if fid in kept}
        for folder in listing.folders.values():
            if folder.id in listing.pruned:
                continue
            rollup = None if folder.id in dirty else _iso(folder.rollup)
            self.folders[folder.id] = FolderRecord(rollup, list(folder.segments), list(folder.names), folder.parent_id)
        clean = clean and not dirty and listing.complete
        self.root_rollup = _iso(listing.root_rollup) if clean else None
        self.root_segments = [project.hub_segment, project.project_segment]
        self.selection = selection
        if listing.full_walk and listing.complete:
            self.last_full_walk = now_iso()

    # -- items ------------------------------------------------------------------------------
    def mark_unavailable(self, item_id: str, reason: str, source_path: str, version: FileVersion | None,
                         folder_id: str | None = None) -> None:
        """Record why an item is not mirrored (kept until it is, or is gone), and since when."""
        before = self.unavailable.get(item_id) or {}
        self.unavailable[item_id] = {
            "reason": reason, "source_path": source_path, "folder_id": folder_id,
            "version_id": version.id if version else None,
            "version_number": version.version_number if version else None,
            "since": before.get("since") or now_iso(),
        }

    def forget_unavailable(self, seen: set[str]) -> None:
        """After a complete full walk: items no longer listed are no longer waiting."""
        for item_id in set(self.unavailable) - seen:
            del self.unavailable[item_id]

    def record_copy(self, remote: RemoteFile, key: str, size: int, sha1: str | None,
                    kept: dict[str, dict[str, Any]] | None = None, versions_kept: bool = False) -> ManifestEntry:
        """Record the version just mirrored at `key`; the one it replaces goes to history, with
        the key versions=all kept it at (`kept`: version id -> fields of its history record)."""
        item_id = remote.item_id
        previous = self.items.get(item_id)
        entry = ManifestEntry(version_id=remote.version.id, version_number=remote.version.version_number,
                              key=key, size=size, source_path=remote.source_path, sha1=sha1 or None,
                              copied_at=now_iso(), folder_id=remote.folder_id)
        entry.history = self._history(previous, remote.version.id, kept)
        entry.refresh_metadata(remote)
        entry.versions_kept = versions_kept
        self.items[item_id] = entry
        self.unavailable.pop(item_id, None)
        if previous is not None and previous.key != key:  # nothing references its old place now
            self.pending_deletes.append(previous.key)  # removed only after the commit
        return entry

    def record_kept_versions(self, item_id: str, kept: dict[str, dict[str, Any]]) -> None:
        """versions=all fetched the earlier versions of an unchanged item."""
        entry = self.items[item_id]
        entry.history = self._history(entry, entry.version_id, kept)
        entry.versions_kept = True

    @staticmethod
    def _history(previous: ManifestEntry | None, tip_id: str,
                 kept: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
        kept = dict(kept or {})
        history = [dict(h, **kept.pop(h["version_id"], {})) for h in (previous.history if previous else [])]
        if previous is not None and previous.version_id != tip_id:
            history.append({"version_id": previous.version_id, "version_number": previous.version_number,
                            "size": previous.size, "sha1": previous.sha1, "key": previous.key,
                            "kept_key": None, "source_path": previous.source_path,
                            "modified_at": previous.modified_at, "copied_at": previous.copied_at,
                            "superseded_at": now_iso(), **kept.pop(previous.version_id, {})})
        history += kept.values()  # earlier versions seen for the first time
        history.sort(key=lambda h: h.get("version_number") or 0)
        return history

    def remove_item(self, item_id: str) -> list[str]:
        """Drop an item; its objects are journalled for removal after the commit. Returns them."""
        held = self.items.pop(item_id).held_keys()
        self.pending_deletes += held
        return held

    def deletable_pending(self) -> list[str]:
        """The journalled removals the manifest no longer references (a key reused since stays)."""
        return sorted(set(self.pending_deletes) - self.referenced_keys())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def now_iso() -> str:
    # Microseconds, as the catalog stores them: whole seconds made two runs within one
    # second indistinguishable, so "as of" queries on copied_at/superseded_at picked the later.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class ManifestStore:
    """Loads and saves per-project manifests in the mirror's bucket."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def key_for(self, hub_id: str, project_id: str) -> str:
        return "/".join([meta_prefix(self.prefix), "manifests", safe_segment(hub_id),
                         safe_segment(project_id) + ".json"])

    def load(self, project: ProjectRef) -> Manifest:
        key = self.key_for(project.hub_id, project.project_id)
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            log.info("no manifest yet for %s: every file will be copied", project.label)
            return Manifest(project.hub_id, project.project_id, project.project_name, project.hub_name,
                            source=project.source)
        return Manifest.from_json(answer["Body"].read(), f"s3://{self.bucket}/{key}", answer.get("ETag"))

    def load_all(self, except_for: Iterable[ProjectRef] = ()) -> list[Manifest]:
        """Every project manifest of the mirror, in key order, but those of `except_for` (not
        even read: a night that retires projects needs only the manifests of the projects no
        longer listed). Read LOAD_WORKERS at a time: an account of thousands of projects is
        thousands of GETs."""
        prefix = f"{meta_prefix(self.prefix)}/manifests/"
        skipped = {self.key_for(p.hub_id, p.project_id) for p in except_for}
        keys = [obj["Key"] for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                for obj in page.get("Contents", []) if obj["Key"] not in skipped]

        def read(key: str) -> Manifest:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
            return Manifest.from_json(answer["Body"].read(), f"s3://{self.bucket}/{key}", answer.get("ETag"))

        if len(keys) <= 1:
            return [read(k) for k in keys]
        with ThreadPoolExecutor(max_workers=min(LOAD_WORKERS, len(keys))) as pool:
            return list(pool.map(read, keys))

    def save(self, manifest: Manifest) -> None:
        """Replace the manifest if nobody else did since it was read (atomic, conditional)."""
        manifest.updated_at = now_iso()
        key = self.key_for(manifest.hub_id, manifest.project_id)
        condition = {"IfMatch": manifest.etag} if manifest.etag else {"IfNoneMatch": "*"}
        try:
            # Saved before the run's first object write: read-only credentials stop here.
            with s3_write(self.bucket, key, prefix=self.prefix):
                answer = self.s3.put_object(Bucket=self.bucket, Key=key, Body=manifest.to_json(),
                                            ContentType="application/json", **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ManifestConflict(
                    f"Another run updated the manifest of {manifest.project_name!r} while this one "
                    "worked; its copies are in S3 but not recorded. Nothing is lost: run again "
                    "(and let one run at a time work on a project: max_active_runs=1)."
                ) from None
            raise
        manifest.etag = answer.get("ETag")
