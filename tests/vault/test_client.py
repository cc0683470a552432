"""The Vault client against the simulator over HTTP: vaults, the folder map, latest-only and
all-versions listings paged to the end, history, errors, and calls counted per endpoint class."""

from __future__ import annotations

from math import ceil

import pytest

from aps_mirror.connection import AuthMode
from aps_mirror.errors import ApiError
from aps_mirror.simulator import Simulator, SimulatorServer
from aps_mirror.vault import VaultClient
from .conftest import MakeClient, vault_client


def test_vaults_need_no_token(client: VaultClient, simulator: SimulatorServer) -> None:
    (vault,) = client.vaults()
    assert (vault.id, vault.name) == ("106", "Engineering")
    assert client.server_info()["name"]
    assert client.transport.counter.snapshot() == {"vault_server_info": 1, "vault_vaults": 1}
    assert "token" not in simulator.sim.stats()["requests"]  # no APS token was fetched


def test_the_folder_tree_maps_every_folder_to_its_full_name(client: VaultClient, simulator: SimulatorServer) -> None:
    tree = client.folder_tree("106")
    truth = {f.id: f.full_name for f in simulator.sim.vault.vault("Engineering").folders.values()}
    assert {fid: folder.full_name for fid, folder in tree.items()} == truth
    assert tree["1"].segments == () and all(tree[f.parent_id] for f in tree.values() if f.parent_id)
    gearbox = next(f for f in tree.values() if f.full_name == "$/Designs/Gearbox")
    assert gearbox.segments == ("Designs", "Gearbox") and gearbox.subfolder_count == 1
    calls = client.transport.counter.snapshot()
    # the root, then one listing per folder that has subfolders (not the leaves)
    assert calls == {"vault_folder": 1, "vault_sub_folders": sum(f.subfolder_count > 0 for f in tree.values())}


def test_latest_only_listing_is_the_ground_truth(client: VaultClient, simulator: SimulatorServer) -> None:
    rows = list(client.file_versions("106"))
    truth = {e.file_id: e.tip for e in simulator.sim.vault.iter_files(include_cloaked=True)}
    assert {r.file_id: r.id for r in rows} == {fid: tip.id for fid, tip in truth.items()}
    visible = [r for r in rows if not r.cloaked]
    assert len(visible) == 20 and {r.name for r in rows if r.cloaked} == {""}
    for row in visible:
        tip = truth[row.file_id]
        assert (row.name, row.version, row.parent_folder_id) == (tip.file.name, tip.number, tip.file.folder.id)
        assert row.version_type == "Latest" and row.created is not None
    housing = next(r for r in visible if r.name == "Housing.ipt")
    assert housing.checked_out and housing.checked_in is None and housing.reliable_size is None
    readme = next(r for r in visible if r.name == "Readme.txt")
    assert readme.reliable_size == 2048 and readme.checked_in is not None and readme.checked_in.tzinfo is not None


def test_every_version_and_one_files_history(client: VaultClient, simulator: SimulatorServer) -> None:
    every = list(client.file_versions("106", latest_only=False))
    vault = simulator.sim.vault.vault("Engineering")
    assert {r.id for r in every} == set(vault.versions)
    gear = simulator.sim.vault.file_id("106", ("Designs", "Gearbox"), "Gear 32T.ipt")
    history = client.file_versions_of("106", gear)
    assert [(v.version, v.id) for v in history] == [(v.number, v.id) for v in vault.files[gear].versions]
    assert {v.file_id for v in history} == {gear} and history[-1].version_type == "Latest"


@pytest.mark.parametrize(("page_limit", "max_page_size", "calls"), [(1000, 1000, 3), (100, 1000, 25), (1000, 300, 9)])
def test_paging_follows_next_url_to_the_end(page_limit: int, max_page_size: int, calls: int) -> None:
    seed = "generate:projects=0,vault_files=2500,vault_folders=20"
    with SimulatorServer(Simulator(seed=seed, rate_scale=0)) as server:
        server.sim.vault.configure(max_page_size=max_page_size)
        client = vault_client(server, page_limit=page_limit)
        rows = list(client.file_versions("106"))
        assert len(rows) == 2500 == len({r.file_id for r in rows})
        assert calls == ceil(2500 / min(page_limit, max_page_size))
        assert client.transport.counter.snapshot()["vault_file_versions"] == calls


def test_a_missing_entity_is_a_final_api_error(client: VaultClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.file_version("106", "999999")
    assert caught.value.status == 404 and caught.value.code == "5004"
    assert str(caught.value).startswith("Vault answered HTTP 404 for /AutodeskDM/Services/api/vault/v2/vaults/106/")
    assert client.transport.counter.snapshot() == {"vault_file_version": 1}  # a 404 is not retried


def test_a_two_legged_token_is_refused(make_client: MakeClient) -> None:
    client = make_client(auth_mode=AuthMode.CLIENT_CREDENTIALS)
    with pytest.raises(ApiError) as caught:
        client.folder("106")
    assert caught.value.status == 401 and "mapped to a Vault user" in str(caught.value)
    assert client.transport.counter.snapshot() == {"vault_folder": 2}  # one new token, then final
