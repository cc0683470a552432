"""Autodesk's webhook callbacks: `POST /aps-mirror/webhooks/dm`, one live-asset event per delivery.

Autodesk cannot sign in to Airflow, so the signature is the authentication. The body names its
mirror and connection in `hook.hookAttribute` (set by aps-mirror when it made the hook); that
`autodesk` connection's extra holds the secret; `x-adsk-signature: sha1hash=<hex HMAC-SHA1 of
the raw body>` must match the current secret (`webhook_secret`), or the previous one
(`webhook_secret_previous`) for 15 minutes after `webhook_secret_changed_at`, since Autodesk
takes up to 10 to apply a new one. The connection is read on every delivery: a rotation counts
at once.

Every refusal a forger can cause is the same 401 with the same body, whichever check failed
(unsigned, malformed, forged, unknown connection, no secret); the reason goes to the server's
log only. A correctly signed delivery whose id was already accepted is a replay: the same 401,
and nothing recorded or started. Autodesk itself re-sends only a delivery that got no 2xx, and
an accepted one was answered 200 within milliseconds, so only a lost answer makes Autodesk's own
re-send meet this 401: the event is already recorded, and the hook's `autoReactivateHook` and
the nightly `ensure` undo a deactivation. A correctly signed delivery for a mirror whose live
DAG is not in the database gets 503: Autodesk retries it for 48 hours, so events sent before
the DAG is parsed are not lost, and a hook whose mirror is gone fails visibly.

The request does nothing slow: no sync, no call out, only the metadata database (read the
connection, record the event). The live DAG scheduled on the asset does the work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from aps_mirror.airflow_provider.connections import get_connection_fields, mask
from aps_mirror.airflow_provider.ui.webhook_events import DuplicateDelivery, NoLiveAsset, record_delivery
from aps_mirror.errors import ConfigError

log = logging.getLogger(__name__)
router = APIRouter()

MAX_BODY_BYTES = 256 * 1024  # Autodesk's payloads are a few KiB
PREVIOUS_SECRET_GRACE = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=1)  # a changed_at slightly ahead of this server's clock
SECRET_KEY, PREVIOUS_KEY, CHANGED_AT_KEY = "webhook_secret", "webhook_secret_previous", "webhook_secret_changed_at"

_SIGNATURE = re.compile(r"sha1hash=([0-9a-fA-F]{40})")
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,250}")  # DAG and connection ids
_DELIVERY_ID = re.compile(r"[!-~]{1,200}")  # printable ASCII, no spaces: safe in logs and queries
_MAX_FIELD = 1000  # an extra value longer than this is not a URN or id: left out


class Refused(Exception):
    """A delivery not accepted; `reason` is for the server's log only, never the response."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Delivery:
    mirror: str
    conn_id: str
    extra: dict[str, Any]


@router.post("/webhooks/dm")
async def receive_dm_event(request: Request) -> Response:
    delivery_id = request.headers.get("x-adsk-delivery-id")
    shown = repr(delivery_id[:100]) if delivery_id else "without an id"  # a header is untrusted text
    body = await _capped_body(request)
    if body is None:
        log.warning("Refused an Autodesk delivery %s: body over %d bytes", shown, MAX_BODY_BYTES)
        return JSONResponse({"detail": "Payload too large."}, 413)
    try:
        delivery = await run_in_threadpool(accept, body, request.headers.get("x-adsk-signature"),
                                           delivery_id, datetime.now(timezone.utc))
    except Refused as refusal:
        log.warning("Refused an Autodesk delivery %s: %s", shown, refusal.reason)
        if refusal.status == 503:
            return JSONResponse({"detail": "Not ready for this hook's events; retry later."}, 503,
                                headers={"Retry-After": "600"})
        return JSONResponse({"detail": "Delivery refused."}, 401)
    extra = delivery.extra
    log.info("Accepted Autodesk delivery %s for mirror %s: %s in project %s", extra["delivery_id"],
             delivery.mirror, extra.get("event"), extra.get("project_id"))
    return JSONResponse({"detail": "Accepted."}, 200)


def accept(body: bytes, signature: str | None, delivery_id: str | None, now: datetime) -> Delivery:
    """Verify one delivery and record it; raise Refused when it is not accepted."""
    if not delivery_id or not _DELIVERY_ID.fullmatch(delivery_id):
        raise Refused("no usable x-adsk-delivery-id header")
    given = _SIGNATURE.fullmatch((signature or "").strip())
    if given is None:
        raise Refused("missing or malformed x-adsk-signature")
    document = _json_object(body)
    mirror, conn_id = _hook_target(document)
    _check_signature(body, given.group(1).lower(), conn_id, now)
    extra = event_extra(document, delivery_id, now)
    try:
        record_delivery(mirror, extra, now)
    except DuplicateDelivery:
        raise Refused(f"a replay: delivery {delivery_id} was already accepted for mirror {mirror!r}") from None
    except NoLiveAsset:
        raise Refused(f"mirror {mirror!r} has no live asset in the database: is its live DAG deployed "
                      "and parsed?", 503) from None
    return Delivery(mirror, conn_id, extra)


