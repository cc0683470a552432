"""A mirror's webhooks: one active hook set per watched folder of each selected project.

A hook set is what `POST /webhooks/v1/systems/data/hooks` makes: one hook per Data Management
event on one folder (the project's root folder, or each selected top folder), calling the
receiver (`<airflow>/aps-mirror/webhooks/dm`) with `hookAttribute {"aps_mirror": <mirror>,
"conn_id": <connection>}` (how the receiver finds the mirror and the secret) and
`autoReactivateHook` on. The hooks of a mirror are those whose `hookAttribute.aps_mirror`
names it: `ensure_hooks` repairs them (inactive -> reactivated, expired -> recreated, missing
events created, duplicates and hooks to another callback URL deleted) and deletes them on
folders no longer selected, but never while a selected project could not be read.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

from aps_mirror.aps.client import ApsClient, require_scopes
from aps_mirror.aps.models import Hub
from aps_mirror.aps.webhooks import DEFAULT_REGION, HOOK_SCOPES, ApsWebhooks, Hook, HookExists
from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.mirror.selection import select_top_folders
from aps_mirror.mirror.walk import ProjectRef, list_projects
from aps_mirror.mirror.webhook_secret import ExtraWriter, SecretKeeper

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "aps_mirror"
CALLBACK_PATH = "/aps-mirror/webhooks/dm"
MIRROR_KEY, CONN_KEY = "aps_mirror", "conn_id"
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,250}")  # DAG and connection ids, as the receiver takes them
_LOOPBACK_NAMES = ("localhost",)


# -- what the user gives ---------------------------------------------------------------------
def check_callback_url(url: str, label: str = "--callback-url") -> str:
    """The receiver's URL: https (http only on a loopback host, for tests), ending with
    /aps-mirror/webhooks/dm, no query or fragment. A ConfigError in one line otherwise, naming
    the value as the user gave it (`label`: the CLI flag, or the factory's argument)."""
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    host = parts.hostname if parts else None
    if parts is None or not host or parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        raise ConfigError(f"{label} {url!r} is not accepted: give the Airflow URL of the webhook "
                          f"receiver, e.g. https://airflow.example.com{CALLBACK_PATH}.")
    if parts.scheme != "https" and not _is_loopback(host):
        raise ConfigError(f"{label} {url!r} is not accepted: Autodesk must call it over https "
                          f"(http only for a loopback host), e.g. https://{host}{CALLBACK_PATH}.")
    if not parts.path.endswith(CALLBACK_PATH):
        raise ConfigError(f"{label} {url!r} is not accepted: the receiver's path is {CALLBACK_PATH} "
                          f"under the Airflow URL, e.g. {parts.scheme}://{parts.netloc}{CALLBACK_PATH}.")
    return url.strip()


def check_mirror_name(name: str) -> str:
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    raise ConfigError(f"--mirror {name!r} is not accepted: give the mirror's DAG id (letters, digits, "
                      "'_', '.', '-'; at most 250).")


def require_hook_scopes(client: ApsClient) -> None:
    """Hooks are written: refuse at once when the connection does not ask for data:write."""
    require_scopes(client, HOOK_SCOPES, "Managing webhooks")


def _is_loopback(host: str) -> bool:
    if host.casefold() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- which projects ----------------------------------------------------------------------------
class ProjectSelection(Protocol):
    """The hub, project and top folder filters (MirrorConfig has them, so has HookSelection)."""

    hub_filter: tuple[str, ...]
    exclude_hubs: tuple[str, ...]
    project_filter: tuple[str, ...]
    exclude_projects: tuple[str, ...]
    top_folders: tuple[str, ...]


@dataclass(frozen=True)
class HookSelection:
    """The selection options of a mirror without the rest of its MirrorConfig (the CLI's)."""

    hub_filter: tuple[str, ...] = ()
    exclude_hubs: tuple[str, ...] = ()
    project_filter: tuple[str, ...] = ()
    exclude_projects: tuple[str, ...] = ()
    top_folders: tuple[str, ...] = ()


def selected_projects(client: ApsClient, selection: ProjectSelection, *,
                      hubs: list[Hub] | None = None) -> list[ProjectRef]:
    """The projects the mirror's filters select, as the engine lists them."""
    return list_projects(client, selection.project_filter, exclude_projects=selection.exclude_projects,
                         hub_filter=selection.hub_filter, exclude_hubs=selection.exclude_hubs, hubs=hubs)


def hub_regions(hubs: Iterable[Hub]) -> dict[str, str | None]:
    """Hub id -> the region its hooks live in (None: Autodesk's default, US)."""
    return {hub.id: _region(hub.region) for hub in hubs}


# -- reports ---------------------------------------------------------------------------------
@dataclass
class ProjectHooks:
    """What ensure did on one project's folders (or would do, dry run)."""

    hub_name: str
    project_name: str
    project_id: str
    folders: list[dict[str, str]] = field(default_factory=list)  # {"folder": urn, "name": ...}
    sets_created: int = 0  # folders that got a whole new set
    created: int = 0  # hooks made (in new sets, and for missing events)
    reactivated: int = 0
    updated: int = 0  # attribute, auto-reactivation or expiry changed
    recreated: int = 0  # expired hooks replaced
    deleted: int = 0  # duplicates, and hooks to another callback URL
    unchanged: int = 0
    error: str | None = None
    hub_id: str = ""  # the catalog's hooks table keys rows by hub and project

    @property
    def label(self) -> str:
        return f"{self.hub_name} / {self.project_name}"

    @property
    def changed(self) -> bool:
        return bool(self.sets_created or self.created or self.reactivated or self.updated or self.recreated
                    or self.deleted)

    def describe(self, dry_run: bool = False) -> str:
        if self.error:
            return f"{self.label}: FAILED: {self.error}"
        if not self.folders:
            return f"{self.label}: no folder selected, no hooks"
        parts = [f"{n} {what}" for n, what in ((self.created, "hooks created"), (self.reactivated, "reactivated"),
                                               (self.updated, "updated"), (self.recreated, "recreated"),
                                               (self.deleted, "deleted")) if n]
        if self.sets_created:
            parts.insert(0, f"{self.sets_created} new hook set{'s' if self.sets_created > 1 else ''}")
        where = ", ".join(f["name"] for f in self.folders)
        if not parts:
            return f"{self.label} ({where}): {self.unchanged} hooks active, nothing to do"
        return f"{self.label} ({where}): {'would do: ' if dry_run else ''}{', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {"hub": self.hub_name, "project": self.project_name, "project_id": self.project_id,
                "folders": self.folders, "sets_created": self.sets_created, "created": self.created,
                "reactivated": self.reactivated, "updated": self.updated, "recreated": self.recreated, "deleted": self.deleted,
                "unchanged": self.unchanged, "error": self.error}


