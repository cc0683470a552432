"""The mirror's key space: every S3 key is derived here, and nothing may leave it.

Segment rules (each of hub name, project name, folder names, file name):
1. Unicode is normalised to NFC, so a name typed on macOS (NFD) and on Windows maps to one key.
2. Characters Windows forbids (< > : " | ? * / \\) become their full-width look-alikes
   (＜ ＞ ： ＂ ｜ ？ ＊ ／ ＼), as rclone does: readable, and distinct from each other.
3. Control characters U+0000-U+001F and U+007F become their visible "control picture"
   (U+2400-U+241F, U+2421).
4. A leading or trailing space becomes ␠ and a trailing dot becomes ．: Windows drops them.
   The names "." and ".." become "．" and "．．", so no key can climb out of its folder.
5. Windows' reserved device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without an
   extension, any case) get a "_" after the stem: "con.txt" -> "con_.txt".
6. The mirror's own names (`_aps_mirror`, `_versions`, `_long_paths`, any case) are never
   produced from user content: a user's folder `_versions` becomes `＿versions` (full-width
   low line), so it can never land on the mirror's metadata or kept versions.
7. A segment longer than 255 UTF-8 bytes (macOS and most Linux file systems' limit) is cut
   and given "~" plus 8 hex digits of the SHA-1 of the full name, keeping the extension.
8. An empty name becomes "_".
9. A whole key over S3's 1,024 bytes folds its folder path into a hash (see `object_key`).

One collision rule (`assign_segments`), the same for hubs, projects, folders and files: names
that still collide in one parent (by case, normalisation, or the rules above) are told apart
by the entry's id, and an entry keeps the segment it already holds. A newcomer never takes a
segment that an entry of the same parent holds or held at the start of the run (renamed or
deleted entries included), so no object is ever written where another is still read from.
The outcome does not depend on listing order.

The hub level is shared by the sources: Autodesk Docs hubs are `{prefix}/<hub>/<project>/`, and
every other source has one fixed root beside them (`SOURCE_ROOTS`: Vault's is
`{prefix}/vault/<vault>/`). So no Docs hub ever holds a source root's segment, in any case
(`assign_hub_segments`): a hub named "Vault" gets the variant told apart by its id, like any
collision. A hub that held `vault` before the rule existed is treated as a renamed hub: it gets
its variant and its objects move there inside S3 (its former segment stays recorded as its own
until they have). Only the hub level: a project, folder or file named "vault" keeps its name.

`ProjectKeys` is a project's own key root: every write and delete of a project's sync is
checked against it (`ProjectKeys.check`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping

from aps_mirror.errors import ApsMirrorError

MAX_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024  # S3's limit for a whole key

META_DIR = "_aps_mirror"  # {prefix}/_aps_mirror/: manifests, catalog, trash, lock, mirror record
VERSIONS_DIR = "_versions"  # {project}/_versions/: earlier versions (versions=all)
TRASH_DIR = "trash"  # {prefix}/_aps_mirror/trash/<day>/: what the trash policy moved
LONG_PATHS_DIR = "_long_paths"  # {project}/_long_paths/: folders folded by rule 9
RESERVED_NAMES = frozenset({META_DIR, VERSIONS_DIR, LONG_PATHS_DIR})
VAULT_ROOT = "vault"  # {prefix}/vault/<vault>/...: the Vault source's root
SOURCE_ROOTS = frozenset({VAULT_ROOT})  # hub-level segments no Docs hub may hold

_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in '<>:"|?*/\\'}
_CONTROL = {chr(i): chr(0x2400 + i) for i in range(0x20)} | {"\x7f": "\u2421"}
_TRANSLATE = str.maketrans(_FULLWIDTH | _CONTROL)
_DEVICE_NAMES = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_SPACE_SYMBOL = "\u2420"  # ␠
_FULLWIDTH_DOT = "\uff0e"  # ．
_FULLWIDTH_LOW_LINE = "\uff3f"  # ＿


class KeySpaceViolation(ApsMirrorError):
    """A key outside the project's own key root was about to be written or deleted."""


def safe_segment(name: str) -> str:
    """One path segment made safe by the rules in this module's docstring."""
    text = unicodedata.normalize("NFC", name or "").translate(_TRANSLATE)
    if text in (".", ".."):
        return _FULLWIDTH_DOT * len(text)
    if not text:
        return "_"
    if text[0] == " ":
        text = _SPACE_SYMBOL + text[1:]
    if text[-1] == " ":
        text = text[:-1] + _SPACE_SYMBOL
    elif text[-1] == ".":
        text = text[:-1] + _FULLWIDTH_DOT
    match = _DEVICE_NAMES.match(text)
    if match:
        text = match.group(1) + "_" + (match.group(2) or "")
    if text.casefold() in RESERVED_NAMES:
        text = _FULLWIDTH_LOW_LINE + text[1:]
    if len(text.encode("utf-8")) > MAX_SEGMENT_BYTES:
        text = _shorten(text, name)
    return text


