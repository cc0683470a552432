"""Autodesk parameters: hub warnings and paging, topFolders flags, rollup filters, search, download statuses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from .sim_helpers import Api, enc


@pytest.fixture(scope="module")
def full_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as server:
        yield server


def _user_api(server: SimulatorServer, scope: str = "data:read data:search", user: str | None = None) -> Api:
    return Api(server, server.sim.user_tokens(scope, user=user)["access_token"])


def test_unreachable_region_gives_warnings_not_an_error(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    emea = sim.add_hub("Northwind EMEA", region="EMEA")
    assert emea in [h["id"] for h in fresh_api.ok("/project/v1/hubs")["data"]]
    requests.post(fresh_api.base + "/_sim/switches", json={"unreachable_regions": ["EMEA"]}).raise_for_status()
    doc = fresh_api.ok("/project/v1/hubs")
    assert emea not in [h["id"] for h in doc["data"]] and len(doc["data"]) == 2
    warning = doc["meta"]["warnings"][0]
    assert warning["ErrorCode"] == "BIM360DM_ERROR" and "EMEA" in warning["Title"]
    sim.unreachable_regions = set()
    assert "meta" not in fresh_api.ok("/project/v1/hubs")


def test_hubs_and_projects_are_paged(demo_api: Api) -> None:
    pages = list(demo_api.pages("/project/v1/hubs", **{"page[limit]": 1}))
    assert [len(p["data"]) for p in pages] == [1, 1]
    hub = pages[0]["data"][0]["id"]
    projects = list(demo_api.pages(f"/project/v1/hubs/{enc(hub)}/projects", **{"page[limit]": 1}))
    assert len(projects) == 2 and "prev" in projects[1]["links"] and "next" not in projects[1]["links"]
    assert demo_api.get("/project/v1/hubs", **{"page[limit]": 201}).status_code == 400


def _top(api: Api, hub: str, pid: str, **params: str) -> list[str]:
    doc = api.ok(f"/project/v1/hubs/{enc(hub)}/projects/{enc(pid)}/topFolders", **params)
    return [f["attributes"]["name"] for f in doc["data"]]


def test_top_folders_flags_and_permission_filter(full_server: SimulatorServer) -> None:
    sim = full_server.sim
    hub = sim.account.hubs[0].id
    pid = sim.project_id("Riverside Tower")
    admin = _user_api(full_server)
    names = _top(admin, hub, pid)
    assert {"Project Files", "Plans", "Photos", "Recycle Bin", "Old Archive", "ProjectTb"} <= set(names)
    assert any(n.startswith("issue_") for n in names) and any(n.startswith("checklist_") for n in names)
    assert "Old Archive" not in _top(admin, hub, pid, excludeDeleted="true")
    assert _top(admin, hub, pid, projectFilesOnly="true") == ["Project Files"]
    two_legged = Api(full_server)
    two_legged.client_credentials()
    assert _top(two_legged, hub, pid, projectFilesOnly="true") == names  # no user context: flags ignored
    viewer = _top(_user_api(full_server, user="viewer"), hub, pid)
    assert "Project Files" not in viewer and "Contracts" not in viewer
    assert {"Architecture", "Structure", "MEP", "Plans"} <= set(viewer)


def test_acc_full_ground_truth_skips_what_a_mirror_skips(full_server: SimulatorServer) -> None:
    sim = full_server.sim
    files = {(e.path, e.tip.name) for e in sim.iter_files()}
    assert (("Project Files",), "Riverside Central.rvt") not in files  # unpublished cloud model
    assert (("Project Files",), "Riverside Linked.rvt") in files
    assert not any(path[0] in ("Photos", "Old Archive") or path[0].startswith("issue_") for path, _ in files)
    api = _user_api(full_server)
    pid = sim.project_id("Riverside Tower")
    folder = sim.folder_id(pid, ("Project Files",))
    doc = api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(folder)}/contents")
    items = {d["attributes"]["displayName"]: d for d in doc["data"] if d["type"] == "items"}
    assert items["Riverside Central.rvt"]["attributes"]["extension"]["type"] == "items:autodesk.bim360:C4RModel"
    assert items["Locked Specification.pdf"]["attributes"]["reserved"] is True
    tips = {v["relationships"]["item"]["data"]["id"]: v for v in doc["included"]}
    assert "storage" not in tips[items["Riverside Central.rvt"]["id"]]["relationships"]
    sheets = sim.folder_id(pid, ("Plans", "Sheets"))
    doc = api.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(sheets)}/contents")
    assert {d["attributes"]["extension"]["type"] for d in doc["data"]} == {"items:autodesk.bim360:Document"}


def test_rollup_filter_operators_apply_after_paging(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    pid = sim.project_id("Riverside Tower")
    files = sim.folder_id(pid, ("Project Files",))
    path = f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/contents"
    sim.advance_clock(60)
    sim.add_file(pid, sim.folder_id(pid, ("Project Files", "Structure", "Rebar")), "fresh.txt", size=3)
    cut = fresh_api.ok(path)["data"]
    changed = next(d for d in cut if d["attributes"]["name"] == "Structure")
    stamp = changed["attributes"]["lastModifiedTimeRollup"]
    key = "filter[lastModifiedTimeRollup]"
    assert [d["attributes"]["name"] for d in fresh_api.ok(path, **{f"{key}-ge": stamp})["data"]] == ["Structure"]
    assert [d["attributes"]["name"] for d in fresh_api.ok(path, **{key: stamp})["data"]] == ["Structure"]
    older = {d["attributes"]["name"] for d in fresh_api.ok(path, **{f"{key}-lt": stamp})["data"]}
    assert older == {"Architecture", "MEP", "Site Photos"}
    assert {d["attributes"]["name"] for d in fresh_api.ok(path, **{f"{key}-le": stamp})["data"]} == older | {"Structure"}
    assert fresh_api.ok(path, **{f"{key}-gt": stamp})["data"] == []
    # After paging: page 0 (two folders) holds no match, yet `next` is there and page 1 has Structure.
    pages = list(fresh_api.pages(path, **{f"{key}-ge": stamp, "page[limit]": 2}))
    assert pages[0]["data"] == [] and "next" in pages[0]["links"]
    assert [d["attributes"]["name"] for p in pages for d in p["data"]] == ["Structure"]
    assert fresh_api.get(path, **{f"{key}-xx": stamp}).status_code == 400
    assert fresh_api.get(path, **{key: "yesterday"}).status_code == 400
    # 7-digit fractions and no zone are accepted
    assert fresh_api.ok(path, **{f"{key}-ge": "2000-01-01T00:00:00.0000000Z"})["data"]
    assert fresh_api.ok(path, **{f"{key}-ge": "2000-01-01T00:00:00"})["data"]


def test_item_versions_are_paged(demo_api: Api) -> None:
    sim = demo_api.server.sim
    entry = next(e for e in sim.iter_files() if e.tip.name == "Rebar Schedule.xlsx")
    path = f"/data/v1/projects/{enc(sim.account.item(entry.item_id).project.id)}/items/{enc(entry.item_id)}/versions"
    pages = list(demo_api.pages(path, **{"page[limit]": 3}))
    assert [[v["attributes"]["versionNumber"] for v in p["data"]] for p in pages] == [[4, 3, 2], [1]]


def test_folder_search_is_three_legged_with_data_search(demo_server: SimulatorServer, demo_api: Api) -> None:
    sim = demo_server.sim
    pid = sim.project_id("Riverside Tower")
    files = sim.folder_id(pid, ("Project Files",))
    path = f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/search"
    assert demo_api.get(path).status_code == 403  # 2-legged
    assert _user_api(demo_server, scope="data:read").get(path).status_code == 403
    api = _user_api(demo_server)
    everything = [v for p in api.pages(path, **{"page[limit]": 10}) for v in p["data"]]
    expected = {e.tip.id for e in sim.iter_files() if e.project == "Riverside Tower" and e.path[0] == "Project Files"}
    assert {v["id"] for v in everything} == expected
    pdfs = api.ok(path, **{"filter[fileType]": "pdf"})
    assert pdfs["data"] and all(v["attributes"]["fileType"] == "pdf" for v in pdfs["data"])
    assert len(pdfs["included"]) == len(pdfs["data"])


def test_signeds3download_chunked_and_fallback(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    tip = next(e.tip for e in sim.iter_files() if e.tip.name == "Structural Calcs.pdf")
    key = (tip.storage_urn or "").split("/", 1)[1]
    path = f"/oss/v2/buckets/wip.dm.prod/objects/{enc(key)}/signeds3download"
    sim.chunk_size = 300_000
    requests.post(fresh_api.base + "/_sim/download-status",
                  json={"version_id": tip.id, "status": "chunked"}).raise_for_status()
    doc = fresh_api.ok(path)
    assert doc["status"] == "chunked" and "url" not in doc and "sha1" not in doc and doc["size"] == tip.size
    assert list(doc["urls"]) == ["0-299999", "300000-599999", "600000-899999", "900000-1048575"]
    body = b"".join(requests.get(url).content for url in doc["urls"].values())
    assert body == sim.file_bytes(tip.id)
    sim.set_download_status(tip.id, "fallback")
    doc = fresh_api.ok(path)
    assert doc["status"] == "fallback" and "sha1" not in doc
    assert hashlib.sha1(requests.get(doc["url"]).content).hexdigest() == sim.sha1(tip.id)


def test_rate_limit_headers_switch() -> None:
    with SimulatorServer(Simulator(seed="empty", rate_scale=0.1, clock=Clock(start=1_800_000_000.0),
                                   rate_limit_headers=True)) as server:
        api = Api(server)
        api.client_credentials()
        first = api.get("/project/v1/hubs")
        assert first.headers["X-RateLimit-Limit"] == "5" and first.headers["X-RateLimit-Remaining"] == "4"
        assert int(first.headers["X-RateLimit-Reset"]) >= 1
        for _ in range(4):
            api.get("/project/v1/hubs")
        limited = api.get("/project/v1/hubs")
        assert limited.status_code == 429 and limited.headers["X-RateLimit-Remaining"] == "0"
        requests.post(server.base_url + "/_sim/switches", json={"rate_limit_headers": False}).raise_for_status()
        hub = server.sim.account.hubs[0].id
        assert "X-RateLimit-Limit" not in api.get(f"/project/v1/hubs/{enc(hub)}").headers