@dataclass
class EnsureReport:
    mirror: str
    conn_id: str
    callback_url: str
    dry_run: bool = False
    secret: str = ""  # what was done with the secret (never its value): kept, created, rotated, resent
    projects: list[ProjectHooks] = field(default_factory=list)
    stale_deleted: list[dict[str, Any]] = field(default_factory=list)  # hooks on folders no longer selected
    stale_kept: list[dict[str, Any]] = field(default_factory=list)  # kept: a selected project failed
    api_calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(p.error for p in self.projects)

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.projects) or bool(self.stale_deleted) or self.secret not in ("", "kept")

    def to_dict(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "conn_id": self.conn_id, "callback_url": self.callback_url,
                "dry_run": self.dry_run, "ok": self.ok, "changed": self.changed, "secret": self.secret,
                "projects": [p.to_dict() for p in self.projects], "stale_deleted": self.stale_deleted,
                "stale_kept": self.stale_kept, "api_calls": self.api_calls}

    def format_text(self) -> str:
        lines = [p.describe(self.dry_run) for p in self.projects]
        verb = "would delete" if self.dry_run else "deleted"
        stale: dict[str, int] = defaultdict(int)
        for hook in self.stale_deleted:
            stale[str(hook["folder"])] += 1
        lines += [f"{verb} {n} hooks on {folder} (folder no longer selected)" for folder, n in sorted(stale.items())]
        if self.stale_kept:
            lines.append(f"kept {len(self.stale_kept)} hooks on folders no longer selected: a selected project "
                         "could not be read, run again once it can")
        failed = sum(1 for p in self.projects if p.error)
        secret = {"kept": "unchanged", "resent": "given to Autodesk again"}.get(self.secret, self.secret)
        lines.append(f"{'Dry run: ' if self.dry_run else ''}{len(self.projects)} projects, "
                     f"{failed} failed; webhook secret {secret}" + ("" if self.changed else "; nothing changed"))
        return "\n".join(lines)


# -- ensure ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scope:
    folder: str
    name: str  # "root folder" or the top folder's name
    region: str | None


