"""Every Vault response of the simulator has the shape vault-notes.md gives (tests/specs/vault_shapes.py)."""

from __future__ import annotations

import re

import pytest

from aps_mirror.simulator import SimulatorServer
from tests.specs.vault_shapes import validate
from .vault_helpers import API, VaultApi

UNSET = "0001-01-01T00:00:00Z"


@pytest.fixture
def vault(demo_server: SimulatorServer) -> VaultApi:
    return VaultApi(demo_server).aps_user()


def _ids(api: VaultApi, path: tuple[str, ...], name: str) -> tuple[str, str]:
    """(file master id, tip version id) of a demo file."""
    sim_vault = api.sim.vault
    file_id = sim_vault.file_id(api.vault_id, path, name)
    return file_id, sim_vault.file(api.vault_id, file_id).tip.id


def test_server_info_vaults_and_a_vault_need_no_token(vault: VaultApi) -> None:
    info = vault.get("/server-info", auth=False)
    validate(info.json(), "ServerInfo")
    listing = vault.get("/vaults", auth=False).json()
    validate(listing, "VaultCollection")
    assert [v["name"] for v in listing["results"]] == ["Engineering"]
    one = vault.get(f"/vaults/{vault.vault_id}", auth=False).json()
    validate(one, "Vault")
    assert one == listing["results"][0] and one["url"] == f"{API}/vaults/{vault.vault_id}"


def test_root_folder_by_keyword_and_by_id(vault: VaultApi) -> None:
    root = vault.ok(vault.vault_path("/folders/root"), "Folder")
    assert (root["id"], root["name"], root["fullName"], root["subfolderCount"]) == ("1", "$", "$", 3)
    assert vault.ok(vault.vault_path("/folders/1"), "Folder") == root


def test_sub_folders_plain_and_extended(vault: VaultApi) -> None:
    plain = vault.ok(vault.vault_path("/folders/root/sub-folders"), "FolderCollection")
    assert [f["fullName"] for f in plain["results"]] == ["$/Designs", "$/Projects", "$/Standards"]
    designs = plain["results"][0]["id"]
    extended = vault.ok(vault.vault_path(f"/folders/{designs}/sub-folders"), "FolderExtendedCollection",
                        **{"option[extendedModels]": "true"})
    assert {f["fullName"] for f in extended["results"]} == {"$/Designs/Conveyor", "$/Designs/Gearbox"}
    assert {f["parentFolderId"] for f in extended["results"]} == {designs}


def test_contents_hold_folders_file_versions_and_a_folder_link(vault: VaultApi) -> None:
    designs = vault.sim.vault.folder_id(vault.vault_id, ("Designs",))
    doc = vault.ok(vault.vault_path(f"/folders/{designs}/contents"), "EntityCollection")
    kinds = [(e["entityType"], e["name"]) for e in doc["results"]]
    assert kinds == [("Folder", "Conveyor"), ("Folder", "Gearbox"), ("Link", "Templates")]
    link = doc["results"][-1]
    validate(link, "LinkEntity")
    assert link["toEntity"]["fullName"] == "$/Standards/Templates" and link["fromEntity"]["id"] == designs
    assert doc["pagination"]["indexingStatus"] == "IndexingComplete"


def test_file_versions_listing_rows_and_their_dates(vault: VaultApi) -> None:
    rows = vault.all(vault.vault_path("/file-versions"), "FileVersionCollection")
    assert len(rows) == 21
    for row in rows:
        assert row["file"]["versionType"] == "Latest"
        for field in ("createDate", "checkinDate", "lastModifiedDate"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3,7})?Z", row[field])
    assert any(len(row["createDate"].split(".")[1]) == 8 for row in rows)  # 7 digits and the Z


def test_one_file_version_is_always_extended(vault: VaultApi) -> None:
    _file_id, tip = _ids(vault, ("Designs", "Gearbox"), "Gear 32T.ipt")
    doc = vault.ok(vault.vault_path(f"/file-versions/{tip}"), "FileVersionExtended")
    assert doc["parent"]["fullName"] == "$/Designs/Gearbox" and doc["checkoutUser"] is None


