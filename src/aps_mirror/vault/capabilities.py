"""Which Vault capabilities a connection has, next to the APS ones (`aps_mirror.aps.capabilities`):
the server answers, the selected vaults are visible, their folders and files can be listed and a
file's bytes read. Used by `aps-mirror validate` and the connection's "Test" button."""

from __future__ import annotations

import io
from typing import Callable

from aps_mirror.aps.capabilities import Check
from aps_mirror.connection import VaultSettings
from aps_mirror.errors import ApsMirrorError
from aps_mirror.mirror.selection import matches_filter

from .client import VaultClient
from .models import Vault

PROBE_BYTES = 1024  # a download check reads this much of one file


class _FirstBytes(io.RawIOBase):
    """A sink that keeps the first bytes and stops the download once it has them."""

    def __init__(self) -> None:
        self.kept = b""

    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        self.kept += data[:PROBE_BYTES - len(self.kept)]
        if len(self.kept) >= PROBE_BYTES:
            raise _Enough
        return len(data)


class _Enough(Exception):
    pass


def selected_vaults(settings: VaultSettings, vaults: list[Vault]) -> list[Vault]:
    """The vaults `settings.vaults` selects (names or ids, fnmatch globs, case-insensitive)."""
    return [v for v in vaults if matches_filter(settings.vaults, v.name, v.id)]


def validate_vault(client: VaultClient, settings: VaultSettings) -> list[Check]:
    """Run the Vault calls in order; each later one uses what the earlier ones found."""
    checks: list[Check] = []
    found: dict[str, object] = {}

    def attempt(capability: str, call: Callable[[], str]) -> None:
        try:
            checks.append(Check(capability, True, call()))
        except ApsMirrorError as exc:  # ApiError included: its text says what to do
            checks.append(Check(capability, False, str(exc)))

    def server() -> str:
        info = client.server_info()
        return f"{settings.url}: {info.get('name') or 'Vault'} {info.get('productVersion') or ''}".rstrip()

    def vaults() -> str:
        listed = client.vaults()
        chosen = selected_vaults(settings, listed)
        if not chosen:
            wanted = ", ".join(settings.vaults) or "any"
            raise ApsMirrorError(f"none of the {len(listed)} vault(s) matches the connection's extra.vaults "
                                 f"({wanted}): visible are " + (", ".join(v.name for v in listed) or "none"))
        found["vault"] = chosen[0]
        return f"{len(chosen)} of {len(listed)} selected: " + ", ".join(v.name for v in chosen)

    def folders() -> str:
        vault = found["vault"]
        root = client.folder(vault.id)
        children = list(client.sub_folders(vault.id, root.id))
        return f"{len(children)} folder(s) under $ in {vault.name}"

    def files() -> str:
        vault = found["vault"]
        for version in client.file_versions(vault.id):
            if not version.cloaked:
                found["file"] = version
                return f"files listed in {vault.name} (first: {version.name}, version {version.version})"
        raise ApsMirrorError(f"no file this user may see in {vault.name}: check the Vault user's permissions")

    def download() -> str:
        vault, version = found["vault"], found["file"]
        sink = _FirstBytes()
        try:
            client.download(vault.id, version.id, sink, chunk_size=PROBE_BYTES)
        except _Enough:
            pass
        return f"{version.name}: {len(sink.kept)} bytes read"

    attempt("vault server", server)
    attempt("vaults", vaults)
    if "vault" in found:
        attempt("vault folders", folders)
        attempt("vault files", files)
    if "file" in found:
        attempt("vault download", download)
    return checks

