"""Objects an interrupted run copied but did not record: adopted when they prove to hold a
version the mirror wants, removed otherwise.

A run records its copies in the manifest at checkpoints and at its commit. Killed in between,
it leaves objects in S3 that no manifest references. Each carries the item and version it
holds in its metadata (`transfer.object_metadata`), and was checked against Autodesk's size and
SHA-1 before S3 made it visible, so the next run can take it instead of downloading again.

A new version of a file is stored over its recorded key, so an interrupted run can also leave
a referenced key holding a version the manifest does not record. Those objects are read too
when the listing hints at it (another size than recorded, or written since the manifest's last
save, give or take OVERWRITE_MARGIN); they are adopted at their own key or left to be copied
over, never removed: the manifest still owns the key. A hint missed costs a download, no more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

from aps_mirror.mirror.keys import ProjectKeys
from aps_mirror.mirror.sources.records import RemoteFile

log = logging.getLogger(__name__)

# How long before the manifest's last save a recorded object may have been overwritten unseen
# (a copy finishing while the checkpoint was written, clocks a little apart). Every object
# written in that window is read once more, so it stays short; a multipart object (S3 dates it
# from its start) of a new version almost always has another size than the one recorded.
OVERWRITE_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class RecordedTip:
    """What the manifest says a tip key holds."""

    version_id: str
    size: int


@dataclass(frozen=True)
class StrayObject:
    """An object under the project's root that the manifest does not reference."""

    key: str
    size: int
    item_id: str | None
    version_id: str | None
    sha1: str | None
    recorded: bool = False  # at a key the manifest references (overwritten by the killed run)

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
    def find(cls, s3: Any, bucket: str, keys: ProjectKeys, referenced: set[str],
             tips: Mapping[str, RecordedTip] | None = None, saved_at: datetime | None = None) -> Strays:
        """List the project's root; read the metadata of each object the manifest does not
        reference (a checkpoint bounds how many there are), and of each tip key (`tips`) the
        killed run may have overwritten with a newer version: listed with another size than
        recorded, or modified after `saved_at` (the manifest's last save) - OVERWRITE_MARGIN."""
        tips = tips or {}
        since = saved_at - OVERWRITE_MARGIN if saved_at else None
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=keys.root):
            for obj in page.get("Contents", []):
                tip = tips.get(obj["Key"])
                if tip is not None:
                    if obj["Size"] == tip.size and (since is None or obj["LastModified"] < since):
                        continue
                elif obj["Key"] in referenced:
                    continue
                stray = _stray(s3, bucket, obj, recorded=tip is not None)
                if tip is None or stray.version_id not in (None, tip.version_id):
                    found.append(stray)
        return cls(found)

    def __len__(self) -> int:
        return len(self._unclaimed)

    def take(self, remote: RemoteFile, key: str) -> StrayObject | None:
        """The stray holding this version: the one at `key` if it does, else any other not
        at a recorded key (its item's entry still owns that one)."""
        here = self._unclaimed.get(key)
        if here is not None and here.holds(remote):
            return self._unclaimed.pop(key)
        for stray in self._unclaimed.values():
            if not stray.recorded and stray.holds(remote):
                return self._unclaimed.pop(stray.key)
        return None

    def leftovers(self) -> list[str]:
        """The unrecorded keys no wanted version claimed: to be removed after the commit."""
        return sorted(k for k, stray in self._unclaimed.items() if not stray.recorded)


def _stray(s3: Any, bucket: str, listed: dict[str, Any], *, recorded: bool) -> StrayObject:
    meta = s3.head_object(Bucket=bucket, Key=listed["Key"]).get("Metadata", {})
    version_id = meta.get("aps-version-id")
    return StrayObject(listed["Key"], listed["Size"], meta.get("aps-item-id"),
                       unquote(version_id) if version_id else None, meta.get("aps-sha1"), recorded)