def ensure_hooks(client: ApsClient, projects: Sequence[ProjectRef], *, mirror: str, conn_id: str,
                 callback_url: str, top_folders: Sequence[str] | None = None, secret: SecretKeeper,
                 regions: Mapping[str, str | None] | None = None, dry_run: bool = False,
                 now: datetime | None = None) -> EnsureReport:
    """Make `projects` (selected, e.g. by `selected_projects`) carry exactly one active hook set
    of `mirror` per watched folder, calling `callback_url`, signed with the connection's secret.

    Watched folders: each project's root folder, or with `top_folders` (globs) the top folders
    `select_top_folders` picks. `regions`: hub id -> region (`hub_regions`); listed when None.
    Hooks of `mirror` elsewhere are deleted, unless a project failed (its folders are unknown).
    """
    check_mirror_name(mirror)
    check_callback_url(callback_url)
    require_hook_scopes(client)
    now = now or datetime.now(timezone.utc)
    api = ApsWebhooks(client)
    report = EnsureReport(mirror, conn_id, callback_url, dry_run)
    attribute = {MIRROR_KEY: mirror, CONN_KEY: conn_id}
    with client.transport.counter.tally() as tally:
        regions = regions if regions is not None else hub_regions(client.hubs())
        plan = _watched_folders(client, projects, top_folders, regions, report.projects)
        report.secret = secret.ensure(api, conn_id, {s.region for _p, s in plan} or {None}, dry_run=dry_run)
        listed = _list(api, _listing_regions(regions))
        mine = _by_folder(h for h in listed if h.hook_attribute.get(MIRROR_KEY) == mirror)
        others = _by_folder(h for h in listed if h.hook_attribute.get(MIRROR_KEY) != mirror)
        events = {h.event for hooks in mine.values() for h in hooks}  # a complete set's events
        outcomes = {p.project_id: o for p, o in zip(projects, report.projects)}
        for index, (project, scope) in enumerate(plan, 1):
            outcome = outcomes[project.project_id]
            if outcome.error:
                continue
            try:
                _ensure_folder(api, project, scope, mine.pop((scope.region, scope.folder), []),
                               others.get((scope.region, scope.folder), []), events, outcome,
                               attribute=attribute, callback_url=callback_url, now=now, dry_run=dry_run)
            except ApsMirrorError as exc:
                outcome.error = str(exc)
            log.info("webhooks [%d/%d] %s", index, len(plan), outcome.describe(dry_run))
        stale = [h for hooks in mine.values() for h in hooks]
        if any(p.error for p in report.projects):
            report.stale_kept = [_hook_row(h, "a selected project failed") for h in stale]
        else:
            for hook in stale:
                if not dry_run:
                    api.delete_hook(hook)
                report.stale_deleted.append(_hook_row(hook, "folder no longer selected"))
    report.api_calls = tally.snapshot()
    return report


def ensure_mirror_hooks(client: ApsClient, selection: ProjectSelection, *, mirror: str, conn_id: str,
                        callback_url: str, writer: ExtraWriter | None, rotate_secret: bool = False,
                        dry_run: bool = False) -> EnsureReport:
    """`ensure_hooks` for a mirror's selection (its MirrorConfig, or the CLI's HookSelection):
    its projects, hooks on their root folders or, when the selection names top folders, on
    those; the secret written with `writer` (the Airflow adapter's ConnectionWriter)."""
    hubs = client.hubs()
    projects = selected_projects(client, selection, hubs=hubs)
    return ensure_hooks(client, projects, mirror=mirror, conn_id=conn_id, callback_url=callback_url,
                        top_folders=selection.top_folders or None,
                        secret=SecretKeeper(writer, rotate=rotate_secret), regions=hub_regions(hubs),
                        dry_run=dry_run)


def _watched_folders(client: ApsClient, projects: Sequence[ProjectRef], top_folders: Sequence[str] | None,
                     regions: Mapping[str, str | None], outcomes: list[ProjectHooks]
                     ) -> list[tuple[ProjectRef, _Scope]]:
    """(project, folder) pairs to watch; a project that cannot be read gets its error."""
    plan = []
    for project in projects:
        outcome = ProjectHooks(project.hub_name, project.project_name, project.project_id, hub_id=project.hub_id)
        outcomes.append(outcome)
        try:
            scopes = _scopes(client, project, top_folders, regions.get(project.hub_id))
        except ApsMirrorError as exc:
            outcome.error = str(exc)
            continue
        outcome.folders = [{"folder": s.folder, "name": s.name} for s in scopes]
        plan += [(project, s) for s in scopes]
    return plan


