"""The ``Simulator`` facade: one account, its token service, traffic control and signed URLs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from typing import Any

from .churn import churn
from .clock import Clock
from .control import RateLimiter, Stats
from .errors import BadInput, SignedUrlDenied
from .faults import FaultInjector
from .model import ACC, Folder, StoredObject, User
from .oauth import ACCESS_TOKEN_TTL, DEFAULT_REDIRECT_URIS, TokenService
from .seed import DEMO_USER, VIEWER_USER, build
from .ssa import Registration
from .state import Account, FileEntry, Version
from .uploads import Uploads
from .vault import VaultService
from .webhooks import Webhooks

COMPLETE, CHUNKED, FALLBACK = "complete", "chunked", "fallback"
DOWNLOAD_STATUSES = (COMPLETE, CHUNKED, FALLBACK)


class Simulator:
    """An in-memory Autodesk Platform Services account plus the rules around it (no HTTP).

    ``seed``: ``"demo"`` (3 projects, 50+ files), ``"acc-full"`` (demo plus Plans documents, cloud
    models, locked items, ACC system and admin-only folders), ``"empty"`` or
    ``"generate:projects=1000,folders=100,files=2"`` (synthetic). ``rate_scale`` multiplies
    Autodesk's documented per-minute limits (0 disables them). ``clock`` defaults to real time.
    ``reuse_detection``: replaying a spent refresh token also revokes the newer ones of its chain.
    ``rate_limit_headers``: answer with ``X-RateLimit-Limit/Remaining/Reset``. ``fault_seed``
    seeds the random draws of probabilistic faults. ``vault``: the Autodesk Vault server of the
    same seed (Data API v2, see vault/).
    """

    def __init__(self, seed: str = "demo", rate_scale: float = 1.0, clock: Clock | None = None,
                 access_token_ttl: int = ACCESS_TOKEN_TTL, client_id: str | None = None,
                 client_secret: str | None = None,
                 redirect_uris: list[str] | tuple[str, ...] = DEFAULT_REDIRECT_URIS,
                 reuse_detection: bool = True, rate_limit_headers: bool = False,
                 fault_seed: int | str = 0) -> None:
        self.seed = seed
        self.clock = clock or Clock()
        self.account = Account(seed, self.clock, DEMO_USER)
        build(self.account, seed)
        tag = hashlib.sha1(f"client/{seed}".encode()).hexdigest()
        self.client_id = client_id or f"sim{tag[:29]}"
        self.client_secret = client_secret or f"simsecret{tag[29:40]}"
        self.oauth = TokenService(self.clock, DEMO_USER.user_id, access_token_ttl, reuse_detection)
        self.oauth.register_client(self.client_id, self.client_secret, list(redirect_uris))
        self.limiter = RateLimiter(self.clock, rate_scale)
        self.faults = FaultInjector(fault_seed)
        self.uploads = Uploads(self.clock)
        self.traffic = Stats()
        # The Vault server of the same seed; its gateway limit follows rate_scale.
        self.vault = VaultService(seed, self.clock, self.oauth, lambda: self.limiter.rate_scale, self.traffic)
        self.rate_limit_headers = rate_limit_headers
        self.unreachable_regions: set[str] = set()
        self.download_statuses: dict[str, str] = {}  # object key -> chunked | fallback
        self.chunk_size = 5 * 1024 * 1024
        self.honor_range = True  # False: signed URLs answer Range with the whole body, as some proxies do
        self.users: dict[str, User] = {u.user_id: u for u in (DEMO_USER, VIEWER_USER)}
        self.restricted_users: set[str] = {VIEWER_USER.user_id}
        self._churns = 0
        self._signing_key = secrets.token_bytes(32)
        # After the seed is built: hooks hear of the changes made from now on.
        self.webhooks = Webhooks(self.account, self.clock)

    @property
    def lock(self) -> Any:
        return self.account.lock

    # ---- lookups for tests
    def project_id(self, name: str) -> str:
        """Id of the project with this name."""
        return self.account.project_by_name(name).id

    def folder_id(self, project_id: str, path: tuple[str, ...] | list[str]) -> str:
        """Id of a folder by its path of names from the top folder, e.g. ``("Project Files", "MEP")``."""
        return self.account.folder_by_path(project_id, tuple(path)).id

    def version(self, version_id: str) -> Version:
        return self.account.version(version_id)

    # ---- changes (each bumps lastModifiedTime and the rollup up to the root)
    def add_folder(self, project_id: str, parent_folder_id: str, name: str) -> str:
        parent = self.account.folder(parent_folder_id, project_id)
        return self.account.add_folder(parent, name).id

    def add_file(self, project_id: str, folder_id: str, name: str, size: int = 1024,
                 content_seed: str | None = None) -> str:
        """Create an item with one version; returns the item (lineage) id."""
        folder = self.account.folder(folder_id, project_id)
        return self.account.add_item(folder, name, size, content_key=content_seed).id

    def add_version(self, item_id: str, size: int | None = None, name: str | None = None) -> str:
        """A new tip version with new content (same size unless given); returns its id."""
        return self.account.add_version(self.account.item(item_id), size=size, name=name).id

    def rename_item(self, item_id: str, new_name: str) -> str:
        """Rename = a new version with the new name and the same bytes; returns its id."""
        return self.account.rename_item(self.account.item(item_id), new_name).id

    def move_item(self, item_id: str, folder_id: str) -> None:
        item = self.account.item(item_id)
        self.account.move_item(item, self.account.folder(folder_id, item.project.id))

    def delete_item(self, item_id: str) -> str:
        """Hide the item behind a Deleted tombstone tip; returns the tombstone version id."""
        return self.account.delete_item(self.account.item(item_id)).id

    def restore_item(self, item_id: str) -> str:
        """Undelete: a new version with the last live content, the item unhidden; returns its id."""
        return self.account.restore_item(self.account.item(item_id)).id

    def rename_folder(self, folder_id: str, new_name: str) -> None:
        self.account.rename_folder(self.account.folder(folder_id), new_name)

    def move_folder(self, folder_id: str, parent_folder_id: str) -> None:
        folder = self.account.folder(folder_id)
        self.account.move_folder(folder, self.account.folder(parent_folder_id, folder.project.id))

    def delete_folder(self, folder_id: str) -> None:
        """Hide the folder and its subtree (live items below get Deleted tombstones)."""
        self.account.delete_folder(self.account.folder(folder_id))

    def add_project(self, name: str, hub_id: str | None = None,
                    top_folders: tuple[str, ...] | None = None) -> str:
        """A new project (ACC: "Project Files" and "Plans" top folders) in the given or first hub."""
        with self.lock:
            hub = self.account.hub(hub_id) if hub_id else self.account.hubs[0]
            project = self.account.add_project(hub, name)
            assert project.root is not None
            for folder_name in top_folders if top_folders is not None else (
                    ("Project Files", "Plans") if hub.kind == ACC else ()):
                self.account.add_folder(project.root, folder_name)
            return project.id

    def delete_project(self, project_id: str) -> None:
        self.account.delete_project(self.account.project(project_id))

    def add_hub(self, name: str, kind: str = ACC, region: str = "US") -> str:
        return self.account.add_hub(name, kind, region).id

    def churn(self, projects_fraction: float, folders_per_project: int,
              seed: int | str | None = None) -> dict[str, Any]:
        """One random change (new file or new version) in ``folders_per_project`` folders of a
        ``projects_fraction`` of the projects; returns what changed. Deterministic per seed."""
        self._churns += 1
        rng_seed = seed if seed is not None else f"{self.seed}/churn/{self._churns}"
        return churn(self.account, projects_fraction, folders_per_project, rng_seed)

    def file_bytes(self, version_id: str) -> bytes:
        return self.account.file_bytes(self.account.version(version_id))

    def sha1(self, version_id: str) -> str:
        return self.account.sha1(self.account.version(version_id))

    def iter_files(self, include_deleted: bool = False) -> Iterator[FileEntry]:
        """(hub name, project name, folder path tuple, item id, tip Version) for every file."""
        return self.account.iter_files(include_deleted)

    # ---- control
    def stats(self) -> dict[str, Any]:
        return self.traffic.snapshot()

    def reset_stats(self) -> None:
        self.traffic.reset()

    def inject_fault(self, endpoint: str, status: int | None = None, count: int | None = 1,
                     retry_after: int | None = None, kind: str = "status", rate: float = 1.0,
                     seconds: float | None = None, fraction: float = 0.5) -> None:
        """The next ``count`` requests of this endpoint class (or ``"*"``) get a fault: ``kind``
        status (answer ``status``; 429 carries ``Retry-After``: ``retry_after`` or 1), timeout,
        reset, truncate, slow, range403 or bom (see faults.py). With ``rate`` < 1 each matching
        request is hit with that probability (draws from ``fault_seed``); ``count=None``: no limit."""
        self.faults.inject(endpoint, status, count, retry_after, kind, rate, seconds, fraction)

    def seed_faults(self, seed: int | str) -> None:
        """Restart the random sequence of probabilistic faults."""
        self.faults.seed(seed)

    def set_download_status(self, version_id: str, status: str) -> None:
        """Make ``signeds3download`` of this version answer ``complete``, ``chunked`` or ``fallback``."""
        if status not in DOWNLOAD_STATUSES:
            raise ValueError(f"status must be one of {DOWNLOAD_STATUSES}")
        version = self.account.version(version_id)
        if not version.object_key:
            raise BadInput("The version has no storage.")
        self.download_statuses[version.object_key] = status

    def add_service_account(self, name: str = "mirror") -> Registration:
        """A Secure Service Account of the default client: its id, key id and private key PEM."""
        registration = self.oauth.service_accounts.add(self.client_id, name)
        self.users[registration.service_account_id] = User(
            registration.service_account_id, registration.email, registration.email, "Service", "Account")
        return registration

    @property
    def reuse_detection(self) -> bool:
        return self.oauth.revoke_family_on_reuse

    @reuse_detection.setter
    def reuse_detection(self, value: bool) -> None:
        self.oauth.revoke_family_on_reuse = value

    def is_admin(self, user_id: str | None) -> bool:
        """2-legged apps and every user but the restricted ones see all folders."""
        return user_id not in self.restricted_users

    def can_write(self, user_id: str | None, folder: Folder) -> bool:
        """2-legged apps and admins write anywhere; a restricted user only into the folders open
        to them (not the admin-only ones)."""
        return self.is_admin(user_id) or not folder.restricted

    def user_of(self, user_id: str | None) -> User:
        return self.users.get(user_id or "", DEMO_USER)

    def clear_faults(self) -> None:
        self.faults.clear()

    def user_tokens(self, scope: str = "data:read user-profile:read", user: str | None = None) -> dict[str, Any]:
        """A 3-legged token response (access + refresh token) without the browser dance;
        ``user="viewer"`` (or a user id) gives the permission-filtered non-admin user."""
        user_id = VIEWER_USER.user_id if user == "viewer" else user
        return self.oauth.user_tokens(self.client_id, scope, user_id)

    def add_redirect_uri(self, uri: str) -> None:
        """Allow another OAuth callback URL for the default client."""
        self.oauth.add_redirect_uri(self.client_id, uri)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired (refresh tokens still work)."""
        self.oauth.expire_access_tokens()

    def advance_clock(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    @property
    def rate_scale(self) -> float:
        return self.limiter.rate_scale

    @rate_scale.setter
    def rate_scale(self, value: float) -> None:
        self.limiter.rate_scale = value
        self.limiter.reset()
        self.vault.limiter.reset()

    # ---- signed download URLs
    def _signature(self, bucket: str, object_key: str, expires: int, part: str | None = None) -> str:
        message = f"{bucket}/{object_key}|{expires}" + (f"|{part}" if part is not None else "")
        return hmac.new(self._signing_key, message.encode(), hashlib.sha256).hexdigest()

    def sign_download(self, bucket: str, object_key: str, minutes: int, part: str | None = None) -> tuple[int, str]:
        """(expires epoch, signature) for a signed URL valid ``minutes`` from now (``part``: a chunk)."""
        expires = int(self.clock.now() + minutes * 60)
        return expires, self._signature(bucket, object_key, expires, part)

    def check_download(self, bucket: str, object_key: str, expires: str, signature: str,
                       part: str | None = None) -> StoredObject:
        """The object behind a signed URL, or :class:`SignedUrlDenied` (forged or expired)."""
        try:
            expires_at = int(expires)
        except ValueError:
            raise SignedUrlDenied("Query-string authentication requires the Signature and Expires parameters") from None
        if not hmac.compare_digest(self._signature(bucket, object_key, expires_at, part), signature):
            raise SignedUrlDenied("The request signature we calculated does not match the signature you provided.")
        if self.clock.now() >= expires_at:
            raise SignedUrlDenied("Request has expired")
        found = self.account.stored_object(object_key)
        if found is None:
            raise SignedUrlDenied("The specified key does not exist.")
        return found
