"""Slotted value objects of a simulated account: hubs, projects, folders, items, versions, users."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import NamedTuple

BUCKET = "wip.dm.prod"
ACC = "acc"
FUSION = "fusion"
DELETED = "versions:autodesk.core:Deleted"

# Item kinds: the extension type of the item and of its versions, per hub kind.
FILE = "File"
DOCUMENT = "Document"  # ACC Plans sheets
C4R = "C4RModel"  # cloud-workshared Revit; downloadable only once published

MIME_TYPES = {
    "pdf": "application/pdf", "dwg": "application/acad", "rvt": "application/vnd.autodesk.revit",
    "ifc": "application/x-step", "nwd": "application/vnd.autodesk.navisworks",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "f3d": "application/vnd.autodesk.fusion360", "step": "application/step", "stp": "application/step",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "txt": "text/plain",
}


@dataclass(frozen=True)
class User:
    user_id: str
    user_name: str
    email: str
    first_name: str
    last_name: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(eq=False, slots=True)
class Version:
    id: str
    item: Item
    number: int
    name: str
    create_time: float
    size: int | None  # None for a Deleted tombstone or an unpublished cloud model
    content_key: str | None
    object_key: str | None  # None: no storage (tombstone, unpublished C4R model)
    ext_type: str

    @property
    def deleted(self) -> bool:
        return self.ext_type == DELETED

    @property
    def downloadable(self) -> bool:
        return self.object_key is not None and self.size is not None

    @property
    def file_type(self) -> str | None:
        ext = posixpath.splitext(self.name)[1].lstrip(".").lower()
        return ext or None

    @property
    def mime_type(self) -> str:
        return MIME_TYPES.get(self.file_type or "", "application/octet-stream")

    @property
    def storage_urn(self) -> str | None:
        return f"urn:adsk.objects:os.object:{BUCKET}/{self.object_key}" if self.object_key else None


@dataclass(eq=False, slots=True)
class Item:
    id: str
    vf_id: str
    project: Project
    parent: Folder
    create_time: float
    last_modified: float
    ext_type: str
    versions: list[Version] = field(default_factory=list)
    hidden: bool = False
    reserved: bool = False

    @property
    def tip(self) -> Version:
        return self.versions[-1]

    @property
    def display_name(self) -> str:
        return self.tip.name


@dataclass(eq=False, slots=True)
class Folder:
    id: str
    name: str
    project: Project
    parent: Folder | None
    create_time: float
    last_modified: float
    rollup: float
    ext_type: str
    hidden: bool = False
    system: bool = False  # an ACC system folder (Photos, Recycle Bin, issue_*, ...)
    restricted: bool = False  # visible to project admins only
    folders: list[Folder] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    @property
    def path(self) -> tuple[str, ...]:
        """Names from the top folder down (the hidden project root is not part of it)."""
        names: list[str] = []
        node: Folder | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return tuple(reversed(names))

    @property
    def object_count(self) -> int:
        return sum(not f.hidden for f in self.folders) + sum(not i.hidden for i in self.items)

    def is_below(self, other: Folder) -> bool:
        """True when ``other`` is this folder or one of its ancestors."""
        node: Folder | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


@dataclass(eq=False, slots=True)
class Project:
    id: str
    name: str
    hub: Hub
    root: Folder | None = None

    @property
    def kind(self) -> str:
        return self.hub.kind


@dataclass(eq=False, slots=True)
class Hub:
    id: str
    name: str
    kind: str  # ACC or FUSION
    region: str = "US"
    projects: list[Project] = field(default_factory=list)

    @property
    def ext_type(self) -> str:
        return "hubs:autodesk.bim360:Account" if self.kind == ACC else "hubs:autodesk.core:Hub"


@dataclass(eq=False, slots=True)
class Reservation:
    """A storage location made by ``POST .../storage``: an OSS object key awaiting its upload
    (``content_key`` set once the upload completed) and then a version."""

    object_key: str
    project: Project
    folder: Folder
    name: str
    create_time: float
    content_key: str | None = None
    size: int | None = None
    content_type: str = "application/octet-stream"

    @property
    def storage_urn(self) -> str:
        return f"urn:adsk.objects:os.object:{BUCKET}/{self.object_key}"


class StoredObject(NamedTuple):
    """What OSS holds under an object key: a version's content or a completed upload."""

    id: str  # the version id, or the object's urn when no version uses it yet
    object_key: str
    size: int
    content_key: str
    mime_type: str


class FileEntry(NamedTuple):
    """One file for ground truth: (hub name, project name, folder path, item id, tip version)."""

    hub: str
    project: str
    path: tuple[str, ...]
    item_id: str
    tip: Version


def kind_types(hub_kind: str, item_kind: str = FILE) -> tuple[str, str, str]:
    """(folder, item, version) extension types of a hub kind and item kind."""
    if hub_kind == ACC:
        return ("folders:autodesk.bim360:Folder", f"items:autodesk.bim360:{item_kind}",
                f"versions:autodesk.bim360:{item_kind}")
    return "folders:autodesk.core:Folder", "items:autodesk.core:File", "versions:autodesk.core:File"
