"""What a mutation of the account publishes: one :class:`Change` per change, named after the Data
Management event Autodesk raises for it (the webhooks service turns changes into callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Folder, Item, Version

VERSION_ADDED = "dm.version.added"  # a new item, a new version, a rename (a new version), a restore
VERSION_DELETED = "dm.version.deleted"  # the Deleted tombstone of an item
VERSION_MOVED = "dm.version.moved"  # an item moved to another folder
FOLDER_ADDED = "dm.folder.added"
FOLDER_MODIFIED = "dm.folder.modified"  # a rename
FOLDER_DELETED = "dm.folder.deleted"
FOLDER_MOVED = "dm.folder.moved"


@dataclass(frozen=True)
class Change:
    """``node`` changed (an item, with its new tip ``version``, or a folder) at ``at``;
    ``old_parent`` is the folder a move took it from."""

    event: str
    node: Item | Folder
    at: float
    version: Version | None = None
    old_parent: Folder | None = None

    @property
    def parent(self) -> Folder | None:
        """The folder the change happened in (a folder event happens in the folder's parent)."""
        return self.node.parent


# Called with the account's lock held, right after the change: it must be quick and never raise.
ChangeListener = Callable[[Change], None]
