"""``sim.vault``: the simulated Vault server (state, accounts, gateway switches, signed URLs) as a Python API."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from ..clock import Clock
from ..control import Stats
from ..oauth import TokenService
from .errors import NoPermission, VaultBadRequest
from .gateway import PAYLOAD_LIMIT, GatewayLimiter
from .model import File, FileVersion, Folder, Vault, VaultUser
from .paging import INDEXING_COMPLETE, INDEXING_STATUSES
from .seed import USERS, build, churn
from .sessions import Session, Sessions
from .state import VaultFileEntry, VaultStore

DEFAULT_MAX_PAGE_SIZE = 1000  # the admin's "page size" setting; the spec gives no number
SIGNED_URL_MAX_SECONDS = 180


class VaultService:
    """Every vault of one simulated Vault server, reachable directly or through its gateway.

    ``gateway`` (default True: the route APS tokens take) turns on the gateway's rate limit and
    payload quota (``payload_limit`` bytes); ``max_page_size`` is the admin's page size; ``indexing_status`` is what
    searches report (anything but IndexingComplete tells a client the index is behind)."""

    def __init__(self, seed: str, clock: Clock, oauth: TokenService, rate_scale: Callable[[], float],
                 traffic: Stats) -> None:
        self.store = VaultStore(seed, clock)
        self.clock = clock
        self.oauth = oauth
        self.traffic = traffic
        self.sessions = Sessions(clock, list(USERS))
        self.limiter = GatewayLimiter(clock, rate_scale)
        self.gateway = True
        self.payload_limit = PAYLOAD_LIMIT
        self.max_page_size = DEFAULT_MAX_PAGE_SIZE
        self.indexing_status = INDEXING_COMPLETE
        self._signing_key = secrets.token_bytes(32)
        self._churns = 0
        build(self.store, seed)

    @property
    def lock(self) -> Any:
        return self.store.lock

    # ---- lookups for tests
    def vault(self, name: str) -> Vault:
        return self.store.vault_by_name(name)

    def vault_id(self, name: str) -> str:
        return self.store.vault_by_name(name).id

    def folder_id(self, vault_id: str, path: tuple[str, ...] | list[str]) -> str:
        """Id of a folder by its names below ``$``, e.g. ``("Designs", "Gearbox")``."""
        return self.store.folder_by_path(self.store.vault(vault_id), tuple(path)).id

    def file(self, vault_id: str, file_id: str) -> File:
        return self.store.file(self.store.vault(vault_id), file_id)

    def file_id(self, vault_id: str, path: tuple[str, ...] | list[str], name: str) -> str:
        folder = self.store.folder_by_path(self.store.vault(vault_id), tuple(path))
        found = next((f for f in folder.files if f.name == name), None)
        if found is None:
            raise KeyError(f"no file {name!r} in {folder.full_name}")
        return found.id

    def version(self, vault_id: str, version_id: str) -> FileVersion:
        return self.store.version(self.store.vault(vault_id), version_id)

    def _folder(self, vault_id: str, folder_id: str) -> Folder:
        return self.store.folder(self.store.vault(vault_id), folder_id)

    # ---- changes
    def add_vault(self, name: str) -> str:
        return self.store.add_vault(name).id

    def add_folder(self, vault_id: str, parent_id: str, name: str, cloaked: bool = False) -> str:
        return self.store.add_folder(self._folder(vault_id, parent_id), name, cloaked=cloaked).id

    def rename_folder(self, vault_id: str, folder_id: str, name: str) -> None:
        self.store.rename_folder(self._folder(vault_id, folder_id), name)

    def move_folder(self, vault_id: str, folder_id: str, parent_id: str) -> None:
        self.store.move_folder(self._folder(vault_id, folder_id), self._folder(vault_id, parent_id))

    def delete_folder(self, vault_id: str, folder_id: str) -> None:
        self.store.delete_folder(self._folder(vault_id, folder_id))

    def add_file(self, vault_id: str, folder_id: str, name: str, size: int = 1024, cloaked: bool = False) -> str:
        """A new file with its first version; returns the file master id."""
        return self.store.add_file(self._folder(vault_id, folder_id), name, size, cloaked=cloaked).id

    def check_out(self, vault_id: str, file_id: str, user: str = "Administrator") -> None:
        self.store.check_out(self.file(vault_id, file_id), user)

    def check_in(self, vault_id: str, file_id: str, size: int | None = None, state: str | None = None,
                 revision: str | None = None) -> str:
        """A new version (new content; same size unless given); returns its version id."""
        return self.store.check_in(self.file(vault_id, file_id), size, state=state, revision=revision).id

    def rename_file(self, vault_id: str, file_id: str, name: str) -> None:
        self.store.rename_file(self.file(vault_id, file_id), name)

    def move_file(self, vault_id: str, file_id: str, folder_id: str) -> None:
        self.store.move_file(self.file(vault_id, file_id), self._folder(vault_id, folder_id))

    def delete_file(self, vault_id: str, file_id: str) -> None:
        self.store.delete_file(self.file(vault_id, file_id))

    def add_link(self, vault_id: str, folder_id: str, target_id: str) -> str:
        """A folder link in ``folder_id`` to the folder or file ``target_id``."""
        vault = self.store.vault(vault_id)
        target: Folder | File = vault.folders.get(target_id) or self.store.file(vault, target_id)
        return self.store.add_link(self._folder(vault_id, folder_id), target).id

    def churn(self, fraction: float, seed: int | str | None = None) -> dict[str, Any]:
        """New versions of ``fraction`` of every vault's files, plus one new file per 100 of them;
        returns what changed. Deterministic per seed."""
        self._churns += 1
        default_seed = f"{self.store.seed}/vault-churn/{self._churns}"
        return churn(self.store, fraction, seed if seed is not None else default_seed)

    # ---- ground truth
    def iter_files(self, include_cloaked: bool = False) -> Iterator[VaultFileEntry]:
        """(vault name, folder path below ``$``, file master id, tip version) of every file."""
        return self.store.iter_files(include_cloaked)

    def file_bytes(self, vault_id: str, version_id: str) -> bytes:
        return self.store.file_bytes(self.version(vault_id, version_id))

    def sha256(self, vault_id: str, version_id: str) -> str:
        return self.store.sha256(self.version(vault_id, version_id))

    # ---- accounts and sessions
    def user(self, name: str) -> VaultUser:
        return self.sessions.user(name)

    def add_user(self, name: str, password: str, admin: bool = False, autodesk_user_id: str | None = None) -> None:
        user_id = str(100 + len(self.sessions.users))
        self.sessions.add_user(VaultUser(user_id, name, f"{name}@example.com", password, admin, autodesk_user_id))

    def session_token(self, user: str = "sam.builder", vault: str | None = None) -> str:
        """A ``V:`` session token of a user, as ``POST /sessions`` with the user's password gives on
        the server itself (the gateway's password rule is not applied: tests may want the admin)."""
        account = self.sessions.user(user)
        target = self.store.vault_by_name(vault) if vault else self.store.vaults[0]
        return self.sessions.login(target, account.name, account.password, "simulator", gateway=False).token

    def login(self, vault: Vault, user_name: str, password: str, app_code: str) -> Session:
        return self.sessions.login(vault, user_name, password, app_code, self.gateway)

    def expire_sessions(self) -> None:
        self.sessions.expire_all()

    # ---- switches
    def configure(self, gateway: bool | None = None, max_page_size: int | None = None,
                  indexing_status: str | None = None, payload_limit: int | None = None) -> dict[str, Any]:
        if max_page_size is not None and max_page_size < 1:
            raise ValueError("max_page_size must be 1 or more")
        if payload_limit is not None and payload_limit < 1:
            raise ValueError("payload_limit must be 1 or more")
        if indexing_status is not None and indexing_status not in INDEXING_STATUSES:
            raise ValueError(f"indexing_status must be one of {', '.join(INDEXING_STATUSES)}")
        if gateway is not None:
            self.gateway = gateway
        if max_page_size is not None:
            self.max_page_size = max_page_size
        if indexing_status is not None:
            self.indexing_status = indexing_status
        if payload_limit is not None:
            self.payload_limit = payload_limit
        return {"gateway": self.gateway, "max_page_size": self.max_page_size,
                "indexing_status": self.indexing_status, "payload_limit": self.payload_limit,
                "gateway_limit": self.limiter.limit}

    # ---- signed URLs
    def _signature(self, vault: Vault, version: FileVersion, expires: int) -> str:
        message = f"{vault.id}/{version.id}|{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def sign(self, vault: Vault, version: FileVersion, seconds: int) -> tuple[int, str]:
        if not 1 <= seconds <= SIGNED_URL_MAX_SECONDS:
            raise VaultBadRequest(f"expirationTime must be between 1 and {SIGNED_URL_MAX_SECONDS} seconds.",
                                  params=["expirationTime"])
        expires = int(self.clock.now() + seconds)
        return expires, self._signature(vault, version, expires)

    def check_signature(self, vault: Vault, version: FileVersion, expires: str, signature: str) -> None:
        try:
            expires_at = int(expires)
        except ValueError:
            raise NoPermission("The signed URL is not valid.") from None
        if not hmac.compare_digest(self._signature(vault, version, expires_at), signature):
            raise NoPermission("The signed URL is not valid.")
        if self.clock.now() >= expires_at:
            raise NoPermission("The signed URL has expired.")
