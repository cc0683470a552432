"""HTTP helpers shared by the route modules: error envelopes, paging, links, auth dependencies."""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from aps_mirror.aps.endpoints import classify

from .errors import (AuthorizePageError, BadInput, DataManagementError, GatewayError, NoPrivilege, OAuthError,
                     OSSError, RateLimited, S3Error, SimError, WebhooksError)
from .oauth import AccessToken
from .sim import Simulator

JSONAPI_TYPE = "application/vnd.api+json"
MORE_INFO = "https://aps.autodesk.com/en/docs/oauth/v2/developers_guide/error_handling/"
MAX_PAGE = 200
SIGNED_PREFIX = "/_sim/s3/"


def render_error(exc: SimError) -> Response:
    """The one place where errors become HTTP, in the envelope of the service that raised them."""
    if isinstance(exc, DataManagementError):
        body: dict[str, Any] = {"jsonapi": {"version": "1.0"},
                                "errors": [{"id": str(uuid.uuid4()), "status": str(exc.status), "code": exc.code,
                                            "title": exc.title, "detail": exc.message}]}
        return JSONResponse(body, exc.status, media_type=JSONAPI_TYPE)
    if isinstance(exc, GatewayError):
        body = {"developerMessage": exc.message, "userMessage": "", "errorCode": exc.error_code,
                "more info": MORE_INFO}
        if exc.status == 429:
            body = {"developerMessage": exc.message}
        return JSONResponse(body, exc.status, headers=exc.headers)
    if isinstance(exc, OAuthError):
        return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)
    if isinstance(exc, AuthorizePageError):
        return HTMLResponse(page("Authorization error", f"<p class='error'>{html.escape(exc.message)}</p>"),
                            exc.status)
    if isinstance(exc, S3Error):
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{exc.code}</Code>"
               f"<Message>{html.escape(exc.message)}</Message></Error>")
        return Response(xml, exc.status, media_type="application/xml")
    if isinstance(exc, OSSError):
        return JSONResponse({"reason": exc.message}, exc.status)
    if isinstance(exc, WebhooksError):
        return JSONResponse({"id": str(uuid.uuid4()), "status": exc.status, "code": exc.code,
                             "detail": [exc.message]}, exc.status)
    return JSONResponse({"developerMessage": exc.message}, exc.status)


def page(title: str, inner: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{inner}</body></html>")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def self_href(request: Request) -> str:
    return str(request.url)


def api(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status, media_type=JSONAPI_TYPE)


def paging(request: Request) -> tuple[int, int]:
    """``page[number]`` (from 0) and ``page[limit]`` (1..200, default 200; more is a 400)."""
    params = request.query_params
    try:
        number = int(params.get("page[number]", "0"))
        limit = int(params.get("page[limit]", str(MAX_PAGE)))
    except ValueError:
        raise BadInput("page[number] and page[limit] must be integers.") from None
    if number < 0:
        raise BadInput("page[number] must be 0 or more.")
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"The value of page[limit] must be between 1 and {MAX_PAGE}.")
    return number, limit


def page_links(request: Request, number: int, has_next: bool) -> dict[str, Any]:
    """``self`` always; ``first``/``prev``/``next`` when paginated (next only if a page follows)."""
    base_params = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page[number]"]
    url = str(request.url.replace(query=""))

    def at(n: int) -> dict[str, str]:
        return {"href": f"{url}?{urlencode(base_params + [('page[number]', str(n))])}"}

    links: dict[str, Any] = {"self": {"href": self_href(request)}}
    if number > 0:
        links["first"] = at(0)
        links["prev"] = at(number - 1)
    if has_next:
        links["next"] = at(number + 1)
    return links


def csv(raw: str | None) -> set[str]:
    return {part.strip() for part in (raw or "").split(",") if part.strip()}


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


