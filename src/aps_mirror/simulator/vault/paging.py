"""Cursor paging as the Data API does it: ``limit`` and an opaque ``cursorState`` in, and
``pagination {limit, totalResults, indexingStatus, nextUrl}`` out, ``nextUrl`` server-relative
and absent on the last page.

A cursor is tied to the query it came from (path, parameters, POST body): replaying it with
other parameters is a 400, so a client that drops a filter while paging finds out.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from .errors import VaultBadRequest

if TYPE_CHECKING:  # the facade imports this module; only the HTTP server needs fastapi
    from fastapi import Request

DEFAULT_LIMIT = 100
INDEXING_COMPLETE = "IndexingComplete"
NOT_APPLICABLE = "NA"
INDEXING_STATUSES = (INDEXING_COMPLETE, "IndexingProperties", "IndexingContent", NOT_APPLICABLE)
T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int
    fingerprint: str


def _fingerprint(request: Request, body: bytes) -> str:
    params = sorted((k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "cursorState"))
    raw = repr((request.url.path, params)).encode() + b"|" + body
    return hashlib.sha1(raw).hexdigest()[:16]


def page_request(request: Request, max_limit: int, body: bytes = b"") -> PageRequest:
    """The applied limit (clamped to the admin's page size) and the cursor's offset."""
    params = request.query_params
    raw_limit = params.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw_limit in (None, "") else int(str(raw_limit))
    except ValueError:
        raise VaultBadRequest(f"limit must be an integer: {raw_limit!r}.") from None
    if limit < 1:
        raise VaultBadRequest("limit must be 1 or more.")
    fingerprint = _fingerprint(request, body)
    offset = 0
    cursor = params.get("cursorState")
    if cursor:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            raw_offset, _, given = text.partition(":")
            offset = int(raw_offset)
        except ValueError:
            raise VaultBadRequest("The cursorState is not valid.") from None
        if given != fingerprint or offset < 0:
            raise VaultBadRequest("The cursorState belongs to another query.")
    return PageRequest(min(limit, max_limit), offset, fingerprint)


def paginate(request: Request, page: PageRequest, items: Sequence[T],
             indexing_status: str = NOT_APPLICABLE) -> tuple[Sequence[T], dict[str, Any]]:
    """This page's items and the ``pagination`` object."""
    chunk = items[page.offset:page.offset + page.limit]
    pagination: dict[str, Any] = {"limit": page.limit, "totalResults": len(items), "indexingStatus": indexing_status}
    following = page.offset + page.limit
    if following < len(items):
        cursor = base64.urlsafe_b64encode(f"{following}:{page.fingerprint}".encode()).decode().rstrip("=")
        kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "cursorState")]
        query = urlencode([("limit", str(page.limit)), *kept, ("cursorState", cursor)])
        pagination["nextUrl"] = f"{request.url.path}?{query}"
    return chunk, pagination
