"""Deciding: one pure predicate per file says what to do with it, and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from aps_mirror.mirror.manifest import ManifestEntry
from aps_mirror.mirror.walk import RemoteFile

log = logging.getLogger(__name__)


class ActionKind(str, Enum):
    COPY = "copy"  # download from Autodesk, upload to S3
    SERVER_COPY = "server_copy"  # same version already mirrored at another key (rename/move)
    SKIP = "skip"  # the mirror already holds this version at this key


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    remote: RemoteFile
    key: str
    reason: str
    source_key: str | None = None  # for SERVER_COPY: where the bytes already are

    @property
    def size(self) -> int:
        return self.remote.version.storage_size or 0


def decide(remote: RemoteFile, key: str, entry: ManifestEntry | None) -> Action:
    """What to do with one listed file, given what the manifest says the mirror holds."""
    if entry is None or entry.deleted_at:
        return Action(ActionKind.COPY, remote, key, "new item" if entry is None else "restored item")
    if entry.version_id != remote.version.id:
        return Action(ActionKind.COPY, remote, key,
                      f"new version v{remote.version.version_number} (mirror has v{entry.version_number})")
    if entry.key != key:
        return Action(ActionKind.SERVER_COPY, remote, key, "renamed or moved", source_key=entry.key)
    return Action(ActionKind.SKIP, remote, key, "unchanged")


def plan(files: list[RemoteFile], keys: dict[str, str],
         entries: dict[str, ManifestEntry]) -> list[Action]:
    """Decide every file of a listing; `keys` maps item id to its S3 key."""
    actions = []
    for remote in files:
        action = decide(remote, keys[remote.item.id], entries.get(remote.item.id))
        log.debug("%s %s: %s", action.kind.value, action.key, action.reason)
        actions.append(action)
    return actions
