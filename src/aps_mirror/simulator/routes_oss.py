"""OSS download routes: ``signeds3download`` (complete/chunked/fallback) and the signed URL itself."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import serialize
from .errors import OSSError
from .model import BUCKET
from .oauth import AccessToken
from .sim import CHUNKED, FALLBACK, Simulator
from .web import SIGNED_PREFIX, auth_dependencies, base_url

# Hashing generated content runs at tens of MB/s: past this size no sha1 is offered.
SHA1_MAX_SIZE = 256 * 1024 * 1024


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; None = whole body."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _counted(sim: Simulator, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        sim.traffic.add_bytes(len(piece))
        yield piece


def register(app: FastAPI, sim: Simulator) -> None:
    """Add the OSS download routes (the signed URLs live under ``/_sim/s3/``)."""
    account = sim.account
    _bearer, data_reader = auth_dependencies(sim)

    def signed_url(request: Request, bucket_key: str, object_key: str, minutes: int, part: str | None = None) -> str:
        expires, signature = sim.sign_download(bucket_key, object_key, minutes, part)
        query: dict[str, Any] = {"Expires": expires, "Signature": signature}
        if part is not None:
            query["part"] = part
        return f"{base_url(request)}{SIGNED_PREFIX}{bucket_key}/{serialize.q(object_key)}?{urlencode(query)}"

    @app.get("/oss/v2/buckets/{bucket_key}/objects/{object_key:path}/signeds3download")
    def signeds3download(request: Request, bucket_key: str, object_key: str,
                         _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        raw_minutes = request.query_params.get("minutesExpiration", "2")
        try:
            minutes = int(raw_minutes)
        except ValueError:
            minutes = 0
        if not 1 <= minutes <= 60:
            raise OSSError("minutesExpiration must be an integer between 1 and 60.", 400)
        v = account.stored_object(object_key) if bucket_key == BUCKET else None
        if v is None:
            raise OSSError(f"Object doesn't exist: {bucket_key}/{object_key}", 404)
        status = sim.download_statuses.get(object_key, "complete")
        body: dict[str, Any] = {"status": status, "params": {}, "size": v.size}
        if status == CHUNKED:  # one signed URL per byte range of an unmerged upload; no sha1
            step = max(1, sim.chunk_size)
            parts = [f"{a}-{min(a + step, v.size) - 1}" for a in range(0, v.size, step)] or ["0--1"]
            body["urls"] = {p: signed_url(request, bucket_key, object_key, minutes, p) for p in parts}
        else:
            body["url"] = signed_url(request, bucket_key, object_key, minutes)
            # A fallback (OSS) URL comes without a digest, and Autodesk gives sha1 "only when
            # available": huge objects go without, so signing stays instant.
            if status != FALLBACK and v.size <= SHA1_MAX_SIZE:
                body["sha1"] = account.content_sha1(v.content_key, v.size)
        return JSONResponse(body)

    @app.get(SIGNED_PREFIX + "{bucket_key}/{object_key:path}")
    def signed_download(request: Request, bucket_key: str, object_key: str) -> Response:
        params = request.query_params
        part = params.get("part")
        v = sim.check_download(bucket_key, object_key, params.get("Expires", ""), params.get("Signature", ""), part)
        size = v.size
        etag = (account.content_sha1(v.content_key, size) if size <= SHA1_MAX_SIZE
                else hashlib.md5(v.id.encode()).hexdigest())
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{etag}"'}
        if part is not None:
            first, _, last = part.partition("-")
            start, end, status = int(first), int(last), 200
        else:
            span = _range(request.headers.get("range"), size) if sim.honor_range else None
            if span is None:
                start, end, status = 0, size - 1, 200
            elif span == "unsatisfiable":
                return Response(b"", 416, headers={"Content-Range": f"bytes */{size}"})
            else:
                (start, end), status = span, 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(max(0, end - start + 1))
        sim.traffic.add_download()
        pieces = account.iter_content(v.content_key, size, start, end)
        return StreamingResponse(_counted(sim, pieces), status, headers=headers, media_type=v.mime_type)
