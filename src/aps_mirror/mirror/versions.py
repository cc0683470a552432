"""versions=all: every earlier version of an item, kept at `{project}/_versions/<folders>/<stem>.v<N><.ext>`."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from aps_mirror.mirror.keys import ProjectKeys
from aps_mirror.mirror.manifest import ManifestEntry, now_iso
from aps_mirror.mirror.protection import copy_args
from aps_mirror.mirror.sources import Source
from aps_mirror.mirror.sources.records import ProjectRef, RemoteFile
from aps_mirror.mirror.transfer import NotDownloadable, copy_version

log = logging.getLogger(__name__)


class VersionKeeper:
    """Fetches and places the earlier versions of the items of one project's sync.

    `owners` (kept key -> item id, from the manifest at the start of the sync) keeps an item
    deleted and re-created under the same name, or moved in where another was, from taking a
    key another item still holds: it gets the variant told apart by its id.
    """

    def __init__(self, source: Source, s3: Any, bucket: str, scope: ProjectRef, keys: ProjectKeys,
                 owners: dict[str, str]) -> None:
        self.source, self.s3, self.bucket, self.keys, self.owners = source, s3, bucket, keys, owners
        self.scope = scope

    def key_for(self, remote: RemoteFile, number: int | None) -> str:
        key = self.keys.version_key(remote.folder_segments, remote.name_segment, number)
        if self.owners.get(key, remote.item_id) != remote.item_id:
            key = self.keys.version_key(remote.folder_segments, remote.name_segment, number,
                                        owner_id=remote.item_id)
        return key

    def set_tip_aside(self, remote: RemoteFile, previous: ManifestEntry) -> dict[str, dict[str, Any]]:
        """Before a new tip overwrites it, copy the mirrored old tip aside inside S3 (no download)."""
        key = self.key_for(remote, previous.version_number)
        self.s3.copy({"Bucket": self.bucket, "Key": self.keys.check_own(previous.key)}, self.bucket, key,
                     ExtraArgs=copy_args(self.s3))
        return {previous.version_id: {"kept_key": key}}

    def fetch_earlier(self, remote: RemoteFile, previous: ManifestEntry | None,
                      just_kept: set[str]) -> dict[str, dict[str, Any]]:
        """Copy the item's earlier versions the mirror does not hold yet: version id -> record."""
        held = {h["version_id"] for h in previous.history if h.get("kept_key")} if previous else set()
        versions = self.source.item_versions(self.scope, remote.item_id)
        created = {v.id: v.created_at or v.modified_at for v in versions}
        newer = {v.id: n for v, n in zip(versions[1:], versions)}  # newest first: the next one up
        kept: dict[str, dict[str, Any]] = {}
        for version in versions:
            if version.id == remote.version.id or version.id in held | just_kept:
                continue
            if not version.stored:
                continue  # nothing to keep: a deletion marker, or no stored file
            key = self.key_for(remote, version.version_number)
            try:
                done = copy_version(self.source, self.s3, self.bucket, key, replace(remote, version=version))
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
