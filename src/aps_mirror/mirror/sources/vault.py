"""Autodesk Vault as a source: the Vault Data API v2 through `aps_mirror.vault.VaultClient`.

A scope is one vault. Vault's cheapest change detection is the vault-wide latest-only
`file-versions` listing (no folder filter, no rollups, no change feed), so folder scopes would
list the whole vault once per scope. The vaults of one server share the hub-level root
reserved for this source: `{prefix}/vault/{vault}/{folder path}/{file}`, one root per vault
(what the engine's clean-up after an interrupted run needs), recorded in mirror.json as
projects of a pseudo hub `vault:<host>` (kind "hub" is the Docs account check's).

Folder links (Vault's LinkEntity) never appear in the `file-versions` listing: a linked file is
mirrored once, at its own folder. Cloaked folders and files (the Vault user may not see them)
are left out but not deleted: what the mirror holds of them stays (`Listing.kept`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import requests

from aps_mirror.errors import ApiError
from aps_mirror.mirror.keys import VAULT_ROOT, assign_segments
from aps_mirror.mirror.selection import matches_filter
from aps_mirror.mirror.sources import ByteStream, CallCount, Download
from aps_mirror.mirror.sources.records import FileVersion, Listing, ProjectRef, RemoteFile, WalkedFolder
from aps_mirror.vault import DEFAULT_CHUNK_SIZE, VaultClient, VaultFileVersion, VaultFolder
from aps_mirror.vault.capabilities import selected_vaults

if TYPE_CHECKING:
    from aps_mirror.mirror.config import MirrorConfig
    from aps_mirror.mirror.manifest import Manifest, ManifestStore
    from aps_mirror.mirror.mirror_record import MirrorRecord

log = logging.getLogger(__name__)

VAULT = "vault"
# Each request for bytes stays below the Gateway's payload quota (39,313,920 bytes: a larger
# answer is a 500), however large a range the transfer asks for.
RANGE_CHUNK = DEFAULT_CHUNK_SIZE


class VaultSource:
    """The selected vaults of one Vault server; a vault is a scope."""

    name = VAULT
    has_change_dates = False  # folders carry no modified date, and there is no change feed

    def __init__(self, client: VaultClient) -> None:
        self.client = client

    @property
    def host(self) -> str:
        url = self.client.settings.url if self.client.settings is not None else self.client.transport.url("")
        return (urlsplit(url).hostname or url).lower()

    def list_scopes(self, config: MirrorConfig, record: MirrorRecord, manifests: ManifestStore) -> list[ProjectRef]:
        """The vaults the connection's `vaults` globs select (every vault without them)."""
        vaults = self.client.vaults()
        chosen = selected_vaults(self.client.settings, vaults) if self.client.settings is not None else vaults
        hub_id, hub_name = f"vault:{self.host}", self.host
        # Segments among every vault of the server, so deselecting one never moves another.
        segments = assign_segments([(v.id, v.name) for v in vaults], record.held("project", hub_id),
                                   record.taken_segments("project", hub_id))
        refs = []
        for vault in chosen:
            record.assign("project", vault.id, segments[vault.id], name=vault.name, hub_id=hub_id)
            refs.append(ProjectRef(hub_id, hub_name, vault.id, vault.name, VAULT_ROOT, segments[vault.id],
                                   source=VAULT))
        return refs

    def may_have_changed(self, scope: ProjectRef, known: Manifest) -> bool:
        return True  # nothing in Vault tells it in one request: the walk is the check

    def walk(self, scope: ProjectRef, known: Manifest, *, full_walk: bool,
             top_folders: tuple[str, ...]) -> Listing:
        """The folder tree (by id, so a renamed or moved folder keeps its files' keys in step)
        and the vault's latest-only file listing, every run (`full_walk` changes nothing)."""
        vault_id = scope.project_id
        tree = self.client.folder_tree(vault_id)
        root_id = next(iter(tree))  # folder_tree lists the root first
        listing = Listing(full_walk=True, folders_listed=len(tree))
        children: dict[str, list[VaultFolder]] = {}
        for folder in tree.values():
            if folder.id != root_id and folder.parent_id is not None:
                children.setdefault(folder.parent_id, []).append(folder)
        versions = list(self.client.file_versions(vault_id, latest_only=True))
        files_in: dict[str | None, list[VaultFileVersion]] = {}
        for version in versions:
            if version.cloaked:
                log.debug("cloaked in %s, kept as mirrored: file %s", scope.project_name, version.file_id)
                listing.kept.add(version.file_id)
            else:
                files_in.setdefault(version.parent_folder_id, []).append(version)

        held_by_folder = known.held_segments_by_folder()
        placed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {root_id: ((), ())}  # names, segments
        cloaked: set[str] = set()
        queue = [root_id]
        while queue:
            parent_id = queue.pop()
            names, segs = placed[parent_id]
            folders = children.get(parent_id, [])
            files = files_in.get(parent_id, [])
            if parent_id == root_id:
                # Files at `$` belong to no top folder: mirrored unless the globs leave `$` out
                # (`*` keeps it, `Designs` or `$/Designs` do not).
                if not matches_filter(top_folders, "$"):
                    files = []
                    for version in files_in.get(root_id, []):
                        listing.kept.add(version.file_id)
                held = {**held_by_folder.get(None, {}), **held_by_folder.get(root_id, {})}
            else:
                held = held_by_folder.get(parent_id, {})
            segments = assign_segments([(f.id, f.name) for f in folders if not f.cloaked]
                                       + [(v.file_id, v.name) for v in files], held)
            for folder in folders:
                if folder.cloaked:
                    cloaked.add(folder.id)
                    continue
                if parent_id == root_id and not matches_filter(top_folders, folder.name, f"$/{folder.name}"):
                    listing.unwalked_tops.add(folder.id)
                    continue
                placed[folder.id] = (names + (folder.name,), segs + (segments[folder.id],))
                listing.folders[folder.id] = WalkedFolder(folder.id, None, *placed[folder.id],
                                                          parent_id if parent_id != root_id else None)
                queue.append(folder.id)
            for version in files:
                listing.files.append(_remote_file(vault_id, version, names, segs, segments[version.file_id],
                                                  parent_id))
        # Files below a cloaked folder (or below a folder the tree could not reach) stay mirrored.
        hidden = known.subtree(cloaked)
        listing.kept |= {i for i, e in known.items.items() if e.folder_id in hidden}
        for folder_id, rows in files_in.items():
            if folder_id not in placed and not _below(folder_id, listing.unwalked_tops, tree):
                log.debug("%d file(s) of %s in a folder this user cannot list: kept as mirrored",
                          len(rows), scope.project_name)
                listing.kept |= {v.file_id for v in rows}
        return listing

    def download(self, version: FileVersion) -> Download:
        """The version's content path: Vault gives no checksum (the transfer's SHA-1 of the bytes
        is what the manifest records), and its size only while the file is not checked out."""
        vault_id, row = version.native
        return Download(_content_path(vault_id, row.id), row.reliable_size, None)

    def open_download(self, url: str, start: int = 0, end: int | None = None) -> ByteStream:
        return _RangedStream.open(self.client, url, start, end)

    def item_versions(self, scope: ProjectRef, item_id: str) -> list[FileVersion]:
        rows = self.client.file_versions_of(scope.project_id, item_id)
        return [_file_version(scope.project_id, v) for v in reversed(rows)]

    def count_calls(self) -> AbstractContextManager[CallCount]:
        return self.client.transport.counter.tally()


