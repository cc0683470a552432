"""Objects an interrupted run copied but did not record: adopted when they prove to hold a
version the mirror wants, removed otherwise.

A run records its copies in the manifest at checkpoints and at its commit. Killed in between,
it leaves objects in S3 that no manifest references. Each carries the item and version it
holds in its metadata (`transfer.object_metadata`), and was checked against Autodesk's size and
SHA-1 before S3 made it visible, so the next run can take it instead of downloading again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import unquote

from aps_mirror.mirror.keys import ProjectKeys
from aps_mirror.mirror.sources.records import RemoteFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrayObject:
    """An object under the project's root that the manifest does not reference."""

    key: str
    size: int
    item_id: str | None
    version_id: str | None
    sha1: str | None

    def holds(self, remote: RemoteFile) -> bool:
        """Whether it proves to hold this item's listed version, byte count included."""
        expected = remote.version.size
        return (self.item_id == remote.item_id and self.version_id == remote.version.id
                and (expected is None or expected == self.size))


class Strays:
    """The stray objects of one project, found after an interrupted run; each taken once."""

    def __init__(self, objects: Iterable[StrayObject] = ()) -> None:
        self._unclaimed = {o.key: o for o in objects}

    @classmethod
    def find(cls, s3: Any, bucket: str, keys: ProjectKeys, referenced: set[str]) -> Strays:
        """List the project's root; read the metadata of each object the manifest does not
        reference (a checkpoint bounds how many there are)."""
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.root):
            for obj in page.get("Contents", []):
                if obj["Key"] in referenced:
                    continue
                meta = s3.head_object(Bucket=bucket, Key=obj["Key"]).get("Metadata", {})
                version_id = meta.get("aps-version-id")
                found.append(StrayObject(obj["Key"], obj["Size"], meta.get("aps-item-id"),
                                         unquote(version_id) if version_id else None, meta.get("aps-sha1")))
        return cls(found)

    def __len__(self) -> int:
        return len(self._unclaimed)

    def take(self, remote: RemoteFile, key: str) -> StrayObject | None:
        """The stray holding this version: the one at `key` if it does, else any other."""
        here = self._unclaimed.get(key)
        if here is not None and here.holds(remote):
            return self._unclaimed.pop(key)
        for stray in self._unclaimed.values():
            if stray.holds(remote):
                return self._unclaimed.pop(stray.key)
        return None

    def leftovers(self) -> list[str]:
        """The keys no wanted version claimed: to be removed after the commit."""
        return sorted(self._unclaimed)
