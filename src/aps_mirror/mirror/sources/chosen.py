"""Which sources a run reads: the `sources` option against what the connection reaches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.sources.docs import DOCS, DocsSource

if TYPE_CHECKING:
    from aps_mirror.aps.client import ApsClient
    from aps_mirror.mirror.config import MirrorConfig
    from aps_mirror.mirror.sources import Source
    from aps_mirror.vault import VaultClient

VAULT = "vault"


def run_sources(config: MirrorConfig, docs: ApsClient, vault: VaultClient | None, conn_id: str) -> dict[str, Source]:
    """The sources of a run, by name. `config.sources` empty: docs, and vault when the
    connection has a `vault_url` (`vault` is its client, else None); named explicitly, a source
    the connection cannot reach is a one-line ConfigError."""
    wanted = config.sources or ((DOCS, VAULT) if vault is not None else (DOCS,))
    if VAULT in wanted and vault is None:
        raise ConfigError(f"sources names vault, but connection {conn_id!r} has no extra.vault_url: add the Vault "
                          "Gateway or server address (e.g. https://12345678.vg.autodesk.com), or leave vault out.")
    chosen: dict[str, Source] = {}
    if DOCS in wanted:
        chosen[DOCS] = DocsSource(docs)
    if VAULT in wanted:
        from aps_mirror.mirror.sources.vault import VaultSource

        chosen[VAULT] = VaultSource(vault)
    return chosen
