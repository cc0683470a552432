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

from .changes import (FOLDER_ADDED, FOLDER_DELETED, FOLDER_MODIFIED, FOLDER_MOVED, VERSION_ADDED,
                      VERSION_DELETED, VERSION_MOVED, Change, ChangeListener)
from .clock import Clock
from .content import Blobs, DigestCache, body, iter_bytes, iter_slice
from .errors import BadInput, Conflict, Forbidden, NotFound
from .model import (ACC, BUCKET, DELETED, FILE, FUSION, MIME_TYPES, FileEntry, Folder, Hub, Item, Project,
                    Reservation, StoredObject, User, Version, kind_types)

__all__ = ["ACC", "BUCKET", "FUSION", "Account", "FileEntry", "Folder", "Hub", "Item", "Project", "User",
           "Version"]


MAX_FOLDER_DEPTH = 25  # Autodesk: "Folders can be nested up to 25 levels deep."
MAX_NAME = 255


def _check_new_name(name: str) -> None:
    """Names given through the API: 1-255 characters, no path separators or control characters
    (Autodesk asks to avoid more, e.g. ``<>:"|?*'$``; the simulator accepts those)."""
    if not name or len(name) > MAX_NAME:
        raise BadInput(f"A name must have 1 to {MAX_NAME} characters: {name!r}.")
    if any(ch in "/\\" or ord(ch) < 32 for ch in name):
        raise BadInput(f"Invalid name {name!r}: no '/', '\\' or control characters.")


def _upload_content_key(object_key: str) -> str:
    """The content key of an uploaded body (generated bodies are keyed by version id)."""
    return f"upload:{object_key}"