def test_a_checked_out_file_shows_its_user_and_no_checkin_date(vault: VaultApi) -> None:
    _file_id, tip = _ids(vault, ("Designs", "Gearbox"), "Housing.ipt")
    doc = vault.ok(vault.vault_path(f"/file-versions/{tip}"), "FileVersionExtended")
    assert doc["isCheckedOut"] is True and doc["checkinDate"] == UNSET
    assert doc["checkoutUserName"] == "Administrator" and doc["checkoutUser"]["name"] == "Administrator"
    assert doc["checkoutDate"] != UNSET


def test_file_object_and_history(vault: VaultApi) -> None:
    file_id, tip = _ids(vault, ("Designs", "Gearbox"), "Gearbox Assembly.iam")
    master = vault.ok(vault.vault_path(f"/files/{file_id}"), "FileObject")
    assert master["id"] == file_id and master["fileVersion"]["id"] == tip
    history = vault.ok(vault.vault_path(f"/files/{file_id}/versions"), "FileVersionCollection")
    assert [v["version"] for v in history["results"]] == [1, 2, 3]
    assert {v["file"]["id"] for v in history["results"]} == {file_id}


def test_property_definitions_and_requested_properties(vault: VaultApi) -> None:
    defs = vault.ok(vault.vault_path("/property-definitions"), "PropertyDefinitionCollection",
                    **{"filter[entityClassId]": "FILE"})
    by_name = {d["systemName"]: d for d in defs["results"]}
    assert by_name["CheckInDate"]["dataType"] == "DateTime"
    one = vault.ok(by_name["CheckInDate"]["url"], "PropertyDefinition")
    assert one == by_name["CheckInDate"]
    doc = vault.ok(vault.vault_path("/file-versions"), "FileVersionCollection",
                   **{"option[propDefIds]": by_name["CheckInDate"]["id"], "limit": 3})
    assert any(row["isCheckedOut"] for row in doc["results"])
    for row in doc["results"]:  # an unset date is an empty value
        value = "" if row["isCheckedOut"] else row["checkinDate"]
        assert row["properties"] == [{"propertyDefinitionId": by_name["CheckInDate"]["id"], "value": value}]
    assert set(doc["included"]["propertyDefinition"]) == {by_name["CheckInDate"]["id"]}


def test_session_signed_url_and_search_shapes(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server)
    session = api.sign_in()
    validate(session, "Session")
    assert session["vaultInformation"]["name"] == "Engineering" and session["userInformation"]["name"] == "sam.builder"
    validate(api.ok("/sessions/@current"), "Session")
    _file_id, tip = _ids(api, (), "Readme.txt")
    validate(api.ok(api.vault_path(f"/file-versions/{tip}/signedurl")), "SignedUrl")
    r = api.post(api.vault_path(":advanced-search"), json={"searchCriterias": [
        {"propertyDefinitionUrl": f"{API}/vaults/{api.vault_id}/property-definitions/1", "operator": "Contains",
         "searchString": "gear"}]})
    assert r.status_code == 200, r.text
    validate(r.json(), "EntityCollection")
    assert {e["name"] for e in r.json()["results"]} == {"Gearbox Assembly.iam", "Gear 32T.ipt", "Gearbox Assembly.idw"}


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/vaults/999", 404, "133"),
    ("/vaults/{vault}/folders/999999", 404, "5004"),
    ("/vaults/{vault}/file-versions/999999", 404, "5004"),
    ("/vaults/{vault}/property-definitions/999", 404, "1430"),
    ("/vaults/{vault}/file-versions?limit=zero", 400, "155"),
])
def test_errors_are_error_responses(vault: VaultApi, path: str, status: int, code: str) -> None:
    body = vault.error(vault.get(path.format(vault=vault.vault_id)), status)
    assert body["errorCode"] == code and body["title"] == "Vault error"
