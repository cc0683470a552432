"""Each Vault change shows in the listings as vault-notes.md says: a check-in is a new version id with
the same master id and version + 1; a rename or move keeps both ids; a delete is absence. Through
the Python facade and the ``/_sim/vault/`` control routes; cloaked entities and folder links."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from aps_mirror.simulator import SimulatorServer
from .vault_helpers import VaultApi

GEARBOX = ("Designs", "Gearbox")


@pytest.fixture
def api(fresh_server: SimulatorServer) -> VaultApi:
    return VaultApi(fresh_server).aps_user()


def _latest(api: VaultApi) -> dict[str, dict[str, Any]]:
    """file master id -> its latest-only row, over every page."""
    return {row["file"]["id"]: row for row in api.all(api.vault_path("/file-versions"), limit=7)}


def _control(api: VaultApi, method: str, path: str, **body: Any) -> dict[str, Any]:
    r = requests.request(method, f"{api.host}/_sim/vault{path}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_check_in_is_a_new_version_of_the_same_file(api: VaultApi) -> None:
    vault = api.sim.vault
    file_id = vault.file_id(api.vault_id, GEARBOX, "Shaft.ipt")
    before = _latest(api)[file_id]
    new_version = vault.check_in(api.vault_id, file_id, size=4096)
    after = _latest(api)[file_id]
    assert (after["id"], after["file"]["id"], after["version"], after["size"]) == (new_version, file_id, 2, 4096)
    assert after["id"] != before["id"] and after["checkinDate"] > before["checkinDate"]
    old = api.ok(api.vault_path(f"/file-versions/{before['id']}"))
    assert old["file"]["versionType"] == "None" and old["version"] == 1
    history = api.all(api.vault_path(f"/files/{file_id}/versions"))
    assert [(v["id"], v["version"]) for v in history] == [(before["id"], 1), (new_version, 2)]
    assert vault.file_bytes(api.vault_id, new_version) != vault.file_bytes(api.vault_id, before["id"])


def test_check_out_then_check_in(api: VaultApi) -> None:
    vault = api.sim.vault
    file_id = vault.file_id(api.vault_id, GEARBOX, "Shaft.ipt")
    vault.check_out(api.vault_id, file_id, "sam.builder")
    api.sim.advance_clock(600)
    row = _latest(api)[file_id]
    assert row["isCheckedOut"] and row["checkinDate"] == "0001-01-01T00:00:00Z" and row["version"] == 1
    version = vault.check_in(api.vault_id, file_id)
    row = _latest(api)[file_id]
    assert row["id"] == version and not row["isCheckedOut"]
    assert row["createDate"] < row["checkinDate"]  # a later version dates from its check-out


def test_rename_and_move_keep_the_master_and_version_ids(api: VaultApi) -> None:
    vault = api.sim.vault
    file_id = vault.file_id(api.vault_id, GEARBOX, "Gear 32T.ipt")
    before = _latest(api)[file_id]
    vault.rename_file(api.vault_id, file_id, "Gear 36T.ipt")
    target = vault.folder_id(api.vault_id, ("Designs", "Conveyor"))
    vault.move_file(api.vault_id, file_id, target)
    after = _latest(api)[file_id]
    assert (after["id"], after["version"]) == (before["id"], before["version"])
    assert (after["name"], after["parentFolderId"]) == ("Gear 36T.ipt", target)
    assert {v["name"] for v in api.all(api.vault_path(f"/files/{file_id}/versions"))} == {"Gear 36T.ipt"}


def test_a_deleted_file_is_absent(api: VaultApi) -> None:
    vault = api.sim.vault
    file_id = vault.file_id(api.vault_id, GEARBOX, "Shaft.ipt")
    version = vault.file(api.vault_id, file_id).tip.id
    vault.delete_file(api.vault_id, file_id)
    assert file_id not in _latest(api) and len(_latest(api)) == 20
    api.error(api.get(api.vault_path(f"/files/{file_id}")), 404)
    api.error(api.get(api.vault_path(f"/file-versions/{version}")), 404)


def test_folder_rename_move_and_delete_show_in_full_names(api: VaultApi) -> None:
    vault = api.sim.vault
    gearbox = vault.folder_id(api.vault_id, GEARBOX)
    vault.rename_folder(api.vault_id, gearbox, "Gearbox Mk2")
    drawings = vault.folder_id(api.vault_id, ("Designs", "Gearbox Mk2", "Drawings"))
    assert api.ok(api.vault_path(f"/folders/{drawings}"))["fullName"] == "$/Designs/Gearbox Mk2/Drawings"
    vault.move_folder(api.vault_id, gearbox, "1")
    assert api.ok(api.vault_path(f"/folders/{drawings}"))["fullName"] == "$/Gearbox Mk2/Drawings"
    in_gearbox = {f.file_id for f in vault.iter_files() if f.path[:1] == ("Gearbox Mk2",)}
    assert len(in_gearbox) == 6 and in_gearbox <= set(_latest(api))
    vault.delete_folder(api.vault_id, gearbox)
    assert not in_gearbox & set(_latest(api))
    api.error(api.get(api.vault_path(f"/folders/{drawings}")), 404)


def test_the_change_api_over_http(api: VaultApi) -> None:
    vid = api.vault_id
    archive = api.sim.vault.folder_id(vid, ("Projects", "Archive"))
    folder = _control(api, "POST", f"/{vid}/folders", parent_id=archive, name="2023")["folder_id"]
    added = _control(api, "POST", f"/{vid}/files", folder_id=folder, name="Old Quote.pdf", size=5000)
    rows = _latest(api)
    assert rows[added["file_id"]]["id"] == added["version_id"] and rows[added["file_id"]]["parentFolderId"] == folder
    checked_in = _control(api, "POST", f"/{vid}/files/{added['file_id']}/versions", size=6000)["version_id"]
    assert _latest(api)[added["file_id"]]["version"] == 2 and _latest(api)[added["file_id"]]["id"] == checked_in
    _control(api, "PATCH", f"/{vid}/files/{added['file_id']}", name="Older Quote.pdf", folder_id=archive)
    row = _latest(api)[added["file_id"]]
    assert (row["name"], row["parentFolderId"], row["id"]) == ("Older Quote.pdf", archive, checked_in)
    _control(api, "PATCH", f"/{vid}/folders/{folder}", name="2022")
    assert api.ok(api.vault_path(f"/folders/{folder}"))["fullName"] == "$/Projects/Archive/2022"
    _control(api, "POST", f"/{vid}/files/{added['file_id']}/checkout", user="sam.builder")
    assert _latest(api)[added["file_id"]]["checkoutUserName"] == "sam.builder"
    _control(api, "DELETE", f"/{vid}/files/{added['file_id']}")
    _control(api, "DELETE", f"/{vid}/folders/{folder}")
    assert added["file_id"] not in _latest(api)
    truth = _control(api, "GET", "/files")["files"]
    assert {f["file_id"] for f in truth} == set(_latest(api)) - {
        api.sim.vault.file_id(vid, ("Projects", "2024-117 Customer #42 & Partners"), "Salary Plan.xlsx")}
    bad = requests.post(f"{api.host}/_sim/vault/{vid}/files", json={"folder_id": archive, "name": "a:b.txt"})
    api.error(bad, 400)


def test_switches_session_token_and_churn_over_http(api: VaultApi) -> None:
    switches = _control(api, "POST", "/switches", max_page_size=5, indexing_status="IndexingContent")
    assert switches["max_page_size"] == 5 and switches["gateway"] is True
    token = _control(api, "POST", "/session-token", user="val.viewer")["accessToken"]
    viewer = VaultApi(api.server, token)
    assert viewer.ok(viewer.vault_path("/file-versions"), limit=50)["pagination"]["limit"] == 5
    before = _latest(api)
    changed = _control(api, "POST", "/churn", fraction=0.5, seed=7)
    assert changed["count"] == 10  # half of the 20 files not checked out
    after = _latest(api)
    moved = {fid for fid in after if after[fid]["id"] != before[fid]["id"]}
    assert moved and len(moved) == 10 and all(after[f]["version"] == before[f]["version"] + 1 for f in moved)


def test_cloaked_entities_keep_their_ids_and_lose_the_rest(api: VaultApi) -> None:
    vault = api.sim.vault
    secret = vault.file_id(api.vault_id, ("Projects", "2024-117 Customer #42 & Partners"), "Salary Plan.xlsx")
    row = _latest(api)[secret]
    assert row["isCloaked"] is True and row["name"] == "" and row["size"] == 0
    assert secret not in {e.file_id for e in vault.iter_files()}
    assert secret in {e.file_id for e in vault.iter_files(include_cloaked=True)}
    hidden = vault.add_folder(api.vault_id, "1", "HR", cloaked=True)
    vault.add_file(api.vault_id, hidden, "Reviews.docx")
    listed = {f["id"]: f for f in api.all(api.vault_path("/folders/root/sub-folders"))}
    assert listed[hidden]["isCloaked"] is True and listed[hidden]["fullName"] == ""
    api.error(api.get(api.vault_path(f"/folders/{hidden}/contents")), 403)
    api.sim.vault.configure(gateway=False)
    admin = VaultApi(api.server)
    admin.sign_in("Administrator")
    assert admin.ok(admin.vault_path(f"/folders/{hidden}"))["name"] == "HR"
    assert not any(r["isCloaked"] for r in admin.all(admin.vault_path("/file-versions")))


def test_links_point_at_their_target_and_go_with_it(api: VaultApi) -> None:
    vault = api.sim.vault
    designs = vault.folder_id(api.vault_id, ("Designs",))
    readme = vault.file_id(api.vault_id, (), "Readme.txt")
    vault.add_link(api.vault_id, designs, readme)
    links = [e for e in api.all(api.vault_path(f"/folders/{designs}/contents")) if e["entityType"] == "Link"]
    assert {link["name"] for link in links} == {"Templates", "Readme.txt"}
    to_file = next(link for link in links if link["name"] == "Readme.txt")
    assert to_file["toEntity"]["file"]["id"] == readme and to_file["toEntity"]["entityType"] == "FileVersion"
    vault.delete_folder(api.vault_id, vault.folder_id(api.vault_id, ("Standards", "Templates")))
    vault.delete_file(api.vault_id, readme)
    assert not [e for e in api.all(api.vault_path(f"/folders/{designs}/contents")) if e["entityType"] == "Link"]
    assert {r["name"] for r in api.all(api.vault_path("/file-versions"))}.isdisjoint({"Templates", "Readme.txt"})