def _scopes(client: ApsClient, project: ProjectRef, top_folders: Sequence[str] | None,
            region: str | None) -> list[_Scope]:
    if not top_folders:
        if not project.root_folder_id:
            raise ConfigError("Autodesk lists no root folder for this project; its hooks cannot be made")
        return [_Scope(project.root_folder_id, "root folder", _region(region))]
    tops = client.top_folders(project.hub_id, project.project_id)
    chosen = select_top_folders(tops, tuple(top_folders), project.hub_type, project.label)
    return [_Scope(f.id, f.name, _region(region)) for f in chosen]


def _ensure_folder(api: ApsWebhooks, project: ProjectRef, scope: _Scope, mine: list[Hook], others: list[Hook],
                   events: set[str], outcome: ProjectHooks, *, attribute: dict[str, str], callback_url: str,
                   now: datetime, dry_run: bool) -> None:
    """One folder: exactly one live hook per event to `callback_url`, active, ours. `events`:
    the events of a complete set (those of the mirror's other sets, and of new ones)."""
    current = [h for h in mine if h.callback_url == callback_url]
    elsewhere = [h for h in mine if h.callback_url != callback_url]  # deleted once the new set stands
    expired = [h for h in current if h.expired(now)]
    keep: dict[str, Hook] = {}
    duplicates: list[Hook] = []
    # Per event the best hook stays: active first, then the latest changed.
    for hook in sorted((h for h in current if not h.expired(now)),
                       key=lambda h: (not h.active, -(h.last_change or now).timestamp(), h.hook_id)):
        if hook.event in keep:
            duplicates.append(hook)
        else:
            keep[hook.event] = hook
    create = dict(project=project, scope=scope, attribute=attribute, callback_url=callback_url, dry_run=dry_run)
    if not keep:  # nothing live here: a new set (after the expired ones are gone)
        for hook in expired:
            _delete(api, hook, dry_run)
        made = _create_set(api, others, **create)
        events.update(made)
        outcome.sets_created += 1
        outcome.recreated += len(expired)
        outcome.created += max(0, len(made) - len(expired))
    else:
        for hook in expired:
            _delete(api, hook, dry_run)
            if hook.event not in keep and _create_event(api, hook.event, **create):
                outcome.recreated += 1
        for event in sorted(events - keep.keys() - {h.event for h in expired}):
            if _create_event(api, event, **create):
                outcome.created += 1
        for hook in keep.values():
            changes = _repairs(hook, attribute)
            if not changes:
                outcome.unchanged += 1
                continue
            if not dry_run:
                api.update_hook(hook, changes)
            if "status" in changes:
                outcome.reactivated += 1
            else:
                outcome.updated += 1
    for hook in duplicates + elsewhere:
        _delete(api, hook, dry_run)
        outcome.deleted += 1


