"""Sources: where a mirror's files come from, behind the one interface the engine uses.

A source lists its scopes (Autodesk Docs: the projects of the selected hubs), walks one scope
given what its manifest knows, serves a version's bytes to the transfer, and lists a file's
versions for `versions: all`; everything it lists is one of the neutral records of
`sources.records`. The engine, the planner, the transfer, the manifest and the catalog know
nothing else of it, so a second source (Autodesk Vault) needs no branch of its own downstream.

`sources.docs.DocsSource` is Autodesk Docs, BIM 360, ACC and Fusion Team through the APS Data
Management API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ContextManager, Iterator, Mapping, Protocol, runtime_checkable

from aps_mirror.mirror.sources.records import (FileVersion, KnownTree, Listing, ProjectRef, RemoteFile,
                                               UnavailableFile, WalkedFolder)

if TYPE_CHECKING:
    from aps_mirror.mirror.config import MirrorConfig
    from aps_mirror.mirror.manifest import Manifest, ManifestStore
    from aps_mirror.mirror.mirror_record import MirrorRecord

__all__ = ["ByteStream", "CallCount", "Download", "FileVersion", "KnownTree", "Listing", "ProjectRef",
           "RemoteFile", "Source", "UnavailableFile", "WalkedFolder"]


@dataclass(frozen=True)
class Download:
    """Where a version's bytes can be read now, and what they must be."""

    url: str | None  # what `Source.open_download` reads (Docs: a signed S3 URL, valid for minutes)
    size: int | None  # bytes the source announces; None: only the listed size is known
    sha1: str | None = None  # hex, when the source gives one (Docs does; Vault does not)
    # Why the bytes cannot be read as one object (the version is then recorded as not
    # downloadable and retried next run); None when they can.
    refusal: str | None = None


class ByteStream(Protocol):
    """An open response to a read of a version's bytes (a `requests.Response` is one)."""

    status_code: int
    headers: Mapping[str, str]

    def iter_content(self, chunk_size: int) -> Iterator[bytes]: ...

    def __enter__(self) -> ByteStream: ...

    def __exit__(self, *exc: object) -> None: ...


class CallCount(Protocol):
    """The requests a source sent within one scope of counting, by endpoint class."""

    def snapshot(self) -> dict[str, int]: ...

    def throttled_snapshot(self) -> dict[str, int]: ...


@runtime_checkable
class Source(Protocol):
    """What the engine asks of a source. One instance serves a whole run, from many threads."""

    name: str  # "docs", "vault": the `source` of its scopes, their manifests and catalog rows
    # Whether `may_have_changed` can tell from change dates (Docs: folder rollups); without them
    # every scope is walked each run, and the scan says so.
    has_change_dates: bool

    def list_scopes(self, config: MirrorConfig, record: MirrorRecord, manifests: ManifestStore) -> list[ProjectRef]:
        """The scopes `config` selects, each with the key segments `record` pins for it.

        Segments of newcomers follow the keys module's collision rule and are assigned in
        `record` (the engine saves it, and asks again when another process took one meanwhile).
        `manifests`: the mirror's, for what a mirror made before the record existed holds.
        """
        ...

    def may_have_changed(self, scope: ProjectRef, known: Manifest) -> bool:
        """Whether anything in the scope may have changed since the walk `known` records, for
        about one request; True whenever the source cannot tell."""
        ...

    def walk(self, scope: ProjectRef, known: Manifest, *, full_walk: bool,
             top_folders: tuple[str, ...]) -> Listing:
        """The scope's current files; without `full_walk`, skipping what `known` proves
        unchanged (a pruned subtree, or the whole scope). `top_folders`: the selection's globs."""
        ...

    def download(self, version: FileVersion) -> Download:
        """Where to read the version's bytes from now (Docs: signs a fresh URL each call)."""
        ...

    def open_download(self, url: str, start: int = 0, end: int | None = None) -> ByteStream:
        """Stream the bytes at a `Download.url`, from byte `start` to byte `end` included (to
        the last byte when None); a range is answered 206 with its Content-Range."""
        ...

    def item_versions(self, scope: ProjectRef, item_id: str) -> list[FileVersion]:
        """Every version of a file, newest first, the tip included (versions=all)."""
        ...

    def count_calls(self) -> ContextManager[CallCount]:
        """Count the requests this context (and the threads it starts) sends while open."""
        ...
