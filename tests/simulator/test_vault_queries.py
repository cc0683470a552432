"""Query options: file history (history, revision, descending), released-only masters, folder
contents options, vault-wide filters, and advanced search (DateTime GreaterThan on the check-in
date, name criteria, folder scope, entity types)."""

from __future__ import annotations

from typing import Any

import pytest

from aps_mirror.simulator import SimulatorServer
from .vault_helpers import API, VaultApi

GEARBOX = ("Designs", "Gearbox")


@pytest.fixture
def vault(demo_server: SimulatorServer) -> VaultApi:
    return VaultApi(demo_server).aps_user()


def _prop(api: VaultApi, system_name: str, entity_class: str = "FILE") -> str:
    """The URL of a property definition, found as a client would."""
    defs = api.ok(api.vault_path("/property-definitions"), **{"filter[systemNames]": system_name,
                                                              "filter[entityClassId]": entity_class})
    (found,) = defs["results"]
    return found["url"]


def _search(api: VaultApi, body: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    r = api.post(api.vault_path(":advanced-search"), json=body, **params)
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.mark.parametrize(("params", "versions"), [
    ({}, [1, 2, 3]),
    ({"option[history]": "ReleasedOnly"}, [2]),
    ({"option[history]": "RevisionTip"}, [2, 3]),
    ({"option[history]": "ReleasedAndRevisionTip"}, [2, 3]),
    ({"option[revision]": "CurrentRevision"}, [3]),
    ({"descending": "true"}, [3, 2, 1]),
])
def test_history_options(vault: VaultApi, params: dict[str, str], versions: list[int]) -> None:
    file_id = vault.sim.vault.file_id(vault.vault_id, GEARBOX, "Gearbox Assembly.iam")
    rows = vault.ok(vault.vault_path(f"/files/{file_id}/versions"), "FileVersionCollection", **params)["results"]
    assert [r["version"] for r in rows] == versions
    assert {r["revision"] for r in rows} <= {"A", "B"}


def test_history_rejects_unknown_values(vault: VaultApi) -> None:
    file_id = vault.sim.vault.file_id(vault.vault_id, GEARBOX, "Gearbox Assembly.iam")
    vault.error(vault.get(vault.vault_path(f"/files/{file_id}/versions"), **{"option[history]": "Some"}), 400)


def test_released_only_master(vault: VaultApi) -> None:
    file_id = vault.sim.vault.file_id(vault.vault_id, GEARBOX, "Gearbox Assembly.iam")
    released = vault.ok(vault.vault_path(f"/files/{file_id}"), "FileObject", **{"option[releasedOnly]": "true"})
    assert released["fileVersion"]["version"] == 2 and released["versionType"] == "LatestReleased"
    never = vault.sim.vault.file_id(vault.vault_id, GEARBOX, "Shaft.ipt")
    vault.error(vault.get(vault.vault_path(f"/files/{never}"), **{"option[releasedOnly]": "true"}), 404)


def test_contents_options(vault: VaultApi) -> None:
    gearbox = vault.sim.vault.folder_id(vault.vault_id, GEARBOX)
    path = vault.vault_path(f"/folders/{gearbox}/contents")
    default = vault.all(path)
    assert [e["entityType"] for e in default] == ["Folder"] + ["FileVersion"] * 4
    assert len(vault.all(path, **{"option[includeFolders]": "false"})) == 4
    every = vault.all(path, **{"option[latestOnly]": "false", "option[includeFolders]": "false"})
    assert sorted(e["version"] for e in every if e["name"] == "Gear 32T.ipt") == [1, 2, 3, 4]
    subtree = vault.all(path, **{"option[searchSubFolders]": "true", "option[includeFolders]": "false"})
    assert {e["name"] for e in subtree} >= {"Gearbox Assembly.idw", "Housing.idw", "Shaft.ipt"} and len(subtree) == 6
    assert [e["name"] for e in vault.all(path, q="housing")] == ["Housing.ipt"]
    released = vault.all(path, **{"option[releasedFilesOnly]": "true", "option[includeFolders]": "false"})
    assert [(e["name"], e["version"]) for e in released] == [("Gearbox Assembly.iam", 2)]
    extended = vault.all(path, **{"option[extendedModels]": "true", "option[includeFolders]": "false"})
    assert {e["parent"]["id"] for e in extended} == {gearbox}
    vault.error(vault.get(path, **{"option[latestOnly]": "maybe"}), 400)


def test_vault_wide_filters_and_q(vault: VaultApi) -> None:
    path = vault.vault_path("/file-versions")
    released = vault.all(path, **{"filter[State]": "Released"})
    assert {r["name"] for r in released} == {"Gearbox Assembly.idw"}
    admin_out = vault.all(path, **{"filter[CheckoutUserName]": "Administrator"})
    assert [r["name"] for r in admin_out] == ["Housing.ipt"]
    assert {r["name"] for r in vault.all(path, q="standard")} == {"Standard.idw", "Standard.ipt"}
    vault.error(vault.get(path, **{"filter[Color]": "red"}), 400)


def test_search_on_the_check_in_date(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    vault = fresh_server.sim.vault
    shaft = vault.file_id(api.vault_id, GEARBOX, "Shaft.ipt")
    new_version = vault.check_in(api.vault_id, shaft)  # on the simulator's clock, years after the seed
    checked_in = _prop(api, "CheckInDate")
    after_seed = {"entityTypesToSearch": ["File"], "searchCriterias": [
        {"propertyDefinitionUrl": checked_in, "operator": "GreaterThan", "searchString": "2025-01-01T00:00:00Z"}]}
    assert [(r["id"], r["file"]["id"]) for r in _search(api, after_seed)] == [(new_version, shaft)]
    first_day = {"entityTypesToSearch": ["File"], "searchCriterias": [
        {"propertyDefinitionUrl": checked_in, "operator": "LessThanOrEqualTo", "searchString": "2024-01-16"}]}
    assert [r["name"] for r in _search(api, first_day)] == ["Readme.txt"]
    seven_digits = dict(after_seed, searchCriterias=[dict(after_seed["searchCriterias"][0],
                                                          searchString="2025-01-01T00:00:00.1234567Z")])
    assert len(_search(api, seven_digits)) == 1
    bad_date = dict(after_seed, searchCriterias=[dict(after_seed["searchCriterias"][0], searchString="yesterday")])
    api.error(api.post(api.vault_path(":advanced-search"), json=bad_date), 400)


def test_search_by_name_scope_and_type(vault: VaultApi) -> None:
    name = _prop(vault, "Name")
    folder_name = _prop(vault, "Name", "FLDR")
    gear = {"searchCriterias": [{"propertyDefinitionUrl": name, "operator": "Contains", "searchString": "GEAR"}]}
    assert {r["name"] for r in _search(vault, gear)} == {"Gearbox Assembly.iam", "Gear 32T.ipt", "Gearbox Assembly.idw"}
    gearbox = vault.sim.vault.folder_id(vault.vault_id, GEARBOX)
    scoped = {**gear, "foldersToSearch": [f"{API}/vaults/{vault.vault_id}/folders/{gearbox}"]}
    assert {r["name"] for r in _search(vault, scoped)} == {"Gearbox Assembly.iam", "Gear 32T.ipt"}
    deep = _search(vault, scoped, **{"option[searchSubFolders]": "true"})
    assert {r["name"] for r in deep} == {"Gearbox Assembly.iam", "Gear 32T.ipt", "Gearbox Assembly.idw"}
    exact_and = {"searchCriterias": gear["searchCriterias"] + [
        {"propertyDefinitionUrl": name, "operator": "IsExactly", "searchString": "gear 32t.ipt"}]}
    assert [r["name"] for r in _search(vault, exact_and)] == ["Gear 32T.ipt"]  # criteria combine with AND
    folders = {"entityTypesToSearch": ["Folder"], "searchCriterias": [
        {"propertyDefinitionUrl": folder_name, "operator": "Contains", "searchString": "gear"}]}
    assert [(r["entityType"], r["fullName"]) for r in _search(vault, folders)] == [("Folder", "$/Designs/Gearbox")]
    every_version = _search(vault, gear, **{"option[latestOnly]": "false"})
    assert len(every_version) == 3 + 4 + 2


def test_search_sorts_and_pages_with_its_body(vault: VaultApi) -> None:
    size = _prop(vault, "FileSize")
    body = {"entityTypesToSearch": ["File"], "searchCriterias": [
        {"propertyDefinitionUrl": size, "operator": "GreaterThanOrEqualTo", "searchString": "1000000"}],
        "sortCriterias": [{"propertyDefinitionUrl": size, "ascending": False}]}
    first = vault.post(vault.vault_path(":advanced-search"), json=body, limit=2).json()
    assert [r["name"] for r in first["results"]] == ["Conveyor Frame.iam", "Housing.ipt"]
    assert first["pagination"]["totalResults"] == 3
    next_url = first["pagination"]["nextUrl"]
    rest = vault.session.post(vault.host + next_url, json=body, headers=vault.headers()).json()
    assert [r["name"] for r in rest["results"]] == ["Gearbox Assembly.iam"] and "nextUrl" not in rest["pagination"]
    other_body = {**body, "sortCriterias": []}
    vault.error(vault.session.post(vault.host + next_url, json=other_body, headers=vault.headers()), 400)


def test_search_errors_and_indexing_status(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    missing = {"searchCriterias": [{"propertyDefinitionUrl": f"{API}/vaults/{api.vault_id}/property-definitions/999",
                                    "operator": "IsNotEmpty"}]}
    assert api.error(api.post(api.vault_path(":advanced-search"), json=missing), 404)["errorCode"] == "1430"
    api.error(api.post(api.vault_path(":advanced-search"), json={"entityTypesToSearch": ["File"]}), 400)
    api.error(api.post(api.vault_path(":advanced-search"), json={"searchCriterias": [
        {"propertyDefinitionUrl": _prop(api, "Name"), "operator": "Unknown"}]}), 400)
    fresh_server.sim.vault.configure(indexing_status="IndexingProperties")
    doc = api.post(api.vault_path(":advanced-search"), json={"searchCriterias": []}).json()
    assert doc["pagination"]["indexingStatus"] == "IndexingProperties"