def _same_name(a: str, b: str) -> bool:
    """Docs compares names without regard to case (an inference; Autodesk does not document it)."""
    return a.casefold() == b.casefold()


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
        self._storage: dict[str, Reservation] = {}  # object key -> storage location (write side)
        self._counter = 0
        self._digests = DigestCache()
        self._blobs = Blobs()
        self.listeners: list[ChangeListener] = []  # told of every change (the webhooks service)

    def _publish(self, change: Change) -> None:
        """Tell the listeners, with the lock held (a change inside another change, e.g. the new
        version of a rename, publishes once: the inner call is the change)."""
        for listener in self.listeners:
            listener(change)

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
            for key in [k for k, r in self._storage.items() if r.project is project]:
                self._blobs.drop(_upload_content_key(key))
                del self._storage[key]

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
            self._publish(Change(FOLDER_ADDED, folder, t))
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
            self._publish(Change(FOLDER_MODIFIED, folder, t))

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
            self._publish(Change(FOLDER_MOVED, folder, t, old_parent=old))

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
            self._publish(Change(FOLDER_DELETED, folder, t))

    def add_item(self, parent: Folder, name: str, size: int, content_key: str | None = None,
                 when: float | None = None, kind: str = FILE, published: bool = True,
                 reserved: bool = False, object_key: str | None = None) -> Item:
        """A new item with one version; ``published=False`` gives a C4R model with no storage;
        ``object_key``: the version's storage (else a new key)."""
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
            self._append_version(item, name, size, content_key, t, stored=published, object_key=object_key)
            self._touch(parent, t, own=True)
            self._publish(Change(VERSION_ADDED, item, t, item.tip))
            return item

    def add_version(self, item: Item, size: int | None = None, name: str | None = None,
                    content_key: str | None = None, when: float | None = None,
                    same_content: bool = False, object_key: str | None = None) -> Version:
        with self.lock:
            t = self.clock.now() if when is None else when
            last_live = next((v for v in reversed(item.versions) if v.downloadable), None)
            new_name = name or item.tip.name
            if same_content and last_live is not None:
                new_size, key = last_live.size, last_live.content_key
            else:
                new_size = size if size is not None else (last_live.size if last_live else 0)
                key = content_key
            version = self._append_version(item, new_name, int(new_size or 0), key, t, object_key=object_key)
            if item.hidden:
                item.hidden = False
                self._touch(item.parent, t, own=True)
            else:
                self._touch(item.parent, t, own=False)
            self._publish(Change(VERSION_ADDED, item, t, version))
            return version

    def _append_version(self, item: Item, name: str, size: int, content_key: str | None, t: float,
                        stored: bool = True, object_key: str | None = None) -> Version:
        if size < 0:
            raise BadInput("A file size cannot be negative.")
        number = len(item.versions) + 1
        version_id = f"urn:adsk.wipprod:fs.file:vf.{item.vf_id}?version={number}"
        ext = posixpath.splitext(name)[1].lower()
        object_key = object_key or f"{self._uuid('object')}{ext}"
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
            self._publish(Change(VERSION_MOVED, item, t, item.tip, old_parent=old))

    def delete_item(self, item: Item, when: float | None = None) -> Version:
        """Add a ``versions:autodesk.core:Deleted`` tombstone tip and hide the item."""
        with self.lock:
            if item.tip.deleted:
                raise BadInput("The item is already deleted.")
            t = self.clock.now() if when is None else when
            tomb = self._tombstone(item, t)
            self._touch(item.parent, t, own=True)
            self._publish(Change(VERSION_DELETED, item, t, tomb))
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
            self._unhide_folders(item, t)
            return self.add_version(item, when=t, same_content=True)

    def _unhide_folders(self, item: Item, t: float) -> None:
        """A restored item brings back the deleted folders above it (not their other content)."""
        node: Folder | None = item.parent
        while node is not None and node.hidden:
            node.hidden = False
            self._touch(node, t, own=True)
            node = node.parent

    def _touch(self, folder: Folder, t: float, own: bool) -> None:
        """Stamp a change: the folder itself (when its own listing changed) and the rollup to the root."""
        if own:
            folder.last_modified = max(folder.last_modified, t)
        node: Folder | None = folder
        while node is not None:
            node.rollup = max(node.rollup, t)
            node = node.parent

    # ---- the write side: storage locations, uploads, new folders, items and versions
    def reserve_storage(self, folder: Folder, name: str, when: float | None = None) -> Reservation:
        """``POST .../storage``: a new object key (``<uuid>.<ext>``) in the Docs bucket for ``folder``
        (a deleted one too: a new version brings an item back there)."""
        with self.lock:
            _check_new_name(name)
            t = self.clock.now() if when is None else when
            ext = posixpath.splitext(name)[1].lower()
            reservation = Reservation(f"{self._uuid('storage')}{ext}", folder.project, folder, name, t)
            self._storage[reservation.object_key] = reservation
            return reservation

    def reservation(self, object_key: str) -> Reservation | None:
        return self._storage.get(object_key)

    def store_upload(self, reservation: Reservation, data: bytes, content_type: str | None = None) -> None:
        """A completed upload: the object holds ``data`` (readable with signeds3download)."""
        with self.lock:
            key = _upload_content_key(reservation.object_key)
            self._blobs.put(key, data)
            reservation.content_key, reservation.size = key, len(data)
            ext = posixpath.splitext(reservation.name)[1].lstrip(".").lower()
            reservation.content_type = content_type or MIME_TYPES.get(ext, "application/octet-stream")

    def stored_object(self, object_key: str) -> StoredObject | None:
        """What OSS serves under ``object_key``: a version's content or a completed upload."""
        version = self._objects.get(object_key)
        if version is not None:
            if version.size is None:
                return None
            return StoredObject(version.id, object_key, version.size, version.content_key or version.id,
                                version.mime_type)
        found = self._storage.get(object_key)
        if found is None or found.content_key is None or found.size is None:
            return None
        return StoredObject(found.storage_urn, object_key, found.size, found.content_key, found.content_type)

    def create_folder(self, parent: Folder, name: str, when: float | None = None) -> Folder:
        """``POST .../folders``: refused in an ACC project's root, deeper than 25 levels, or on a name taken."""
        with self.lock:
            _check_new_name(name)
            self._check_open(parent)
            if parent.parent is None and parent.project.kind == ACC:
                raise Forbidden("Folders of an ACC project are created inside a top folder, not in the root.")
            if len(parent.path) >= MAX_FOLDER_DEPTH:
                raise BadInput(f"Folders can be nested up to {MAX_FOLDER_DEPTH} levels deep.")
            if any(not f.hidden and _same_name(f.name, name) for f in parent.folders):
                raise Conflict(f"A folder named {name!r} already exists in {parent.name!r}.")
            return self.add_folder(parent, name, when)

    def create_item(self, parent: Folder, name: str, object_key: str, when: float | None = None) -> Item:
        """``POST .../items``: a new item whose first version is the uploaded object."""
        with self.lock:
            _check_new_name(name)
            self._check_open(parent)
            if any(not i.hidden and _same_name(i.display_name, name) for i in parent.items):
                raise Conflict(f"An item named {name!r} already exists in {parent.name!r}.")
            upload = self._uploaded(parent.project, object_key)
            return self.add_item(parent, name, upload.size or 0, upload.content_key, when, object_key=object_key)

    def create_version(self, item: Item, name: str, object_key: str, when: float | None = None) -> Version:
        """``POST .../versions``: a new tip from the uploaded object; a deleted item comes back
        (with the deleted folders above it)."""
        with self.lock:
            _check_new_name(name)
            if any(other is not item and not other.hidden and _same_name(other.display_name, name)
                   for other in item.parent.items):
                raise Conflict(f"An item named {name!r} already exists in {item.parent.name!r}.")
            upload = self._uploaded(item.project, object_key)
            t = self.clock.now() if when is None else when
            if item.hidden:
                self._unhide_folders(item, t)
            return self.add_version(item, size=upload.size, name=name, content_key=upload.content_key, when=t,
                                    object_key=object_key)

    def _uploaded(self, project: Project, object_key: str) -> Reservation:
        found = self._storage.get(object_key)
        if found is None or found.project is not project:
            raise BadInput(f"The storage object {object_key} was not created in this project.")
        if found.content_key is None:
            raise BadInput(f"The storage object {object_key} has no content: complete its upload first.")
        if object_key in self._objects:
            raise BadInput(f"The storage object {object_key} already holds a version.")
        return found

    @staticmethod
    def _check_open(folder: Folder) -> None:
        if folder.hidden:
            raise BadInput(f"The folder {folder.name!r} is deleted.")

    # ---- content
    def iter_content(self, content_key: str, size: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` of a body: uploaded (kept) or generated."""
        uploaded = self._blobs.get(content_key)
        if uploaded is not None:
            return iter_slice(uploaded, start, end)
        return iter_bytes(self.seed, content_key, size, start, end)

    def content_sha1(self, content_key: str, size: int) -> str:
        return self._blobs.sha1(content_key) or self._digests.sha1(self.seed, content_key, size)

    def file_bytes(self, version: Version) -> bytes:
        if version.size is None or version.content_key is None:
            raise NotFound(f"The version {version.id} has no content (deleted).")
        return self._blobs.get(version.content_key) or body(self.seed, version.content_key, version.size)

    def sha1(self, version: Version) -> str:
        if version.size is None or version.content_key is None:
            raise NotFound(f"The version {version.id} has no content (deleted).")
        return self.content_sha1(version.content_key, version.size)

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
