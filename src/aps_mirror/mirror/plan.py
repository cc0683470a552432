"""Deciding: one pure predicate per file says what to do with it, and why; deletes are a policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.manifest import ManifestEntry
from aps_mirror.mirror.sources.records import RemoteFile

log = logging.getLogger(__name__)


class ActionKind(str, Enum):
    COPY = "copy"  # download from the source, upload to S3 (unless the bytes are already mirrored)
    SERVER_COPY = "server_copy"  # same version already mirrored at another key (rename/move)
    SKIP = "skip"  # the mirror already holds this version at this key
    KEEP_VERSIONS = "keep_versions"  # versions=all: fetch earlier versions of an unchanged item


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    remote: RemoteFile
    key: str
    reason: str
    previous: ManifestEntry | None = None  # what the mirror held for this item before
    source_key: str | None = None  # SERVER_COPY from an object the manifest does not hold (adoption)
    source_sha1: str | None = None  # that object's SHA-1, as its metadata says (None: unknown)

    @property
    def size(self) -> int:
        return self.remote.version.size or 0


def decide(remote: RemoteFile, key: str, entry: ManifestEntry | None) -> Action:
    """What to do with one listed file, given what the manifest says the mirror holds."""
    if entry is None or entry.deleted_at:
        return Action(ActionKind.COPY, remote, key, "new item" if entry is None else "restored item", entry)
    if entry.version_id != remote.version.id:
        return Action(ActionKind.COPY, remote, key,
                      f"new version v{remote.version.version_number} (mirror has v{entry.version_number})",
                      entry)
    if entry.key != key:
        return Action(ActionKind.SERVER_COPY, remote, key, "renamed or moved", entry)
    return Action(ActionKind.SKIP, remote, key, "unchanged", entry)


def plan(files: list[RemoteFile], keys: dict[str, str],
         entries: dict[str, ManifestEntry]) -> list[Action]:
    """Decide every file of a listing; `keys` maps item id to its S3 key."""
    actions = []
    for remote in files:
        action = decide(remote, keys[remote.item_id], entries.get(remote.item_id))
        log.debug("%s %s: %s", action.kind.value, action.key, action.reason)
        actions.append(action)
    return actions


class DeletePolicy(str, Enum):
    KEEP = "keep"  # nothing is removed; the item is marked deleted in the manifest
    TRASH = "trash"  # moved under {prefix}/_aps_mirror/trash/<date>/
    DELETE = "delete"  # removed from the mirror


@dataclass(frozen=True)
class DeleteLimit:
    """rclone's --max-delete: a count, or a percentage of the project's mirrored files."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: str | int, name: str = "max_delete") -> DeleteLimit:
        """`50` files or `10%` of the project's files (0 to 100), digits only: an empty, negative,
        nan or infinite value would lift the guard, so none of them is a limit."""
        text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        number = text.removesuffix("%").strip()
        digits = number.replace(".", "", 1) if text.endswith("%") else number
        if digits.isascii() and digits.isdigit():
            if not text.endswith("%"):
                return cls(count=int(number))
            if float(number) <= 100:
                return cls(percent=float(number))
        raise ConfigError(f"{name} {value!r} is not accepted: use a count (50) or a percentage "
                          "from 0% to 100% (10%).")

    def refuses(self, deletes: int, mirrored: int) -> str | None:
        """Why `deletes` out of `mirrored` files is too many, or None when allowed."""
        if self.count is not None and deletes > self.count:
            return f"{deletes} deletes exceed max_delete={self.count}"
        if self.percent is not None and mirrored and deletes * 100 / mirrored > self.percent:
            return f"{deletes} of {mirrored} files ({deletes * 100 / mirrored:.0f}%) exceed max_delete={self.percent:g}%"
        return None