# ---- attribute filters: filter[attr]=v1,v2 and filter[attr]-ge=v (also -gt, -le, -lt, -eq, -ne)
OPERATORS = ("eq", "ne", "ge", "gt", "le", "lt", "contains", "starts", "ends")
DATE_ATTRIBUTES = {"createTime", "lastModifiedTime", "lastModifiedTimeRollup"}


def parse_time(raw: str) -> float:
    """RFC 3339-ish: ``2024-01-01T00:00:00[.fffffff]Z``, a ``+00:00`` offset or none (UTC)."""
    text = raw.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # trim fractions to microseconds (Autodesk sends up to 7 digits)
        digits = "".join(ch for ch in rest if ch.isdigit())
        rest = digits[:6] + rest[len(digits):]
        text = f"{head}.{rest}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"Invalid date-time {raw!r} in a filter.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


Filter = tuple[str, str, list[str]]  # (attribute, operator, values)


def attribute_filters(request: Request, skip: tuple[str, ...] = ("type", "extension.type")) -> list[Filter]:
    """Every ``filter[...]`` parameter except those in ``skip``."""
    found: list[Filter] = []
    for key, value in request.query_params.multi_items():
        if not key.startswith("filter["):
            continue
        name, _, tail = key[len("filter["):].partition("]")
        if name in skip:
            continue
        op = tail.removeprefix("-") or "eq"
        if op not in OPERATORS:
            raise BadInput(f"Unknown filter operator -{op}.")
        found.append((name, op, [v for v in value.split(",") if v] if op in ("eq", "ne") else [value]))
    return found


def matches(attributes: dict[str, Any], filters: list[Filter]) -> bool:
    """True when the (serialised) attributes pass every filter; a missing attribute fails."""
    for name, op, values in filters:
        have = attributes.get(name)
        if have is None:
            return False
        if name in DATE_ATTRIBUTES:
            left: Any = parse_time(str(have))
            rights: list[Any] = [parse_time(v) for v in values]
        elif isinstance(have, (int, float)) and not isinstance(have, bool):
            left = have
            try:
                rights = [float(v) for v in values]
            except ValueError:
                return False
        else:
            left, rights = str(have), values
        right = rights[0]
        ok = {"eq": lambda: left in rights, "ne": lambda: left not in rights, "ge": lambda: left >= right,
              "gt": lambda: left > right, "le": lambda: left <= right, "lt": lambda: left < right,
              "contains": lambda: str(right) in str(left), "starts": lambda: str(left).startswith(str(right)),
              "ends": lambda: str(left).endswith(str(right))}[op]()
        if not ok:
            return False
    return True


def auth_dependencies(sim: Simulator) -> tuple[Callable[..., AccessToken], Callable[..., AccessToken]]:
    """(bearer, data_reader) FastAPI dependencies bound to ``sim``."""
    return _bearer(sim), scoped(sim, "data:read")


def _bearer(sim: Simulator) -> Callable[..., AccessToken]:
    def bearer(request: Request) -> AccessToken:
        """Authenticate the bearer token, then charge the caller's rate budget."""
        token = sim.oauth.validate(request.headers.get("authorization"))
        charge(sim, request, token.client_id, classify(request.scope["path"], request.method))
        return token

    return bearer


def scoped(sim: Simulator, *scopes: str) -> Callable[..., AccessToken]:
    """A dependency: a valid bearer token that carries every one of ``scopes`` (else 403 AUTH-010)."""
    bearer = _bearer(sim)

    def dependency(request: Request) -> AccessToken:
        token = bearer(request)
        missing = [s for s in scopes if s not in token.scopes]
        if missing:
            raise NoPrivilege(f"The token does not have the {' and '.join(missing)} scope.")
        return token

    return dependency


def charge(sim: Simulator, request: Request, client_id: str, endpoint: str) -> None:
    """Spend one request of the client's budget; remember the figures for X-RateLimit-* headers."""
    try:
        request.state.ratelimit = sim.limiter.take(client_id, endpoint)
    except RateLimited as exc:
        request.state.ratelimit = exc.limit
        raise
