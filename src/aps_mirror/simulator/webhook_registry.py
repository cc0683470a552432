"""The webhooks service's state: hooks (per region and owner), secret tokens whose changes take
effect after a delay, and each hook's status (active -> inactive after failed events -> reactivated).

No HTTP here; every method is thread-safe. Times come from the simulator's clock."""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .changes import Change
from .clock import Clock
from .errors import WebhooksError
from .model import Folder
from .oauth import AccessToken
from .webhook_events import MOVED_OUT
from .webhook_filter import FilterError, Term, parse

SYSTEM = "data"  # the one system simulated: Data Management
DM_EVENTS = ("dm.version.added", "dm.version.modified", "dm.version.deleted", "dm.version.moved",
             "dm.version.moved.out", "dm.version.copied", "dm.version.copied.out", "dm.lineage.reserved",
             "dm.lineage.unreserved", "dm.lineage.updated", "dm.folder.added", "dm.folder.modified",
             "dm.folder.deleted", "dm.folder.purged", "dm.folder.moved", "dm.folder.moved.out",
             "dm.folder.copied", "dm.folder.copied.out", "dm.operation.started", "dm.operation.completed")
REGIONS = ("US", "EMEA", "AUS", "CAN", "DEU", "IND", "JPN", "GBR")
ACTIVE, INACTIVE, REACTIVATED = "active", "inactive", "reactivated"
STATUSES = (ACTIVE, INACTIVE, REACTIVATED)
MAX_ATTRIBUTE_BYTES = 1024  # "Custom metadata which will be less than 1KB in size"
DAY = 86400.0
PATCHABLE = {"status", "autoReactivateHook", "filter", "hookAttribute", "token", "hookExpiry",
             "callbackWithEventPayloadOnly"}


