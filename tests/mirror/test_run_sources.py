"""Which sources a run reads: the `sources` option against what the connection reaches."""

from __future__ import annotations

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.config import MirrorConfig
from aps_mirror.mirror.sources.chosen import run_sources
from aps_mirror.simulator import SimulatorServer
from tests.conftest import connection_for
from tests.vault.conftest import vault_client


def docs_client(server: SimulatorServer) -> ApsClient:
    return ApsClient(ApsTransport(connection_for(server)))


def test_without_a_vault_url_a_run_reads_docs_and_naming_vault_is_one_line(simulator: SimulatorServer) -> None:
    client = docs_client(simulator)
    assert list(run_sources(MirrorConfig(bucket="b-1"), client, None, "autodesk_default")) == ["docs"]
    with pytest.raises(ConfigError) as refused:
        run_sources(MirrorConfig(bucket="b-1", sources=("vault",)), client, None, "autodesk_default")
    assert str(refused.value).startswith("sources names vault, but connection 'autodesk_default' has no "
                                         "extra.vault_url") and "\n" not in str(refused.value)


def test_with_a_vault_url_a_run_reads_both_unless_told(simulator: SimulatorServer) -> None:
    vault = vault_client(simulator)
    client = docs_client(simulator)
    assert list(run_sources(MirrorConfig(bucket="b-1"), client, vault, "c")) == ["docs", "vault"]
    assert list(run_sources(MirrorConfig(bucket="b-1", sources=("vault",)), client, vault, "c")) == ["vault"]
    assert list(run_sources(MirrorConfig(bucket="b-1", sources=("docs",)), client, vault, "c")) == ["docs"]
