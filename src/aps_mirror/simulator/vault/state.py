"""The Vault server's state and rules: lookups and every mutation (thread-safe, stamped by the clock).

No HTTP here. A rename or move keeps the file's master id and version id (Vault renames and
moves without a check-in); a check-in adds a version (new version id, same master id, number+1);
a delete removes the file, since Vault shows deletions only as absence.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import NamedTuple

from ..clock import Clock
from ..content import CHUNK, iter_bytes
from .errors import ResourceNotFound, VaultBadRequest, VaultDoesNotExist
from .model import WORK_IN_PROGRESS, File, FileVersion, Folder, Link, Vault

FIRST_VAULT_ID = 106  # Autodesk's examples use vault 106
ROOT_FOLDER_ID = "1"
FORBIDDEN_CHARACTERS = '\\/:*?"<>|'  # Windows file-name rules, which Vault applies
MAX_NAME = 255


class VaultFileEntry(NamedTuple):
    """One file for ground truth: (vault name, folder path below ``$``, master id, tip version)."""

    vault: str
    path: tuple[str, ...]
    file_id: str
    tip: FileVersion


def check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME or name != name.strip():
        raise VaultBadRequest(f"Invalid name {name!r}: 1 to {MAX_NAME} characters, no leading or trailing spaces.")
    if any(ch in FORBIDDEN_CHARACTERS or ord(ch) < 32 for ch in name):
        raise VaultBadRequest(f"Invalid name {name!r}: none of {FORBIDDEN_CHARACTERS} or control characters.")


def _taken(folder: Folder, name: str, ignore: object = None) -> bool:
    """Names are unique within a folder, without regard to case (files and folders apart)."""
    key = name.casefold()
    return any(f is not ignore and f.name.casefold() == key for f in (*folder.folders, *folder.files))


class VaultStore:
    """Every vault of one Vault server, with thread-safe mutations."""

    def __init__(self, seed: str, clock: Clock) -> None:
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.vaults: list[Vault] = []

    # ---- lookups
    def vault(self, vault_id: str) -> Vault:
        for vault in self.vaults:
            if vault.id == vault_id:
                return vault
        raise VaultDoesNotExist(vault_id)

    def vault_by_name(self, name: str) -> Vault:
        for vault in self.vaults:
            if vault.name.casefold() == name.casefold():
                return vault
        raise VaultDoesNotExist(name)

    @staticmethod
    def folder(vault: Vault, folder_id: str) -> Folder:
        """A folder by id, or ``root``."""
        found = vault.root if folder_id == "root" else vault.folders.get(folder_id)
        if found is None:
            raise ResourceNotFound(folder_id)
        return found

    @staticmethod
    def folder_by_path(vault: Vault, path: tuple[str, ...] | list[str]) -> Folder:
        folder = vault.root
        for name in path:
            folder = next((f for f in folder.folders if f.name == name), None)  # type: ignore[assignment]
            if folder is None:
                raise ResourceNotFound("/".join(["$", *path]))
        return folder

    @staticmethod
    def file(vault: Vault, file_id: str) -> File:
        found = vault.files.get(file_id)
        if found is None:
            raise ResourceNotFound(file_id)
        return found

    @staticmethod
    def version(vault: Vault, version_id: str) -> FileVersion:
        found = vault.versions.get(version_id)
        if found is None:
            raise ResourceNotFound(version_id)
        return found

    def find(self, entity_id: str) -> tuple[Vault, File | Folder | FileVersion]:
        """The vault and entity (file master, folder or version) of an id, searching every vault."""
        for vault in self.vaults:
            for table in (vault.files, vault.folders, vault.versions):
                if entity_id in table:
                    return vault, table[entity_id]
        raise ResourceNotFound(entity_id)

    # ---- vaults and folders
    def add_vault(self, name: str, user: str = "Administrator", when: float | None = None) -> Vault:
        with self.lock:
            if any(v.name.casefold() == name.casefold() for v in self.vaults):
                raise VaultBadRequest(f"A vault named {name!r} exists.")
            vault = Vault(str(FIRST_VAULT_ID + len(self.vaults)), name)
            t = self.clock.now() if when is None else when
            vault.root = Folder(vault.next_id(), "$", vault, None, t, user)
            vault.folders[vault.root.id] = vault.root
            self.vaults.append(vault)
            return vault

    def add_folder(self, parent: Folder, name: str, user: str = "Administrator", when: float | None = None,
                   cloaked: bool = False) -> Folder:
        with self.lock:
            check_name(name)
            if _taken(parent, name):
                raise VaultBadRequest(f"{name!r} already exists in {parent.full_name}.")
            t = self.clock.now() if when is None else when
            vault = parent.vault
            folder = Folder(vault.next_id(), name, vault, parent, t, user, cloaked=cloaked)
            parent.folders.append(folder)
            vault.folders[folder.id] = folder
            return folder

    def rename_folder(self, folder: Folder, name: str) -> None:
        with self.lock:
            check_name(name)
            if folder.parent is None:
                raise VaultBadRequest("The root folder cannot be renamed.")
            if _taken(folder.parent, name, ignore=folder):
                raise VaultBadRequest(f"{name!r} already exists in {folder.parent.full_name}.")
            folder.name = name

    def move_folder(self, folder: Folder, target: Folder) -> None:
        with self.lock:
            if folder.parent is None or target.vault is not folder.vault:
                raise VaultBadRequest("Folders move within their vault, and the root does not move.")
            if target.is_below(folder):
                raise VaultBadRequest("A folder cannot move into itself or below itself.")
            if _taken(target, folder.name):
                raise VaultBadRequest(f"{folder.name!r} already exists in {target.full_name}.")
            folder.parent.folders.remove(folder)
            target.folders.append(folder)
            folder.parent = target

    def delete_folder(self, folder: Folder) -> None:
        """Remove the folder, everything below it and every link to any of it."""
        with self.lock:
            if folder.parent is None:
                raise VaultBadRequest("The root folder cannot be deleted.")
            vault = folder.vault
            gone: set[int] = set()
            stack = [folder]
            while stack:
                node = stack.pop()
                gone.add(id(node))
                del vault.folders[node.id]
                for file in node.files:
                    gone.add(id(file))
                    self._forget_file(file)
                for link in node.links:
                    vault.links.pop(link.id, None)
                stack.extend(node.folders)
            folder.parent.folders.remove(folder)
            self._drop_links_to(vault, gone)

    # ---- files
    def add_file(self, folder: Folder, name: str, size: int, user: str = "Administrator",
                 when: float | None = None, cloaked: bool = False, category: str = "Base",
                 state: str = WORK_IN_PROGRESS, revision: str = "A", checked: bool = True) -> File:
        """A new file master with its first version (version 1, checked in now). ``checked=False``
        skips the name checks, for generators whose names are valid and unique by construction."""
        with self.lock:
            if checked:
                check_name(name)
                if _taken(folder, name):
                    raise VaultBadRequest(f"{name!r} already exists in {folder.full_name}.")
            t = self.clock.now() if when is None else when
            vault = folder.vault
            file = File(vault.next_id(), name, folder, category=category, cloaked=cloaked)
            folder.files.append(file)
            vault.files[file.id] = file
            self._append_version(file, size, t, t, user, revision, state)
            return file

    def check_out(self, file: File, user: str = "Administrator", when: float | None = None) -> None:
        with self.lock:
            if file.checked_out_by is not None:
                raise VaultBadRequest(f"{file.name!r} is checked out by {file.checked_out_by}.")
            file.checked_out_by = user
            file.checked_out_at = self.clock.now() if when is None else when

    def check_in(self, file: File, size: int | None = None, user: str = "Administrator",
                 when: float | None = None, revision: str | None = None, state: str | None = None) -> FileVersion:
        """A new version with new content (same size unless given); ends a check-out."""
        with self.lock:
            t = self.clock.now() if when is None else when
            created = file.checked_out_at if file.checked_out_by is not None else t
            file.checked_out_by, file.checked_out_at = None, 0.0
            tip = file.tip
            return self._append_version(file, tip.size if size is None else size, created, t, user,
                                        revision or tip.revision, state or WORK_IN_PROGRESS)

    def _append_version(self, file: File, size: int, created: float, checked_in: float, user: str,
                        revision: str, state: str) -> FileVersion:
        if size < 0:
            raise VaultBadRequest("A file size cannot be negative.")
        vault = file.folder.vault
        version_id = vault.next_id()
        # The client's file time: a little before the check-in, as a save precedes it.
        version = FileVersion(version_id, file, len(file.versions) + 1, revision, state, size,
                              f"vault/{vault.id}/{version_id}", created, checked_in, checked_in - 42.5, user)
        file.versions.append(version)
        vault.versions[version_id] = version
        return version

    def rename_file(self, file: File, name: str) -> None:
        with self.lock:
            check_name(name)
            if _taken(file.folder, name, ignore=file):
                raise VaultBadRequest(f"{name!r} already exists in {file.folder.full_name}.")
            file.name = name

    def move_file(self, file: File, target: Folder) -> None:
        with self.lock:
            if target.vault is not file.folder.vault:
                raise VaultBadRequest("Files move within their vault.")
            if _taken(target, file.name):
                raise VaultBadRequest(f"{file.name!r} already exists in {target.full_name}.")
            file.folder.files.remove(file)
            target.files.append(file)
            file.folder = target

    def delete_file(self, file: File) -> None:
        with self.lock:
            file.folder.files.remove(file)
            self._forget_file(file)
            self._drop_links_to(file.folder.vault, {id(file)})

    def _forget_file(self, file: File) -> None:
        vault = file.folder.vault
        del vault.files[file.id]
        for version in file.versions:
            del vault.versions[version.id]

    # ---- links
    def add_link(self, folder: Folder, target: Folder | File, user: str = "Administrator",
                 when: float | None = None) -> Link:
        with self.lock:
            vault = folder.vault
            link = Link(vault.next_id(), folder, target, self.clock.now() if when is None else when, user)
            folder.links.append(link)
            vault.links[link.id] = link
            return link

    @staticmethod
    def _drop_links_to(vault: Vault, gone: set[int]) -> None:
        for link in [link for link in vault.links.values() if id(link.target) in gone]:
            link.folder.links.remove(link)
            del vault.links[link.id]

    # ---- content
    def iter_content(self, version: FileVersion, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of a version, generated on demand."""
        return iter_bytes(self.seed, version.content_key, version.size, start, end)

    def file_bytes(self, version: FileVersion) -> bytes:
        return b"".join(self.iter_content(version))

    def sha256(self, version: FileVersion) -> str:
        digest = hashlib.sha256()
        for piece in iter_bytes(self.seed, version.content_key, version.size, piece=CHUNK):
            digest.update(piece)
        return digest.hexdigest()

    # ---- ground truth
    def iter_files(self, include_cloaked: bool = False) -> Iterator[VaultFileEntry]:
        """Every file's tip, vault by vault and folder by folder (breadth first)."""
        with self.lock:
            entries: list[VaultFileEntry] = []
            for vault in self.vaults:
                stack = [vault.root]
                while stack:
                    folder = stack.pop(0)
                    path = folder.path
                    entries.extend(VaultFileEntry(vault.name, path, f.id, f.tip) for f in folder.files
                                   if include_cloaked or not f.hidden_from_non_admins())
                    stack.extend(folder.folders)
        return iter(entries)
