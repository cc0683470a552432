"""Cursor paging as vault-notes.md §3 says: limit (default 100, clamped to the admin's page size),
cursorState, pagination {limit, totalResults, indexingStatus, nextUrl}, nextUrl server-relative
and absent on the last page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aps_mirror.simulator import Simulator, SimulatorServer
from .vault_helpers import API, VaultApi


@pytest.fixture(scope="module")
def generated() -> Iterator[SimulatorServer]:
    """250 files of 3 versions each over 12 folders, read only."""
    spec = "generate:projects=0,vault_files=250,vault_folders=12,vault_versions=3"
    with SimulatorServer(Simulator(seed=spec, rate_scale=0)) as server:
        yield server


@pytest.fixture
def big(generated: SimulatorServer) -> VaultApi:
    return VaultApi(generated).aps_user()


def test_default_limit_is_100_and_pages_follow_next_url_to_the_end(big: VaultApi) -> None:
    pages = list(big.pages(big.vault_path("/file-versions"), "FileVersionCollection"))
    assert [len(p["results"]) for p in pages] == [100, 100, 50]
    assert {p["pagination"]["limit"] for p in pages} == {100}
    assert {p["pagination"]["totalResults"] for p in pages} == {250}
    for page in pages[:-1]:
        assert page["pagination"]["nextUrl"].startswith(f"{API}/vaults/{big.vault_id}/file-versions?")
    assert "nextUrl" not in pages[-1]["pagination"]
    ids = [row["file"]["id"] for p in pages for row in p["results"]]
    truth = {e.file_id: e.tip.id for e in big.sim.vault.iter_files()}
    assert len(ids) == len(set(ids)) == 250 and set(ids) == set(truth)
    assert {row["file"]["id"]: row["id"] for p in pages for row in p["results"]} == truth


def test_every_version_when_latest_only_is_false(big: VaultApi) -> None:
    rows = big.all(big.vault_path("/file-versions"), "FileVersionCollection",
                   **{"option[latestOnly]": "false", "limit": 333})
    assert len(rows) == 750 and len({r["id"] for r in rows}) == 750
    numbers: dict[str, list[int]] = {}
    for row in rows:
        numbers.setdefault(row["file"]["id"], []).append(row["version"])
    assert set(map(tuple, numbers.values())) == {(1, 2, 3)}
    assert {r["file"]["versionType"] for r in rows if r["version"] < 3} == {"None"}


def test_limit_is_clamped_to_the_admins_page_size(big: VaultApi) -> None:
    doc = big.ok(big.vault_path("/file-versions"), limit=5000)
    assert doc["pagination"]["limit"] == big.sim.vault.max_page_size == 1000 and len(doc["results"]) == 250
    big.sim.vault.configure(max_page_size=60)
    try:
        pages = list(big.pages(big.vault_path("/file-versions"), limit=1000))
    finally:
        big.sim.vault.configure(max_page_size=1000)
    assert [len(p["results"]) for p in pages] == [60, 60, 60, 60, 10]
    assert "limit=60" in pages[0]["pagination"]["nextUrl"]


def test_next_url_keeps_the_query_and_a_cursor_only_fits_its_query(big: VaultApi) -> None:
    first = big.ok(big.vault_path("/file-versions"), limit=7, **{"option[latestOnly]": "false"})
    next_url = first["pagination"]["nextUrl"]
    assert "option%5BlatestOnly%5D=false" in next_url and "cursorState=" in next_url
    second = big.ok(next_url)
    assert second["results"][0]["id"] not in {r["id"] for r in first["results"]}
    cursor = next_url.split("cursorState=")[1]
    stolen = big.get(big.vault_path("/file-versions"), limit=7, cursorState=cursor)  # latestOnly dropped
    big.error(stolen, 400)
    big.error(big.get(big.vault_path("/file-versions"), cursorState="not-a-cursor"), 400)
    big.error(big.get(big.vault_path("/file-versions"), limit=0), 400)


def test_sub_folders_and_contents_page_too(big: VaultApi) -> None:
    root_children = big.all(big.vault_path("/folders/root/sub-folders"), "FolderCollection", limit=2)
    assert [f["name"] for f in root_children] == ["Folder 00001", "Folder 00002", "Folder 00003"]
    contents = list(big.pages(big.vault_path("/folders/root/contents"), "EntityCollection", limit=10))
    rows = [e for p in contents for e in p["results"]]
    root_files = [f for f in big.sim.vault.vault("Generated Vault").root.files]
    assert len(rows) == 3 + len(root_files) and len(contents) == -(-len(rows) // 10)
    assert {p["pagination"]["indexingStatus"] for p in contents} == {"IndexingComplete"}


def test_vaults_listing_pages(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server)
    doc = api.ok("/vaults", "VaultCollection", limit=1)
    assert doc["pagination"] == {"limit": 1, "totalResults": 1, "indexingStatus": "NA"}
