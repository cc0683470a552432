"""Manifests -> the rows of the snapshot tables (`files`, `versions`, `folders`, `projects`).

Pure: no S3 and no Arrow here, so the mapping from what the mirror holds to what the catalog
says can be read (and tested) on its own.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from aps_mirror.mirror.keys import object_key
from aps_mirror.mirror.manifest import Manifest, ManifestEntry

Row = dict[str, Any]
MIRRORED, OUTDATED, SKIPPED, DELETED = "mirrored", "outdated", "skipped", "deleted"


def bim360_id(aps_id: str | None) -> str | None:
    """A BIM 360/ACC id as Data Connector writes it: without APS's `b.` prefix."""
    return aps_id[2:] if aps_id and aps_id.startswith("b.") else None


def id_columns(hub_id: str, hub_name: str, project_id: str, project_name: str) -> Row:
    return {"hub_id": hub_id, "bim360_account_id": bim360_id(hub_id), "hub_name": hub_name,
            "project_id": project_id, "bim360_project_id": bim360_id(project_id),
            "project_name": project_name}


@dataclass
class Snapshot:
    files: list[Row] = field(default_factory=list)
    versions: list[Row] = field(default_factory=list)
    folders: list[Row] = field(default_factory=list)
    projects: list[Row] = field(default_factory=list)

    def table(self, name: str) -> list[Row]:
        return getattr(self, name)


def build_snapshot(manifests: Iterable[Manifest], *, bucket: str, prefix: str, published_at: str,
                   project_runs: dict[tuple[str, str], Row] | None = None) -> Snapshot:
    """The snapshot tables' rows. `project_runs`: (hub_id, project_id) -> the last_run_* and
    last_success_at/last_error columns, from the runs table; projects that only appear there
    (a first sync that failed) get a row too."""
    snapshot = Snapshot()
    project_runs = dict(project_runs or {})
    for manifest in sorted(manifests, key=lambda m: (m.hub_id, m.project_id)):
        ids = id_columns(manifest.hub_id, manifest.hub_name, manifest.project_id, manifest.project_name)
        common = {**ids, "catalog_published_at": published_at, "source": manifest.source}
        files = _files(manifest, common, bucket)
        versions = [row for entry_id, entry in sorted(manifest.items.items())
                    for row in _versions(entry_id, entry, common)]
        folders = _folders(manifest, common, prefix)
        snapshot.files += files
        snapshot.versions += versions
        snapshot.folders += folders
        statuses = Counter(r["status"] for r in files)
        live = [r for r in files if r["status"] in (MIRRORED, OUTDATED)]
        root = _project_prefix(manifest, prefix)
        snapshot.projects.append({
            **common, "s3_bucket": bucket, "s3_prefix": root,
            "files": len(live), "bytes": sum(r["size"] or 0 for r in live),
            "deleted_files": statuses[DELETED], "skipped_files": statuses[SKIPPED] + statuses[OUTDATED],
            "locked_files": sum(1 for r in files if r["locked"]), "folders": len(folders),
            "versions": len(versions), "manifest_updated_at": manifest.updated_at,
            "last_full_walk": manifest.last_full_walk,
            **project_runs.pop((manifest.hub_id, manifest.project_id), {}),
        })
    for (hub_id, project_id), run in sorted(project_runs.items()):  # runs, but no manifest yet
        snapshot.projects.append({
            **id_columns(hub_id, run.get("hub_name") or "", project_id, run.get("project_name") or ""),
            "catalog_published_at": published_at, "source": run.get("source"), "s3_bucket": bucket,
            "files": 0, "bytes": 0,
            "deleted_files": 0, "skipped_files": 0, "locked_files": 0, "folders": 0, "versions": 0,
            **run})
    return snapshot


