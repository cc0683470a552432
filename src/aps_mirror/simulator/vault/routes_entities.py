"""Read routes: vaults, folders (``root`` keyword), sub-folders, folder contents, file versions
(vault-wide, one, history), file masters, property definitions and advanced search."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from . import search, serialize
from .errors import NoPermission, PropertyDefinitionDoesNotExist, ResourceNotFound, VaultBadRequest
from .model import File, FileVersion, Folder, Link, Vault, VaultUser
from .paging import INDEXING_COMPLETE, NOT_APPLICABLE, page_request, paginate
from .properties import BY_ID, DEFINITIONS, FILE, FOLDER, requested
from .service import VaultService
from .web import caller, choice, option, respond

Entity = Folder | FileVersion | Link
FILTERS: dict[str, Callable[[FileVersion], str]] = {
    "CheckoutUserName": lambda v: v.file.checked_out_by or "",
    "CreateUserName": lambda v: v.create_user,
    "CategoryName": lambda v: v.file.category,
    "State": lambda v: v.state,
    "state": lambda v: v.state,  # the spec's description writes it in lower case
}
HISTORY = ("All", "ReleasedOnly", "ReleasedAndRevisionTip", "RevisionTip")
REVISIONS = ("AllRevision", "CurrentRevision")


def _by_name(entities: Iterable[Folder]) -> list[Folder]:
    return sorted(entities, key=lambda f: f.name.casefold())


def _sees(viewer: VaultUser, entity: File | Folder) -> bool:
    return viewer.admin or not entity.hidden_from_non_admins()


def _rows(files: Iterable[File], latest_only: bool, released_only: bool) -> Iterator[FileVersion]:
    """The version rows of files: every version or the latest (of the released ones, if asked)."""
    for file in files:
        versions = [v for v in file.versions if v.released] if released_only else file.versions
        if not versions:
            continue
        if latest_only:
            yield versions[-1]
        else:
            yield from versions


def _matches_q(version: FileVersion, q: str) -> bool:
    """GUESS: ``q`` matches a substring of the name or of the textual properties."""
    needle = q.casefold()
    return any(needle in text.casefold() for text in (version.file.name, version.state, version.file.category,
                                                       version.revision, version.create_user))


def _history(file: File, request: Request) -> list[FileVersion]:
    """``files/{id}/versions`` with its history, revision and order options."""
    kind = choice(request, "option[history]", HISTORY, "All")
    revision = choice(request, "option[revision]", REVISIONS, "AllRevision")
    tip_released_only = option(request, "option[onlyShowTipReleasedForEachRev]", True)
    versions = list(file.versions)
    if revision == "CurrentRevision":
        versions = [v for v in versions if v.revision == file.tip.revision]
    if kind != "All":
        revision_tips = {v.revision: v for v in versions}  # the last version of each revision
        released = [v for v in versions if v.released]
        if tip_released_only:
            released = list({v.revision: v for v in released}.values())
        keep = set(map(id, released)) if kind in ("ReleasedOnly", "ReleasedAndRevisionTip") else set()
        if kind in ("RevisionTip", "ReleasedAndRevisionTip"):
            keep |= set(map(id, revision_tips.values()))
        versions = [v for v in versions if id(v) in keep]
    if option(request, "descending", False):
        versions.reverse()
    return versions


def register(router: APIRouter, service: VaultService) -> None:
    store = service.store

    def vault_of(vault_id: str) -> Vault:
        return store.vault(vault_id)

    def version_doc(v: FileVersion, viewer: VaultUser, extended: bool, definitions: list[Any]) -> dict[str, Any]:
        doc = serialize.file_version(v, viewer, extended, definitions)
        checked_out_by = v.file.checked_out_by
        return serialize.checkout_user(doc, service.sessions.users.get(checked_out_by.casefold())
                                       if checked_out_by else None)

    def entity_doc(entity: Entity, viewer: VaultUser, extended: bool, request: Request) -> dict[str, Any]:
        raw_ids = request.query_params.get("option[propDefIds]")
        if isinstance(entity, Folder):
            return serialize.folder(entity, viewer, extended, requested(raw_ids, FOLDER))
        if isinstance(entity, Link):
            return serialize.link(entity, viewer)
        return version_doc(entity, viewer, extended, requested(raw_ids, FILE))

    def collection(request: Request, items: Sequence[Any], render: Callable[[Any], dict[str, Any]],
                   indexing: str = NOT_APPLICABLE, body: bytes = b"") -> Response:
        """One page of ``items`` as ``{pagination, results, included?}`` (call with the lock held)."""
        page = page_request(request, service.max_page_size, body)
        chunk, pagination = paginate(request, page, items, indexing)
        doc: dict[str, Any] = {"pagination": pagination, "results": [render(x) for x in chunk]}
        raw_ids = request.query_params.get("option[propDefIds]")
        if raw_ids:
            vault = vault_of(request.path_params["vault_id"]) if "vault_id" in request.path_params else None
            if vault is not None:
                definitions = requested(raw_ids, FILE) + requested(raw_ids, FOLDER)
                doc["included"] = {"propertyDefinition": {d.id: serialize.property_definition(vault, d)
                                                          for d in definitions}}
        return respond(service, doc)

    # ---- vaults: no authentication
    @router.get("/vaults")
    def vaults(request: Request) -> Response:
        with service.lock:
            return collection(request, list(store.vaults), serialize.vault)

    @router.get("/vaults/{vault_id}")
    def vault(vault_id: str) -> Response:
        with service.lock:
            return respond(service, serialize.vault(vault_of(vault_id)))

    # ---- folders
    @router.get("/vaults/{vault_id}/folders/{folder_id}")
    def folder(request: Request, vault_id: str, folder_id: str) -> Response:
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            return respond(service, serialize.folder(store.folder(found, folder_id), viewer))

    @router.get("/vaults/{vault_id}/folders/{folder_id}/sub-folders")
    def sub_folders(request: Request, vault_id: str, folder_id: str) -> Response:
        extended = option(request, "option[extendedModels]", False)
        definitions = requested(request.query_params.get("option[propDefIds]"), FOLDER)
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            parent = store.folder(found, folder_id)
            if not _sees(viewer, parent):
                raise NoPermission(f"The folder {folder_id} is cloaked.")
            return collection(request, _by_name(parent.folders),
                              lambda f: serialize.folder(f, viewer, extended, definitions))

    @router.get("/vaults/{vault_id}/folders/{folder_id}/contents")
    def contents(request: Request, vault_id: str, folder_id: str) -> Response:
        include_folders = option(request, "option[includeFolders]", True)
        latest_only = option(request, "option[latestOnly]", True)
        released_only = option(request, "option[releasedFilesOnly]", False)
        subtree = option(request, "option[searchSubFolders]", False)  # GUESS: the whole subtree
        option(request, "option[searchContent]", False)
        extended = option(request, "option[extendedModels]", False)
        q = request.query_params.get("q") or ""
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            top = store.folder(found, folder_id)
            if not _sees(viewer, top):
                raise NoPermission(f"The folder {folder_id} is cloaked.")
            searched = [top]
            if subtree:
                for node in searched:  # grows while walked: breadth first
                    searched.extend(f for f in _by_name(node.folders) if _sees(viewer, f))
            entities: list[Entity] = []
            if include_folders:
                entities += [f for node in searched for f in _by_name(node.folders)
                             if not q or (_sees(viewer, f) and q.casefold() in f.name.casefold())]
            for node in searched:
                entities += [v for v in _rows(node.files, latest_only, released_only)
                             if not q or (_sees(viewer, v.file) and _matches_q(v, q))]
            entities += [link for node in searched for link in node.links
                         if not q or q.casefold() in link.name.casefold()]
            return collection(request, entities, lambda e: entity_doc(e, viewer, extended, request), INDEXING_COMPLETE)

    # ---- file versions and files
    @router.get("/vaults/{vault_id}/file-versions")
    def file_versions(request: Request, vault_id: str) -> Response:
        latest_only = option(request, "option[latestOnly]", True)
        released_only = option(request, "option[releasedFilesOnly]", False)
        extended = option(request, "option[extendedModels]", False)
        q = request.query_params.get("q") or ""
        filters: list[tuple[Callable[[FileVersion], str], str]] = []
        for key, value in request.query_params.multi_items():
            if key.startswith("filter["):
                name = key[len("filter["):].rstrip("]")
                if name not in FILTERS:
                    raise VaultBadRequest(f"Unknown filter {key}.", params=[key])
                filters.append((FILTERS[name], value.casefold()))
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            rows = list(_rows(found.files.values(), latest_only, released_only))
            if q or filters:  # a cloaked row's fields are hidden: it matches nothing
                rows = [v for v in rows if _sees(viewer, v.file) and (not q or _matches_q(v, q))
                        and all(get(v).casefold() == want for get, want in filters)]
            return collection(request, rows, lambda v: entity_doc(v, viewer, extended, request))

    @router.get("/vaults/{vault_id}/file-versions/{version_id}")
    def file_version(request: Request, vault_id: str, version_id: str) -> Response:
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            return respond(service, version_doc(store.version(found, version_id), viewer, True, []))

    @router.get("/vaults/{vault_id}/files/{file_id}")
    def file(request: Request, vault_id: str, file_id: str) -> Response:
        released_only = option(request, "option[releasedOnly]", False)
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            master = store.file(found, file_id)
            chosen = next(iter(_rows([master], True, released_only)), None)
            if chosen is None:
                raise ResourceNotFound(file_id)  # GUESS: no released version is a 404
            # FileObject: the master with the chosen version, extended
            return respond(service, {**serialize.file_reference(chosen),
                                     "fileVersion": version_doc(chosen, viewer, True, [])})

    @router.get("/vaults/{vault_id}/files/{file_id}/versions")
    def file_history(request: Request, vault_id: str, file_id: str) -> Response:
        extended = option(request, "option[extendedModels]", False)
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            versions = _history(store.file(found, file_id), request)
            return collection(request, versions, lambda v: entity_doc(v, viewer, extended, request))

    # ---- property definitions
    @router.get("/vaults/{vault_id}/property-definitions")
    def property_definitions(request: Request, vault_id: str) -> Response:
        params = request.query_params
        classes = {c.strip().upper() for c in (params.get("filter[entityClassId]") or "").split(",") if c.strip()}
        names = {n.strip().casefold() for n in (params.get("filter[systemNames]") or "").split(",") if n.strip()}
        ids = {i.strip() for i in (params.get("filter[propDefIds]") or "").split(",") if i.strip()}
        extended = option(request, "option[extendedModels]", False)
        option(request, "option[includeBOMAssociationProperty]", False)
        with service.lock:
            found = vault_of(vault_id)
            caller(service, request, found)
            chosen = [d for d in DEFINITIONS if (not classes or d.entity_class in classes)
                      and (not names or d.system_name.casefold() in names) and (not ids or d.id in ids)]
            return collection(request, chosen, lambda d: serialize.property_definition(found, d, extended))

    @router.get("/vaults/{vault_id}/property-definitions/{prop_id}")
    def property_definition(request: Request, vault_id: str, prop_id: str) -> Response:
        with service.lock:
            found = vault_of(vault_id)
            caller(service, request, found)
            if prop_id not in BY_ID:
                raise PropertyDefinitionDoesNotExist(prop_id)
            return respond(service, serialize.property_definition(found, BY_ID[prop_id],
                                                                  option(request, "option[extendedModels]", False)))

    # ---- advanced search
    @router.post("/vaults/{vault_id}:advanced-search")
    async def advanced_search(request: Request, vault_id: str) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise VaultBadRequest("The request body is not valid JSON.") from None
        wanted = search.parse(body)
        latest_only = option(request, "option[latestOnly]", True)
        released_only = option(request, "option[releasedFilesOnly]", False)
        option(request, "option[releasedItemsOnly]", False)
        extended = option(request, "option[extendedModels]", False)
        with service.lock:
            found = vault_of(vault_id)
            viewer = caller(service, request, found).user
            roots = [store.folder(found, fid) for fid in wanted.folder_ids] or [found.root]
            # searchSubFolders applies only with foldersToSearch; without them the whole vault is searched.
            deep = option(request, "option[searchSubFolders]", False) if wanted.folder_ids else True
            containers = [r for r in roots if _sees(viewer, r)]
            if deep:
                for node in containers:
                    containers.extend(f for f in _by_name(node.folders) if _sees(viewer, f))
            types = wanted.entity_types
            entities: list[Entity] = []
            if not types or "Folder" in types:
                entities += [f for node in containers for f in _by_name(node.folders) if _sees(viewer, f)]
            if not types or "File" in types:
                entities += [v for node in containers for v in _rows(node.files, latest_only, released_only)
                             if _sees(viewer, v.file)]
            hits = [e for e in entities if search.matches(e, wanted.criteria)]  # type: ignore[arg-type]
            key = search.sort_key(wanted.sorts)
            if key is not None:
                hits.sort(key=key, reverse=not wanted.sorts[0].ascending)  # type: ignore[arg-type]
            return collection(request, hits, lambda e: entity_doc(e, viewer, extended, request),
                              service.indexing_status, raw)