def _repairs(hook: Hook, attribute: dict[str, str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if not hook.active:
        changes["status"] = "active"
    if not hook.auto_reactivate:
        changes["autoReactivateHook"] = True
    if hook.hook_attribute != attribute:
        changes["hookAttribute"] = attribute
    if hook.expiry is not None:
        changes["hookExpiry"] = None  # null: never expires
    return changes


def _create_set(api: ApsWebhooks, others: list[Hook], *, project: ProjectRef, scope: _Scope,
                attribute: dict[str, str], callback_url: str, dry_run: bool) -> set[str]:
    """Hooks for every event on the folder; their events (none in a dry run)."""
    if dry_run:
        return set()
    try:
        made = api.create_hooks(scope.folder, callback_url, hook_attribute=attribute, auto_reactivate=True,
                                hub_id=project.hub_id, project_id=project.project_id, region=scope.region)
    except HookExists:
        raise ConfigError(_conflict(scope, callback_url, others)) from None
    return {h.event for h in made}


def _create_event(api: ApsWebhooks, event: str, *, project: ProjectRef, scope: _Scope,
                  attribute: dict[str, str], callback_url: str, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        api.create_hooks(scope.folder, callback_url, hook_attribute=attribute, auto_reactivate=True,
                         hub_id=project.hub_id, project_id=project.project_id, event=event, region=scope.region)
    except HookExists:
        log.warning("%s: a hook for %s on %s exists that aps-mirror cannot see; left as it is",
                    project.label, event, scope.name)
        return False
    return True


def _conflict(scope: _Scope, callback_url: str, others: list[Hook]) -> str:
    """Why Autodesk refused to make a set (409): hooks to the same URL on the same folder."""
    same = [h for h in others if h.callback_url == callback_url]
    owners = sorted({str(h.hook_attribute[MIRROR_KEY]) for h in same if h.hook_attribute.get(MIRROR_KEY)})
    if owners:
        return (f"the hooks of folder {scope.name} to this callback URL belong to mirror {', '.join(owners)} "
                "(Autodesk keeps one set per folder and URL): delete them with `aps-mirror webhooks delete "
                f"--mirror {owners[0]}` or give this mirror another callback URL")
    if same:
        return (f"folder {scope.name} has hooks to this callback URL that aps-mirror did not make (no "
                f"hookAttribute.aps_mirror; ids {', '.join(sorted(h.hook_id for h in same)[:3])}...): delete them, "
                "or use another callback URL")
    return (f"Autodesk says hooks of folder {scope.name} to this callback URL exist but does not list them to "
            "this connection (another app or user made them): delete them there, or use another callback URL")


def _delete(api: ApsWebhooks, hook: Hook, dry_run: bool) -> None:
    if not dry_run:
        api.delete_hook(hook)


# -- list ------------------------------------------------------------------------------------
@dataclass
class ProjectHookState:
    """A project's hooks of one mirror, on the folders ensure would watch."""

    hub_name: str
    project_name: str
    project_id: str
    folders: list[dict[str, str]]
    state: str  # active | inactive | expired | partial | missing | other-callback | error
    hooks: int = 0
    inactive: int = 0
    expired: int = 0
    callback_urls: list[str] = field(default_factory=list)
    last_change: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"hub": self.hub_name, "project": self.project_name, "project_id": self.project_id,
                "folders": self.folders, "state": self.state, "hooks": self.hooks, "inactive": self.inactive,
                "expired": self.expired, "callback_urls": self.callback_urls, "last_change": self.last_change,
                "error": self.error}


@dataclass
class HookListing:
    mirror: str
    projects: list[ProjectHookState] = field(default_factory=list)
    unselected: list[dict[str, Any]] = field(default_factory=list)  # the mirror's hooks elsewhere

    def to_dict(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "projects": [p.to_dict() for p in self.projects],
                "unselected": self.unselected}

    def format_text(self) -> str:
        lines = []
        for p in self.projects:
            detail = p.error or (f"{p.hooks} hooks" + (f", {p.inactive} inactive" if p.inactive else "")
                                 + (f", {p.expired} expired" if p.expired else "")
                                 + (f" -> {', '.join(p.callback_urls)}" if p.callback_urls else "")
                                 + (f", last change {p.last_change}" if p.last_change else ""))
            lines.append(f"{p.hub_name} / {p.project_name}: {p.state} ({detail})")
        for h in self.unselected:
            lines.append(f"not selected: {h['event']} on {h['folder']} -> {h['callback_url']} ({h['status']})")
        return "\n".join(lines) or f"no selected project and no hook of mirror {self.mirror}"


def list_hooks(client: ApsClient, projects: Sequence[ProjectRef], *, mirror: str,
               top_folders: Sequence[str] | None = None, callback_url: str | None = None,
               regions: Mapping[str, str | None] | None = None, now: datetime | None = None) -> HookListing:
    """Per selected project: the state of `mirror`'s hooks on the folders ensure would watch
    (their callback URLs, when they last changed); and the mirror's hooks anywhere else."""
    check_mirror_name(mirror)
    now = now or datetime.now(timezone.utc)
    api = ApsWebhooks(client)
    regions = regions if regions is not None else hub_regions(client.hubs())
    outcomes: list[ProjectHooks] = []
    plan = _watched_folders(client, projects, top_folders, regions, outcomes)
    mine = _by_folder(h for h in _list(api, _listing_regions(regions)) if h.hook_attribute.get(MIRROR_KEY) == mirror)
    events = {h.event for hooks in mine.values() for h in hooks}
    listing = HookListing(mirror)
    for project, outcome in zip(projects, outcomes):
        scopes = [s for p, s in plan if p is project]
        state = ProjectHookState(outcome.hub_name, outcome.project_name, outcome.project_id, outcome.folders,
                                 "error" if outcome.error else "missing", error=outcome.error)
        if not outcome.error:
            per_folder = [mine.pop((s.region, s.folder), []) for s in scopes]
            _describe_state(state, per_folder, events, callback_url, now)
        listing.projects.append(state)
    listing.unselected = [_hook_row(h, "not selected") for hooks in mine.values() for h in hooks]
    return listing


def _describe_state(state: ProjectHookState, per_folder: list[list[Hook]], events: set[str],
                    callback_url: str | None, now: datetime) -> None:
    hooks = [h for folder in per_folder for h in folder]
    state.hooks = len(hooks)
    state.inactive = sum(1 for h in hooks if not h.active)
    state.expired = sum(1 for h in hooks if h.expired(now))
    state.callback_urls = sorted({h.callback_url for h in hooks})
    changes = [h.last_change for h in hooks if h.last_change]
    state.last_change = max(changes).isoformat() if changes else None
    if not hooks:
        state.state = "missing"
    elif any(not folder or {h.event for h in folder} < events for folder in per_folder):
        state.state = "partial"
    elif state.expired:
        state.state = "expired"
    elif state.inactive:
        state.state = "inactive"
    elif callback_url and state.callback_urls != [callback_url]:
        state.state = "other-callback"
    else:
        state.state = "active"


# -- delete ----------------------------------------------------------------------------------
@dataclass
class DeleteReport:
    mirror: str
    dry_run: bool = False
    deleted: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "dry_run": self.dry_run, "deleted": self.deleted}

    def format_text(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        per_folder: dict[tuple[str, str], int] = defaultdict(int)
        for hook in self.deleted:
            per_folder[(str(hook["folder"]), hook["callback_url"])] += 1
        lines = [f"{verb} {n} hooks on {folder} -> {url}" for (folder, url), n in sorted(per_folder.items())]
        lines.append(f"{'Dry run: ' if self.dry_run else ''}{len(self.deleted)} hooks of mirror {self.mirror} "
                     f"{verb}")
        return "\n".join(lines)


def delete_hooks(client: ApsClient, *, mirror: str, projects: Sequence[ProjectRef] | None = None,
                 callback_url: str | None = None, regions: Mapping[str, str | None] | None = None,
                 dry_run: bool = False) -> DeleteReport:
    """Delete the hooks of `mirror` (hookAttribute.aps_mirror), only those: all of them, or
    those on `projects` (their root and top folders), or to `callback_url`. The secret stays:
    it belongs to the app (or user), whose other mirrors use it."""
    check_mirror_name(mirror)
    require_hook_scopes(client)
    api = ApsWebhooks(client)
    regions = regions if regions is not None else hub_regions(client.hubs())
    folders: set[str] | None = None
    if projects is not None:
        folders = set()
        for project in projects:
            if project.root_folder_id:
                folders.add(project.root_folder_id)
            folders.update(f.id for f in client.top_folders(project.hub_id, project.project_id))
    report = DeleteReport(mirror, dry_run)
    for hook in _list(api, _listing_regions(regions)):
        if hook.hook_attribute.get(MIRROR_KEY) != mirror:
            continue
        if (folders is not None and hook.folder not in folders) or (callback_url and hook.callback_url != callback_url):
            continue
        if not dry_run:
            api.delete_hook(hook)
        report.deleted.append(_hook_row(hook, "deleted"))
    return report


# -- shared ----------------------------------------------------------------------------------
def _region(region: str | None) -> str | None:
    return None if not region or region.upper() == DEFAULT_REGION else region.upper()


def _listing_regions(regions: Mapping[str, str | None]) -> list[str | None]:
    """Every region a hub of the account is in, and the default (hooks made before)."""
    return [None] + sorted({r for r in map(_region, regions.values()) if r})


def _list(api: ApsWebhooks, regions: list[str | None]) -> list[Hook]:
    return [hook for region in regions for hook in api.hooks(region=region)]


def _by_folder(hooks: Iterable[Hook]) -> dict[tuple[str | None, str | None], list[Hook]]:
    grouped: dict[tuple[str | None, str | None], list[Hook]] = defaultdict(list)
    for hook in hooks:
        grouped[(_region(hook.region), hook.folder)].append(hook)
    return grouped


def _hook_row(hook: Hook, reason: str) -> dict[str, Any]:
    return {"hook_id": hook.hook_id, "event": hook.event, "folder": hook.folder, "callback_url": hook.callback_url,
            "status": hook.status, "region": hook.region,
            "last_change": hook.last_change.isoformat() if hook.last_change else None, "reason": reason}
