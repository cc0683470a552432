"""Data Management write routes: storage locations, folders, items (with their first version), versions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from . import serialize
from .errors import BadInput, Forbidden
from .model import BUCKET, Folder, kind_types
from .oauth import AccessToken
from .sim import Simulator
from .web import api, base_url, scoped

STORAGE_PREFIX = f"urn:adsk.objects:os.object:{BUCKET}/"


async def _payload(request: Request, resource_type: str) -> dict[str, Any]:
    """The JSON:API body's ``data`` object, of type ``resource_type`` (else 400)."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise BadInput("The request body is not valid JSON.") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("type") != resource_type:
        raise BadInput(f"The body needs a data object of type {resource_type!r}.")
    return {**data, "included": body.get("included")}


def _text(node: Any, *path: str) -> str:
    """The non-empty string at ``path`` (else 400 naming the member)."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str) or not node:
        raise BadInput(f"data.{'.'.join(path)} is required.")
    return node


def _ref(data: dict[str, Any], relationship: str, *types: str) -> tuple[str, str]:
    """(type, id) of ``relationships.<relationship>.data``, whose type must be one of ``types``."""
    kind = _text(data, "relationships", relationship, "data", "type")
    if kind not in types:
        raise BadInput(f"data.relationships.{relationship}.data.type must be {' or '.join(types)}.")
    return kind, _text(data, "relationships", relationship, "data", "id")


def _object_key(storage_urn: str) -> str:
    if not storage_urn.startswith(STORAGE_PREFIX):
        raise BadInput(f"The storage id must be an object of {BUCKET} made by POST storage: {storage_urn}")
    return storage_urn[len(STORAGE_PREFIX):]


def _expect_type(given: str, expected: str) -> None:
    if given != expected:
        raise BadInput(f"The extension type {given!r} does not fit here; use {expected!r}.")


def _no_copy(request: Request) -> None:
    if "copyFrom" in request.query_params:
        raise BadInput("copyFrom is not simulated: upload the bytes and create the item or version from storage.")


def register(app: FastAPI, sim: Simulator) -> None:
    """Add ``POST /data/v1/projects/{project_id}/{storage,folders,items,versions}``."""
    account = sim.account
    creator = scoped(sim, "data:create")

    def check_writable(request: Request, token: AccessToken, folder: Folder) -> None:
        # A 2-legged app may act for one user with x-user-id; it is then held to that user's rights.
        user = token.user_id if token.three_legged else request.headers.get("x-user-id") or None
        if not sim.can_write(user, folder):
            raise Forbidden(f"You don't have permission to add content to the folder {folder.name!r}.")

    @app.post("/data/v1/projects/{project_id}/storage")
    async def create_storage(request: Request, project_id: str, token: AccessToken = Depends(creator)) -> JSONResponse:
        data = await _payload(request, "objects")
        name = _text(data, "attributes", "name")
        kind, target_id = _ref(data, "target", "folders", "items")
        with sim.lock:
            account.project(project_id)
            folder = (account.folder(target_id, project_id) if kind == "folders"
                      else account.item(target_id, project_id).parent)
            check_writable(request, token, folder)
            doc = serialize.storage(base_url(request), account.reserve_storage(folder, name))
        return JSONResponse(doc, 201)

    @app.post("/data/v1/projects/{project_id}/folders")
    async def create_folder(request: Request, project_id: str, token: AccessToken = Depends(creator)) -> JSONResponse:
        data = await _payload(request, "folders")
        name = _text(data, "attributes", "name")
        folder_type = _text(data, "attributes", "extension", "type")
        _text(data, "attributes", "extension", "version")
        _kind, parent_id = _ref(data, "parent", "folders")
        with sim.lock:
            parent = account.folder(parent_id, project_id)
            check_writable(request, token, parent)
            _expect_type(folder_type, kind_types(parent.project.kind)[0])
            folder = account.create_folder(parent, name)
            doc = serialize.document(serialize.folder_url(base_url(request), folder),
                                     serialize.folder(base_url(request), folder, account.user))
        return api(doc, 201)

    @app.post("/data/v1/projects/{project_id}/items")
    async def create_item(request: Request, project_id: str, token: AccessToken = Depends(creator)) -> JSONResponse:
        _no_copy(request)
        data = await _payload(request, "items")
        item_type = _text(data, "attributes", "extension", "type")
        _kind, tip_id = _ref(data, "tip", "versions")
        _kind, parent_id = _ref(data, "parent", "folders")
        first = next((v for v in data["included"] or () if isinstance(v, dict) and v.get("type") == "versions"
                      and v.get("id") == tip_id), None)
        if first is None:
            raise BadInput(f"included[] needs the version {tip_id!r} named by relationships.tip.")
        name = _text(first, "attributes", "name")
        version_type = _text(first, "attributes", "extension", "type")
        _kind, storage_urn = _ref(first, "storage", "objects")
        base = base_url(request)
        with sim.lock:
            parent = account.folder(parent_id, project_id)
            check_writable(request, token, parent)
            _folder, expected_item, expected_version = kind_types(parent.project.kind)
            _expect_type(item_type, expected_item)
            _expect_type(version_type, expected_version)
            item = account.create_item(parent, name, _object_key(storage_urn))
            doc = serialize.document(serialize.item_url(base, item), serialize.item(base, item, account.user),
                                     included=[serialize.version(base, item.tip, account.user)])
        return api(doc, 201)

    @app.post("/data/v1/projects/{project_id}/versions")
    async def create_version(request: Request, project_id: str,
                             token: AccessToken = Depends(creator)) -> JSONResponse:
        _no_copy(request)
        data = await _payload(request, "versions")
        name = _text(data, "attributes", "name")
        version_type = _text(data, "attributes", "extension", "type")
        _kind, item_id = _ref(data, "item", "items")
        if not isinstance((data.get("relationships") or {}).get("storage"), dict):
            raise BadInput("data.relationships.storage is required (versions without storage are not simulated).")
        _kind, storage_urn = _ref(data, "storage", "objects")
        base = base_url(request)
        with sim.lock:
            item = account.item(item_id, project_id)
            check_writable(request, token, item.parent)
            _expect_type(version_type, "versions:" + item.ext_type.split(":", 1)[1])
            version = account.create_version(item, name, _object_key(storage_urn))
            doc = serialize.document(serialize.version_url(base, version),
                                     serialize.version(base, version, account.user),
                                     included=[serialize.item(base, item, account.user)])
        return api(doc, 201)
