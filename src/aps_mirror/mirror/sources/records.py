"""What a source lists, in the engine's terms: scopes, files, versions and folders.

Every source (Autodesk Docs through the Data Management API, Autodesk Vault) maps what it
lists onto these records, so planning, transfer, the manifest, `versions: all`, the events and
the catalog read the same fields whatever the files come from. What only one source knows
stays with it: in `native` (its own object for a version, which only it reads) or, when the
catalog should record it, in `source_ids`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class ProjectRef:
    """One scope to mirror (an Autodesk Docs project), with the safe key segments of its root.

    The unit a run syncs, and the one the DAG maps. `source` names the source that lists it;
    a Docs project's root is `{prefix}/{hub segment}/{project segment}/`.
    """

    hub_id: str
    hub_name: str
    project_id: str
    project_name: str
    hub_segment: str
    project_segment: str
    root_folder_id: str | None = None
    hub_type: str | None = None  # the hub's extension type: decides the default top folders
    # (hub segment, project segment) pairs the project held before a rename moved it: its old
    # objects are removed from there, and nothing else is ever written there.
    former_segments: tuple[tuple[str, str], ...] = ()
    source: str = "docs"  # the source whose scope this is: docs (Data Management) or vault

    @property
    def label(self) -> str:
        return f"{self.hub_name} / {self.project_name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectRef:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["former_segments"] = tuple(tuple(pair) for pair in fields.get("former_segments", ()))
        return cls(**fields)


@dataclass(frozen=True)
class FileVersion:
    """One version of a file, as its source lists it."""

    id: str  # the source's version id (Docs: the version URN; Vault: the file version id)
    version_number: int | None
    name: str  # the file's name at this version
    size: int | None  # bytes, as listed (None: unknown until downloaded)
    file_type: str | None = None
    created_at: datetime | None = None  # when this version came into being
    created_by: str | None = None
    modified_at: datetime | None = None
    modified_by: str | None = None
    # False for a version without bytes to keep (a deletion marker, a cloud model): versions=all
    # passes it by.
    stored: bool = True
    native: Any = field(default=None, compare=False, repr=False)  # the source's own object, for it alone


@dataclass(frozen=True)
class RemoteFile:
    """A file's current (tip) version as listed, with its place in the tree."""

    item_id: str  # stable across versions, renames and moves (Docs: lineage URN; Vault: file master id)
    version: FileVersion
    folder_names: tuple[str, ...]  # as in the source, for people and metadata
    folder_segments: tuple[str, ...]  # safe for S3 and restores
    name_segment: str
    folder_id: str | None = None
    created_at: datetime | None = None  # the file's first version
    created_by: str | None = None
    locked: bool = False  # reserved in Docs, checked out in Vault
    # Ids only this source has, recorded for the catalog (e.g. Vault's vault id); empty for Docs.
    source_ids: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def source_path(self) -> str:
        return "/".join([*self.folder_names, self.version.name])


@dataclass(frozen=True)
class UnavailableFile:
    """A listed file the mirror cannot copy (yet), where it is, and why."""

    item_id: str
    name: str
    reason: str
    folder_id: str | None
    folder_names: tuple[str, ...]
    version: FileVersion | None = None  # its tip, when the listing had one

    @property
    def source_path(self) -> str:
        return "/".join([*self.folder_names, self.name])


@dataclass
class WalkedFolder:
    """A folder the walk listed or pruned, with its place in the tree."""

    id: str
    rollup: datetime | None  # when anything below it last changed, if the source says (Docs does)
    names: tuple[str, ...]
    segments: tuple[str, ...]
    parent_id: str | None


@dataclass
class Listing:
    """What a walk of one scope saw; `complete` is False when any folder could not be listed.

    `pruned` holds the folders whose subtree was skipped because nothing in it changed
    (same rollup, same path): what the mirror holds below them stays as it is.
    """

    files: list[RemoteFile] = field(default_factory=list)
    unavailable: list[UnavailableFile] = field(default_factory=list)
    folders: dict[str, WalkedFolder] = field(default_factory=dict)
    pruned: set[str] = field(default_factory=set)
    # Items listed but not readable by this user (Vault: cloaked): what the mirror holds of
    # them stays, as a permission is not a deletion.
    kept: set[str] = field(default_factory=set)
    root_rollup: datetime | None = None
    unwalked_tops: set[str] = field(default_factory=set)  # top folders left out by selection
    project_unchanged: bool = False  # the root's rollup had not moved: nothing was listed
    full_walk: bool = False
    folders_listed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors


class KnownTree(Protocol):
    """What the previous walk recorded (the manifest), as a walker needs it."""

    def known_rollup(self, folder_id: str) -> tuple[datetime | None, tuple[str, ...]] | None: ...

    def held_segments_by_folder(self) -> Mapping[str | None, dict[str, str]]:
        """Folder id (`None`: the top folders) -> entry id -> the key segment it holds, for
        the files and folders of each folder, whether the walk lists them again or not."""
        ...
