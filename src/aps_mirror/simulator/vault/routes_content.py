"""File content: ``file-versions/{id}/content`` (Range -> 206, 416 without a body) and ``signedurl``.

A signed URL is the content URL with ``expires`` and ``sig`` added: it needs no Authorization,
honours Range and stops working after ``expirationTime`` (at most 180 s). GUESS: the spec
says neither whether it is absolute (it is server-relative here, like every ``url``), nor
whether it needs Authorization or honours Range. Through the gateway, a response over the
payload quota is its 500: a whole-file GET of a big file fails, Range chunks below it work.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from . import serialize
from .errors import DownloadDenied, VaultBadRequest
from .gateway import payload_too_large
from .service import SIGNED_URL_MAX_SECONDS, VaultService
from .web import caller, respond

UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; None = the whole body (also for
    a header this does not understand, as HTTP allows)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            return UNSATISFIABLE if suffix <= 0 or size == 0 else (max(0, size - suffix), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return UNSATISFIABLE
    return start, min(end, size - 1)


def _disposition(kind: str | None, name: str) -> dict[str, str]:
    if kind is None:
        return {}
    if kind not in ("inline", "attachment"):
        raise VaultBadRequest("contentDisposition must be inline or attachment.", params=["contentDisposition"])
    return {"Content-Disposition": f"{kind}; filename*=UTF-8''{quote(name, safe='')}"}


def register(router: APIRouter, service: VaultService) -> None:
    store = service.store
    traffic = service.traffic

    def counted(pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            traffic.add_bytes(len(piece))
            yield piece

    @router.get("/vaults/{vault_id}/file-versions/{version_id}/content")
    def content(request: Request, vault_id: str, version_id: str) -> Response:
        params = request.query_params
        with service.lock:
            vault = store.vault(vault_id)
            version = store.version(vault, version_id)
            if "sig" in params:
                service.check_signature(vault, version, params.get("expires", ""), params["sig"])
            else:
                viewer = caller(service, request, vault).user
                if not viewer.admin and version.file.hidden_from_non_admins():
                    raise DownloadDenied("You currently do not have permissions to download this file. "
                                         "Contact your admin for support.")
            size, name = version.size, version.file.name
            headers = {"Accept-Ranges": "bytes", **_disposition(params.get("contentDisposition"), name)}
        span = parse_range(request.headers.get("range"), size)
        if span == UNSATISFIABLE:
            return Response(status_code=416, headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes */{size}"})
        if span is None:
            start, end, status = 0, size - 1, 200
        else:
            (start, end), status = span, 206  # type: ignore[misc]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        if service.gateway and length > service.payload_limit:
            raise payload_too_large("response", length, service.payload_limit)
        headers["Content-Length"] = str(length)
        traffic.add_download()
        return StreamingResponse(counted(store.iter_content(version, start, end)), status, headers=headers,
                                 media_type="application/octet-stream")

    @router.get("/vaults/{vault_id}/file-versions/{version_id}/signedurl")
    def signed_url(request: Request, vault_id: str, version_id: str) -> Response:
        raw = request.query_params.get("expirationTime") or str(SIGNED_URL_MAX_SECONDS)
        try:
            seconds = int(raw)
        except ValueError:
            raise VaultBadRequest(f"expirationTime must be an integer, not {raw!r}.") from None
        with service.lock:
            vault = store.vault(vault_id)
            version = store.version(vault, version_id)
            viewer = caller(service, request, vault).user
            if not viewer.admin and version.file.hidden_from_non_admins():
                raise DownloadDenied("You currently do not have permissions to download this file. "
                                     "Contact your admin for support.")
            expires, signature = service.sign(vault, version, seconds)
        query: dict[str, str | int] = {"expires": expires, "sig": signature}
        disposition = request.query_params.get("contentDisposition")
        if disposition:
            query["contentDisposition"] = disposition
        url = f"{serialize.vault_url(vault, 'file-versions', version.id, 'content')}?{urlencode(query)}"
        return respond(service, {"id": version.id, "url": url})