def _files(manifest: Manifest, common: Row, bucket: str) -> list[Row]:
    unavailable = {k: v if isinstance(v, dict) else {"reason": str(v)}
                   for k, v in manifest.unavailable.items()}
    rows = []
    for item_id, entry in sorted(manifest.items.items()):
        pending = unavailable.get(item_id)
        if entry.deleted_at:
            status, reason, since = DELETED, "no longer in Autodesk", entry.deleted_at
        elif pending is not None:
            wanted = pending.get("version_number")
            status, since = OUTDATED, pending.get("since")
            reason = f"version {wanted if wanted is not None else '?'} not mirrored: {pending.get('reason')}"
        else:
            status, reason, since = MIRRORED, None, None
        rows.append({
            **common, "item_id": item_id, "folder_id": entry.folder_id,
            "name": entry.name or posixpath.basename(entry.source_path),
            "path": entry.source_path, "file_type": entry.file_type or _extension(entry.source_path),
            "version_id": entry.version_id, "version_number": entry.version_number,
            "size": entry.size, "sha1": entry.sha1, "created_at": entry.created_at,
            "created_by": entry.created_by, "modified_at": entry.modified_at,
            "modified_by": entry.modified_by, "locked": bool(entry.reserved), "status": status,
            "status_reason": reason, "status_since": since, "s3_bucket": bucket, "s3_key": entry.key,
            "copied_at": entry.copied_at, "deleted_at": entry.deleted_at,
            "source_ids": json.dumps(entry.source_ids, sort_keys=True) if entry.source_ids else None,
        })
    for item_id, pending in sorted(unavailable.items()):
        if item_id in manifest.items:
            continue
        path = pending.get("source_path") or ""
        rows.append({
            **common, "item_id": item_id, "folder_id": pending.get("folder_id"),
            "name": posixpath.basename(path) or None, "path": path or None,
            "file_type": _extension(path), "version_id": pending.get("version_id"),
            "version_number": pending.get("version_number"), "locked": False, "status": SKIPPED,
            "status_reason": pending.get("reason"), "status_since": pending.get("since"),
            "s3_bucket": bucket,
        })
    return rows


def _versions(item_id: str, entry: ManifestEntry, common: Row) -> list[Row]:
    """The item's mirrored versions, oldest first, each valid until the next one began."""
    chain = [dict(h) for h in entry.history] + [{
        "version_id": entry.version_id, "version_number": entry.version_number, "size": entry.size,
        "sha1": entry.sha1, "key": entry.key, "source_path": entry.source_path,
        "modified_at": entry.modified_at, "copied_at": entry.copied_at, "superseded_at": None,
        "name": entry.name}]
    rows = []
    for index, version in enumerate(chain):
        tip = index == len(chain) - 1
        if tip:
            status, valid_to = (DELETED, entry.deleted_at) if entry.deleted_at else ("current", None)
        else:
            after = chain[index + 1]
            status, valid_to = "superseded", after.get("modified_at") or version.get("superseded_at")
        path = version.get("source_path") or ""
        rows.append({
            **common, "item_id": item_id, "version_id": version.get("version_id"),
            "version_number": version.get("version_number"),
            "name": version.get("name") or posixpath.basename(path), "path": path,
            "size": version.get("size"), "sha1": version.get("sha1"), "status": status,
            "valid_from": version.get("modified_at") or version.get("copied_at"),
            "valid_to": valid_to, "s3_key": version.get("key"), "copied_at": version.get("copied_at"),
            "superseded_at": version.get("superseded_at"),
        })
    return rows


def _folders(manifest: Manifest, common: Row, prefix: str) -> list[Row]:
    held: dict[str, list[int]] = defaultdict(list)
    for entry in manifest.items.values():
        if entry.folder_id and not entry.deleted_at:
            held[entry.folder_id].append(entry.size or 0)
    root = manifest.root_segments if len(manifest.root_segments) == 2 else None
    rows = []
    for folder_id, record in sorted(manifest.folders.items()):
        rows.append({
            **common, "folder_id": folder_id, "parent_id": record.parent_id,
            "name": record.names[-1] if record.names else None, "path": "/".join(record.names),
            "depth": len(record.names),
            "s3_prefix": object_key(prefix, *root, tuple(record.segments), "") if root else None,
            "last_modified_rollup": record.rollup, "files": len(held.get(folder_id, ())),
            "bytes": sum(held.get(folder_id, ())),
        })
    return rows


def _project_prefix(manifest: Manifest, prefix: str) -> str | None:
    if len(manifest.root_segments) != 2:
        return None  # written before the manifest recorded it
    return object_key(prefix, *manifest.root_segments, (), "")


def _extension(path: str) -> str | None:
    ext = posixpath.splitext(path)[1].lstrip(".").lower()
    return ext or None
