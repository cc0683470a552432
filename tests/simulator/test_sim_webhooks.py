"""The simulator's Webhooks service over HTTP: the hooks and tokens API answered as Autodesk's spec
says (each answer validated against tests/specs/aps-openapi/webhooks.yaml), and signed callbacks of
every change delivered to a real HTTP receiver in the test, with the duplicate, reorder, delay, drop,
failing-URL switches, deactivation after failed events and automatic reactivation."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer

from .sim_helpers import _spec, enc, validate, validate_response

SPEC = "webhooks.yaml"
BASE = "/webhooks/v1"
DAY = 86400
SECRET = "first-secret-0123456789"
DM_EVENTS = [e for e in _spec(SPEC)["components"]["schemas"]["Events"]["enum"] if e.startswith("dm.")]


# ---- a real callback receiver
class Receiver:
    """An HTTP server on a free port that records every POST and answers as told: ``status[path]``
    (200 by default); while ``release`` is clear, requests wait (to test timeouts and asynchrony)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes, float]] = []
        self.status: dict[str, int] = {}
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        self.answered = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                           time.monotonic()))
                receiver.arrived.set()
                receiver.release.wait(30)
                try:
                    self.send_response(receiver.status.get(self.path, 200))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the simulator gave up waiting (a timeout test)
                    pass
                receiver.answered.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/cb") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str | None = None) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return [(headers, body) for p, headers, body, _at in self.calls if path is None or p == path]

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received(path)]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    """A private demo account on a frozen clock (token changes and reactivation follow it)."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as running:
        yield running
        running.sim.webhooks.drain(30)


# ---- a small Webhooks API client
class Client:
    def __init__(self, server: SimulatorServer, scope: str = "data:read data:write", token: str | None = None):
        self.server, self.sim, self.base, self.scope = server, server.sim, server.base_url, scope
        self.token = token or self._token()

    def _token(self) -> str:
        answer = requests.post(f"{self.base}/authentication/v2/token",
                               data={"grant_type": "client_credentials", "scope": self.scope},
                               auth=(self.server.client_id, self.server.client_secret))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock, then take a fresh token (the old one may have expired)."""
        self.sim.advance_clock(seconds)
        self.token = self._token()

    def call(self, method: str, path: str, body: Any = None, region: str | None = None,
             **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if region is not None:
            headers["x-ads-region"] = region
        return requests.request(method, self.base + BASE + path, json=body, params=params or None, headers=headers)

    def create_all(self, folder: str, url: str, **extra: Any) -> requests.Response:
        return self.call("POST", "/systems/data/hooks", {"callbackUrl": url, "scope": {"folder": folder}, **extra})

    def create(self, event: str, folder: str, url: str, **extra: Any) -> requests.Response:
        return self.call("POST", f"/systems/data/events/{event}/hooks",
                         {"callbackUrl": url, "scope": {"folder": folder}, **extra})

    def hook(self, event: str, hook_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/systems/data/events/{event}/hooks/{hook_id}")
        assert answer.status_code == 200, answer.text
        validate(answer.json(), SPEC, "HookDetails")
        return answer.json()


def documented(path: str, method: str) -> set[int]:
    """The status codes the spec documents for an operation."""
    return {int(code) for code in _spec(SPEC)["paths"][path][method]["responses"]}


def check_error(answer: requests.Response, status: int, code: str | None = None) -> None:
    """An error in the Webhooks envelope, valid against the spec's response of that status."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    if f"{status}-general" in _spec(SPEC)["components"]["responses"]:
        validate_response(body, SPEC, f"{status}-general")
    assert isinstance(body["id"], str) and body["status"] == status and body["detail"], body
    if code is not None:
        assert body["code"] == code, body


def sign(secret: str, body: bytes) -> str:
    return "sha1hash=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@pytest.fixture
def client(server: SimulatorServer) -> Client:
    return Client(server)


@pytest.fixture
def places(server: SimulatorServer) -> dict[str, str]:
    sim = server.sim
    pid = sim.project_id("Riverside Tower")
    return {"project": pid, "root": sim.account.project(pid).root.id,  # type: ignore[union-attr]
            "files": sim.folder_id(pid, ("Project Files",)),
            "arch": sim.folder_id(pid, ("Project Files", "Architecture")),
            "details": sim.folder_id(pid, ("Project Files", "Architecture", "Details")),
            "mep": sim.folder_id(pid, ("Project Files", "MEP"))}


def version_hook(answer: requests.Response) -> str:
    assert answer.status_code == 201, answer.text
    return next(h["hookId"] for h in answer.json()["hooks"] if h["event"] == "dm.version.added")


# ---- the API, validated against the spec
def test_hooks_and_tokens_answer_as_the_spec_says(client: Client, receiver: Receiver,
                                                  places: dict[str, str]) -> None:
    answer = client.call("POST", "/tokens", {"token": SECRET})
    assert answer.status_code == 200 and answer.status_code in documented("/webhooks/v1/tokens", "post")
    validate(answer.json(), SPEC, "Token")
    check_error(client.call("POST", "/tokens", {"token": "another"}), 400)  # "Secret token already exists"

    attribute = {"aps_mirror": "mirror_a", "conn_id": "autodesk_default"}
    made = client.create_all(places["root"], receiver.url(), autoReactivateHook=True, hookAttribute=attribute)
    assert made.status_code == 201 and made.headers["Location"].endswith("/webhooks/v1/systems/data/hooks")
    validate(made.json(), SPEC, "Hook")
    hooks = made.json()["hooks"]
    assert sorted(h["event"] for h in hooks) == sorted(DM_EVENTS)
    assert all(h["hookAttribute"] == attribute and h["autoReactivateHook"] is True and h["status"] == "active"
               and h["scope"] == {"folder": places["root"]} and h["creatorType"] == "Application"
               and h["createdBy"] == client.server.client_id for h in hooks)
    again = client.create_all(places["root"], receiver.url())
    check_error(again, 409, "CONFLICT_ERROR")
    assert client.create_all(places["root"], receiver.url("/other")).status_code == 201  # another callback

    one = client.create("dm.version.added", places["mep"], receiver.url())
    assert one.status_code == 201 and one.content == b""
    assert one.status_code in documented("/webhooks/v1/systems/{system}/events/{event}/hooks", "post")
    hook_id = one.headers["Location"].rsplit("/", 1)[1]
    assert one.headers["Location"].endswith(f"/webhooks/v1/systems/data/events/dm.version.added/hooks/{hook_id}")
    assert client.create("dm.version.added", places["mep"], receiver.url()).status_code == 409

    for path in ("/hooks", "/systems/data/hooks", "/systems/data/events/dm.version.added/hooks"):
        listed = client.call("GET", path)
        assert listed.status_code == 200, listed.text
        validate(listed.json(), SPEC, "Hooks")
    assert len(client.call("GET", "/hooks").json()["data"]) == 2 * len(DM_EVENTS) + 1
    scoped = client.call("GET", "/systems/data/events/dm.version.added/hooks", scopeName="folder",
                         scopeValue=places["mep"]).json()["data"]
    assert [h["hookId"] for h in scoped] == [hook_id]

    details = client.hook("dm.version.added", hook_id)
    assert details["urn"] == f"urn:adsk.webhooks:events.hook:{hook_id}" and "hookAttribute" not in details
    patched = client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                          {"status": "inactive", "autoReactivateHook": True, "hookAttribute": attribute,
                           "filter": "$[?(@.ext=='txt')]", "hookExpiry": "2099-01-01T00:00:00.000Z",
                           "token": "per-hook"})
    assert patched.status_code == 200 and patched.status_code in documented(
        "/webhooks/v1/systems/{system}/events/{event}/hooks/{hook_id}", "patch")
    details = client.hook("dm.version.added", hook_id)
    assert (details["status"], details["autoReactivateHook"], details["hookAttribute"], details["filter"],
            details["hookExpiry"]) == ("inactive", True, attribute, "$[?(@.ext=='txt')]", "2099-01-01T00:00:00.000Z")
    assert "token" not in details  # secrets are never answered
    assert client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                       {"filter": None, "hookAttribute": None, "hookExpiry": None}).status_code == 200
    assert not {"filter", "hookAttribute", "hookExpiry"} & set(client.hook("dm.version.added", hook_id))
    check_error(client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                            {"callbackUrl": "http://elsewhere/"}), 400)
    check_error(client.call("GET", "/hooks", status="paused"), 400)
    assert [h["hookId"] for h in client.call("GET", "/hooks", status="inactive").json()["data"]] == [hook_id]

    gone = client.call("DELETE", f"/systems/data/events/dm.version.added/hooks/{hook_id}")
    assert gone.status_code == 204 and gone.status_code in documented(
        "/webhooks/v1/systems/{system}/events/{event}/hooks/{hook_id}", "delete")
    check_error(client.call("GET", f"/systems/data/events/dm.version.added/hooks/{hook_id}"), 404, "NOT_FOUND")
    check_error(client.call("POST", "/systems/data/events/dm.nothing/hooks",
                            {"callbackUrl": receiver.url(), "scope": {"folder": places["mep"]}}), 400)
    check_error(client.create_all("urn:adsk.wipprod:fs.folder:co.nope", receiver.url()), 404)
    check_error(client.call("POST", "/systems/data/hooks", {"scope": {"folder": places["mep"]}}), 400)
    check_error(client.create_all(places["mep"], receiver.url(), hookAttribute={"x": "y" * 1100}), 400)
    check_error(client.create_all(places["mep"], receiver.url(), filter="$..ext"), 400)

    assert client.call("PUT", "/tokens/@me", {"token": "second"}).status_code == 204
    assert client.call("DELETE", "/tokens/@me").status_code == 204
    check_error(client.call("PUT", "/tokens/@me", {"token": "third"}), 404)


def test_regions_keep_hooks_apart(client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    sim = client.sim
    hub = sim.add_hub("Europe", region="EMEA")
    pid = sim.add_project("Bridge EU", hub_id=hub)
    folder = sim.folder_id(pid, ("Project Files",))
    check_error(client.create_all(folder, receiver.url()), 400)  # an EMEA folder needs x-ads-region: EMEA
    made = client.call("POST", "/systems/data/hooks", {"callbackUrl": receiver.url(), "scope": {"folder": folder}},
                       region="EMEA")
    assert made.status_code == 201, made.text
    assert client.call("GET", "/hooks").status_code == 204  # "No webhooks exist" in the default region, US
    assert client.call("GET", "/hooks", region="emea").status_code == 200
    assert client.call("GET", "/hooks", region="AUS").status_code == 204
    by_query = requests.get(client.base + BASE + "/hooks", params={"region": "EMEA"},
                            headers={"Authorization": f"Bearer {client.token}"})
    assert by_query.status_code == 200 and len(by_query.json()["data"]) == len(DM_EVENTS)
    check_error(client.call("GET", "/hooks", region="MARS"), 400)
    hook_id = made.json()["hooks"][0]["hookId"]
    event = made.json()["hooks"][0]["event"]
    check_error(client.call("GET", f"/systems/data/events/{event}/hooks/{hook_id}"), 404)
    sim.add_file(pid, folder, "eu.pdf")
    assert sim.webhooks.drain(30)
    assert [e["hook"]["event"] for e in receiver.events()] == ["dm.version.added"]


def test_lists_page_through_links_next(client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    client.sim.webhooks.configure(page_size=3)
    made = client.create_all(places["root"], receiver.url())
    assert made.status_code == 201
    seen: list[str] = []
    answer = client.call("GET", "/systems/data/hooks")
    while True:
        assert answer.status_code == 200, answer.text
        validate(answer.json(), SPEC, "Hooks")
        assert len(answer.json()["data"]) <= 3
        seen += [h["hookId"] for h in answer.json()["data"]]
        following = answer.json()["links"].get("next")
        if following is None:
            break
        assert following.startswith("/systems/data/hooks?")  # relative to /webhooks/v1, as Autodesk gives it
        answer = requests.get(client.base + BASE + following, headers={"Authorization": f"Bearer {client.token}"})
    assert sorted(seen) == sorted(h["hookId"] for h in made.json()["hooks"])
    check_error(client.call("GET", "/hooks", pageState="garbage!"), 400)


def test_who_may_call(server: SimulatorServer, receiver: Receiver, places: dict[str, str]) -> None:
    sim = server.sim
    nobody = requests.get(server.base_url + BASE + "/hooks")
    assert nobody.status_code == 401 and 401 in documented("/webhooks/v1/hooks", "get")
    reader = Client(server, scope="data:read")
    assert reader.create_all(places["root"], receiver.url()).status_code == 403  # data:write too
    assert reader.call("GET", "/hooks").status_code == 204
    user = Client(server, token=str(sim.user_tokens("data:read data:write")["access_token"]))
    made = user.create_all(places["root"], receiver.url())
    assert made.status_code == 201, made.text
    assert {h["creatorType"] for h in made.json()["hooks"]} == {"O2User"}
    assert {h["createdBy"] for h in made.json()["hooks"]} == {sim.account.user.user_id}
    assert user.call("GET", "/app/hooks").status_code == 403  # an app's listing needs a 2-legged token
    assert Client(server).call("GET", "/hooks").status_code == 204  # the app does not see the user's hooks
    read_only_user = Client(server, token=str(sim.user_tokens("data:read")["access_token"]))
    assert read_only_user.call("GET", "/systems/data/events/dm.version.added/hooks").status_code == 200
    assert read_only_user.call("POST", "/tokens", {"token": "x"}).status_code == 403


def test_a_user_without_access_to_the_folder_is_refused(receiver: Receiver) -> None:
    with SimulatorServer(Simulator(seed="acc-full", rate_scale=0)) as running:
        sim = running.sim
        pid = sim.project_id("Riverside Tower")
        admin_only = sim.folder_id(pid, ("Project Files",))
        viewer = Client(running, token=str(sim.user_tokens("data:read data:write", user="viewer")["access_token"]))
        check_error(viewer.create_all(admin_only, receiver.url()), 403, "FORBIDDEN")
        assert Client(running).create_all(admin_only, receiver.url()).status_code == 201


# ---- deliveries
def test_a_change_under_the_scope_is_delivered_signed_and_one_outside_is_not(
        client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    sim = client.sim
    assert client.call("POST", "/tokens", {"token": SECRET}).status_code == 200
    attribute = {"aps_mirror": "mirror_a", "conn_id": "autodesk_default"}
    hook_id = version_hook(client.create_all(places["arch"], receiver.url(), autoReactivateHook=True,
                                             hookAttribute=attribute))
    receiver.release.clear()  # the callback is held: the change must return before it is answered
    item_id = sim.add_file(places["project"], places["details"], "Detail 9.dwg", size=321)
    assert receiver.arrived.wait(30) and not receiver.answered.is_set()  # delivered in the background
    receiver.release.set()
    sim.add_file(places["project"], places["mep"], "Elsewhere.dwg")  # outside the scope: never delivered
    assert sim.webhooks.drain(30)

    [(headers, body)] = receiver.received()
    assert headers["content-type"] == "application/json"
    assert headers["x-adsk-signature"] == sign(SECRET, body)
    assert headers["x-adsk-signature"] != sign("another-secret", body)
    assert headers["x-adsk-delivery-id"]
    event = json.loads(body)
    version = sim.account.item(item_id).tip
    pid, hub = places["project"], sim.account.project(places["project"]).hub.id
    assert event["version"] == "1.0" and event["resourceUrn"] == version.id
    assert {k: event["hook"][k] for k in ("hookId", "event", "system", "callbackUrl", "hookAttribute", "scope",
                                           "status", "autoReactivateHook", "tenant", "creatorType")} == {
        "hookId": hook_id, "event": "dm.version.added", "system": "data", "callbackUrl": receiver.url(),
        "hookAttribute": attribute, "scope": {"folder": places["arch"]}, "status": "active",
        "autoReactivateHook": True, "tenant": places["arch"], "creatorType": "Application"}
    validate(event["hook"], SPEC, "HookDetails")
    payload = event["payload"]
    assert {k: payload[k] for k in ("lineageUrn", "source", "version", "name", "ext", "sizeInBytes",
                                    "parentFolderUrn", "project", "tenant", "state", "hidden")} == {
        "lineageUrn": item_id, "source": version.id, "version": "1", "name": "Detail 9.dwg", "ext": "dwg",
        "sizeInBytes": 321, "parentFolderUrn": places["details"], "project": pid.removeprefix("b."),
        "tenant": hub.removeprefix("b."), "state": "CONTENT_AVAILABLE", "hidden": False}
    assert [a["urn"] for a in payload["ancestors"]] == [places["root"], places["files"], places["arch"],
                                                        places["details"]]
    assert payload["contentURL"] == version.storage_urn
    [logged] = [d for d in sim.webhooks.deliveries() if d["outcome"] == "delivered"]
    assert (logged["status"], logged["attempt"], logged["event"], logged["hook_id"]) == (200, 1, "dm.version.added",
                                                                                         hook_id)
    assert logged["body"].encode() == body and logged["delivery_id"] == headers["x-adsk-delivery-id"]


def test_every_change_of_the_change_api_raises_its_event(client: Client, receiver: Receiver,
                                                         places: dict[str, str]) -> None:
    sim = client.sim
    pid = places["project"]
    assert client.create_all(places["root"], receiver.url()).status_code == 201
    assert client.create_all(places["arch"], receiver.url("/arch")).status_code == 201

    def control(method: str, path: str, **body: Any) -> dict[str, Any]:
        answer = requests.request(method, client.base + path, json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    item = control("POST", "/_sim/files", project_id=pid, folder_id=places["details"], name="n.dwg", size=10)["item_id"]
    control("POST", f"/_sim/items/{enc(item)}/versions", size=20)
    control("PATCH", f"/_sim/items/{enc(item)}", name="renamed.dwg")
    control("PATCH", f"/_sim/items/{enc(item)}", folder_id=places["mep"])  # out of Architecture
    control("DELETE", f"/_sim/items/{enc(item)}")
    control("POST", f"/_sim/items/{enc(item)}/restore")
    folder = control("POST", "/_sim/folders", project_id=pid, parent_folder_id=places["mep"], name="New")["folder_id"]
    control("PATCH", f"/_sim/folders/{enc(folder)}", name="Newer")
    control("PATCH", f"/_sim/folders/{enc(folder)}", parent_folder_id=places["details"])  # into Architecture
    control("DELETE", f"/_sim/folders/{enc(folder)}")
    churned = {c["item_id"] for c in sim.churn(1.0, 1, seed=1)["changes"]}  # a new file or a new version
    writer = Client(client.server, scope="data:read data:create")
    created = requests.post(f"{client.base}/data/v1/projects/{enc(pid)}/folders", headers={
        "Authorization": f"Bearer {writer.token}"}, json={"jsonapi": {"version": "1.0"}, "data": {
            "type": "folders", "attributes": {"name": "Via API", "extension": {
                "type": "folders:autodesk.bim360:Folder", "version": "1.0"}},
            "relationships": {"parent": {"data": {"type": "folders", "id": places["arch"]}}}}})
    assert created.status_code == 201, created.text
    assert sim.webhooks.drain(30)

    at_root = [(e["hook"]["event"], e["resourceUrn"]) for e in receiver.events("/cb")]
    versions = [v.id for v in sim.account.item(item).versions]
    assert at_root[:10] == [("dm.version.added", versions[0]), ("dm.version.added", versions[1]),
                            ("dm.version.added", versions[2]), ("dm.version.moved", versions[2]),
                            ("dm.version.deleted", versions[3]), ("dm.version.added", versions[4]),
                            ("dm.folder.added", folder), ("dm.folder.modified", folder),
                            ("dm.folder.moved", folder), ("dm.folder.deleted", folder)]
    [churn] = receiver.events("/cb")[10:-1]  # one folder of this project changed
    assert churn["hook"]["event"] == "dm.version.added" and churn["payload"]["lineageUrn"] in churned
    assert receiver.events("/cb")[-1]["hook"]["event"] == "dm.folder.added"
    assert receiver.events("/cb")[-1]["payload"]["name"] == "Via API"
    moved = receiver.events("/cb")[3]["payload"]
    assert moved["parentFolderUrn"] == places["mep"]
    assert moved["context"] == {"operation": "Move", "sourceParentFolderUrn": places["details"]}
    # A hook on Architecture hears what happens below it, "moved.out" when an item leaves it and
    # "moved" when a folder comes in; nothing that happens only in MEP.
    at_arch = [e["hook"]["event"] for e in receiver.events("/arch") if e["payload"].get("lineageUrn") not in churned]
    assert at_arch == ["dm.version.added", "dm.version.added", "dm.version.added", "dm.version.moved.out",
                       "dm.folder.moved", "dm.folder.deleted", "dm.folder.added"]


def test_a_token_change_signs_with_the_old_token_until_the_delay_passes(client: Client, receiver: Receiver,
                                                                         places: dict[str, str]) -> None:
    sim = client.sim
    assert client.call("POST", "/tokens", {"token": SECRET}).status_code == 200
    hook_id = version_hook(client.create_all(places["root"], receiver.url()))

    def signed_with() -> str | None:
        sim.add_file(places["project"], places["mep"], f"f{len(receiver.received())}.txt")
        assert sim.webhooks.drain(30)
        headers, body = receiver.received()[-1]
        signature = headers.get("x-adsk-signature")
        for secret in (SECRET, "second-secret", "per-hook-secret"):
            if signature == sign(secret, body):
                return secret
        assert signature is None, signature
        return None

    assert signed_with() == SECRET
    assert client.call("PUT", "/tokens/@me", {"token": "second-secret"}).status_code == 204
    assert signed_with() == SECRET  # Autodesk: "up to 10 minutes" before the change applies
    client.advance(599)
    assert signed_with() == SECRET
    client.advance(1)
    assert signed_with() == "second-secret"
    # A hook's own token wins over the app's, after the same delay.
    assert client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                       {"token": "per-hook-secret"}).status_code == 200
    assert signed_with() == "second-secret"
    client.advance(600)
    assert signed_with() == "per-hook-secret"
    assert client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                       {"token": None}).status_code == 200
    assert client.call("DELETE", "/tokens/@me").status_code == 204
    client.advance(600)
    assert signed_with() is None  # no secret at all: no signature


def test_duplicates_deliver_the_same_event_again_under_another_id(client: Client, receiver: Receiver,
                                                                 places: dict[str, str]) -> None:
    sim = client.sim
    assert client.call("POST", "/tokens", {"token": SECRET}).status_code == 200
    version_hook(client.create_all(places["root"], receiver.url()))
    sim.webhooks.configure(duplicate=1.0)
    sim.add_file(places["project"], places["mep"], "twice.pdf")
    assert sim.webhooks.drain(30)
    (first_headers, first), (second_headers, second) = receiver.received()
    assert first == second and first_headers["x-adsk-signature"] == second_headers["x-adsk-signature"]
    # Another delivery, not a replay: a receiver that refuses replays still accepts it.
    assert first_headers["x-adsk-delivery-id"] != second_headers["x-adsk-delivery-id"]
    assert sorted(d["duplicate"] for d in sim.webhooks.deliveries()) == [False, True]


def test_reordering_shuffles_a_window_with_the_seed(client: Client, receiver: Receiver,
                                                    places: dict[str, str]) -> None:
    sim = client.sim
    version_hook(client.create_all(places["root"], receiver.url()))
    sim.webhooks.configure(reorder_window=4)
    sim.webhooks.seed(7)
    names = [f"{letter}.pdf" for letter in "abcd"]
    for name in names:
        sim.add_file(places["project"], places["mep"], name)
    assert sim.webhooks.drain(30)
    expected = list(names)
    random.Random(7).shuffle(expected)
    assert expected != names  # the seed really reorders
    assert [e["payload"]["name"] for e in receiver.events()] == expected


def test_drops_and_delays(client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    sim = client.sim
    version_hook(client.create_all(places["root"], receiver.url()))
    sim.webhooks.configure(drop_next=2)
    for name in ("lost1.pdf", "lost2.pdf", "kept.pdf"):
        sim.add_file(places["project"], places["mep"], name)
    assert sim.webhooks.drain(30)
    assert [e["payload"]["name"] for e in receiver.events()] == ["kept.pdf"]
    assert [d["outcome"] for d in sim.webhooks.deliveries()] == ["dropped", "dropped", "delivered"]
    sim.webhooks.configure(drop=1.0)
    sim.add_file(places["project"], places["mep"], "never.pdf")
    assert sim.webhooks.drain(30) and len(receiver.received()) == 1

    sim.webhooks.configure(drop=0.0, delay=0.3)
    changed = time.monotonic()
    sim.add_file(places["project"], places["mep"], "late.pdf")
    assert sim.webhooks.drain(30)
    assert receiver.calls[-1][3] - changed >= 0.3  # not before the delay


def test_failed_events_make_the_hook_inactive_and_later_events_are_lost(client: Client, receiver: Receiver,
                                                                        places: dict[str, str]) -> None:
    sim = client.sim
    hook_id = version_hook(client.create_all(places["root"], receiver.url("/broken")))
    receiver.status["/broken"] = 500
    sim.webhooks.configure(retries=2, failures_to_deactivate=3)
    for n in range(3):
        sim.add_file(places["project"], places["mep"], f"fail{n}.pdf")
        assert sim.webhooks.drain(30)
        assert client.hook("dm.version.added", hook_id)["status"] == ("active" if n < 2 else "inactive")
    assert len(receiver.received()) == 3 * 3  # each event: the first attempt and 2 retries
    assert {d["outcome"] for d in sim.webhooks.deliveries()} == {"failed"}
    assert len({d["delivery_id"] for d in sim.webhooks.deliveries()}) == 3  # one id per event, kept by retries

    receiver.status["/broken"] = 200
    sim.add_file(places["project"], places["mep"], "while-inactive.pdf")
    assert sim.webhooks.drain(30) and len(receiver.received()) == 9  # lost for good
    assert client.call("PATCH", f"/systems/data/events/dm.version.added/hooks/{hook_id}",
                       {"status": "active"}).status_code == 200
    sim.add_file(places["project"], places["mep"], "after.pdf")
    assert sim.webhooks.drain(30)
    assert [e["payload"]["name"] for e in receiver.events()][-1] == "after.pdf"
    assert len(receiver.received()) == 10


def test_no_answer_within_the_timeout_is_a_failure(client: Client, receiver: Receiver,
                                                   places: dict[str, str]) -> None:
    sim = client.sim
    hook_id = version_hook(client.create_all(places["root"], receiver.url()))
    sim.webhooks.configure(timeout=0.3, retries=0, failures_to_deactivate=1)
    receiver.release.clear()  # the receiver never answers
    sim.add_file(places["project"], places["mep"], "slow.pdf")
    assert sim.webhooks.drain(30)
    assert [(d["outcome"], d["status"]) for d in sim.webhooks.deliveries()] == [("timeout", None)]
    assert client.hook("dm.version.added", hook_id)["status"] == "inactive"


def test_an_auto_reactivating_hook_comes_back_after_seven_days(client: Client, receiver: Receiver,
                                                               places: dict[str, str]) -> None:
    sim = client.sim
    auto = version_hook(client.create_all(places["root"], receiver.url("/auto"), autoReactivateHook=True))
    manual = version_hook(client.create_all(places["root"], receiver.url("/manual")))
    receiver.status.update({"/auto": 500, "/manual": 500})
    sim.webhooks.configure(retries=1, failures_to_deactivate=1)
    sim.add_file(places["project"], places["mep"], "down.pdf")
    assert sim.webhooks.drain(30)
    assert client.hook("dm.version.added", auto)["status"] == "inactive"
    client.advance(7 * DAY - 1)
    assert client.hook("dm.version.added", auto)["status"] == "inactive"
    client.advance(1)
    assert client.hook("dm.version.added", auto)["status"] == "reactivated"
    assert client.hook("dm.version.added", manual)["status"] == "inactive"  # without the flag it stays off
    reactivated = client.call("GET", "/hooks", status="reactivated").json()["data"]
    assert [h["hookId"] for h in reactivated] == [auto]

    # Reactivated: one attempt, no retries; a failure makes it inactive again for another 7 days.
    sim.add_file(places["project"], places["mep"], "still-down.pdf")
    assert sim.webhooks.drain(30)
    assert [e["payload"]["name"] for e in receiver.events("/auto")] == ["down.pdf", "down.pdf", "still-down.pdf"]
    assert receiver.events("/auto")[-1]["hook"]["status"] == "reactivated"
    assert client.hook("dm.version.added", auto)["status"] == "inactive"
    client.advance(7 * DAY)
    receiver.status["/auto"] = 200
    sim.add_file(places["project"], places["mep"], "up.pdf")
    assert sim.webhooks.drain(30)
    assert receiver.events("/auto")[-1]["payload"]["name"] == "up.pdf"
    assert client.hook("dm.version.added", auto)["status"] == "active"
    assert [e["payload"]["name"] for e in receiver.events("/manual")] == ["down.pdf", "down.pdf"]


def test_filters_expiry_and_payload_only(client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    sim = client.sim
    assert client.create("dm.version.added", places["root"], receiver.url("/txt"),
                         filter="$[?(@.ext=='txt' || @.name=='Plan.pdf')]").status_code == 201
    expiring = client.create("dm.version.added", places["root"], receiver.url("/expiring"),
                             hookExpiry="2027-01-15T09:00:00Z", callbackWithEventPayloadOnly=True)
    assert expiring.status_code == 201
    details = client.hook("dm.version.added", expiring.headers["Location"].rsplit("/", 1)[1])
    assert details["hookExpiry"] == "2027-01-15T09:00:00.000Z"
    for name in ("notes.txt", "model.rvt", "Plan.pdf"):
        sim.add_file(places["project"], places["mep"], name)
    assert sim.webhooks.drain(30)
    assert [e["payload"]["name"] for e in receiver.events("/txt")] == ["notes.txt", "Plan.pdf"]
    assert [e["name"] for e in receiver.events("/expiring")] == ["notes.txt", "model.rvt", "Plan.pdf"]
    client.advance(3600)  # the hook expires and is deleted
    sim.add_file(places["project"], places["mep"], "later.txt")
    assert sim.webhooks.drain(30)
    assert len(receiver.events("/expiring")) == 3
    assert client.call("GET", "/systems/data/events/dm.version.added/hooks").json()["data"][0]["callbackUrl"] \
        == receiver.url("/txt")


def test_switches_failing_urls_and_the_log_over_http(client: Client, receiver: Receiver,
                                                     places: dict[str, str]) -> None:
    base = client.base
    version_hook(client.create_all(places["root"], receiver.url()))
    switches = requests.post(f"{base}/_sim/webhooks/switches", json={"retries": 1, "seed": 3, "retry_backoff": 0.01})
    assert switches.status_code == 200 and switches.json()["retries"] == 1 and switches.json()["seed"] == 3
    assert requests.post(f"{base}/_sim/webhooks/switches", json={"bogus": 1}).status_code == 400
    assert requests.post(f"{base}/_sim/webhooks/switches", json={"drop": 2}).status_code == 400
    failing = requests.post(f"{base}/_sim/webhooks/fail", json={"url": receiver.url(), "status": 503, "count": 1})
    assert failing.json() == {"failing": {receiver.url(): {"status": 503, "count": 1}}}
    client.sim.add_file(places["project"], places["mep"], "retried.pdf")
    assert requests.post(f"{base}/_sim/webhooks/drain", json={"timeout": 30}).json() == {"drained": True}
    log = requests.get(f"{base}/_sim/webhooks/deliveries").json()["deliveries"]
    assert [(d["attempt"], d["outcome"], d["status"]) for d in log] == [(1, "injected", 503), (2, "delivered", 200)]
    assert len(receiver.received()) == 1  # an injected failure sends nothing
    assert requests.delete(f"{base}/_sim/webhooks/deliveries").status_code == 200
    assert requests.get(f"{base}/_sim/webhooks/deliveries").json() == {"deliveries": []}


def test_hook_details_in_callbacks_validate(client: Client, receiver: Receiver, places: dict[str, str]) -> None:
    """Every callback's hook is a valid HookDetails and its payload names the change's place."""
    sim = client.sim
    assert client.create_all(places["root"], receiver.url(), hookAttribute={"a": 1}).status_code == 201
    folder = sim.add_folder(places["project"], places["mep"], "Sub")
    sim.rename_folder(folder, "Sub2")
    sim.delete_folder(folder)
    assert sim.webhooks.drain(30)
    events = receiver.events()
    assert [e["hook"]["event"] for e in events] == ["dm.folder.added", "dm.folder.modified", "dm.folder.deleted"]
    for event in events:
        validate(event["hook"], SPEC, "HookDetails")
        assert event["payload"]["source"] == folder and event["payload"]["parentFolderUrn"] == places["mep"]
    assert events[1]["payload"]["name"] == "Sub2"
    assert events[0]["payload"]["folderAggregatePath"].endswith("/Project Files/MEP/Sub")
    with pytest.raises(jsonschema.ValidationError):  # the schema check itself bites
        validate({**events[0]["hook"], "status": "sleeping"}, SPEC, "HookDetails")