def hook_time(ts: float) -> str:
    """The hooks' timestamp format: ``2017-09-14T06:57:50.597+0000``."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _parse_expiry(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise WebhooksError("hookExpiry must be an ISO 8601 date-time string or null.")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WebhooksError(f"hookExpiry {raw!r} is not an ISO 8601 date-time.") from None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


@dataclass(frozen=True)
class Caller:
    """Who calls: an app (2-legged) or a user (3-legged). Hooks and tokens belong to ``owner``."""

    owner: str
    created_by: str
    creator_type: str  # Application | O2User

    @classmethod
    def of(cls, token: AccessToken) -> Caller:
        if token.three_legged:
            assert token.user_id is not None
            return cls(f"user:{token.user_id}", token.user_id, "O2User")
        return cls(f"app:{token.client_id}", token.client_id, "Application")


class Secret:
    """A signing secret over time: each change takes effect at its own moment, so the old value
    keeps signing until then (Autodesk: "up to 10 minutes")."""

    def __init__(self) -> None:
        self._changes: list[tuple[float, str | None]] = []

    def at(self, now: float) -> str | None:
        """The value signing at ``now`` (None: no secret)."""
        index = bisect.bisect_right(self._changes, now, key=lambda change: change[0])
        return self._changes[index - 1][1] if index else None

    def latest(self) -> str | None:
        """The value once every pending change has taken effect."""
        return self._changes[-1][1] if self._changes else None

    def change(self, value: str | None, effective_at: float) -> None:
        bisect.insort(self._changes, (effective_at, value), key=lambda change: change[0])


@dataclass(eq=False)
class Hook:
    hook_id: str
    event: str
    region: str
    owner: str
    created_by: str
    creator_type: str
    callback_url: str
    folder: Folder  # the scope: events in this folder's subtree
    created: float
    updated: float
    status: str = ACTIVE
    auto_reactivate: bool = False
    expiry: float | None = None
    attribute: dict[str, Any] | None = None
    filter_text: str | None = None
    filter_terms: list[list[Term]] | None = None
    payload_only: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # hubId, projectId, tenant as given
    secret: Secret = field(default_factory=Secret)  # set by PATCH token; else the owner's token
    failed_events: int = 0  # consecutive events whose every attempt failed
    inactive_since: float | None = None
    deactivated_by_failures: bool = False

    def details(self) -> dict[str, Any]:
        """``HookDetails`` as the Webhooks API answers it (never the token)."""
        doc: dict[str, Any] = {
            "hookId": self.hook_id, "tenant": self.extra.get("tenant", self.folder.id),
            "callbackUrl": self.callback_url, "createdBy": self.created_by, "event": self.event,
            "createdDate": hook_time(self.created), "lastUpdatedDate": hook_time(self.updated), "system": SYSTEM,
            "creatorType": self.creator_type, "status": self.status, "autoReactivateHook": self.auto_reactivate,
            "scope": {"folder": self.folder.id}, "urn": f"urn:adsk.webhooks:events.hook:{self.hook_id}",
            "__self__": f"/systems/{SYSTEM}/events/{self.event}/hooks/{self.hook_id}"}
        if self.expiry is not None:
            doc["hookExpiry"] = datetime.fromtimestamp(self.expiry, tz=timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.") + f"{int(self.expiry * 1000) % 1000:03d}Z"
        if self.attribute is not None:
            doc["hookAttribute"] = self.attribute
        if self.filter_text is not None:
            doc["filter"] = self.filter_text
        if self.payload_only:
            doc["callbackWithEventPayloadOnly"] = "true"  # a string in Autodesk's HookDetails schema
        doc.update({k: v for k, v in self.extra.items() if k in ("hubId", "projectId")})
        return doc


class Target(NamedTuple):
    """A hook an event goes to, as it was when the event happened."""

    hook_id: str
    event: str  # the hook's event (dm.version.moved.out for a hook that only saw the source folder)
    url: str
    details: dict[str, Any]
    filter_terms: list[list[Term]] | None
    payload_only: bool
    one_time: bool  # a reactivated hook gets one attempt, no retries


@dataclass
class Settings:
    """The service's timings and thresholds (Autodesk's documented values by default)."""

    failures_to_deactivate: int = 5  # failed events in a row that make a hook inactive
    token_delay: float = 600.0  # seconds (simulator clock) before a secret token change applies
    reactivate_after: float = 7 * DAY  # an auto-reactivating hook comes back after this long inactive
    page_size: int = 200


class HookRegistry:
    """Hooks and tokens; ``new_id`` makes hook ids."""

    def __init__(self, clock: Clock, new_id: Callable[[], str]) -> None:
        self.clock = clock
        self.settings = Settings()
        self._new_id = new_id
        self._lock = threading.RLock()
        self._hooks: dict[str, Hook] = {}  # in creation order
        self._tokens: dict[tuple[str, str], Secret] = {}  # (owner, region) -> the owner's token

    # ---- lifecycle kept lazily: expiry and automatic reactivation happen when anything looks
    def _refresh(self, now: float) -> None:
        for hook in list(self._hooks.values()):
            if hook.expiry is not None and hook.expiry <= now:
                del self._hooks[hook.hook_id]  # "expire and automatically be deleted"
            elif (hook.status == INACTIVE and hook.auto_reactivate and hook.deactivated_by_failures
                  and hook.inactive_since is not None
                  and now - hook.inactive_since >= self.settings.reactivate_after):
                hook.status, hook.updated = REACTIVATED, now

    # ---- hooks
    def create(self, caller: Caller, region: str, folder: Folder, events: tuple[str, ...],
               body: dict[str, Any]) -> list[Hook]:
        """New hooks, one per event; 409 when one of them exists for this scope and callback."""
        url = body.get("callbackUrl")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise WebhooksError("callbackUrl is required: an http(s) URL.")
        options = self._options(body)
        with self._lock:
            now = self.clock.now()
            self._refresh(now)
            taken = [h for h in self._hooks.values() if h.owner == caller.owner and h.region == region
                     and h.folder is folder and h.callback_url == url and h.event in events]
            if taken:
                raise WebhooksError(f"The hook for {taken[0].event} on this scope and callbackUrl already exists "
                                    f"({taken[0].hook_id}).", 409, "CONFLICT_ERROR")
            extra = {k: body[k] for k in ("hubId", "projectId", "tenant") if isinstance(body.get(k), str)}
            hooks = []
            for event in events:
                hook = Hook(self._new_id(), event, region, caller.owner, caller.created_by, caller.creator_type,
                            url, folder, now, now, extra=dict(extra))
                self._apply(hook, options, now)
                self._hooks[hook.hook_id] = hook
                hooks.append(hook)
            return hooks

    @staticmethod
    def _options(body: dict[str, Any], patch: bool = False) -> dict[str, Any]:
        """The settable members of a create or PATCH body, checked (400 on a bad one)."""
        if patch:
            unknown = sorted(set(body) - PATCHABLE)
            if unknown:
                raise WebhooksError(f"Only {', '.join(sorted(PATCHABLE))} can be updated, not {', '.join(unknown)}.")
        options: dict[str, Any] = {}
        if "status" in body:
            if body["status"] not in (ACTIVE, INACTIVE):
                raise WebhooksError("status must be 'active' or 'inactive'.")
            options["status"] = body["status"]
        for name in ("autoReactivateHook", "callbackWithEventPayloadOnly"):
            if name in body:
                if not isinstance(body[name], bool):
                    raise WebhooksError(f"{name} must be true or false.")
                options[name] = body[name]
        if "hookAttribute" in body:
            attribute = body["hookAttribute"]
            if attribute is not None and not isinstance(attribute, dict):
                raise WebhooksError("hookAttribute must be a JSON object.")
            if attribute is not None and len(json.dumps(attribute).encode()) >= MAX_ATTRIBUTE_BYTES:
                raise WebhooksError("hookAttribute must be less than 1KB.")
            options["hookAttribute"] = attribute
        if "filter" in body:
            text = body["filter"]
            if text is not None and not isinstance(text, str):
                raise WebhooksError("filter must be a JsonPath string or null.")
            try:
                options["filter"] = (text, parse(text)) if text else (None, None)
            except FilterError as exc:
                raise WebhooksError(str(exc)) from None
        if "hookExpiry" in body:
            options["hookExpiry"] = _parse_expiry(body["hookExpiry"])
        if "token" in body:
            if body["token"] is not None and not isinstance(body["token"], str):
                raise WebhooksError("token must be a string.")
            options["token"] = body["token"] or None
        return options

    def _apply(self, hook: Hook, options: dict[str, Any], now: float) -> None:
        if "status" in options:
            if options["status"] == ACTIVE:
                hook.status, hook.failed_events, hook.inactive_since = ACTIVE, 0, None
            elif hook.status != INACTIVE:
                hook.status, hook.inactive_since = INACTIVE, now
            hook.deactivated_by_failures = False
        hook.auto_reactivate = options.get("autoReactivateHook", hook.auto_reactivate)
        hook.payload_only = options.get("callbackWithEventPayloadOnly", hook.payload_only)
        if "hookAttribute" in options:
            hook.attribute = options["hookAttribute"]
        if "filter" in options:
            hook.filter_text, hook.filter_terms = options["filter"]
        if "hookExpiry" in options:
            hook.expiry = options["hookExpiry"]
        if "token" in options:
            signing = self._signing_secret(hook, now)
            # The first secret of a hook that signed with nothing applies at once; a change waits.
            hook.secret.change(options["token"], now if signing is None else now + self.settings.token_delay)
        hook.updated = now

    def hooks(self, caller: Caller, region: str, event: str | None = None, status: str | None = None,
              scope_name: str | None = None, scope_value: str | None = None) -> list[Hook]:
        """The caller's hooks in ``region``, in creation order, filtered as the list operations allow."""
        with self._lock:
            self._refresh(self.clock.now())
            found = [h for h in self._hooks.values() if h.owner == caller.owner and h.region == region]
        if event is not None:
            found = [h for h in found if h.event == event]
        if status is not None:
            found = [h for h in found if h.status == status]
        if scope_name is not None:
            found = [h for h in found if scope_name == "folder" and (scope_value is None or h.folder.id == scope_value)]
        return found

    def hook(self, caller: Caller, region: str, event: str, hook_id: str) -> Hook:
        with self._lock:
            self._refresh(self.clock.now())
            hook = self._hooks.get(hook_id)
        if hook is None or hook.owner != caller.owner or hook.region != region or hook.event != event:
            raise WebhooksError(f"The hook {hook_id} for {event} does not exist.", 404, "NOT_FOUND")
        return hook

    def patch(self, hook: Hook, body: dict[str, Any]) -> None:
        options = self._options(body, patch=True)
        with self._lock:
            self._apply(hook, options, self.clock.now())

    def delete(self, hook: Hook) -> None:
        with self._lock:
            self._hooks.pop(hook.hook_id, None)

    def snapshot(self, hook_id: str) -> dict[str, Any] | None:
        """A hook's details by id alone (tests and the control routes)."""
        with self._lock:
            self._refresh(self.clock.now())
            hook = self._hooks.get(hook_id)
            return None if hook is None else {**hook.details(), "failedEvents": hook.failed_events}

    # ---- secret tokens of an app or user (per region, as Autodesk stores them)
    def create_token(self, caller: Caller, region: str, value: str) -> None:
        with self._lock:
            secret = self._tokens.setdefault((caller.owner, region), Secret())
            if secret.latest() is not None:
                raise WebhooksError("The secret token already exists: update it with PUT /tokens/@me.")
            now = self.clock.now()
            secret.change(value, now if secret.at(now) is None else now + self.settings.token_delay)

    def update_token(self, caller: Caller, region: str, value: str | None) -> None:
        """A new value, or None to delete; either applies after ``token_delay``."""
        with self._lock:
            secret = self._tokens.get((caller.owner, region))
            if secret is None or secret.latest() is None:
                raise WebhooksError("There is no secret token: create one with POST /tokens.", 404, "NOT_FOUND")
            secret.change(value, self.clock.now() + self.settings.token_delay)

    def _signing_secret(self, hook: Hook, now: float) -> str | None:
        own = hook.secret.at(now)
        if own is not None:
            return own
        owner = self._tokens.get((hook.owner, hook.region))
        return owner.at(now) if owner is not None else None

    # ---- deliveries
    def targets(self, change: Change) -> list[Target]:
        """The hooks that hear of ``change``: active or reactivated at this moment (events meanwhile
        are lost for good), with the change inside their scope folder's subtree."""
        parent = change.parent
        if parent is None:
            return []
        old = change.old_parent
        moved_out = MOVED_OUT.get(change.event)
        found: list[Target] = []
        with self._lock:
            self._refresh(self.clock.now())
            for hook in self._hooks.values():
                if hook.status == INACTIVE:
                    continue
                inside = parent.is_below(hook.folder)
                left = old is not None and not inside and old.is_below(hook.folder)
                if not ((hook.event == change.event and inside) or (hook.event == moved_out and left)):
                    continue
                found.append(Target(hook.hook_id, hook.event, hook.callback_url, hook.details(), hook.filter_terms,
                                    hook.payload_only, hook.status == REACTIVATED))
        return found

    def signing(self, hook_id: str) -> tuple[str, str | None] | None:
        """(status, secret signing now) of a hook, or None when it is gone."""
        with self._lock:
            now = self.clock.now()
            self._refresh(now)
            hook = self._hooks.get(hook_id)
            return None if hook is None else (hook.status, self._signing_secret(hook, now))

    def settle(self, hook_id: str, delivered: bool, one_time: bool) -> None:
        """An event's delivery ended: delivered, or every attempt failed."""
        with self._lock:
            hook = self._hooks.get(hook_id)
            if hook is None:
                return
            now = self.clock.now()
            if delivered:
                hook.failed_events = 0
                if hook.status == REACTIVATED:
                    hook.status, hook.updated = ACTIVE, now
                return
            hook.failed_events += 1
            if hook.status != INACTIVE and (one_time or hook.failed_events >= self.settings.failures_to_deactivate):
                hook.status, hook.inactive_since, hook.updated = INACTIVE, now, now
                hook.deactivated_by_failures = True
