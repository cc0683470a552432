"""OSS upload routes: ``signeds3upload`` (signed part URLs; completion) and the signed URL's PUT."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from . import serialize
from .clock import iso
from .errors import OSSError
from .model import BUCKET, Reservation
from .oauth import AccessToken
from .sim import Simulator
from .uploads import MAX_PARTS, MAX_URLS
from .web import SIGNED_PREFIX, base_url, scoped

PATH = "/oss/v2/buckets/{bucket_key}/objects/{object_key:path}/signeds3upload"


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise OSSError(f"{name} must be an integer between {low} and {high}.", 400)
    return value


def _completion(raw: bytes) -> tuple[str, int | None, list[str] | None]:
    """(uploadKey, size, eTags) of a completion body (else 400)."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise OSSError("The request body is not valid JSON.", 400) from None
    if not isinstance(body, dict) or not isinstance(body.get("uploadKey"), str) or not body["uploadKey"]:
        raise OSSError("uploadKey is required.", 400)
    size, etags = body.get("size"), body.get("eTags")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise OSSError("size must be an integer.", 400)
    if etags is not None and (not isinstance(etags, list) or not all(isinstance(t, str) for t in etags)):
        raise OSSError("eTags must be an array of strings.", 400)
    return body["uploadKey"], size, etags


def register(app: FastAPI, sim: Simulator) -> None:
    """Add the OSS upload routes (the signed part URLs are PUTs under ``/_sim/s3/``)."""
    account = sim.account
    uploader = scoped(sim, "data:write", "data:create")  # the spec's security, both scopes

    def reservation(bucket_key: str, object_key: str) -> Reservation:
        """The storage location to write: Docs' bucket, made by POST storage, not yet a version's."""
        if bucket_key != BUCKET:
            raise OSSError(f"Bucket does not exist: {bucket_key}", 404)
        with sim.lock:
            found = account.reservation(object_key)
            if found is None:
                raise OSSError(f"Not a storage location created for you: {bucket_key}/{object_key}", 403)
            if account.object_version(object_key) is not None:
                raise OSSError(f"The object {object_key} holds a version and cannot be written again; "
                               "create a new storage location.", 403)
        return found

    @app.get(PATH)
    def signeds3upload(request: Request, bucket_key: str, object_key: str,
                       _t: AccessToken = Depends(uploader)) -> JSONResponse:
        minutes = _int(request, "minutesExpiration", 2, 1, 60)
        parts = _int(request, "parts", 1, 1, MAX_URLS)
        first = _int(request, "firstPart", 1, 1, MAX_PARTS - parts + 1)
        reservation(bucket_key, object_key)
        session = sim.uploads.session(bucket_key, object_key, request.query_params.get("uploadKey"))
        expires = int(sim.clock.now() + minutes * 60)
        url = f"{base_url(request)}{SIGNED_PREFIX}{bucket_key}/{serialize.q(object_key)}"
        urls = [f"{url}?" + urlencode({"uploadId": session.upload_key, "partNumber": n, "Expires": expires,
                                       "Signature": sim.uploads.sign(session, n, expires)})
                for n in range(first, first + parts)]
        return JSONResponse({"uploadKey": session.upload_key, "urls": urls, "urlExpiration": iso(expires),
                             "uploadExpiration": iso(session.expires)})

    @app.put(SIGNED_PREFIX + "{bucket_key}/{object_key:path}")
    async def upload_part(request: Request, bucket_key: str, object_key: str) -> Response:
        params = request.query_params
        tag = sim.uploads.put_part(bucket_key, object_key, params.get("uploadId", ""), params.get("partNumber", ""),
                                   params.get("Expires", ""), params.get("Signature", ""), await request.body())
        return Response(b"", 200, headers={"ETag": tag})

    @app.post(PATH)
    async def complete(request: Request, bucket_key: str, object_key: str,
                       _t: AccessToken = Depends(uploader)) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise OSSError("Content-Type must be application/json.", 400)
        upload_key, size, etags = _completion(await request.body())
        if bucket_key != BUCKET:
            raise OSSError(f"Bucket does not exist: {bucket_key}", 404)
        with sim.lock:
            found = account.reservation(object_key)
        if found is None:
            raise OSSError(f"Object does not exist: {bucket_key}/{object_key}", 404)
        data = sim.uploads.complete(bucket_key, object_key, upload_key, size, etags)
        with sim.lock:
            if data is not None:  # None: a retried completion of this upload
                reservation(bucket_key, object_key)
                account.store_upload(found, data, request.headers.get("x-ads-meta-Content-Type"))
            assert found.content_key is not None and found.size is not None
            doc = serialize.object_details(base_url(request), found, account.content_sha1(found.content_key,
                                                                                          found.size))
        return JSONResponse(doc)