def _shorten(text: str, original: str) -> str:
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:  # no real extension: cut the whole name
        stem, ext = text, ""
    suffix = "~" + _short_hash(original) + ("." + ext if ext else "")
    budget = MAX_SEGMENT_BYTES - len(suffix.encode("utf-8"))
    return _truncate_utf8(stem, budget) + suffix


def _short_hash(text: str, digits: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:digits]


def _truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")[:max_bytes]
    return data.decode("utf-8", errors="ignore")  # never split a character in two


def _split_extension(segment: str) -> tuple[str, str]:
    """(stem, ".ext" or ""); a leading dot is part of the stem (".bashrc" has no extension)."""
    stem, dot, ext = segment.rpartition(".")
    if not dot or not stem:
        return segment, ""
    return stem, "." + ext


def disambiguate(segment: str, unique_id: str) -> str:
    """A variant of `segment` made distinct by a short hash of a stable id (before the extension)."""
    tag = "~" + _short_hash(unique_id)
    stem, ext = _split_extension(segment)
    budget = MAX_SEGMENT_BYTES - len((tag + ext).encode("utf-8"))
    return _truncate_utf8(stem, budget) + tag + ext


def collision_key(segment: str) -> str:
    """Two segments with the same collision key cannot live in one folder on Windows/macOS.

    Unicode's canonical caseless match (D145): case folding can undo a normalisation (`ſ́`
    folds to `ś` decomposed), so normalise on both sides of it."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", segment).casefold())


def assign_segments(entries: Iterable[tuple[str, str]], held: Mapping[str, str] | None = None,
                    reserved: Iterable[str] = ()) -> dict[str, str]:
    """Safe, distinct segments for the (id, name) pairs of one parent: the one collision rule.

    `held` maps the ids of the parent's entries at the start of the run (listed now or not:
    renamed, moved away or deleted ones too) to the segment each holds; `reserved` are segments
    no newcomer may take (a renamed project's former one, whose objects may still be moving).
    An entry keeps its held segment while its name still yields it. Every other entry, by
    ascending id, gets its name's safe segment unless that collides with a segment held,
    reserved or already given, and then a variant told apart by its id. So an item keeps its
    key, a newcomer never takes a key another item holds or frees in the same run, and the
    listing order changes nothing.
    """
    held = dict(held or {})
    wanted = {entry_id: safe_segment(name) for entry_id, name in entries}
    taken = {collision_key(segment) for segment in [*held.values(), *reserved]}
    result: dict[str, str] = {}
    given: set[str] = set()
    for entry_id in sorted(wanted):  # entries keeping their segment
        segment = held.get(entry_id)
        if (segment is not None and segment in _variants(wanted[entry_id], entry_id)
                and collision_key(segment) not in given):
            result[entry_id] = segment
            given.add(collision_key(segment))
    for entry_id in sorted(set(wanted) - set(result)):  # newcomers, renamed and moved entries
        for segment in _variants(wanted[entry_id], entry_id):
            if collision_key(segment) not in taken | given:
                break
        given.add(collision_key(segment))
        result[entry_id] = segment
    return result


def assign_hub_segments(hubs: Iterable[tuple[str, str]], held: Mapping[str, str] | None = None,
                        reserved: Iterable[str] = ()) -> dict[str, str]:
    """`assign_segments` for the Docs hubs, the level the other sources' roots share: a source
    root (`SOURCE_ROOTS`, any case) is reserved, and a hub holding one gives it up."""
    roots = {collision_key(root) for root in SOURCE_ROOTS}
    kept = {hub_id: segment for hub_id, segment in (held or {}).items() if collision_key(segment) not in roots}
    return assign_segments(hubs, kept, [*reserved, *SOURCE_ROOTS])


def _variants(segment: str, entry_id: str) -> list[str]:
    """The segments an entry may hold, in order of preference: its name's, then told apart by
    its id (longer variants for a user who named a file like a variant of another)."""
    return [segment] + [disambiguate(segment, entry_id if n == 1 else f"{entry_id}#{n}") for n in range(1, 6)] \
        + [disambiguate(segment, f"{entry_id}#{_short_hash(entry_id + segment, 40)}")]


def object_key(prefix: str, hub: str, project: str, folders: tuple[str, ...], name: str) -> str:
    """The S3 key of a file, from already-safe segments.

    A key over S3's 1,024 bytes keeps prefix, hub, project and file name and folds the
    folder path into `_long_paths/<16 hex digits of its SHA-1>`.
    """
    root = [*prefix_segments(prefix), hub, project]
    key = "/".join([*root, *folders, name])
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        folded = hashlib.sha1("/".join(folders).encode("utf-8")).hexdigest()[:16]
        key = "/".join([*root, LONG_PATHS_DIR, folded, name])
    return key


def prefix_segments(prefix: str) -> list[str]:
    return [p for p in prefix.strip("/").split("/") if p]


def meta_prefix(prefix: str) -> str:
    """Where the mirror keeps its own objects: `{prefix}/_aps_mirror`."""
    return "/".join([*prefix_segments(prefix), META_DIR])


def holds_file(key: str) -> bool:
    """Whether `key` holds a mirrored file (a tip, a kept version, a trashed copy) rather than
    the mirror's bookkeeping (manifests, catalog, lock, record): user content never makes a
    `_aps_mirror` segment, so the rule cannot be fooled by a name."""
    segments = key.split("/")
    if META_DIR not in segments:
        return True
    at = segments.index(META_DIR)
    return segments[at + 1:at + 2] == [TRASH_DIR]


def version_segment(tip_segment: str, number: int | None) -> str:
    """The name an earlier version is kept under: `<stem>.v<N><.ext>` of the item's segment.

    Distinct segments of one folder give distinct names (the decoding is unambiguous), so
    kept versions of the items of one folder cannot collide.
    """
    stem, ext = _split_extension(tip_segment)
    return f"{stem}.v{number or 0}{ext}"


@dataclass(frozen=True)
class ProjectKeys:
    """One project's key root, `{prefix}/{hub}/{project}/`, and the keys derived in it.

    Writes go to the root only (`check`); reads and removals may also touch the roots a
    rename moved the project away from (`check_own`), whose objects it still owns.
    """

    prefix: str
    hub_segment: str
    project_segment: str
    former_segments: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> str:
        return self._root(self.hub_segment, self.project_segment)

    @property
    def former_roots(self) -> tuple[str, ...]:
        return tuple(self._root(hub, project) for hub, project in self.former_segments
                     if self._root(hub, project) != self.root)

    def _root(self, hub: str, project: str) -> str:
        return "/".join([*prefix_segments(self.prefix), hub, project]) + "/"

    def file_key(self, folders: tuple[str, ...], name: str) -> str:
        return self.check(object_key(self.prefix, self.hub_segment, self.project_segment, folders, name))

    def version_key(self, folders: tuple[str, ...], tip_segment: str, number: int | None,
                    owner_id: str | None = None) -> str:
        """Where an earlier version is kept: `_versions/<folders>/<stem>.v<N><.ext>`.

        With `owner_id`, the variant told apart by it: for a key another item still holds
        (an item deleted and re-created under the same name, or moved in where one was).
        """
        segment = version_segment(tip_segment, number)
        if owner_id is not None:
            segment = disambiguate(segment, owner_id)
        return self.file_key((VERSIONS_DIR, *folders), segment)

    def trash_key(self, key: str, day: str) -> str:
        """Where the trash policy moves one of this project's objects."""
        self.check_own(key)
        return f"{meta_prefix(self.prefix)}/{TRASH_DIR}/{day}/{key}"

    def owns(self, key: str) -> bool:
        """Whether `key` is one of this project's objects (in its root, or a former one)."""
        return any(_below(key, root) for root in (self.root, *self.former_roots))

    def check(self, key: str) -> str:
        """`key` itself when it lies in this project's root (where it may write); else a
        KeySpaceViolation."""
        if not _below(key, self.root):
            raise KeySpaceViolation(
                f"refusing to write s3 key {key!r}: it lies outside this project's root "
                f"{self.root!r}. Nothing was written; report this as a bug.")
        return key

    def check_own(self, key: str) -> str:
        """`key` itself when it is one of this project's objects (to read or remove)."""
        if not self.owns(key):
            raise KeySpaceViolation(
                f"refusing to touch s3 key {key!r}: it is not one of this project's objects "
                f"(root {self.root!r}). Nothing was changed; report this as a bug.")
        return key


def _below(key: str, root: str) -> bool:
    return key.startswith(root) and not {".", ".."} & set(key[len(root):].split("/"))
