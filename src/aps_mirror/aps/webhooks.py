"""Typed calls to APS's Webhooks API for the Data Management system: hooks and secret tokens.

Every request goes through the transport (retries, rate budget per class, call counting).
Hooks live in a region's data center (`x-ads-region`, US by default): a hub's hooks are
created, listed and given the secret in the hub's region. Secrets travel in request bodies
only, never in a URL, a log line or an error text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qs, quote, urlsplit

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.parsing import format_timestamp, loads_json, parse_timestamp
from aps_mirror.errors import ApiError

SYSTEM = "data"  # Data Management
DEFAULT_REGION = "US"
ACTIVE_STATUSES = ("active", "reactivated")  # "reactivated": active again, no event since
HOOK_SCOPES = ("data:read", "data:write")  # what creating, changing and deleting hooks needs


class HookExists(ApiError):
    """409 on a creation: hooks for this event, scope and callback URL already exist."""


@dataclass(frozen=True)
class Hook:
    """One webhook: one event of one system on one scope, calling one URL."""

    hook_id: str
    event: str
    system: str
    callback_url: str
    status: str  # active | inactive | reactivated
    folder: str | None  # scope.folder: the folder URN whose subtree is watched
    hook_attribute: dict[str, Any] = field(default_factory=dict)
    auto_reactivate: bool = False
    expiry: datetime | None = None  # None: never expires
    created: datetime | None = None
    last_updated: datetime | None = None
    created_by: str | None = None
    region: str = DEFAULT_REGION  # the data center it was listed in

    @classmethod
    def from_json(cls, body: Mapping[str, Any], region: str = DEFAULT_REGION) -> Hook:
        scope = body.get("scope") or {}
        attribute = body.get("hookAttribute")
        return cls(
            hook_id=str(body["hookId"]),
            event=str(body.get("event") or ""),
            system=str(body.get("system") or SYSTEM),
            callback_url=str(body.get("callbackUrl") or ""),
            status=str(body.get("status") or "active"),
            folder=scope.get("folder") if isinstance(scope, dict) else None,
            hook_attribute=dict(attribute) if isinstance(attribute, dict) else {},
            auto_reactivate=body.get("autoReactivateHook") in (True, "true"),
            expiry=_timestamp(body.get("hookExpiry")),
            created=_timestamp(body.get("createdDate")),
            last_updated=_timestamp(body.get("lastUpdatedDate")),
            created_by=body.get("createdBy"),
            region=region,
        )

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def expired(self, now: datetime) -> bool:
        return self.expiry is not None and self.expiry <= now

    @property
    def last_change(self) -> datetime | None:
        return self.last_updated or self.created


class ApsWebhooks:
    """Creates, lists, changes and deletes Data Management hooks, and sets their secret token."""

    def __init__(self, client: ApsClient, system: str = SYSTEM) -> None:
        self.transport = client.transport
        self.system = system

    # -- hooks ------------------------------------------------------------------------------
    def create_hooks(self, folder: str, callback_url: str, *, hook_attribute: Mapping[str, Any],
                     auto_reactivate: bool = True, expiry: datetime | None = None,
                     hub_id: str | None = None, project_id: str | None = None,
                     event: str | None = None, region: str | None = None) -> list[Hook]:
        """Hooks on `folder` for every event of the system at once (`event` None) or for one
        event. HookExists when they exist already (409). The answer of a one-event creation
        carries no hook; it is listed again by whoever needs it."""
        body: dict[str, Any] = {"callbackUrl": callback_url, "scope": {"folder": folder},
                                "hookAttribute": dict(hook_attribute), "autoReactivateHook": auto_reactivate}
        if expiry is not None:
            body["hookExpiry"] = format_timestamp(expiry)
        # Hints for a user in many projects (Autodesk resolves the folder faster).
        if hub_id:
            body["hubId"] = hub_id
        if project_id:
            body["projectId"] = project_id
        path = f"/webhooks/v1/systems/{_seg(self.system)}" + (f"/events/{_seg(event)}" if event else "") + "/hooks"
        try:
            response = self.transport.request("POST", path, json=body, headers=_region_header(region))
        except ApiError as exc:
            if exc.status == 409:
                raise HookExists(str(exc), status=409, code=exc.code, endpoint=exc.endpoint,
                                 request_id=exc.request_id) from None
            raise
        answer = _json_or_empty(response.content)
        hooks = answer.get("hooks") if isinstance(answer, dict) else None
        return [Hook.from_json(h, _region(region)) for h in hooks or [] if isinstance(h, dict) and h.get("hookId")]

    def hooks(self, *, region: str | None = None, status: str | None = None) -> Iterator[Hook]:
        """Every hook of the system the token may see in `region`, across pages."""
        path = f"/webhooks/v1/systems/{_seg(self.system)}/hooks"
        params: dict[str, str] = {"status": status} if status else {}
        while True:
            response = self.transport.request("GET", path, params=params or None, headers=_region_header(region))
            body = _json_or_empty(response.content)  # 204: no hooks at all
            for entry in (body.get("data") or []) if isinstance(body, dict) else []:
                if isinstance(entry, dict) and entry.get("hookId"):
                    yield Hook.from_json(entry, _region(region))
            page_state = _page_state(body)
            if not page_state or page_state == params.get("pageState"):
                return
            params = {**params, "pageState": page_state}

    def update_hook(self, hook: Hook, changes: Mapping[str, Any]) -> None:
        """PATCH a hook: status, autoReactivateHook, hookAttribute, hookExpiry, filter, token."""
        self.transport.request("PATCH", self._hook_path(hook), json=dict(changes),
                               headers=_region_header(hook.region))

    def reactivate(self, hook: Hook) -> None:
        self.update_hook(hook, {"status": "active"})

    def delete_hook(self, hook: Hook) -> bool:
        """Delete a hook; False when it was already gone (404)."""
        try:
            self.transport.request("DELETE", self._hook_path(hook), headers=_region_header(hook.region))
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _hook_path(self, hook: Hook) -> str:
        return (f"/webhooks/v1/systems/{_seg(hook.system or self.system)}/events/{_seg(hook.event)}"
                f"/hooks/{_seg(hook.hook_id)}")

    # -- the secret token (all hooks of the app, or of the user with a 3-legged token) -------
    def create_token(self, secret: str, *, region: str | None = None) -> None:
        """POST the secret; ApiError 400 when one is set already (then `update_token`)."""
        self.transport.request("POST", "/webhooks/v1/tokens", json={"token": secret},
                               headers=_region_header(region))

    def update_token(self, secret: str, *, region: str | None = None) -> None:
        """Replace the secret (Autodesk takes up to 10 minutes to apply it)."""
        self.transport.request("PUT", "/webhooks/v1/tokens/@me", json={"token": secret},
                               headers=_region_header(region))

    def delete_token(self, *, region: str | None = None) -> None:
        self.transport.request("DELETE", "/webhooks/v1/tokens/@me", headers=_region_header(region))

    def set_token(self, secret: str, *, region: str | None = None) -> str:
        """Make `secret` the token: POST, or PUT when one exists. 'created' or 'updated'."""
        try:
            self.create_token(secret, region=region)
            return "created"
        except ApiError as exc:
            if exc.status != 400:  # 400: "Secret token already exists"
                raise
        self.update_token(secret, region=region)
        return "updated"


def _seg(value: str) -> str:
    return quote(value, safe="")


def _region(region: str | None) -> str:
    return (region or DEFAULT_REGION).upper()


def _region_header(region: str | None) -> dict[str, str] | None:
    """The default data center takes no header (US)."""
    return None if _region(region) == DEFAULT_REGION else {"x-ads-region": _region(region)}


def _json_or_empty(content: bytes) -> Any:
    if not content or not content.strip():
        return {}
    try:
        return loads_json(content)
    except ValueError:
        raise ApiError("APS answered a webhooks request with a body that is not JSON; this is usually "
                       "transient, run again.", status=502, endpoint="webhooks") from None


def _page_state(body: Any) -> str | None:
    """The next page's `pageState`: `links.next` is a relative link (`/hooks?pageState=...`)
    or the bare state; either way the state is sent to the same path."""
    if not isinstance(body, dict):
        return None
    link = (body.get("links") or {}).get("next")
    if isinstance(link, dict):
        link = link.get("href")
    if not link or not isinstance(link, str):
        return None
    if "pageState=" in link:
        values = parse_qs(urlsplit(link).query).get("pageState")
        return values[0] if values else None
    return link


def _timestamp(value: Any) -> datetime | None:
    """Webhooks write `2017-09-14T17:04:10.444+0000`; Data Management's parser takes it."""
    if not value or not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
