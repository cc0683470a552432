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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.keys import safe_segment
from aps_mirror.mirror.walk import ProjectRef

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_DIR = "_aps_mirror"


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
    updated_at: str | None = None
    etag: str | None = field(default=None, repr=False)  # as read; None for a new manifest

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
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
            "unavailable": dict(sorted(self.unavailable.items())),
            "folders": {k: asdict(v) for k, v in sorted(self.folders.items())},
            "items": {k: asdict(v) for k, v in sorted(self.items.items())},
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")

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
                unavailable={k: v if isinstance(v, dict) else {"reason": v}
                             for k, v in (body.get("unavailable") or {}).items()},
                updated_at=body.get("updated_at"),
                etag=etag,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Manifest {where} is damaged ({type(exc).__name__}: {exc}). Nothing was changed; "
                "restore it from the bucket's versions, or delete it to re-mirror the project."
            ) from None

    def referenced_keys(self) -> set[str]:
        """Every object the mirror holds for this project: tips, and kept earlier versions."""
        return {entry.key for entry in self.items.values()} | {
            h["kept_key"] for entry in self.items.values() for h in entry.history if h.get("kept_key")}

    def known_rollup(self, folder_id: str) -> tuple[datetime | None, tuple[str, ...]] | None:
        """The rollup and path the last walk recorded for a folder (the walker's KnownTree)."""
        record = self.folders.get(folder_id)
        if record is None or record.rollup is None:
            return None
        return parse_timestamp(record.rollup), tuple(record.segments)

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


def meta_prefix(prefix: str) -> str:
    return "/".join([p for p in prefix.strip("/").split("/") if p] + [META_DIR])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
            return Manifest(project.hub_id, project.project_id, project.project_name, project.hub_name)
        return Manifest.from_json(answer["Body"].read(), f"s3://{self.bucket}/{key}", answer.get("ETag"))

    def load_all(self) -> list[Manifest]:
        """Every project manifest of the mirror."""
        prefix = f"{meta_prefix(self.prefix)}/manifests/"
        manifests = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                answer = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])
                manifests.append(Manifest.from_json(answer["Body"].read(),
                                                    f"s3://{self.bucket}/{obj['Key']}", answer.get("ETag")))
        return manifests

    def save(self, manifest: Manifest) -> None:
        """Replace the manifest if nobody else did since it was read (atomic, conditional)."""
        manifest.updated_at = now_iso()
        key = self.key_for(manifest.hub_id, manifest.project_id)
        condition = {"IfMatch": manifest.etag} if manifest.etag else {"IfNoneMatch": "*"}
        try:
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
