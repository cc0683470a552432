"""Plain model of an Autodesk account: hubs -> projects -> folders -> items -> versions.

No HTTP here. Every mutation holds ``Account.lock`` (one RLock) and stamps times from the
shared :class:`~aps_mirror.simulator.clock.Clock`; every change bumps the folder's
``lastModifiedTimeRollup`` up to the project root.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .clock import Clock
from .content import DigestCache, body
from .errors import BadInput, NotFound

BUCKET = "wip.dm.prod"
ACC = "acc"
FUSION = "fusion"

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


@dataclass(eq=False)
class Version:
    id: str
    item: Item
    number: int
    name: str
    create_time: float
    size: int | None  # None for a Deleted tombstone
    content_key: str | None
    object_key: str | None
    ext_type: str

    @property
    def deleted(self) -> bool:
        return self.ext_type == "versions:autodesk.core:Deleted"

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


@dataclass(eq=False)
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


@dataclass(eq=False)
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


@dataclass(eq=False)
class Project:
    id: str
    name: str
    hub: Hub
    root: Folder | None = None

    @property
    def kind(self) -> str:
        return self.hub.kind


@dataclass(eq=False)
class Hub:
    id: str
    name: str
    kind: str  # ACC or FUSION
    region: str = "US"
    projects: list[Project] = field(default_factory=list)

    @property
    def ext_type(self) -> str:
        return "hubs:autodesk.bim360:Account" if self.kind == ACC else "hubs:autodesk.core:Hub"


class FileEntry(NamedTuple):
    """One file for ground truth: (hub name, project name, folder path, item id, tip version)."""

    hub: str
    project: str
    path: tuple[str, ...]
    item_id: str
    tip: Version


def _kind_types(kind: str) -> tuple[str, str, str]:
    """(folder, item, version) extension types of a hub kind."""
    if kind == ACC:
        return "folders:autodesk.bim360:Folder", "items:autodesk.bim360:File", "versions:autodesk.bim360:File"
    return "folders:autodesk.core:Folder", "items:autodesk.core:File", "versions:autodesk.core:File"


class Account:
    """Everything one simulated Autodesk user can see, with thread-safe mutations."""

    def __init__(self, seed: str, clock: Clock, user: User) -> None:
        self.seed = seed
        self.clock = clock
        self.user = user
        self.lock = threading.RLock()
        self.hubs: list[Hub] = []
        self._projects: dict[str, Project] = {}
        self._folders: dict[str, Folder] = {}
        self._items: dict[str, Item] = {}
        self._versions: dict[str, Version] = {}
        self._objects: dict[str, Version] = {}
        self._counter = 0
        self._digests = DigestCache()

    # ---- identifiers (deterministic per seed and creation order)
    def _digest(self, kind: str) -> bytes:
        self._counter += 1
        return hashlib.sha1(f"{self.seed}/{kind}/{self._counter}".encode()).digest()

    def _uuid(self, kind: str) -> str:
        return str(uuid.UUID(bytes=self._digest(kind)[:16], version=4))

    def _short(self, kind: str) -> str:
        return base64.urlsafe_b64encode(self._digest(kind)[:16]).decode().rstrip("=")

    def _a_id(self, kind: str) -> str:
        raw = f"{kind}:{self.seed}{self._digest(kind).hex()[:12]}".encode()
        return "a." + base64.b64encode(raw).decode().rstrip("=")

    # ---- lookups
    def project(self, project_id: str) -> Project:
        try:
            return self._projects[project_id]
        except KeyError:
            raise NotFound(f"The project {project_id} does not exist or you have no access.") from None

    def hub(self, hub_id: str) -> Hub:
        for hub in self.hubs:
            if hub.id == hub_id:
                return hub
        raise NotFound(f"The hub {hub_id} does not exist or you have no access.")

    def hub_project(self, hub_id: str, project_id: str) -> Project:
        project = self.project(project_id)
        if project.hub.id != hub_id:
            raise NotFound(f"The project {project_id} is not in hub {hub_id}.")
        return project

    def folder(self, folder_id: str, project_id: str | None = None) -> Folder:
        folder = self._folders.get(folder_id)
        if folder is None or (project_id is not None and folder.project.id != project_id):
            raise NotFound(f"The folder {folder_id} does not exist in this project.")
        return folder

    def item(self, item_id: str, project_id: str | None = None) -> Item:
        item = self._items.get(item_id)
        if item is None or (project_id is not None and item.project.id != project_id):
            raise NotFound(f"The item {item_id} does not exist in this project.")
        return item

    def version(self, version_id: str, project_id: str | None = None) -> Version:
        version = self._versions.get(version_id)
        if version is None or (project_id is not None and version.item.project.id != project_id):
            raise NotFound(f"The version {version_id} does not exist in this project.")
        return version

    def object_version(self, object_key: str) -> Version | None:
        return self._objects.get(object_key)

    def project_by_name(self, name: str) -> Project:
        for hub in self.hubs:
            for project in hub.projects:
                if project.name == name:
                    return project
        raise NotFound(f"No project named {name!r}.")

    def folder_by_path(self, project_id: str, path: tuple[str, ...] | list[str]) -> Folder:
        folder = self.project(project_id).root
        assert folder is not None
        for name in path:
            matches = [f for f in folder.folders if f.name == name]
            if not matches:
                raise NotFound(f"No folder {name!r} under {folder.path}.")
            folder = matches[0]
        return folder

    def top_folders(self, project: Project) -> list[Folder]:
        assert project.root is not None
        return [f for f in project.root.folders if not f.hidden]

    # ---- creation (used by seeds and by tests)
    def add_hub(self, name: str, kind: str, region: str = "US") -> Hub:
        with self.lock:
            hub_id = "b." + self._uuid("hub") if kind == ACC else self._a_id("business")
            hub = Hub(hub_id, name, kind, region)
            self.hubs.append(hub)
            return hub

    def add_project(self, hub: Hub, name: str, when: float | None = None) -> Project:
        with self.lock:
            t = self.clock.now() if when is None else when
            project_id = "b." + self._uuid("project") if hub.kind == ACC else self._a_id("project")
            project = Project(project_id, name, hub)
            folder_type = _kind_types(hub.kind)[0]
            root = Folder(self._folder_id(), f"{project_id}-root-folder", project, None, t, t, t, folder_type, hidden=False)
            project.root = root
            self._folders[root.id] = root
            hub.projects.append(project)
            self._projects[project_id] = project
            return project

    def _folder_id(self) -> str:
        return f"urn:adsk.wipprod:fs.folder:co.{self._short('folder')}"

    def add_folder(self, parent: Folder, name: str, when: float | None = None) -> Folder:
        with self.lock:
            if not name or "/" in name:
                raise BadInput(f"Invalid folder name {name!r}.")
            t = self.clock.now() if when is None else when
            folder = Folder(self._folder_id(), name, parent.project, parent, t, t, t, parent.ext_type)
            parent.folders.append(folder)
            self._folders[folder.id] = folder
            self._touch(parent, t, own=True)
            return folder

    def add_item(self, parent: Folder, name: str, size: int, content_key: str | None = None,
                 when: float | None = None) -> Item:
        with self.lock:
            if not name:
                raise BadInput("A file name is required.")
            t = self.clock.now() if when is None else when
            short = self._short("item")
            item_type = _kind_types(parent.project.kind)[1]
            item = Item(f"urn:adsk.wipprod:dm.lineage:{short}", short, parent.project, parent, t, t, item_type)
            self._items[item.id] = item
            parent.items.append(item)
            self._append_version(item, name, size, content_key, t)
            self._touch(parent, t, own=True)
            return item

    def add_version(self, item: Item, size: int | None = None, name: str | None = None,
                    content_key: str | None = None, when: float | None = None,
                    same_content: bool = False) -> Version:
        with self.lock:
            t = self.clock.now() if when is None else when
            last_live = next((v for v in reversed(item.versions) if not v.deleted), None)
            new_name = name or item.tip.name
            if same_content and last_live is not None:
                new_size, key = last_live.size, last_live.content_key
            else:
                new_size = size if size is not None else (last_live.size if last_live else 0)
                key = content_key
            version = self._append_version(item, new_name, int(new_size or 0), key, t)
            if item.hidden:
                item.hidden = False
                self._touch(item.parent, t, own=True)
            else:
                self._touch(item.parent, t, own=False)
            return version

    def _append_version(self, item: Item, name: str, size: int, content_key: str | None, t: float) -> Version:
        if size < 0:
            raise BadInput("A file size cannot be negative.")
        number = len(item.versions) + 1
        version_id = f"urn:adsk.wipprod:fs.file:vf.{item.vf_id}?version={number}"
        ext = posixpath.splitext(name)[1].lower()
        object_key = f"{self._uuid('object')}{ext}"
        version = Version(version_id, item, number, name, t, size, content_key or version_id, object_key,
                          _kind_types(item.project.kind)[2])
        item.versions.append(version)
        item.last_modified = t
        self._versions[version_id] = version
        self._objects[object_key] = version
        return version

    def rename_item(self, item: Item, new_name: str, when: float | None = None) -> Version:
        """Autodesk renames by adding a version with the new name and the same content."""
        with self.lock:
            if item.tip.deleted:
                raise BadInput("A deleted item cannot be renamed.")
            version = self.add_version(item, name=new_name, when=when, same_content=True)
            self._touch(item.parent, version.create_time, own=True)
            return version

    def move_item(self, item: Item, target: Folder, when: float | None = None) -> None:
        with self.lock:
            if target.project is not item.project:
                raise BadInput("Items can only move within their project.")
            t = self.clock.now() if when is None else when
            old = item.parent
            old.items.remove(item)
            target.items.append(item)
            item.parent = target
            item.last_modified = t
            self._touch(old, t, own=True)
            self._touch(target, t, own=True)

    def delete_item(self, item: Item, when: float | None = None) -> Version:
        """Add a ``versions:autodesk.core:Deleted`` tombstone tip and hide the item."""
        with self.lock:
            if item.tip.deleted:
                raise BadInput("The item is already deleted.")
            t = self.clock.now() if when is None else when
            number = len(item.versions) + 1
            version_id = f"urn:adsk.wipprod:fs.file:vf.{item.vf_id}?version={number}"
            tomb = Version(version_id, item, number, item.tip.name, t, None, None, None,
                           "versions:autodesk.core:Deleted")
            item.versions.append(tomb)
            self._versions[version_id] = tomb
            item.hidden = True
            item.last_modified = t
            self._touch(item.parent, t, own=True)
            return tomb

    def _touch(self, folder: Folder, t: float, own: bool) -> None:
        """Stamp a change: the folder itself (when its own listing changed) and the rollup to the root."""
        if own:
            folder.last_modified = max(folder.last_modified, t)
        node: Folder | None = folder
        while node is not None:
            node.rollup = max(node.rollup, t)
            node = node.parent

    # ---- content
    def file_bytes(self, version: Version) -> bytes:
        if version.size is None or version.content_key is None:
            raise NotFound(f"The version {version.id} has no content (deleted).")
        return body(self.seed, version.content_key, version.size)

    def sha1(self, version: Version) -> str:
        if version.size is None or version.content_key is None:
            raise NotFound(f"The version {version.id} has no content (deleted).")
        return self._digests.sha1(self.seed, version.content_key, version.size)

    # ---- ground truth
    def iter_files(self, include_deleted: bool = False) -> Iterator[FileEntry]:
        with self.lock:
            entries: list[FileEntry] = []
            for hub in self.hubs:
                for project in hub.projects:
                    assert project.root is not None
                    stack = [project.root]
                    while stack:
                        folder = stack.pop(0)
                        for item in folder.items:
                            if item.hidden and not include_deleted:
                                continue
                            entries.append(FileEntry(hub.name, project.name, folder.path, item.id, item.tip))
                        stack.extend(f for f in folder.folders if include_deleted or not f.hidden)
        return iter(entries)