def _below(folder_id: str, tops: set[str], tree: dict[str, VaultFolder]) -> bool:
    """Whether the folder lies in one of the top folders left out by selection."""
    seen: set[str] = set()
    current: str | None = folder_id
    while current is not None and current in tree and current not in seen:
        if current in tops:
            return True
        seen.add(current)
        current = tree[current].parent_id
    return False


def _content_path(vault_id: str, version_id: str) -> str:
    return f"vaults/{quote(vault_id, safe='')}/file-versions/{quote(version_id, safe='')}/content"


def _file_version(vault_id: str, row: VaultFileVersion) -> FileVersion:
    when = row.checked_in or row.created
    return FileVersion(id=row.id, version_number=row.version, name=row.name, size=row.reliable_size,
                       file_type=row.name.rpartition(".")[2] or None if "." in row.name else None,
                       created_at=when, created_by=row.create_user or None,
                       modified_at=when, modified_by=row.create_user or None, native=(vault_id, row))


def _remote_file(vault_id: str, row: VaultFileVersion, names: tuple[str, ...], segs: tuple[str, ...],
                 segment: str, folder_id: str) -> RemoteFile:
    # A checked-out file lists its latest checked-in version: that is what is mirrored.
    return RemoteFile(row.file_id, _file_version(vault_id, row), names, segs, segment, folder_id,
                      locked=row.checked_out, source_ids={"vault_id": vault_id})


class _RangedStream:
    """One read of bytes start..end, sent as Range requests of at most `RANGE_CHUNK` bytes each
    and streamed back to back as one response."""

    def __init__(self, client: VaultClient, path: str, start: int, last: int, total: int,
                 first: requests.Response | None, ranged: bool) -> None:
        self.client = client
        self.path = path
        self.start, self.last, self.total = start, last, total
        self._first = first
        self.status_code = 206 if ranged else 200
        length = max(0, last - start + 1)
        self.headers: dict[str, str] = {"Content-Length": str(length)}
        if ranged:
            self.headers["Content-Range"] = f"bytes {start}-{last}/{total}"

    @classmethod
    def open(cls, client: VaultClient, path: str, start: int, end: int | None) -> _RangedStream:
        ranged = bool(start) or end is not None
        first_end = start + RANGE_CHUNK - 1 if end is None else min(end, start + RANGE_CHUNK - 1)
        try:
            first = client.transport.request("GET", path, headers={"Range": f"bytes={start}-{first_end}"},
                                             stream=True)
        except ApiError as exc:
            if exc.status == 416 and start == 0:  # an empty file has no byte 0
                return cls(client, path, 0, -1, 0, None, ranged=False)
            raise
        total = _total_of(first)
        last = total - 1 if end is None else min(end, total - 1)
        return cls(client, path, start, last, total, first, ranged)

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        offset = self.start
        response, self._first = self._first, None
        while offset <= self.last:
            if response is None:
                end = min(self.last, offset + RANGE_CHUNK - 1)
                response = self.client.transport.request("GET", self.path, headers={"Range": f"bytes={offset}-{end}"},
                                                         stream=True)
            with response:
                for piece in response.iter_content(chunk_size):
                    yield piece
                    offset += len(piece)
            response = None

    def __enter__(self) -> _RangedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._first is not None:
            self._first.close()
            self._first = None


def _total_of(response: requests.Response) -> int:
    """The object's size from a Range answer (a 200 answers with all of it)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        return int(content_range.rpartition("/")[2])
    return int(response.headers.get("Content-Length", "0"))