def _check_signature(body: bytes, signature_hex: str, conn_id: str, now: datetime) -> None:
    """Refuse unless the body is signed with an acceptable secret of `conn_id` (the secrets live
    in this frame only: none is a local of the frames that go on to write the database)."""
    secrets = acceptable_secrets(conn_id, now)
    if not secrets:
        raise Refused(f"connection {conn_id!r} is not an autodesk connection with a webhook_secret")
    if not signed_by_one_of(body, signature_hex, secrets):
        raise Refused(f"signature matches no acceptable secret of connection {conn_id!r}")


def signed_by_one_of(body: bytes, signature_hex: str, secrets: list[str]) -> bool:
    """True when `signature_hex` is the HMAC-SHA1 of `body` under one of `secrets`; every secret
    is compared, in constant time, so the timing does not tell which one matched."""
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        matched |= hmac.compare_digest(expected, signature_hex)
    return matched


def acceptable_secrets(conn_id: str, now: datetime) -> list[str]:
    """The current webhook secret of `autodesk` connection `conn_id`, and the previous one while
    its rotation is younger than PREVIOUS_SECRET_GRACE; none for an unknown or other connection."""
    try:
        fields = get_connection_fields(conn_id)
    except ConfigError as exc:
        raise Refused(f"connection {conn_id!r} cannot be read: {exc}") from None
    if fields is None or fields.conn_type != "autodesk":
        return []
    extra = fields.extra
    current, previous = extra.get(SECRET_KEY), extra.get(PREVIOUS_KEY)
    secrets = [current] if isinstance(current, str) and current else []
    if isinstance(previous, str) and previous and _recent(extra.get(CHANGED_AT_KEY), now):
        secrets.append(previous)
    mask(*secrets)
    return secrets


def _recent(changed_at: Any, now: datetime) -> bool:
    """True while a rotation at `changed_at` (ISO 8601, UTC when no offset) is in its grace period;
    an unreadable date accepts only the current secret."""
    try:
        changed = datetime.fromisoformat(str(changed_at).replace("Z", "+00:00"))
    except ValueError:
        return False
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=timezone.utc)
    return now - PREVIOUS_SECRET_GRACE < changed <= now + CLOCK_SKEW


def event_extra(document: dict[str, Any], delivery_id: str, now: datetime) -> dict[str, Any]:
    """What the live DAG needs to know of an event, from the callback's fields (never the body
    itself): delivery_id, event, hub_id, project_id, folder_urn, item_urn, version_urn,
    version_number, received_at; a field the payload does not carry is left out."""
    hook, payload = _object(document.get("hook")), _object(document.get("payload"))
    event = _text(hook.get("event"))
    resource = _text(document.get("resourceUrn"))
    version_event = bool(event and event.startswith("dm.version."))
    fields = {
        "delivery_id": delivery_id,
        "event": event,
        "hub_id": _text(payload.get("hubId")) or _text(payload.get("tenant")),  # DM calls the account "tenant"
        "project_id": _text(payload.get("projectId")) or _text(payload.get("project")),
        "folder_urn": _text(payload.get("parentFolderUrn")) or (
            resource if event and event.startswith("dm.folder.") else None),
        "item_urn": _text(payload.get("lineageUrn")),
        "version_urn": (resource or _text(payload.get("source"))) if version_event else None,
        "version_number": _version_number(payload.get("version")),
        "received_at": now.isoformat(),
    }
    return {key: value for key, value in fields.items() if value is not None}


async def _capped_body(request: Request) -> bytes | None:
    """The raw body (the signature covers its exact bytes), or None when over MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused("body is not JSON") from None
    if not isinstance(document, dict):
        raise Refused("body is not a JSON object")
    return document


def _hook_target(document: dict[str, Any]) -> tuple[str, str]:
    """(mirror, conn_id) from `hook.hookAttribute`, as aps-mirror set them when creating the hook."""
    attributes = _object(_object(document.get("hook")).get("hookAttribute"))
    mirror, conn_id = attributes.get("aps_mirror"), attributes.get("conn_id")
    if not (isinstance(mirror, str) and _NAME.fullmatch(mirror)
            and isinstance(conn_id, str) and _NAME.fullmatch(conn_id)):
        raise Refused("hook.hookAttribute names no aps_mirror and conn_id")
    return mirror, conn_id


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_FIELD else None


def _version_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return None
