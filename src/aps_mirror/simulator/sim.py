"""The ``Simulator`` facade: one account, its token service, traffic control and signed URLs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from typing import Any

from .clock import Clock
from .control import FaultInjector, RateLimiter, Stats
from .errors import SignedUrlDenied
from .oauth import ACCESS_TOKEN_TTL, DEFAULT_REDIRECT_URIS, TokenService
from .seed import DEMO_USER, build
from .state import Account, FileEntry, Version


class Simulator:
    """An in-memory Autodesk Platform Services account plus the rules around it (no HTTP).

    ``seed``: ``"demo"`` (3 projects, 50+ files) or ``"empty"``. ``rate_scale`` multiplies
    Autodesk's documented per-minute limits (0 disables them). ``clock`` defaults to real time.
    """

    def __init__(self, seed: str = "demo", rate_scale: float = 1.0, clock: Clock | None = None,
                 access_token_ttl: int = ACCESS_TOKEN_TTL, client_id: str | None = None,
                 client_secret: str | None = None,
                 redirect_uris: list[str] | tuple[str, ...] = DEFAULT_REDIRECT_URIS) -> None:
        self.seed = seed
        self.clock = clock or Clock()
        self.account = Account(seed, self.clock, DEMO_USER)
        build(self.account, seed)
        tag = hashlib.sha1(f"client/{seed}".encode()).hexdigest()
        self.client_id = client_id or f"sim{tag[:29]}"
        self.client_secret = client_secret or f"simsecret{tag[29:40]}"
        self.oauth = TokenService(self.clock, DEMO_USER.user_id, access_token_ttl)
        self.oauth.register_client(self.client_id, self.client_secret, list(redirect_uris))
        self.limiter = RateLimiter(self.clock, rate_scale)
        self.faults = FaultInjector()
        self.traffic = Stats()
        self._signing_key = secrets.token_bytes(32)

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

    def inject_fault(self, endpoint: str, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` requests of this endpoint class (or ``"*"``) fail with ``status``
        (429 carries ``Retry-After``: ``retry_after`` or 1)."""
        self.faults.inject(endpoint, status, count, retry_after)

    def clear_faults(self) -> None:
        self.faults.clear()

    def user_tokens(self, scope: str = "data:read user-profile:read") -> dict[str, Any]:
        """A 3-legged token response (access + refresh token) without the browser dance."""
        return self.oauth.user_tokens(self.client_id, scope)

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

    # ---- signed download URLs
    def _signature(self, bucket: str, object_key: str, expires: int) -> str:
        message = f"{bucket}/{object_key}|{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def sign_download(self, bucket: str, object_key: str, minutes: int) -> tuple[int, str]:
        """(expires epoch, signature) for a signed URL valid ``minutes`` from now."""
        expires = int(self.clock.now() + minutes * 60)
        return expires, self._signature(bucket, object_key, expires)

    def check_download(self, bucket: str, object_key: str, expires: str, signature: str) -> Version:
        """The version behind a signed URL, or :class:`SignedUrlDenied` (forged or expired)."""
        try:
            expires_at = int(expires)
        except ValueError:
            raise SignedUrlDenied("Query-string authentication requires the Signature and Expires parameters") from None
        if not hmac.compare_digest(self._signature(bucket, object_key, expires_at), signature):
            raise SignedUrlDenied("The request signature we calculated does not match the signature you provided.")
        if self.clock.now() >= expires_at:
            raise SignedUrlDenied("Request has expired")
        version = self.account.object_version(object_key)
        if version is None or version.size is None:
            raise SignedUrlDenied("The specified key does not exist.")
        return version
