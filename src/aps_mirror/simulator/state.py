"""The account and its rules: lookups and every mutation (thread-safe, stamped, rolled up to the root).

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

from .clock import Clock
from .content import DigestCache, body
from .errors import BadInput, NotFound
from .model import (ACC, BUCKET, DELETED, FILE, FUSION, FileEntry, Folder, Hub, Item, Project, User,
                    Version, kind_types)

__all__ = ["ACC", "BUCKET", "FUSION", "Account", "FileEntry", "Folder", "Hub", "Item", "Project", "User",
           "Version"]


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

    def top_folders(self, project: Project, admin: bool = True, exclude_deleted: bool = False,
                    project_files_only: bool = False) -> list[Folder]:
        """Top folders as Autodesk lists them: a non-admin sees the highest folders open to them."""
        assert project.root is not None
        found: list[Folder] = []
        stack = list(project.root.folders)
        while stack:
            folder = stack.pop(0)
            if folder.restricted and not admin:
                stack.extend(folder.folders)  # a non-admin sees the highest open folders below
                continue
            found.append(folder)
        if exclude_deleted:
            found = [f for f in found if not f.hidden]
        if project_files_only and project.kind == ACC:
            found = [f for f in found if f.path[0] == "Project Files"]
        return found

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
            folder_type = kind_types(hub.kind)[0]
            root = Folder(self._folder_id(), f"{project_id}-root-folder", project, None, t, t, t, folder_type)
            project.root = root
            self._folders[root.id] = root
            hub.projects.append(project)
            self._projects[project_id] = project
            return project

    def delete_project(self, project: Project) -> None:
        """Remove a project and everything in it (later requests for its ids are 404s)."""
        with self.lock:
            project.hub.projects.remove(project)
            del self._projects[project.id]
            assert project.root is not None
            stack = [project.root]
            while stack:
                folder = stack.pop()
                self._folders.pop(folder.id, None)
                for item in folder.items:
                    self._items.pop(item.id, None)
                    for version in item.versions:
                        self._versions.pop(version.id, None)
                        if version.object_key:
                            self._objects.pop(version.object_key, None)
                stack.extend(folder.folders)

    def _folder_id(self) -> str:
        return f"urn:adsk.wipprod:fs.folder:co.{self._short('folder')}"

    def add_folder(self, parent: Folder, name: str, when: float | None = None, system: bool = False,
                   restricted: bool = False, hidden: bool = False) -> Folder:
        with self.lock:
            self._check_name(name)
            t = self.clock.now() if when is None else when
            folder = Folder(self._folder_id(), name, parent.project, parent, t, t, t, parent.ext_type,
                            hidden=hidden, system=system, restricted=restricted)
            parent.folders.append(folder)
            self._folders[folder.id] = folder
            self._touch(parent, t, own=True)
            return folder

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or "/" in name:
            raise BadInput(f"Invalid folder name {name!r}.")

    def rename_folder(self, folder: Folder, new_name: str, when: float | None = None) -> None:
        with self.lock:
            self._check_name(new_name)
            if folder.parent is None:
                raise BadInput("The project root folder cannot be renamed.")
            t = self.clock.now() if when is None else when
            folder.name = new_name
            folder.last_modified = max(folder.last_modified, t)
            self._touch(folder, t, own=True)
            self._touch(folder.parent, t, own=True)

    def move_folder(self, folder: Folder, target: Folder, when: float | None = None) -> None:
        with self.lock:
            if folder.parent is None or target.project is not folder.project:
                raise BadInput("Folders can only move within their project.")
            if target.is_below(folder):
                raise BadInput("A folder cannot move into itself or below itself.")
            t = self.clock.now() if when is None else when
            old = folder.parent
            old.folders.remove(folder)
            target.folders.append(folder)
            folder.parent = target
            self._touch(folder, t, own=True)
            self._touch(old, t, own=True)
            self._touch(target, t, own=True)

    def delete_folder(self, folder: Folder, when: float | None = None) -> None:
        """Hide the folder and everything below it; live items below get a Deleted tombstone."""
        with self.lock:
            if folder.parent is None:
                raise BadInput("The project root folder cannot be deleted.")
            if folder.hidden:
                raise BadInput("The folder is already deleted.")
            t = self.clock.now() if when is None else when
            stack = [folder]
            while stack:
                node = stack.pop()
                node.hidden = True
                node.last_modified = max(node.last_modified, t)
                node.rollup = max(node.rollup, t)
                for item in node.items:
                    if not item.tip.deleted:
                        self._tombstone(item, t)
                stack.extend(node.folders)
            self._touch(folder.parent, t, own=True)

    def add_item(self, parent: Folder, name: str, size: int, content_key: str | None = None,
                 when: float | None = None, kind: str = FILE, published: bool = True,
                 reserved: bool = False) -> Item:
        """A new item with one version; ``published=False`` gives a C4R model with no storage."""
        with self.lock:
            if not name:
                raise BadInput("A file name is required.")
            t = self.clock.now() if when is None else when
            short = self._short("item")
            item_type = kind_types(parent.project.kind, kind)[1]
            item = Item(f"urn:adsk.wipprod:dm.lineage:{short}", short, parent.project, parent, t, t, item_type,
                        reserved=reserved)
            self._items[item.id] = item
            parent.items.append(item)
            self._append_version(item, name, size, content_key, t, stored=published)
            self._touch(parent, t, own=True)
            return item

    def add_version(self, item: Item, size: int | None = None, name: str | None = None,
                    content_key: str | None = None, when: float | None = None,
                    same_content: bool = False) -> Version:
        with self.lock:
            t = self.clock.now() if when is None else when
            last_live = next((v for v in reversed(item.versions) if v.downloadable), None)
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

    def _append_version(self, item: Item, name: str, size: int, content_key: str | None, t: float,
                        stored: bool = True) -> Version:
        if size < 0:
            raise BadInput("A file size cannot be negative.")
        number = len(item.versions) + 1
        version_id = f"urn:adsk.wipprod:fs.file:vf.{item.vf_id}?version={number}"
        ext = posixpath.splitext(name)[1].lower()
        object_key = f"{self._uuid('object')}{ext}"
        version_type = "versions:" + item.ext_type.split(":", 1)[1]
        if not stored:
            version = Version(version_id, item, number, name, t, None, None, None, version_type)
        else:
            version = Version(version_id, item, number, name, t, size, content_key or version_id, object_key,
                              version_type)
            self._objects[object_key] = version
        item.versions.append(version)
        item.last_modified = t
        self._versions[version_id] = version
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
            tomb = self._tombstone(item, t)
            self._touch(item.parent, t, own=True)
            return tomb

    def _tombstone(self, item: Item, t: float) -> Version:
        number = len(item.versions) + 1
        version_id = f"urn:adsk.wipprod:fs.file:vf.{item.vf_id}?version={number}"
        tomb = Version(version_id, item, number, item.tip.name, t, None, None, None, DELETED)
        item.versions.append(tomb)
        self._versions[version_id] = tomb
        item.hidden = True
        item.last_modified = t
        return tomb

    def restore_item(self, item: Item, when: float | None = None) -> Version:
        """Undelete: a new version with the last live content; the item (and its folders) unhidden."""
        with self.lock:
            if not item.tip.deleted:
                raise BadInput("The item is not deleted.")
            t = self.clock.now() if when is None else when
            node: Folder | None = item.parent
            while node is not None and node.hidden:
                node.hidden = False
                self._touch(node, t, own=True)
                node = node.parent
            return self.add_version(item, when=t, same_content=True)

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
        """What a mirror should hold: downloadable tips outside hidden and ACC system folders
        (``include_deleted`` adds hidden items and folders, with their tombstone tips)."""
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
                            if not item.tip.deleted and not item.tip.downloadable:
                                continue
                            entries.append(FileEntry(hub.name, project.name, folder.path, item.id, item.tip))
                        stack.extend(f for f in folder.folders
                                     if (include_deleted or not f.hidden) and not f.system)
        return iter(entries)
