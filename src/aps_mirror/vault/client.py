"""Typed calls to the Vault Data API v2 that a mirror needs, over the APS client's transport.

One ``ApsTransport`` pointed at the Vault server or Gateway: the same retries (429 and 5xx with
backoff), the same rate budget (the gateway's 40,000 requests per 5 minutes is the ``vault``
budget) and call counting per endpoint class. Auth is the APS connection's own token provider
(a 3-legged user mapped to a Vault user) or Vault sessions signed in with a Vault account.
Paging follows ``pagination.nextUrl`` (server-relative) until it is absent or empty.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from aps_mirror.aps.auth import BearerAuth
from aps_mirror.aps.parsing import loads_json
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import VaultSettings
from aps_mirror.errors import ApiError, AuthError

from .download import DEFAULT_CHUNK_SIZE, Sink, ranged_download
from .models import ROOT, Download, Vault, VaultFileVersion, VaultFolder
from .sessions import VaultSessions

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # asked for; Vault clamps it to the admin's page size
APP_CODE = "aps-mirror"  # Vault's audit log names the application with it
VAULT_ADVICE = {
    400: "The request was malformed; this is a bug in aps-mirror, please report it.",
    401: "Vault refused the token twice: check that the Autodesk account is mapped to a Vault user, "
         "or the connection's extra.vault_user and extra.vault_password.",
    403: "The Vault user may not see this (cloaked), or the session belongs to another vault.",
    404: "It no longer exists or this user cannot see it; it will be skipped.",
    429: "The Vault Gateway kept rate-limiting (40,000 requests per 5 minutes) after every retry; "
         "run later or lower the parallelism.",
    500: "Vault failed after every retry (through the Vault Gateway, also what a payload over its "
         "39,313,920-byte quota gets).",
}


def _seg(value: str) -> str:
    return quote(value, safe="")


class VaultClient:
    """Reads vaults, folders and file versions, and downloads file versions' bytes."""

    def __init__(self, transport: ApsTransport, *, sessions: VaultSessions | None = None,
                 page_limit: int = PAGE_LIMIT, settings: VaultSettings | None = None) -> None:
        self.transport = transport
        self.settings = settings  # the connection's Vault extras (selection included), when known
        self.page_limit = page_limit
        self.sessions = sessions
        self._vault_names: dict[str, str] = {}
        if sessions is not None:
            sessions.bind(self._sign_in)

    @classmethod
    def connect(cls, settings: VaultSettings, aps: ApsTransport, *, retry_policy: RetryPolicy | None = None,
                session: requests.Session | None = None, page_limit: int = PAGE_LIMIT) -> VaultClient:
        """A client for ``settings`` (the connection's Vault extras) beside the APS transport of
        the same connection: it shares that transport's rate budget and, unless a Vault account
        is configured, its token provider (so a rotating refresh token is spent once)."""
        sessions = VaultSessions(settings.user, settings.password or "") if settings.user is not None else None
        transport = ApsTransport(aps.connection, session=session, retry_policy=retry_policy or aps.retry_policy,
                                 timeout=aps.timeout, budget=aps.budget, base_url=settings.api_base,
                                 bearer=sessions if sessions is not None else BearerAuth(aps.tokens),
                                 service="Vault", advice=VAULT_ADVICE)
        return cls(transport, sessions=sessions, page_limit=page_limit, settings=settings)

    # -- server and vaults (no authentication) ------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        return self._json("server-info", authenticated=False)

    def vaults(self) -> list[Vault]:
        found = [Vault.from_json(row) for row in self._pages("vaults", authenticated=False)]
        self._vault_names.update({v.id: v.name for v in found})
        return found

    # -- folders --------------------------------------------------------------------------------
    def folder(self, vault_id: str, folder_id: str = ROOT) -> VaultFolder:
        """One folder (``root`` for the vault's root, ``$``)."""
        return VaultFolder.from_json(self._json(f"vaults/{_seg(vault_id)}/folders/{_seg(folder_id)}"))

    def sub_folders(self, vault_id: str, folder_id: str) -> Iterator[VaultFolder]:
        """The folder's immediate children (extended: each carries its parent id)."""
        path = f"vaults/{_seg(vault_id)}/folders/{_seg(folder_id)}/sub-folders"
        for row in self._pages(path, {"option[extendedModels]": "true"}):
            yield VaultFolder.from_json(row)

    def folder_tree(self, vault_id: str) -> dict[str, VaultFolder]:
        """Every folder the user can list, by id (breadth first from the root): folders carry no
        change date, so a mirror maps ids to full names again each run. Cloaked folders are kept
        (their full name is hidden) but not descended into; only folders with subfolders are listed."""
        root = self.folder(vault_id)
        tree = {root.id: root}
        queue = deque([root])
        while queue:
            parent = queue.popleft()
            if parent.cloaked or parent.subfolder_count <= 0:
                continue
            for child in self.sub_folders(vault_id, parent.id):
                if child.id not in tree:  # a folder listed twice is walked once
                    tree[child.id] = child
                    queue.append(child)
        return tree

    # -- file versions --------------------------------------------------------------------------
    def file_versions(self, vault_id: str, latest_only: bool = True) -> Iterator[VaultFileVersion]:
        """Every file of the vault, one row per file (its latest version) or per version. Cloaked
        rows are yielded too (``cloaked``): the caller decides to skip them."""
        params = {"option[latestOnly]": "true" if latest_only else "false"}
        for row in self._pages(f"vaults/{_seg(vault_id)}/file-versions", params):
            yield VaultFileVersion.from_json(row)

    def file_versions_of(self, vault_id: str, file_id: str) -> list[VaultFileVersion]:
        """Every version of one file (its master id), oldest first."""
        path = f"vaults/{_seg(vault_id)}/files/{_seg(file_id)}/versions"
        rows = self._pages(path, {"option[history]": "All", "descending": "false"})
        return sorted((VaultFileVersion.from_json(r) for r in rows), key=lambda v: v.version)

    def file_version(self, vault_id: str, version_id: str) -> VaultFileVersion:
        return VaultFileVersion.from_json(self._json(f"vaults/{_seg(vault_id)}/file-versions/{_seg(version_id)}"))

    # -- content --------------------------------------------------------------------------------
    def download(self, vault_id: str, version_id: str, sink: Sink, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 expected_size: int | None = None) -> Download:
        """Write the version's bytes to ``sink`` in Range chunks below the gateway's payload quota
        (memory: one piece, not one chunk), checking every answer; returns the size and SHA-256.
        ``expected_size``: the listed size when the file is not checked out (``reliable_size``)."""
        path = f"vaults/{_seg(vault_id)}/file-versions/{_seg(version_id)}/content"
        return ranged_download(self.transport, path, sink, chunk_size=chunk_size, expected_size=expected_size)

    # -- sessions -------------------------------------------------------------------------------
    def _sign_in(self, vault_id: str, user: str, password: str) -> str:
        """``POST /sessions`` for one vault (sessions are per vault): its ``V:`` token."""
        if vault_id not in self._vault_names:
            self.vaults()
        name = self._vault_names.get(vault_id)
        if name is None:
            raise ApiError(f"Vault has no vault with id {vault_id}.", status=404, endpoint="vault_vaults")
        body = {"input": {"vault": name, "userName": user, "password": password, "appCode": APP_CODE}}
        try:
            doc = self._json("sessions", method="POST", authenticated=False, json=body)
        except ApiError as exc:
            if exc.status in (400, 401, 403, 404):
                raise AuthError(f"Vault refused to sign {user!r} in to the vault {name!r} (HTTP {exc.status}, "
                                f"error {exc.code}): check the connection's extra.vault_user and "
                                "extra.vault_password (through the Vault Gateway a Vault account needs a "
                                "password of 8+ characters with a letter and a digit).") from None
            raise
        token = doc.get("accessToken") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"Vault answered the sign-in of {user!r} without an access token.")
        return token

    def close(self) -> None:
        """Sign out of every Vault session (nothing to do with an Autodesk token)."""
        if self.sessions is None:
            return
        for token in self.sessions.drain():
            try:
                self.transport.request("DELETE", "sessions/@current", authenticated=False,
                                       headers={"Authorization": f"Bearer {token}"})
            except (ApiError, requests.RequestException) as exc:  # the session ends anyway
                log.debug("Vault sign-out failed: %s", type(exc).__name__)

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, path: str, params: Mapping[str, Any] | None = None, *, method: str = "GET",
              authenticated: bool = True, json: Any = None) -> Any:
        response = self.transport.request(method, path, params=params, authenticated=authenticated, json=json)
        try:
            return loads_json(response.content)
        except ValueError:
            raise ApiError(f"Vault answered {path} with a body that is not JSON; this is usually transient, "
                           "run again.", status=response.status_code) from None

    def _pages(self, path: str, params: Mapping[str, Any] | None = None, *,
               authenticated: bool = True) -> Iterator[dict[str, Any]]:
        """Every ``results`` row across pages, following ``nextUrl`` verbatim."""
        next_url: str | None = path
        query: dict[str, Any] | None = {"limit": self.page_limit, **(params or {})}
        seen: set[str] = set()
        while next_url:
            body = self._json(next_url, query, authenticated=authenticated)
            query = None  # nextUrl carries the whole query
            for row in (body.get("results") or []) if isinstance(body, dict) else []:
                if isinstance(row, dict):
                    yield row
            following = ((body.get("pagination") or {}) if isinstance(body, dict) else {}).get("nextUrl")
            if following and following in seen:
                raise ApiError(f"Vault repeated the page {following} of {path}; the listing cannot end.",
                               status=200, endpoint=path)
            if following:
                seen.add(following)
            next_url = following or None
