"""Schema validation of the newer responses: paged, filtered, warnings, search, acc-full, statuses, errors."""

from __future__ import annotations

from collections.abc import Iterator

import jsonschema
import jwt
import pytest
import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from .sim_helpers import Api, enc, validate, validate_response

DM = "datamanagement.yaml"
ERROR_ENVELOPE = {"type": "object", "required": ["jsonapi", "errors"],
                  "properties": {"errors": {"type": "array", "minItems": 1, "items": {
                      "type": "object", "required": ["id", "status", "code", "title", "detail"]}}}}


@pytest.fixture(scope="module")
def full() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as server:
        yield server


@pytest.fixture(scope="module")
def user(full: SimulatorServer) -> Api:
    return Api(full, full.sim.user_tokens("data:read data:search")["access_token"])


def test_acc_full_walk_validates(user: Api) -> None:
    """Every folder, item, tip and version of acc-full (system, hidden, C4R, Documents, reserved)."""
    seen = 0
    for hub in user.ok("/project/v1/hubs")["data"]:
        hub_url = f"/project/v1/hubs/{enc(hub['id'])}"
        for project in user.ok(f"{hub_url}/projects")["data"]:
            pid = project["id"]
            top = user.ok(f"{hub_url}/projects/{enc(pid)}/topFolders")
            validate(top, DM, "TopFolders")
            stack = [f["id"] for f in top["data"]]
            while stack:
                fid = stack.pop()
                validate(user.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}"), DM, "Folder")
                contents = user.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents", includeHidden="true")
                validate(contents, DM, "FolderContents")
                for entry in contents["data"]:
                    if entry["type"] == "folders":
                        stack.append(entry["id"])
                        continue
                    base = f"/data/v1/projects/{enc(pid)}/items/{enc(entry['id'])}"
                    validate(user.ok(base), DM, "Item")
                    validate(user.ok(f"{base}/tip"), DM, "ItemTip")
                    validate(user.ok(f"{base}/versions", **{"page[limit]": 1}), DM, "Versions")
                    seen += 1
    assert seen > 60


def test_paged_filtered_and_warned_documents_validate(full: SimulatorServer, user: Api) -> None:
    sim = full.sim
    sim.unreachable_regions = {"EMEA"}
    sim.add_hub("Far Away", region="EMEA")
    try:
        hubs = user.ok("/project/v1/hubs", **{"page[limit]": 1})
        assert "meta" in hubs and "next" in hubs["links"]
        validate(hubs, DM, "Hubs")
    finally:
        sim.unreachable_regions = set()
    hub = sim.account.hubs[0].id
    validate(user.ok(f"/project/v1/hubs/{enc(hub)}/projects", **{"page[limit]": 1, "page[number]": 1}), DM, "Projects")
    pid = sim.project_id("Riverside Tower")
    files = sim.folder_id(pid, ("Project Files",))
    path = f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/contents"
    for params in ({"filter[type]": "items", "page[limit]": 2}, {"filter[lastModifiedTimeRollup]-ge": "2030-01-01T00:00:00Z"},
                   {"filter[extension.type]": "items:autodesk.bim360:C4RModel", "page[number]": 1, "page[limit]": 5}):
        validate(user.ok(path, **params), DM, "FolderContents")
    search = user.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/search", **{"page[limit]": 5})
    assert "next" in search["links"]
    validate(search, DM, "Search")
    empty = user.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/search", **{"filter[fileType]": "zzz"})
    validate(empty, DM, "Search")


def test_download_statuses_validate(full: SimulatorServer, user: Api) -> None:
    sim = full.sim
    for status in ("complete", "chunked", "fallback"):
        tip = next(e.tip for e in sim.iter_files() if e.tip.name == "Main Contract.pdf")
        sim.set_download_status(tip.id, status)
        key = (tip.storage_urn or "").split("/", 1)[1]
        doc = user.ok(f"/oss/v2/buckets/wip.dm.prod/objects/{enc(key)}/signeds3download")
        assert doc["status"] == status
        validate(doc, "oss.yaml", "signeds3download_response")


def test_token_responses_validate(full: SimulatorServer) -> None:
    tokens = full.sim.user_tokens()
    validate(tokens, "authentication.yaml", "threeLeggedToken")
    refreshed = requests.post(full.base_url + "/authentication/v2/token", auth=(full.client_id, full.client_secret),
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    validate(refreshed, "authentication.yaml", "threeLeggedToken")
    reg = full.sim.add_service_account()
    claims = {"iss": full.client_id, "sub": reg.service_account_id, "aud": full.base_url + "/authentication/v2/token",
              "exp": int(full.sim.clock.now()) + 60, "scope": ["data:read"]}
    jwt_token = requests.post(full.base_url + "/authentication/v2/token", auth=(full.client_id, full.client_secret),
                              data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                    "assertion": jwt.encode(claims, reg.private_key_pem, algorithm="RS256")}).json()
    validate(jwt_token, "secureServiceAccount.yaml", "exchange-jwt-token")


def test_error_responses_validate(full: SimulatorServer, user: Api) -> None:
    sim = full.sim
    pid = sim.project_id("Riverside Tower")
    files = sim.folder_id(pid, ("Project Files",))
    too_big = user.get(f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/contents", **{"page[limit]": 201})
    missing = user.get(f"/data/v1/projects/{enc(pid)}/folders/{enc('urn:nope')}")
    bad_filter = user.get(f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/contents",
                          **{"filter[lastModifiedTimeRollup]": "soon"})
    for response, name in ((too_big, "400-general"), (missing, "404-general"), (bad_filter, "400-general")):
        assert response.status_code == int(name[:3])
        validate_response(response.json(), DM, name)
        jsonschema.validate(response.json(), ERROR_ENVELOPE)
    two_legged = Api(full)
    two_legged.client_credentials()
    forbidden = two_legged.get(f"/data/v1/projects/{enc(pid)}/folders/{enc(files)}/search")
    assert forbidden.status_code == 403 and forbidden.json()["errorCode"] == "AUTH-010"
    validate_response(forbidden.json(), DM, "403-general")
