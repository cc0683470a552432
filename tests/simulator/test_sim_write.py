"""The simulator's write side over HTTP: storage, signed S3 uploads, new items, versions and folders,
each answer validated against Autodesk's OpenAPI specs; permissions, expiry, faults, rate limits."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from aps_mirror.simulator.clock import iso

from .sim_helpers import Api, enc, truth, validate, validate_response

DM, OSS = "datamanagement.yaml", "oss.yaml"
BUCKET = "wip.dm.prod"
MIB = 1024 * 1024
WRITE_SCOPES = "data:read data:write data:create"
ERROR_ENVELOPE = {"type": "object", "required": ["jsonapi", "errors"],
                  "properties": {"errors": {"type": "array", "minItems": 1, "items": {
                      "type": "object", "required": ["id", "status", "code", "title", "detail"]}}}}


class Writer(Api):
    """A minimal test-side upload client: storage, signed part URLs, PUTs, completion, items, versions."""

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, params=params or None,
                                 headers={"Authorization": f"Bearer {self.token}"})

    def storage(self, project_id: str, name: str, target_id: str, target: str = "folders") -> requests.Response:
        return self.post(f"/data/v1/projects/{enc(project_id)}/storage", {
            "jsonapi": {"version": "1.0"},
            "data": {"type": "objects", "attributes": {"name": name},
                     "relationships": {"target": {"data": {"type": target, "id": target_id}}}}})

    def signed(self, object_key: str, **params: Any) -> requests.Response:
        return self.get(f"/oss/v2/buckets/{BUCKET}/objects/{enc(object_key)}/signeds3upload", **params)

    def complete(self, object_key: str, body: dict[str, Any]) -> requests.Response:
        return self.post(f"/oss/v2/buckets/{BUCKET}/objects/{enc(object_key)}/signeds3upload", body)

    def upload(self, object_key: str, data: bytes, part_size: int = 5 * MIB) -> dict[str, Any]:
        """Upload ``data`` in parts of ``part_size``; returns the completion's objectDetails."""
        count = max(1, -(-len(data) // part_size))
        signed = self.signed(object_key, parts=count)
        assert signed.status_code == 200, signed.text
        etags = []
        for number, url in enumerate(signed.json()["urls"]):
            put = requests.put(url, data=data[number * part_size:(number + 1) * part_size])
            assert put.status_code == 200, put.text
            etags.append(put.headers["ETag"])
        done = self.complete(object_key, {"uploadKey": signed.json()["uploadKey"], "size": len(data), "eTags": etags})
        assert done.status_code == 200, done.text
        return done.json()

    def stored(self, project_id: str, folder_id: str, name: str, data: bytes, target: str = "folders") -> str:
        """Storage + upload: the storage urn, ready for an item or a version."""
        made = self.storage(project_id, name, folder_id, target)
        assert made.status_code == 201, made.text
        urn = made.json()["data"]["id"]
        self.upload(urn.split("/", 1)[1], data)
        return urn

    def create_item(self, project_id: str, folder_id: str, name: str, urn: str,
                    kind: str = "autodesk.bim360") -> requests.Response:
        return self.post(f"/data/v1/projects/{enc(project_id)}/items", {
            "jsonapi": {"version": "1.0"},
            "data": {"type": "items",
                     "attributes": {"displayName": name, "extension": {"type": f"items:{kind}:File", "version": "1.0"}},
                     "relationships": {"tip": {"data": {"type": "versions", "id": "1"}},
                                       "parent": {"data": {"type": "folders", "id": folder_id}}}},
            "included": [{"type": "versions", "id": "1",
                          "attributes": {"name": name,
                                         "extension": {"type": f"versions:{kind}:File", "version": "1.0"}},
                          "relationships": {"storage": {"data": {"type": "objects", "id": urn}}}}]})

    def create_version(self, project_id: str, item_id: str, name: str, urn: str) -> requests.Response:
        return self.post(f"/data/v1/projects/{enc(project_id)}/versions", {
            "jsonapi": {"version": "1.0"},
            "data": {"type": "versions",
                     "attributes": {"name": name,
                                    "extension": {"type": "versions:autodesk.bim360:File", "version": "1.0"}},
                     "relationships": {"item": {"data": {"type": "items", "id": item_id}},
                                       "storage": {"data": {"type": "objects", "id": urn}}}}})

    def create_folder(self, project_id: str, parent_id: str, name: str,
                      kind: str = "folders:autodesk.bim360:Folder") -> requests.Response:
        return self.post(f"/data/v1/projects/{enc(project_id)}/folders", {
            "jsonapi": {"version": "1.0"},
            "data": {"type": "folders", "attributes": {"name": name, "extension": {"type": kind, "version": "1.0"}},
                     "relationships": {"parent": {"data": {"type": "folders", "id": parent_id}}}}})


def _body(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@pytest.fixture
def writer(fresh_server: SimulatorServer) -> Writer:
    api = Writer(fresh_server)
    api.client_credentials(WRITE_SCOPES)
    return api


@pytest.fixture
def riverside(writer: Writer) -> tuple[str, str]:
    sim = writer.server.sim
    pid = sim.project_id("Riverside Tower")
    return pid, sim.folder_id(pid, ("Project Files", "Architecture"))


def test_multipart_upload_then_item_is_listed_with_its_bytes(writer: Writer, riverside: tuple[str, str]) -> None:
    sim = writer.server.sim
    pid, fid = riverside
    data = _body(11 * MIB + 321, seed=1)
    made = writer.storage(pid, "Tower Model.nwd", fid)
    assert made.status_code == 201
    validate(made.json(), DM, "Storage")
    urn = made.json()["data"]["id"]
    key = urn.removeprefix(f"urn:adsk.objects:os.object:{BUCKET}/")
    assert key.endswith(".nwd") and made.json()["data"]["relationships"]["target"]["data"]["id"] == fid

    signed = writer.signed(key, parts=3, minutesExpiration=10)
    assert signed.status_code == 200
    validate(signed.json(), OSS, "signeds3upload_response")
    assert len(signed.json()["urls"]) == 3
    assert signed.json()["urlExpiration"] == iso(sim.clock.now() + 600)
    etags = []
    for number, url in enumerate(signed.json()["urls"]):
        piece = data[number * 5 * MIB:(number + 1) * 5 * MIB]
        put = requests.put(url, data=piece)
        assert put.status_code == 200 and put.headers["ETag"] == f'"{hashlib.md5(piece).hexdigest()}"'
        etags.append(put.headers["ETag"])
    done = writer.complete(key, {"uploadKey": signed.json()["uploadKey"], "size": len(data), "eTags": etags})
    assert done.status_code == 200
    validate(done.json(), OSS, "objectDetails")
    assert (done.json()["objectId"], done.json()["size"], done.json()["sha1"]) == (urn, len(data), _sha1(data))

    # The completed object is readable with the read side's signeds3download before any item uses it.
    download = writer.ok(f"/oss/v2/buckets/{BUCKET}/objects/{enc(key)}/signeds3download")
    assert download["sha1"] == _sha1(data) and requests.get(download["url"]).content == data

    sim.advance_clock(60)
    created = writer.create_item(pid, fid, "Tower Model.nwd", urn)
    assert created.status_code == 201, created.text
    validate(created.json(), DM, "CreatedItem")
    item_id = created.json()["data"]["id"]
    tip = created.json()["included"][0]
    assert tip["relationships"]["storage"]["data"]["id"] == urn and tip["attributes"]["storageSize"] == len(data)

    # The read side: folder contents, rollups up to the root, ground truth, bytes and SHA-1.
    now = iso(sim.clock.now())
    contents = writer.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents")
    assert item_id in {e["id"] for e in contents["data"]}
    top = writer.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(sim.folder_id(pid, ('Project Files',)))}")
    folder = writer.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}")
    assert folder["data"]["attributes"]["lastModifiedTime"] == now
    assert top["data"]["attributes"]["lastModifiedTimeRollup"] == now
    assert top["data"]["attributes"]["lastModifiedTime"] != now  # only the rollup moves above
    assert sim.account.project(pid).root.rollup == sim.clock.now()  # type: ignore[union-attr]
    entry = next(e for e in sim.iter_files() if e.item_id == item_id)
    assert entry.path == ("Project Files", "Architecture") and entry.tip.name == "Tower Model.nwd"
    assert sim.file_bytes(entry.tip.id) == data and sim.sha1(entry.tip.id) == _sha1(data)
    assert writer.walk() == truth(sim)
    listed = requests.get(writer.base + "/_sim/files").json()["files"]
    assert {"item_id": item_id, "sha1": _sha1(data), "size": len(data)}.items() <= next(
        f for f in listed if f["item_id"] == item_id).items()


def test_new_version_and_new_folder(writer: Writer, riverside: tuple[str, str]) -> None:
    sim = writer.server.sim
    pid, fid = riverside
    first, second = _body(1000, seed=2), _body(2500, seed=3)
    first_urn = writer.stored(pid, fid, "notes.txt", first)
    item_id = writer.create_item(pid, fid, "notes.txt", first_urn).json()["data"]["id"]

    urn = writer.stored(pid, item_id, "notes v2.txt", second, target="items")
    made = writer.create_version(pid, item_id, "notes v2.txt", urn)
    assert made.status_code == 201, made.text
    validate(made.json(), DM, "CreatedVersion")
    assert made.json()["data"]["attributes"]["versionNumber"] == 2
    assert made.json()["included"][0]["id"] == item_id
    versions = writer.ok(f"/data/v1/projects/{enc(pid)}/items/{enc(item_id)}/versions")
    assert [v["attributes"]["name"] for v in versions["data"]] == ["notes v2.txt", "notes.txt"]
    tip = next(e.tip for e in sim.iter_files() if e.item_id == item_id)
    assert tip.number == 2 and sim.file_bytes(tip.id) == second
    assert sim.file_bytes(versions["data"][1]["id"]) == first

    folder = writer.create_folder(pid, fid, "Restored 2027-01-15")
    assert folder.status_code == 201, folder.text
    validate(folder.json(), DM, "Folder")
    new_id = folder.json()["data"]["id"]
    contents = writer.ok(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents", **{"filter[type]": "folders"})
    assert new_id in {e["id"] for e in contents["data"]}
    child = writer.create_folder(pid, new_id, "Details")
    assert child.status_code == 201
    placed = writer.create_item(pid, child.json()["data"]["id"], "a.txt", writer.stored(pid, new_id, "a.txt", first))
    assert placed.status_code == 201
    assert ("Project Files", "Architecture", "Restored 2027-01-15", "Details") in {e.path for e in sim.iter_files()}


def test_a_new_version_restores_a_deleted_item_and_its_folders(writer: Writer) -> None:
    sim = writer.server.sim
    pid = sim.project_id("Riverside Tower")
    details = sim.folder_id(pid, ("Project Files", "Architecture", "Details"))
    item = next(e for e in sim.iter_files() if e.tip.name == "Window Schedule.xlsx")
    sim.delete_folder(details)
    assert item.item_id not in {e.item_id for e in sim.iter_files()}
    data = _body(4096, seed=4)
    made = writer.create_version(pid, item.item_id, "Window Schedule.xlsx",
                                 writer.stored(pid, item.item_id, "Window Schedule.xlsx", data, target="items"))
    assert made.status_code == 201, made.text
    restored = next(e for e in sim.iter_files() if e.item_id == item.item_id)
    assert restored.path == ("Project Files", "Architecture", "Details") and sim.file_bytes(restored.tip.id) == data
    assert writer.walk() == truth(sim)
    siblings = {e.tip.name for e in sim.iter_files() if e.path == restored.path}
    assert siblings == {"Window Schedule.xlsx"}  # the folder's other deleted items stay deleted


def test_signed_urls_expire_and_the_upload_key_gets_fresh_ones(writer: Writer, riverside: tuple[str, str]) -> None:
    sim = writer.server.sim
    pid, fid = riverside
    key = writer.storage(pid, "late.bin", fid).json()["data"]["id"].split("/", 1)[1]
    data = _body(3000, seed=5)
    signed = writer.signed(key, minutesExpiration=1).json()
    forged = signed["urls"][0].replace("Signature=", "Signature=0")
    denied = requests.put(forged, data=data)
    assert denied.status_code == 403 and "<Code>AccessDenied</Code>" in denied.text
    sim.advance_clock(61)
    expired = requests.put(signed["urls"][0], data=data)
    assert expired.status_code == 403 and "Request has expired" in expired.text

    again = writer.signed(key, uploadKey=signed["uploadKey"], minutesExpiration=1)
    assert again.status_code == 200 and again.json()["uploadKey"] == signed["uploadKey"]
    assert requests.put(again.json()["urls"][0], data=data).status_code == 200
    done = writer.complete(key, {"uploadKey": signed["uploadKey"]})
    assert done.status_code == 200 and done.json()["sha1"] == _sha1(data)
    retried = writer.complete(key, {"uploadKey": signed["uploadKey"]})
    assert retried.status_code == 200 and retried.json() == done.json()
    late_part = requests.put(again.json()["urls"][0], data=data)
    assert late_part.status_code == 404 and "<Code>NoSuchUpload</Code>" in late_part.text

    # An upload left uncompleted for 24 hours is discarded.
    other = writer.storage(pid, "abandoned.bin", fid).json()["data"]["id"].split("/", 1)[1]
    stale = writer.signed(other, minutesExpiration=60).json()
    assert requests.put(stale["urls"][0], data=data).status_code == 200
    sim.advance_clock(24 * 3600)
    writer.client_credentials(WRITE_SCOPES)  # the old token expired too
    assert writer.signed(other, uploadKey=stale["uploadKey"]).status_code == 400
    assert requests.put(stale["urls"][0], data=data).status_code == 403  # its URL expired long ago
    gone = writer.complete(other, {"uploadKey": stale["uploadKey"]})
    assert gone.status_code == 400
    validate(gone.json(), OSS, "reason")


def test_wrong_size_checksum_or_small_part_is_refused(writer: Writer, riverside: tuple[str, str]) -> None:
    pid, fid = riverside
    urn = writer.storage(pid, "checked.bin", fid).json()["data"]["id"]
    key = urn.split("/", 1)[1]
    data = _body(6 * MIB, seed=6)
    signed = writer.signed(key, parts=2).json()
    small = [data[:MIB], data[MIB:]]  # a first part under S3's 5 MiB minimum
    tags = [requests.put(url, data=part).headers["ETag"] for url, part in zip(signed["urls"], small)]
    too_small = writer.complete(key, {"uploadKey": signed["uploadKey"]})
    assert too_small.status_code == 400 and "minimum" in too_small.json()["reason"]

    parts = [data[:5 * MIB], data[5 * MIB:]]
    tags = [requests.put(url, data=part).headers["ETag"] for url, part in zip(signed["urls"], parts)]
    for wrong in ({"size": len(data) + 1}, {"eTags": list(reversed(tags))}, {"eTags": tags[:1]}):
        refused = writer.complete(key, {"uploadKey": signed["uploadKey"], **wrong})
        assert refused.status_code == 400, wrong
        validate(refused.json(), OSS, "reason")
    assert writer.complete(key, {"uploadKey": "not-a-key"}).status_code == 400
    plain = writer.session.post(f"{writer.base}/oss/v2/buckets/{BUCKET}/objects/{enc(key)}/signeds3upload",
                                data="uploadKey", headers={"Authorization": f"Bearer {writer.token}",
                                                           "Content-Type": "text/plain"})
    assert plain.status_code == 400

    # Nothing was stored by the refusals: an item cannot use the object yet.
    early = writer.create_item(pid, fid, "checked.bin", urn)
    assert early.status_code == 400
    validate_response(early.json(), DM, "400-general")
    jsonschema.validate(early.json(), ERROR_ENVELOPE)
    done = writer.complete(key, {"uploadKey": signed["uploadKey"], "size": len(data), "eTags": tags})
    assert done.status_code == 200 and done.json()["sha1"] == _sha1(data)
    assert writer.create_item(pid, fid, "checked.bin", urn).status_code == 201
    # Once a version holds it, the object cannot be written or used again.
    assert writer.signed(key).status_code == 403
    assert writer.create_item(pid, fid, "other.bin", urn).status_code == 400


def test_bad_requests_and_conflicts(writer: Writer, riverside: tuple[str, str]) -> None:
    sim = writer.server.sim
    pid, fid = riverside
    root = sim.account.project(pid).root.id  # type: ignore[union-attr]
    assert writer.storage(pid, "x.bin", "urn:adsk.wipprod:fs.folder:co.nope").status_code == 404
    assert writer.signed("never-reserved.bin").status_code == 403
    assert writer.get(f"/oss/v2/buckets/other-bucket/objects/{enc('a.bin')}/signeds3upload").status_code == 404
    key = writer.storage(pid, "p.bin", fid).json()["data"]["id"].split("/", 1)[1]
    for params in ({"parts": 26}, {"parts": 0}, {"minutesExpiration": 61}, {"firstPart": "x"}):
        refused = writer.signed(key, **params)
        assert refused.status_code == 400, params
        validate(refused.json(), OSS, "reason")

    taken = writer.create_folder(pid, fid, "details")  # "Details" exists: names compare without case
    assert taken.status_code == 409
    validate_response(taken.json(), DM, "409-general")
    jsonschema.validate(taken.json(), ERROR_ENVELOPE)
    in_root = writer.create_folder(pid, root, "Top Level")  # ACC: folders go inside a top folder
    assert in_root.status_code == 403 and in_root.json()["errors"][0]["code"] == "FORBIDDEN"
    assert writer.create_folder(pid, fid, "x", kind="folders:autodesk.core:Folder").status_code == 400
    assert writer.create_folder(pid, fid, "a/b").status_code == 400
    deep = sim.account.folder(fid)
    while len(deep.path) < 25:
        deep = sim.account.add_folder(deep, f"L{len(deep.path)}")
    too_deep = writer.create_folder(pid, deep.id, "too deep")
    assert too_deep.status_code == 400 and "25 levels" in too_deep.json()["errors"][0]["detail"]

    urn = writer.stored(pid, fid, "Level 01 Floor Plan.dwg", _body(100, seed=7))
    clash = writer.create_item(pid, fid, "level 01 floor plan.DWG", urn)
    assert clash.status_code == 409
    assert writer.create_item(pid, fid, "fusion.dwg", urn, kind="autodesk.core").status_code == 400
    copied = writer.post(f"/data/v1/projects/{enc(pid)}/items", {"data": {"type": "items"}}, copyFrom="v")
    assert copied.status_code == 400
    assert writer.post(f"/data/v1/projects/{enc(pid)}/folders", {"data": {"type": "items"}}).status_code == 400


def test_scopes_are_required(fresh_server: SimulatorServer, riverside: tuple[str, str], writer: Writer) -> None:
    pid, fid = riverside
    key = writer.storage(pid, "s.bin", fid).json()["data"]["id"].split("/", 1)[1]
    reader = Writer(fresh_server)
    reader.client_credentials("data:read")
    denied = reader.storage(pid, "s.bin", fid)
    assert denied.status_code == 403 and denied.json()["errorCode"] == "AUTH-010"
    validate_response(denied.json(), DM, "403-general")
    assert reader.create_folder(pid, fid, "New").status_code == 403
    creator = Writer(fresh_server)
    creator.client_credentials("data:read data:create")  # the OSS upload needs data:write as well
    assert creator.storage(pid, "s2.bin", fid).status_code == 201
    assert creator.signed(key).status_code == 403
    assert creator.complete(key, {"uploadKey": "k"}).status_code == 403


@pytest.fixture
def acc_full() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as server:
        yield server


def test_a_user_without_permission_on_the_folder_gets_403(acc_full: SimulatorServer) -> None:
    sim = acc_full.sim
    pid = sim.project_id("Riverside Tower")
    admin_only = sim.folder_id(pid, ("Project Files",))
    open_folder = sim.folder_id(pid, ("Project Files", "Architecture"))
    viewer = Writer(acc_full, sim.user_tokens(WRITE_SCOPES, user="viewer")["access_token"])
    refused = viewer.storage(pid, "v.bin", admin_only)
    assert refused.status_code == 403
    validate_response(refused.json(), DM, "403-general")
    jsonschema.validate(refused.json(), ERROR_ENVELOPE)
    assert viewer.create_folder(pid, admin_only, "Mine").status_code == 403
    assert viewer.create_folder(pid, sim.folder_id(pid, ("Project Files", "Contracts")), "Mine").status_code == 403
    assert viewer.create_folder(pid, open_folder, "Mine").status_code == 201
    urn = viewer.stored(pid, open_folder, "v.bin", _body(10, seed=8))
    assert viewer.create_item(pid, open_folder, "v.bin", urn).status_code == 201

    admin = Writer(acc_full, sim.user_tokens(WRITE_SCOPES)["access_token"])
    assert admin.create_folder(pid, admin_only, "Admins").status_code == 201
    app = Writer(acc_full)
    app.client_credentials(WRITE_SCOPES)
    acting = app.session.post(f"{app.base}/data/v1/projects/{enc(pid)}/storage",
                              headers={"Authorization": f"Bearer {app.token}", "x-user-id": "SIMV1EWER2NA"},
                              json={"data": {"type": "objects", "attributes": {"name": "a.bin"}, "relationships": {
                                  "target": {"data": {"type": "folders", "id": admin_only}}}}})
    assert acting.status_code == 403  # a 2-legged app acting for the viewer has the viewer's rights
    assert app.storage(pid, "a.bin", admin_only).status_code == 201


def _fault(writer: Writer, endpoint: str, **extra: Any) -> None:
    answer = requests.post(writer.base + "/_sim/faults", json={"endpoint": endpoint, "status": 503, **extra})
    assert answer.status_code == 200, answer.text


def test_faults_hit_each_write_endpoint(writer: Writer, riverside: tuple[str, str]) -> None:
    sim = writer.server.sim
    pid, fid = riverside
    data = _body(2048, seed=9)

    def twice(endpoint: str, call: Any) -> requests.Response:
        _fault(writer, endpoint)
        assert call().status_code == 503
        answer = call()
        assert answer.status_code < 300, (endpoint, answer.text)
        return answer  # type: ignore[no-any-return]

    urn = twice("storage", lambda: writer.storage(pid, "f.bin", fid)).json()["data"]["id"]
    key = urn.split("/", 1)[1]
    signed = twice("signeds3upload", lambda: writer.signed(key)).json()
    twice("upload", lambda: requests.put(signed["urls"][0], data=data))
    sim.inject_fault("upload", kind="reset")
    with pytest.raises(requests.ConnectionError):
        requests.put(signed["urls"][0], data=data)
    twice("complete_upload", lambda: writer.complete(key, {"uploadKey": signed["uploadKey"], "size": len(data)}))
    item = twice("create_item", lambda: writer.create_item(pid, fid, "f.bin", urn)).json()["data"]["id"]
    twice("create_folder", lambda: writer.create_folder(pid, fid, "Faulty"))
    urn2 = writer.stored(pid, item, "f.bin", data, target="items")
    twice("create_version", lambda: writer.create_version(pid, item, "f.bin", urn2))
    counted = sim.stats()["requests"]
    for endpoint in ("storage", "signeds3upload", "upload", "complete_upload", "create_item", "create_folder",
                     "create_version"):
        assert counted[endpoint] >= 2, endpoint


def test_rate_limits_of_the_write_classes() -> None:
    """At rate_scale 0.004: create_folder allows 1 call (50 rpm), storage 1 (300 rpm), and every
    OSS call (signeds3download, signeds3upload, completion) shares 4 (1000 rpm)."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0.004, clock=Clock(start=1_800_000_000.0))) as server:
        writer = Writer(server)
        writer.client_credentials(WRITE_SCOPES)
        sim = server.sim
        pid = sim.project_id("Riverside Tower")
        fid = sim.folder_id(pid, ("Project Files",))
        assert writer.create_folder(pid, fid, "One").status_code == 201
        limited = writer.create_folder(pid, fid, "Two")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        assert limited.json() == {"developerMessage": "Quota limit exceeded."}
        made = writer.storage(pid, "r.bin", fid)
        assert made.status_code == 201  # its own budget
        key = made.json()["data"]["id"].split("/", 1)[1]
        tip = next(e.tip for e in sim.iter_files() if e.tip.name == "Pinout.pdf")
        tip_key = (tip.storage_urn or "").split("/", 1)[1]
        download = f"/oss/v2/buckets/{BUCKET}/objects/{enc(tip_key)}/signeds3download"
        for _ in range(3):
            assert writer.get(download).status_code == 200
        signed = writer.signed(key)
        assert signed.status_code == 200  # the fourth OSS call
        assert requests.put(signed.json()["urls"][0], data=b"abc").status_code == 200  # S3: not limited
        over = writer.complete(key, {"uploadKey": signed.json()["uploadKey"]})
        assert over.status_code == 429
        sim.advance_clock(int(over.headers["Retry-After"]))
        assert writer.complete(key, {"uploadKey": signed.json()["uploadKey"]}).status_code == 200
        sim.advance_clock(int(limited.headers["Retry-After"]))
        assert writer.create_folder(pid, fid, "Two").status_code == 201
