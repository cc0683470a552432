"""Restore: files from the mirror back into Autodesk Docs, as of the latest mirrored state or
a point in time, into a new folder (default), a given folder, or in place.

Only Docs projects: Vault's Data API v2 has no write endpoints, so a selection that names only
vaults (by glob, or by a path only they hold) is refused before anything is sent to Autodesk,
and the vaults a wider glob (`*`) also selects are skipped, said in one log line.

Never overwrites: without `in_place`, a file lands only where no file of that name is; with
it, the restored bytes become a new version (a deleted item comes back). Resumable: a file
already in its target (same name and size; in place, same size and SHA-1) is skipped.

Files are restored `workers` at a time. Each project's folders are listed and created under
that project's lock (a folder is created once however many files land in it); the uploads run
in parallel, and files that would land on the same name are restored one after the other.
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from aps_mirror.aps.client import ApsClient, require_scopes
from aps_mirror.aps.models import Folder, Item, Version
from aps_mirror.aps.parsing import parse_timestamp
from aps_mirror.aps.uploads import WRITE_SCOPES, ApsUploader
from aps_mirror.errors import ApiError, ApsMirrorError, ConfigError
from aps_mirror.mirror.keys import VAULT_ROOT, ProjectKeys
from aps_mirror.mirror.manifest import Manifest, ManifestEntry, ManifestStore
from aps_mirror.mirror.restore_request import DEFAULT_WORKERS, RestoreRequest
from aps_mirror.mirror.selection import matches_filter
from aps_mirror.mirror.sources.chosen import VAULT
from aps_mirror.options import parse_workers
from aps_mirror.threads import ContextThreadPool

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RestoreFile:
    """One file to restore: the mirrored version current at the chosen time."""

    project: Manifest
    item_id: str
    version_id: str
    version_number: int | None
    key: str  # the object in S3 holding its bytes
    size: int
    sha1: str | None
    source_path: str  # its Autodesk path then, top folder first

    @property
    def parts(self) -> list[str]:
        return self.source_path.split("/")


@dataclass
class RestoreSummary:
    files_restored: int = 0
    bytes_restored: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    not_restorable: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)  # what was (dry run: would be) restored

    def to_dict(self) -> dict[str, Any]:
        return {"files_restored": self.files_restored, "bytes_restored": self.bytes_restored,
                "files_failed": self.files_failed, "files_skipped": self.files_skipped,
                "not_restorable": self.not_restorable, "failed": self.failed, "restored": self.restored}

    def format_text(self) -> str:
        lines = [f"{self.files_restored} file(s) restored ({self.bytes_restored} bytes), "
                 f"{self.files_skipped} already there, {self.files_failed} failed, "
                 f"{len(self.not_restorable)} cannot be restored"]
        lines += [f"  failed: {f['path']}: {f['error']}" for f in self.failed]
        lines += [f"  not restorable: {f['path']}: {f['reason']}" for f in self.not_restorable]
        return "\n".join(lines)


# -- what to restore ---------------------------------------------------------------------------
def plan_restore(manifests: list[Manifest], request: RestoreRequest
                 ) -> tuple[list[RestoreFile], list[dict[str, Any]]]:
    """(files to restore, files that existed then but whose version the mirror does not keep)."""
    files: list[RestoreFile] = []
    not_restorable: list[dict[str, Any]] = []
    for manifest in manifests:
        if not _selects(request.projects, manifest):
            continue
        for item_id, entry in sorted(manifest.items.items(), key=lambda pair: pair[1].source_path):
            chosen = _version_as_of(entry, request.as_of)
            if chosen is None:
                continue  # it did not exist then
            path = chosen.get("source_path") or entry.source_path
            if not _under(path, request.path):
                continue
            key = chosen.get("kept_key") or chosen.get("key")
            if not key:
                not_restorable.append({"project": manifest.project_name, "path": path, "item_id": item_id,
                                       "version_number": chosen.get("version_number"),
                                       "reason": "cannot be restored as of that time: its version then "
                                                 f"({_label(chosen)}) is not kept in the mirror "
                                                 "(mirror with versions=all to keep every version)"})
                continue
            files.append(RestoreFile(manifest, item_id, chosen["version_id"], chosen.get("version_number"),
                                     key, int(chosen.get("size") or 0), chosen.get("sha1"), path))
    return files, not_restorable


def docs_scopes(manifests: list[Manifest], request: RestoreRequest, bucket: str, prefix: str) -> list[Manifest]:
    """The manifests a restore may write back: the Docs projects. A vault cannot be written
    (Vault's Data API v2 has no write endpoints): a project glob that selects only vaults, or a
    selection whose files only vaults hold, is refused in one line; the vaults a glob selects
    beside Docs projects are skipped, in one log line."""
    vaults = [m for m in manifests if m.source == VAULT and _selects(request.projects, m)]
    docs = [m for m in manifests if m.source != VAULT]
    for glob in request.projects:
        named = [m for m in vaults if _selects((glob,), m)]
        if named and not any(_selects((glob,), m) for m in docs):
            raise ConfigError(f"Project {glob!r} selects only {_vaults(named)}: "
                              f"{_vault_advice(named, bucket, prefix)}")
    in_vault = request
    if request.path:  # Vault users write paths from the vault's root, "$/Designs"; the manifest, "Designs"
        in_vault = replace(request, path=request.path.strip().removeprefix("$").lstrip("/") or None)
    held = [m for m in vaults if _plans_any([m], in_vault)]
    if not held:
        return docs
    if not _plans_any(docs, request):
        selection = f"project {', '.join(map(repr, request.projects))}" + \
            (f" and path {request.path!r}" if request.path else "")
        raise ConfigError(f"Every file selected by {selection} is in {_vaults(held)}: "
                          f"{_vault_advice(held, bucket, prefix)}")
    log.warning("skipping %s: %s", _vaults(held), _vault_advice(held, bucket, prefix, skipped=True))
    return docs


def _selects(globs: tuple[str, ...], manifest: Manifest) -> bool:
    return matches_filter(globs, manifest.project_name, manifest.project_id, manifest.project_id.removeprefix("b."))


def _plans_any(manifests: list[Manifest], request: RestoreRequest) -> bool:
    files, not_restorable = plan_restore(manifests, request)
    return bool(files or not_restorable)


def _vaults(vaults: list[Manifest]) -> str:
    names = ", ".join(sorted(m.project_name for m in vaults))
    return f"the vault {names}" if len(vaults) == 1 else f"the vaults {names}"


def _vault_advice(vaults: list[Manifest], bucket: str, prefix: str, *, skipped: bool = False) -> str:
    """What to do instead of restoring into a vault, in one line: copy its files out of S3."""
    first = min(vaults, key=lambda m: m.project_name)
    root = f"s3://{bucket}/{ProjectKeys(prefix, *first.root_segments).root}"
    every = f"s3://{bucket}/{ProjectKeys(prefix, VAULT_ROOT, '<vault>').root}"
    return (f"Vault cannot be written through its API, so aps-mirror restores into Autodesk Docs only; copy the "
            f"mirrored files out of S3 directly, from {every} "
            f"(e.g. aws s3 cp --recursive {root} ./{first.root_segments[-1]}). "
            + ("Restoring the Docs projects only." if skipped else "Nothing was restored."))


def _version_as_of(entry: ManifestEntry, as_of: datetime | None) -> dict[str, Any] | None:
    """The entry's version current at `as_of` (the tip when None) as a history-like record;
    None when the item did not exist then; a record without key when it is not kept."""
    tip = {"version_id": entry.version_id, "version_number": entry.version_number, "key": entry.key,
           "size": entry.size, "sha1": entry.sha1, "source_path": entry.source_path,
           "modified_at": entry.modified_at or entry.copied_at}
    if as_of is None:
        return tip
    deleted = parse_timestamp(entry.deleted_at)
    if deleted is not None and deleted <= as_of:
        return None
    # Earlier versions are only restorable from a copy versions=all kept (`kept_key`); the
    # key a history record names was the tip's place, since overwritten.
    earlier = [{**h, "key": None} for h in entry.history]
    known = [v for v in [*earlier, tip] if (t := parse_timestamp(v.get("modified_at"))) is not None and t <= as_of]
    if known:
        chosen = max(known, key=lambda v: v.get("version_number") or 0)
        number = chosen.get("version_number") or 0
        later = [v.get("version_number") or 0 for v in [*earlier, tip] if (v.get("version_number") or 0) > number]
        if later and min(later) > number + 1:  # versions between the mirror never saw: one may be it
            return {**chosen, "version_id": None, "version_number": None, "key": None, "kept_key": None}
        return chosen
    created = parse_timestamp(entry.created_at)
    if created is not None and created <= as_of:  # it existed then, at a version the mirror never saw
        return {"version_id": None, "version_number": None, "key": None, "kept_key": None,
                "source_path": entry.source_path}
    return None


def _label(version: dict[str, Any]) -> str:
    number = version.get("version_number")
    return f"v{number}" if number else "one the mirror never saw"


def _under(path: str, prefix: str | None) -> bool:
    if not prefix or not prefix.strip("/"):
        return True
    wanted = prefix.strip("/").casefold()
    path = path.casefold()
    return path == wanted or path.startswith(wanted + "/")


# -- where it goes -----------------------------------------------------------------------------
class _ProjectTree:
    """One project's folders as Autodesk has them now, listed on demand and created as needed.

    Thread-safe: every lookup holds the project's lock, so two files landing in one new folder
    never both create it (Autodesk would refuse the second, or keep two of the same name)."""

    def __init__(self, client: ApsClient, uploader: ApsUploader, manifest: Manifest, dry_run: bool) -> None:
        self.client, self.uploader, self.manifest, self.dry_run = client, uploader, manifest, dry_run
        self._children: dict[str, dict[str, Folder | Item]] = {}
        self._tops: dict[str, Folder] | None = None
        self._lock = threading.Lock()

    def lookup(self, path: list[str], name: str) -> tuple[Folder | None, Folder | Item | None]:
        """The folder at `path` (top folder first; created unless dry, None when dry and absent)
        and what is named `name` in it now."""
        with self._lock:
            folder = self._folder(path)
            return folder, self._entries(folder).get(name.casefold()) if folder is not None else None

    def added(self, folder: Folder, item: Item) -> None:
        with self._lock:
            self._entries(folder)[item.name.casefold()] = item

    def _top(self, name: str) -> Folder:
        if self._tops is None:
            self._tops = {f.name.casefold(): f for f in self.client.top_folders(self.manifest.hub_id,
                                                                                 self.manifest.project_id)}
        found = self._tops.get(name.casefold())
        if found is None:
            raise ConfigError(f"Project {self.manifest.project_name!r} has no top folder {name!r} "
                              f"(it has {', '.join(sorted(f.name for f in self._tops.values()))}).")
        return found

    def _entries(self, folder: Folder) -> dict[str, Folder | Item]:
        if folder.id not in self._children:
            self._children[folder.id] = {entry.name.casefold(): entry for entry in
                                         self.client.folder_contents(self.manifest.project_id, folder.id)}
        return self._children[folder.id]

    def _folder(self, path: list[str]) -> Folder | None:
        folder = self._top(path[0])
        for name in path[1:]:
            found = self._entries(folder).get(name.casefold())
            if isinstance(found, Item):
                raise ApsMirrorError(f"{'/'.join(path)}: a file named {name!r} is where a folder must go.")
            if found is None:
                if self.dry_run:
                    return None
                created = self.uploader.create_folder(self.manifest.project_id, folder, name)
                self._entries(folder)[name.casefold()] = created
                self._children[created.id] = {}
                found = created
            folder = found
        return folder


def target_folder(file: RestoreFile, request: RestoreRequest, today: str) -> list[str]:
    """The Autodesk folder path a file is restored into, top folder first."""
    top, *below = file.parts[:-1]
    if request.into is not None:
        return [p for p in request.into.strip("/").split("/") if p] + below
    return [top, f"Restored {today}", *below]


# -- running it ----------------------------------------------------------------------------------
class Restorer:
    """Plans and runs one restore, `workers` files at a time."""

    def __init__(self, client: ApsClient, s3: Any, bucket: str, prefix: str, request: RestoreRequest,
                 *, today: str | None = None, workers: int = DEFAULT_WORKERS,
                 check_scopes: bool | None = None) -> None:
        self.client, self.s3, self.bucket, self.prefix, self.request = client, s3, bucket, prefix, request
        # Whether run() checks the token may write: by default when it writes; a dry run that
        # plans a real restore (the DAG's plan_restore) asks for the check too.
        self.check_scopes = not request.dry_run if check_scopes is None else check_scopes
        self.uploader = ApsUploader(client)
        self.today = today or datetime.now(timezone.utc).strftime("%Y-%m-%d")
        self.workers = parse_workers(workers, "workers")
        self._trees: dict[str, _ProjectTree] = {}
        self._trees_lock = threading.Lock()

    def run(self) -> RestoreSummary:
        manifests = ManifestStore(self.s3, self.bucket, self.prefix).load_all()
        if not manifests:
            raise ConfigError(f"s3://{self.bucket}/{self.prefix} holds no manifest: check --bucket and --prefix.")
        # A vault is refused first: no scope the connection could be given would let it be written.
        manifests = docs_scopes(manifests, self.request, self.bucket, self.prefix)
        if self.check_scopes:
            require_write_scopes(self.client)
        files, not_restorable = plan_restore(manifests, self.request)
        if not files and not not_restorable:
            when = f" as of {self.request.as_of.isoformat()}" if self.request.as_of else ""
            raise ConfigError(f"No mirrored file of the projects {', '.join(self.request.projects)} is under "
                              f"{self.request.path or 'their top folders'}{when}: check --project and --path.")
        summary = RestoreSummary(not_restorable=not_restorable)
        for path in (f["path"] for f in not_restorable):
            log.warning("not restorable as of %s: %s", self.request.as_of, path)
        outcomes = self._restore_all(files)
        for number, file in enumerate(files, 1):  # in the plan's order, whatever order they finished in
            outcome = outcomes[number]
            if isinstance(outcome, Exception):
                self._failed(summary, file, outcome)
            elif outcome is None:
                summary.files_skipped += 1
            else:
                self._restored(summary, file, outcome)
        log.info("restore done: %s", summary.format_text().splitlines()[0])
        return summary

    def _restore_all(self, files: list[RestoreFile]) -> dict[int, str | Exception | None]:
        """Each file's outcome by its number in the plan: its target path, None when already there,
        or the error. Files bound for the same name form one unit, restored in order by one
        worker, so the second sees the first (and never overwrites it)."""
        units: dict[tuple[str, ...], list[tuple[int, RestoreFile]]] = {}
        for number, file in enumerate(files, 1):
            units.setdefault(self._target_key(file), []).append((number, file))
        outcomes: dict[int, str | Exception | None] = {}
        pool = ContextThreadPool(max_workers=min(self.workers, len(units)) or 1,
                                 thread_name_prefix="aps-mirror-restore")
        try:
            futures = [pool.submit(self._restore_unit, unit, len(files)) for unit in units.values()]
            for future in futures:
                outcomes.update(future.result())  # a ConfigError (every file would fail alike) stops it all
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def _target_key(self, file: RestoreFile) -> tuple[str, ...]:
        if self.request.in_place:
            return (file.project.project_id, file.item_id)
        where = [*target_folder(file, self.request, self.today), file.parts[-1]]
        return (file.project.project_id, *(part.casefold() for part in where))

    def _restore_unit(self, unit: list[tuple[int, RestoreFile]], total: int) -> dict[int, str | Exception | None]:
        outcomes: dict[int, str | Exception | None] = {}
        for number, file in unit:
            log.info("restore [%d/%d] %s (v%s, %d bytes)", number, total, file.source_path,
                     file.version_number, file.size)
            try:
                outcomes[number] = self._restore_one(file)
            except ApiError as exc:
                if exc.status == 403 and exc.code == "AUTH-010":  # a scope: every file would fail alike
                    raise ConfigError(_refused_scope_advice(self.client)) from None
                outcomes[number] = exc
            except ApsMirrorError as exc:
                outcomes[number] = exc
            if isinstance(outcomes[number], Exception):
                log.error("restore of %s failed: %s", file.source_path, outcomes[number])
        return outcomes

    def _tree(self, manifest: Manifest) -> _ProjectTree:
        with self._trees_lock:
            if manifest.project_id not in self._trees:
                self._trees[manifest.project_id] = _ProjectTree(self.client, self.uploader, manifest,
                                                                self.request.dry_run)
            return self._trees[manifest.project_id]

    def _restore_one(self, file: RestoreFile) -> str | None:
        """Restore one file: where it went (dry run: would go), or None when already there."""
        if self.request.in_place:
            return self._restore_in_place(file)
        tree = self._tree(file.project)
        path = target_folder(file, self.request, self.today)
        name = file.parts[-1]
        folder, existing = tree.lookup(path, name)
        if isinstance(existing, Folder):
            raise ApsMirrorError(f"a folder named {name!r} is already in {'/'.join(path)}; nothing was overwritten")
        if isinstance(existing, Item):
            size = existing.tip.storage_size if existing.tip else None
            if size != file.size:
                raise ApsMirrorError(f"another file named {name!r} ({size} bytes, not {file.size}) is already in "
                                     f"{'/'.join(path)}; nothing was overwritten")
            return None  # restored by an earlier run
        target = "/".join([*path, name])
        if folder is None or self.request.dry_run:  # None: a folder a real run would create
            return target
        with self._source(file) as body:
            uploaded = self.uploader.upload(file.project.project_id, ("folders", folder.id), name, body, file.size)
        self._check_sha1(file, uploaded.sha1)
        item_id, version_id = self.uploader.create_item(file.project.project_id, folder, name, uploaded)
        # Known at once to the next file of this unit that would land on the same name.
        tip = Version(version_id, name, 1, file.size, uploaded.storage_urn, None, None, None)
        tree.added(folder, Item(item_id, name, False, False, None, version_id, tip))
        return target

    def _restore_in_place(self, file: RestoreFile) -> str | None:
        project_id = file.project.project_id
        item, tip = self._item(project_id, file.item_id)
        if tip is not None and not item.hidden and tip.id == file.version_id:
            return None  # that version is current already
        if (tip is not None and not item.hidden and tip.storage_size == file.size and file.sha1
                and tip.storage_location() is not None
                and self.client.signed_download(tip).sha1 == file.sha1):
            return None  # an earlier restore made its bytes current
        name = file.parts[-1]
        if self.request.dry_run:
            return file.source_path
        with self._source(file) as body:
            uploaded = self.uploader.upload(project_id, ("items", item.id), name, body, file.size)
        self._check_sha1(file, uploaded.sha1)
        self.uploader.create_version(project_id, item.id, item.extension_type or "items:autodesk.core:File",
                                     name, uploaded)
        return file.source_path

    def _item(self, project_id: str, item_id: str) -> tuple[Item, Any]:
        path = f"/data/v1/projects/{quote(project_id, safe='')}/items/{quote(item_id, safe='')}"
        body = self.client.transport.get_json(path)
        included = {r["id"]: Version.from_resource(r) for r in body.get("included") or []
                    if r.get("type") == "versions"}
        item = Item.from_resource(body["data"], included)
        tip = item.tip
        if tip is None or tip.is_tombstone:
            tip = None
        return item, tip

    def _source(self, file: RestoreFile) -> Any:
        """The mirrored object's bytes, streamed (closed on exit)."""
        try:
            return closing(self.s3.get_object(Bucket=self.bucket, Key=file.key)["Body"])
        except self.s3.exceptions.NoSuchKey:
            raise ApsMirrorError(f"the mirror's object s3://{self.bucket}/{file.key} is missing "
                                 "(run aps-mirror verify)") from None

    @staticmethod
    def _check_sha1(file: RestoreFile, sent: str) -> None:
        # The object's bytes are checked on the way; a damaged copy is refused (the upload
        # is left unattached: Autodesk discards storage no item or version uses).
        if file.sha1 and sent != file.sha1:
            raise ApsMirrorError(f"the mirror's copy has SHA-1 {sent}, the manifest says {file.sha1}: "
                                 "the object is damaged (run aps-mirror verify --deep); not restored")

    @staticmethod
    def _restored(summary: RestoreSummary, file: RestoreFile, target: str) -> None:
        summary.files_restored += 1
        summary.bytes_restored += file.size
        summary.restored.append({"project": file.project.project_name, "path": file.source_path,
                                "version_number": file.version_number, "size": file.size, "target": target})

    @staticmethod
    def _failed(summary: RestoreSummary, file: RestoreFile, exc: Exception) -> None:
        summary.files_failed += 1
        summary.failed.append({"project": file.project.project_name, "path": file.source_path, "error": str(exc)})


def require_write_scopes(client: ApsClient) -> None:
    """Refuse at once when the connection does not ask for the scopes writing needs."""
    require_scopes(client, WRITE_SCOPES, "Restoring")


def _refused_scope_advice(client: ApsClient) -> str:
    connection = client.transport.connection
    return (f"Autodesk refused to write with connection {connection.conn_id!r}: its token lacks "
            f"{' or '.join(WRITE_SCOPES)} (the person who authorized it granted fewer scopes); run "
            "`aps-mirror authorize` again, granting them, then run again. Nothing was restored.")
