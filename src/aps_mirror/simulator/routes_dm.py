"""Project and Data Management API routes: hubs, projects, top folders, folders, items, versions, search."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from . import serialize
from .errors import DataManagementError, NoPrivilege
from .model import Folder, Item
from .oauth import AccessToken
from .sim import Simulator
from .web import (api, attribute_filters, auth_dependencies, base_url, csv, flag, matches, page_links, paging,
                  self_href)


def _version_id(raw: str, request: Request) -> str:
    """Version ids arrive URL-encoded; tolerate a client that left ``?version=N`` unencoded."""
    if "?version=" not in raw and "version" in request.query_params:
        return f"{raw}?version={request.query_params['version']}"
    return raw


def _paged(request: Request, data: list[Any], number: int, has_next: bool,
           **extra: Any) -> JSONResponse:
    doc: dict[str, Any] = {"jsonapi": serialize.JSONAPI, "links": page_links(request, number, has_next),
                           "data": data}
    doc.update({k: v for k, v in extra.items() if v})
    return api(doc)


def register(app: FastAPI, sim: Simulator) -> None:
    """Add the Autodesk Project API (``/project/v1``) and Data Management API (``/data/v1``) routes."""
    account = sim.account
    _bearer, data_reader = auth_dependencies(sim)

    # ---- project API
    @app.get("/project/v1/hubs")
    def hubs(request: Request, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = paging(request)
        base = base_url(request)
        with sim.lock:
            reachable = [h for h in account.hubs if h.region not in sim.unreachable_regions]
            page = reachable[number * limit:(number + 1) * limit]
            data = [serialize.hub(base, h) for h in page]
            has_next = (number + 1) * limit < len(reachable)
            regions = sorted({h.region for h in account.hubs} & sim.unreachable_regions)
        doc: dict[str, Any] = {"jsonapi": serialize.JSONAPI, "links": page_links(request, number, has_next),
                               "data": data}
        if regions:  # 200 with partial results, not an error
            doc["meta"] = {"warnings": [serialize.region_warning(r) for r in regions]}
        return api(doc)

    @app.get("/project/v1/hubs/{hub_id}")
    def hub(request: Request, hub_id: str, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.hub(base_url(request), account.hub(hub_id))
        return api(serialize.document(self_href(request), data))

    @app.get("/project/v1/hubs/{hub_id}/projects")
    def projects(request: Request, hub_id: str, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = paging(request)
        with sim.lock:
            all_projects = account.hub(hub_id).projects
            page = all_projects[number * limit:(number + 1) * limit]
            data = [serialize.project(base_url(request), p) for p in page]
            has_next = (number + 1) * limit < len(all_projects)
        return _paged(request, data, number, has_next)

    @app.get("/project/v1/hubs/{hub_id}/projects/{project_id}")
    def project(request: Request, hub_id: str, project_id: str,
                _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.project(base_url(request), account.hub_project(hub_id, project_id))
        return api(serialize.document(self_href(request), data))

    @app.get("/project/v1/hubs/{hub_id}/projects/{project_id}/topFolders")
    def top_folders(request: Request, hub_id: str, project_id: str,
                    token: AccessToken = Depends(data_reader)) -> JSONResponse:
        # excludeDeleted / projectFilesOnly only apply "when user context is provided" (3-legged).
        user = token.three_legged
        with sim.lock:
            p = account.hub_project(hub_id, project_id)
            found = account.top_folders(p, admin=sim.is_admin(token.user_id),
                                        exclude_deleted=user and flag(request, "excludeDeleted"),
                                        project_files_only=user and flag(request, "projectFilesOnly"))
            data = [serialize.folder(base_url(request), f, account.user) for f in found]
        return api(serialize.document(self_href(request), data))

    # ---- data API
    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}")
    def folder(request: Request, project_id: str, folder_id: str,
               _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.folder(base_url(request), account.folder(folder_id, project_id), account.user)
        return api(serialize.document(self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}/parent")
    def folder_parent(request: Request, project_id: str, folder_id: str,
                      _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            parent = account.folder(folder_id, project_id).parent
            if parent is None:
                raise DataManagementError("The root folder has no parent.", 404, "NOT_FOUND", "Not Found")
            data = serialize.folder(base_url(request), parent, account.user)
        return api(serialize.document(self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}/contents")
    def folder_contents(request: Request, project_id: str, folder_id: str,
                        _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = paging(request)
        include_hidden = flag(request, "includeHidden")
        types = csv(request.query_params.get("filter[type]"))
        ext_types = csv(request.query_params.get("filter[extension.type]"))
        filters = attribute_filters(request)
        base = base_url(request)
        with sim.lock:
            f = account.folder(folder_id, project_id)
            entries: list[Folder | Item] = [
                *sorted((c for c in f.folders if include_hidden or not c.hidden), key=lambda c: c.name),
                *sorted((i for i in f.items if include_hidden or not i.hidden), key=lambda i: i.display_name),
            ]
            page = entries[number * limit:(number + 1) * limit]
            has_next = (number + 1) * limit < len(entries)
            # Autodesk filters AFTER paging: a page can be short or empty while `next` remains.
            if types:
                page = [e for e in page if ("folders" if isinstance(e, Folder) else "items") in types]
            if ext_types:
                page = [e for e in page if e.ext_type in ext_types]
            data = [serialize.folder(base, e, account.user) if isinstance(e, Folder)
                    else serialize.item(base, e, account.user) for e in page]
            if filters:
                data = [d for d in data if matches(d["attributes"], filters)]
            kept = {d["id"] for d in data}
            included = [serialize.version(base, e.tip, account.user) for e in page
                        if isinstance(e, Item) and e.id in kept]
        return _paged(request, data, number, has_next, included=included)

    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}/search")
    def folder_search(request: Request, project_id: str, folder_id: str,
                      token: AccessToken = Depends(data_reader)) -> JSONResponse:
        if not token.three_legged:
            raise NoPrivilege("Folder search needs a three-legged token.")
        if "data:search" not in token.scopes:
            raise NoPrivilege("The token does not have the data:search scope.")
        number, limit = paging(request)
        filters = attribute_filters(request, skip=())
        base = base_url(request)
        with sim.lock:
            start = account.folder(folder_id, project_id)
            hits: list[tuple[dict[str, Any], Item]] = []
            stack = [start]
            while stack:
                node = stack.pop(0)
                for i in sorted((i for i in node.items if not i.hidden), key=lambda i: i.display_name):
                    doc = serialize.version(base, i.tip, account.user)
                    if matches({**doc["attributes"], "type": doc["type"], "id": doc["id"]}, filters):
                        hits.append((doc, i))
                stack.extend(sorted((c for c in node.folders if not c.hidden), key=lambda c: c.name))
            page = hits[number * limit:(number + 1) * limit]
            has_next = (number + 1) * limit < len(hits)
            data = [doc for doc, _ in page]
            included = [serialize.item(base, i, account.user) for _, i in page]
        return _paged(request, data, number, has_next, included=included)

    @app.get("/data/v1/projects/{project_id}/items/{item_id}")
    def item(request: Request, project_id: str, item_id: str,
             _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        base = base_url(request)
        with sim.lock:
            i = account.item(item_id, project_id)
            doc = serialize.document(self_href(request), serialize.item(base, i, account.user),
                                     included=[serialize.version(base, i.tip, account.user)])
        return api(doc)

    @app.get("/data/v1/projects/{project_id}/items/{item_id}/tip")
    def item_tip(request: Request, project_id: str, item_id: str,
                 _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            i = account.item(item_id, project_id)
            data = serialize.version(base_url(request), i.tip, account.user)
        return api(serialize.tip_document(self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/items/{item_id}/versions")
    def item_versions(request: Request, project_id: str, item_id: str,
                      _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = paging(request)
        filters = attribute_filters(request, skip=())
        with sim.lock:
            i = account.item(item_id, project_id)
            newest_first = list(reversed(i.versions))
            page = newest_first[number * limit:(number + 1) * limit]
            data = [serialize.version(base_url(request), v, account.user) for v in page]
            has_next = (number + 1) * limit < len(newest_first)
        if filters:  # after paging, like folder contents
            data = [d for d in data if matches({**d["attributes"], "type": d["type"], "id": d["id"]}, filters)]
        return _paged(request, data, number, has_next)

    @app.get("/data/v1/projects/{project_id}/versions/{version_id}")
    def version(request: Request, project_id: str, version_id: str,
                _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            v = account.version(_version_id(version_id, request), project_id)
            data = serialize.version(base_url(request), v, account.user)
        return api(serialize.document(self_href(request), data))
