"""APS's upload flow, for restores: storage, signed part URLs, PUT the parts, complete, then
an item (first version) or a new version; folders as needed.

Every request goes through the transport (retries, rate budget, per-class counting). Parts
are read from a stream one at a time, so memory stays at one part whatever the file's size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from aps_mirror.aps import endpoints
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.models import Folder, Version
from aps_mirror.errors import ApiError, TransferError

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last
URLS_PER_REQUEST = 25  # what Autodesk's SDKs ask for at once
URL_MINUTES = 60  # the longest OSS allows: a slow part must not outlive its URL
JSON_API = {"Content-Type": "application/vnd.api+json"}
WRITE_SCOPES = ("data:write", "data:create")


@dataclass(frozen=True)
class Uploaded:
    """A completed OSS upload, ready to become an item or a version."""

    storage_urn: str
    size: int
    sha1: str  # of the bytes sent, computed while sending


def _seg(value: str) -> str:
    return quote(value, safe="")


def _payload(data: dict[str, Any], included: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"jsonapi": {"version": "1.0"}, "data": data}
    if included:
        body["included"] = included
    return json.dumps(body).encode("utf-8")


def _extension(ext_type: str) -> dict[str, str]:
    return {"type": ext_type, "version": "1.0"}


def types_for_folder(folder: Folder) -> tuple[str, str, str]:
    """(folder, item, version) extension types of content created in `folder`: BIM 360 / ACC
    folders take `autodesk.bim360` types, others (Fusion, A360) `autodesk.core`."""
    namespace = "autodesk.bim360" if "autodesk.bim360" in (folder.extension_type or "") else "autodesk.core"
    return f"folders:{namespace}:Folder", f"items:{namespace}:File", f"versions:{namespace}:File"


class ApsUploader:
    """Writes files and folders into Autodesk Docs through the Data Management and OSS APIs."""

    def __init__(self, client: ApsClient, *, part_size: int = PART_SIZE) -> None:
        self.client = client
        self.transport = client.transport
        self.part_size = part_size

    # -- folders ----------------------------------------------------------------------------
    def create_folder(self, project_id: str, parent: Folder, name: str) -> Folder:
        folder_type = types_for_folder(parent)[0]
        body = _payload({"type": "folders", "attributes": {"name": name, "extension": _extension(folder_type)},
                         "relationships": {"parent": {"data": {"type": "folders", "id": parent.id}}}})
        answer = self._post_json(f"/data/v1/projects/{_seg(project_id)}/folders", body)
        return Folder.from_resource(answer["data"])

    # -- bytes ------------------------------------------------------------------------------
    def upload(self, project_id: str, target: tuple[str, str], name: str, stream: BinaryIO,
               size: int) -> Uploaded:
        """Reserve storage beside `target` (("folders" | "items", id)) and send `size` bytes
        read from `stream`, part by part."""
        body = _payload({"type": "objects", "attributes": {"name": name},
                         "relationships": {"target": {"data": {"type": target[0], "id": target[1]}}}})
        storage_urn = self._post_json(f"/data/v1/projects/{_seg(project_id)}/storage", body)["data"]["id"]
        location = Version("", name, None, None, storage_urn, None, None, None).storage_location()
        if location is None:
            raise ApiError(f"APS answered a storage id that is not an OSS object: {storage_urn}",
                           status=502, endpoint="storage")
        bucket, object_key = location
        oss_path = f"/oss/v2/buckets/{_seg(bucket)}/objects/{_seg(object_key)}/signeds3upload"
        parts = max(1, -(-size // self.part_size))
        digest = hashlib.sha1()
        etags: list[str] = []
        upload_key: str | None = None
        urls: list[str] = []
        sent = 0
        for number in range(1, parts + 1):
            if not urls:
                upload_key, urls = self._sign(oss_path, number, min(URLS_PER_REQUEST, parts - number + 1),
                                              upload_key)
            chunk = _read_exactly(stream, min(self.part_size, size - sent))
            digest.update(chunk)
            etags.append(self._put_part(oss_path, urls.pop(0), number, chunk, upload_key))
            sent += len(chunk)
        if stream.read(1):
            raise TransferError(f"{name}: the source holds more than the {size} bytes expected; nothing was created.")
        answer = self.transport.request("POST", oss_path, json={"uploadKey": upload_key, "size": size,
                                                                "eTags": etags})
        details = answer.json()
        sha1 = digest.hexdigest()
        if details.get("sha1") and details["sha1"] != sha1:
            raise TransferError(f"{name}: Autodesk stored bytes with SHA-1 {details['sha1']}, "
                                f"{sha1} were sent; nothing was created.")
        return Uploaded(storage_urn, size, sha1)

    def _sign(self, oss_path: str, first: int, count: int, upload_key: str | None) -> tuple[str, list[str]]:
        params: dict[str, Any] = {"firstPart": first, "parts": count, "minutesExpiration": URL_MINUTES}
        if upload_key:
            params["uploadKey"] = upload_key
        answer = self.transport.request("GET", oss_path, params=params).json()
        return answer["uploadKey"], list(answer["urls"])

    def _put_part(self, oss_path: str, url: str, number: int, chunk: bytes, upload_key: str | None) -> str:
        try:
            response = self._put(url, chunk)
        except ApiError as exc:
            if exc.status != 403:
                raise
            # The URL expired (a slow earlier part): sign this part again, once.
            _key, [url] = self._sign(oss_path, number, 1, upload_key)
            response = self._put(url, chunk)
        return response.headers.get("ETag", "").strip('"')

    def _put(self, url: str, chunk: bytes) -> Any:
        return self.transport.request("PUT", url, data=chunk, authenticated=False,
                                      endpoint=endpoints.SIGNED_URL_UPLOAD)

    # -- items and versions -----------------------------------------------------------------
    def create_item(self, project_id: str, folder: Folder, name: str, uploaded: Uploaded) -> tuple[str, str]:
        """A new item in `folder` whose first version holds the upload; (item id, version id)."""
        _folder, item_type, version_type = types_for_folder(folder)
        body = _payload(
            {"type": "items", "attributes": {"displayName": name, "extension": _extension(item_type)},
             "relationships": {"tip": {"data": {"type": "versions", "id": "1"}},
                               "parent": {"data": {"type": "folders", "id": folder.id}}}},
            [{"type": "versions", "id": "1",
              "attributes": {"name": name, "extension": _extension(version_type)},
              "relationships": {"storage": {"data": {"type": "objects", "id": uploaded.storage_urn}}}}])
        answer = self._post_json(f"/data/v1/projects/{_seg(project_id)}/items", body)
        versions = [r["id"] for r in answer.get("included") or [] if r.get("type") == "versions"]
        return answer["data"]["id"], versions[0] if versions else ""

    def create_version(self, project_id: str, item_id: str, item_type: str, name: str,
                       uploaded: Uploaded) -> str:
        """A new version of an item (of a deleted one: brings it back); its version id."""
        version_type = "versions:" + item_type.split(":", 1)[1]
        body = _payload({"type": "versions", "attributes": {"name": name, "extension": _extension(version_type)},
                         "relationships": {"item": {"data": {"type": "items", "id": item_id}},
                                           "storage": {"data": {"type": "objects", "id": uploaded.storage_urn}}}})
        return self._post_json(f"/data/v1/projects/{_seg(project_id)}/versions", body)["data"]["id"]

    def _post_json(self, path: str, body: bytes) -> Any:
        return self.transport.request("POST", path, data=body, headers=JSON_API).json()


def _read_exactly(stream: BinaryIO, count: int) -> bytes:
    """`count` bytes (a stream's read may return fewer); fewer only at the end of the stream."""
    chunks, wanted = [], count
    while wanted:
        chunk = stream.read(wanted)
        if not chunk:
            raise TransferError(f"the source ended {wanted} bytes short of the size expected; nothing was created.")
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)
