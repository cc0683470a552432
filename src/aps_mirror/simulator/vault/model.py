"""Slotted value objects of a simulated Vault server: users, vaults, folders, files, versions, links."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from ..model import MIME_TYPES

ROOT_PATH = "$"
WORK_IN_PROGRESS = "Work in Progress"
RELEASED = "Released"


@dataclass(frozen=True)
class VaultUser:
    """A Vault account; ``autodesk_user_id`` maps an Autodesk ID (an APS 3-legged user) to it."""

    id: str
    name: str
    email: str
    password: str = field(repr=False)
    admin: bool = False
    autodesk_user_id: str | None = None


@dataclass(eq=False, slots=True)
class Vault:
    """One knowledge vault: its own id space (the root folder is always ``1``) and lookups."""

    id: str
    name: str
    root: Folder = field(init=False)
    folders: dict[str, Folder] = field(default_factory=dict)
    files: dict[str, File] = field(default_factory=dict)  # master id -> file, in creation order
    versions: dict[str, FileVersion] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    last_id: int = 0

    def next_id(self) -> str:
        self.last_id += 1
        return str(self.last_id)


@dataclass(eq=False, slots=True)
class Folder:
    id: str
    name: str
    vault: Vault
    parent: Folder | None
    create_time: float
    create_user: str
    cloaked: bool = False  # only administrators may see it
    category: str = "Folder"
    folders: list[Folder] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        """The vault path: ``$`` for the root, ``$/Designs/Gearbox`` below it."""
        names: list[str] = []
        node: Folder | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return "/".join([ROOT_PATH, *reversed(names)])

    @property
    def path(self) -> tuple[str, ...]:
        """Folder names below the root."""
        return tuple(self.full_name.split("/")[1:])

    def is_below(self, other: Folder) -> bool:
        """True when ``other`` is this folder or one of its ancestors."""
        node: Folder | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def hidden_from_non_admins(self) -> bool:
        """Cloaked itself or below a cloaked folder."""
        node: Folder | None = self
        while node is not None:
            if node.cloaked:
                return True
            node = node.parent
        return False


@dataclass(eq=False, slots=True)
class FileVersion:
    """One check-in. Its bytes are generated from ``content_key`` (never stored)."""

    id: str
    file: File
    number: int
    revision: str
    state: str
    size: int
    content_key: str
    create_time: float  # v1: the check-in; later: when the prior version was checked out
    checkin_time: float
    modified_time: float  # the uploading client's file time, not the server's
    create_user: str

    @property
    def is_tip(self) -> bool:
        return self.file.versions[-1] is self

    @property
    def released(self) -> bool:
        return self.state == RELEASED

    @property
    def mime_type(self) -> str:
        ext = posixpath.splitext(self.file.name)[1].lstrip(".").lower()
        return MIME_TYPES.get(ext, "application/octet-stream")


@dataclass(eq=False, slots=True)
class File:
    """A file master: its id, name and folder are shared by every version."""

    id: str
    name: str
    folder: Folder
    category: str = "Base"
    cloaked: bool = False
    versions: list[FileVersion] = field(default_factory=list)
    checked_out_by: str | None = None
    checked_out_at: float = 0.0

    @property
    def tip(self) -> FileVersion:
        return self.versions[-1]

    def hidden_from_non_admins(self) -> bool:
        return self.cloaked or self.folder.hidden_from_non_admins()


@dataclass(eq=False, slots=True)
class Link:
    """A folder link (a shortcut) in ``folder`` to another folder or a file."""

    id: str
    folder: Folder
    target: Folder | File
    create_time: float
    create_user: str

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True)
class PropertyDefinition:
    """A system property. ``entity_class``: FILE or FLDR; ``data_type``: String, Numeric,
    Bool, DateTime or Image."""

    id: str
    system_name: str
    display_name: str
    data_type: str
    entity_class: str
