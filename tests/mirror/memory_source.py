"""A second source for tests: files in an in-memory tree, served through the `Source` protocol.

Not a stand-in for any real service: it exercises the engine's contract with a source, with
none of the Data Management API's habits. Its files are plain bytes per version; it has no
rollups (every walk lists everything), no checksums (like Vault), and it counts what the
engine asks of it. Its scopes ("stores") live under the hub-level root reserved for a second
source (`keys.VAULT_ROOT`), one per store, as `{prefix}/vault/<store>/...`.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import count

import requests

from aps_mirror.aps.transport import CallCounter, CallTally
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.keys import VAULT_ROOT, assign_segments
from aps_mirror.mirror.manifest import Manifest, ManifestStore
from aps_mirror.mirror.mirror_record import MirrorRecord
from aps_mirror.mirror.selection import is_selected
from aps_mirror.mirror.sources import Download
from aps_mirror.mirror.sources.records import FileVersion, Listing, ProjectRef, RemoteFile, WalkedFolder

NAME = "memory"
ROOT_ID = "memory-root"  # the stores' parent in the mirror record
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass
class MemoryFile:
    id: str
    name: str
    folder: MemoryFolder
    contents: list[bytes]  # one per version, oldest first
    version_ids: list[str]
    locked: bool = False

    def version(self, index: int) -> FileVersion:
        number = index + 1
        return FileVersion(id=self.version_ids[index], version_number=number, name=self.name,
                           size=len(self.contents[index]), file_type=self.name.rpartition(".")[2] or None,
                           created_at=EPOCH + timedelta(days=number), created_by="tester",
                           modified_at=EPOCH + timedelta(days=number), modified_by="tester")


@dataclass
class MemoryFolder:
    id: str
    name: str
    parent: MemoryFolder | None
    folders: list[MemoryFolder] = field(default_factory=list)
    files: list[MemoryFile] = field(default_factory=list)


@dataclass
class Store:
    """One scope: a tree of folders and files."""

    id: str
    name: str
    root: MemoryFolder


class MemorySource:
    """The `Source` protocol over in-memory stores, changed by the test between runs."""

    name = NAME
    has_change_dates = False  # no rollups: every run walks

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self.files: dict[str, MemoryFile] = {}
        self.refused: set[str] = set()  # version ids whose bytes cannot be read as one object
        self.downloads: Counter[str] = Counter()  # version id -> reads of its bytes
        self.counter = CallCounter()
        self._ids = count(1)
        self._lock = threading.Lock()

    # -- changing the tree (the test's side) ----------------------------------------------------
    def add_store(self, name: str) -> str:
        store = Store(self._id("store"), name, MemoryFolder(self._id("root"), name, None))
        self.stores[store.id] = store
        return store.id

    def add_folder(self, store_id: str, path: tuple[str, ...]) -> MemoryFolder:
        """The folder at `path` (names from the store's top), created where missing."""
        folder = self.stores[store_id].root
        for name in path:
            found = next((f for f in folder.folders if f.name == name), None)
            if found is None:
                found = MemoryFolder(self._id("folder"), name, folder)
                folder.folders.append(found)
            folder = found
        return folder

    def add_file(self, store_id: str, path: tuple[str, ...], name: str, content: bytes) -> str:
        folder = self.add_folder(store_id, path)
        item = MemoryFile(self._id("file"), name, folder, [content], [self._id("version")])
        folder.files.append(item)
        self.files[item.id] = item
        return item.id

    def add_version(self, file_id: str, content: bytes) -> str:
        item = self.files[file_id]
        item.contents.append(content)
        item.version_ids.append(self._id("version"))
        return item.version_ids[-1]

    def rename(self, file_id: str, name: str) -> None:
        self.files[file_id].name = name

    def move(self, file_id: str, store_id: str, path: tuple[str, ...]) -> None:
        item = self.files[file_id]
        item.folder.files.remove(item)
        item.folder = self.add_folder(store_id, path)
        item.folder.files.append(item)

    def delete(self, file_id: str) -> None:
        item = self.files.pop(file_id)
        item.folder.files.remove(item)

    def content(self, version_id: str) -> bytes:
        for item in self.files.values():
            if version_id in item.version_ids:
                return item.contents[item.version_ids.index(version_id)]
        raise KeyError(version_id)

    def _id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids):04d}"

    # -- the Source protocol ----------------------------------------------------------------------
    def list_scopes(self, config: MirrorConfig, record: MirrorRecord, manifests: ManifestStore) -> list[ProjectRef]:
        self._sent("list")
        stores = [s for s in self.stores.values()
                  if is_selected(config.project_filter, config.exclude_projects, s.name, s.id)]
        segments = assign_segments([(s.id, s.name) for s in self.stores.values()],
                                   record.held("project", ROOT_ID), record.taken_segments("project", ROOT_ID))
        refs = []
        for store in stores:
            record.assign("project", store.id, segments[store.id], name=store.name, hub_id=ROOT_ID)
            refs.append(ProjectRef(ROOT_ID, "Memory", store.id, store.name, VAULT_ROOT, segments[store.id],
                                   source=NAME))
        return refs

    def may_have_changed(self, scope: ProjectRef, known: Manifest) -> bool:
        return True  # no rollups: only a walk can tell

    def walk(self, scope: ProjectRef, known: Manifest, *, full_walk: bool,
             top_folders: tuple[str, ...]) -> Listing:
        self._sent("walk")
        listing = Listing(full_walk=True)  # every folder, every time
        held_by_folder = known.held_segments_by_folder()
        stack: list[tuple[MemoryFolder, tuple[str, ...], tuple[str, ...], str | None]] = [
            (self.stores[scope.project_id].root, (), (), None)]
        while stack:
            folder, names, segs, parent_id = stack.pop()
            if parent_id is not None or names:
                listing.folders[folder.id] = WalkedFolder(folder.id, None, names, segs, parent_id)
                listing.folders_listed += 1
            held = held_by_folder.get(folder.id if names else None, {})
            children = [(f.id, f.name) for f in folder.folders] + [(f.id, f.name) for f in folder.files]
            segments = assign_segments(children, held)
            for child in folder.folders:
                stack.append((child, names + (child.name,), segs + (segments[child.id],),
                              folder.id if names else None))
            for item in folder.files:
                listing.files.append(RemoteFile(
                    item.id, item.version(len(item.contents) - 1), names, segs, segments[item.id], folder.id,
                    created_at=EPOCH, created_by="tester", locked=item.locked,
                    source_ids={"store_id": scope.project_id}))
        return listing

    def download(self, version: FileVersion) -> Download:
        self._sent("download")
        if version.id in self.refused:
            return Download(None, None, refusal="kept offline by the test")
        return Download(f"memory://{version.id}", len(self.content(version.id)))

    def open_download(self, url: str, start: int = 0, end: int | None = None) -> requests.Response:
        self._sent("content")
        version_id = url.removeprefix("memory://")
        body = self.content(version_id)
        with self._lock:
            self.downloads[version_id] += 1
        response = requests.Response()
        if start or end is not None:
            last = len(body) - 1 if end is None else min(end, len(body) - 1)
            response.status_code = 206
            response.headers["Content-Range"] = f"bytes {start}-{last}/{len(body)}"
            body = body[start:last + 1]
        else:
            response.status_code = 200
        response.headers["Content-Length"] = str(len(body))
        response.raw = io.BytesIO(body)
        return response

    def item_versions(self, scope: ProjectRef, item_id: str) -> list[FileVersion]:
        self._sent("versions")
        item = self.files[item_id]
        return [item.version(i) for i in reversed(range(len(item.contents)))]

    def count_calls(self) -> AbstractContextManager[CallTally]:
        return self.counter.tally()

    def _sent(self, what: str) -> None:
        self.counter.sent(f"memory_{what}")
