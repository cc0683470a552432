"""Helpers for the APS simulator tests: a tiny API client, PKCE, ground truth, OpenAPI validation."""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jsonschema
import requests
import yaml

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.specs import spec_path

REDIRECT = "http://localhost:8080/callback"


def enc(value: str) -> str:
    return quote(value, safe="")


class Api:
    """A deliberately small client for tests: token, GET with bearer, page walking."""

    def __init__(self, server: SimulatorServer, token: str | None = None) -> None:
        self.server = server
        self.base = server.base_url
        self.session = requests.Session()
        self.token = token

    def client_credentials(self, scope: str = "data:read") -> dict[str, Any]:
        r = self.session.post(f"{self.base}/authentication/v2/token",
                              data={"grant_type": "client_credentials", "scope": scope},
                              auth=(self.server.client_id, self.server.client_secret))
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]
        return r.json()

    def get(self, path_or_url: str, **params: Any) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.session.get(url, params=params or None, headers=headers)

    def ok(self, path_or_url: str, **params: Any) -> dict[str, Any]:
        r = self.get(path_or_url, **params)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page, following ``links.next`` verbatim until it is absent."""
        doc = self.ok(path, **params)
        yield doc
        while "next" in doc["links"]:
            doc = self.ok(doc["links"]["next"]["href"])
            yield doc

    def walk(self, limit: int = 200, **extra: Any) -> set[tuple[str, str, tuple[str, ...], str, str]]:
        """(hub, project, folder path, file name, item id) of every file reachable from /hubs."""
        found: set[tuple[str, str, tuple[str, ...], str, str]] = set()
        for hub in self.ok("/project/v1/hubs")["data"]:
            for page in self.pages(f"/project/v1/hubs/{enc(hub['id'])}/projects"):
                for project in page["data"]:
                    pid = project["id"]
                    top = self.ok(f"/project/v1/hubs/{enc(hub['id'])}/projects/{enc(pid)}/topFolders")
                    stack = [((f["attributes"]["name"],), f["id"]) for f in top["data"]]
                    while stack:
                        path, fid = stack.pop()
                        for page in self.pages(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents",
                                               **{"page[limit]": limit, **extra}):
                            tips = {v["id"]: v for v in page.get("included", [])}
                            for entry in page["data"]:
                                if entry["type"] == "folders":
                                    stack.append((path + (entry["attributes"]["name"],), entry["id"]))
                                else:
                                    tip = tips[entry["relationships"]["tip"]["data"]["id"]]
                                    found.add((hub["attributes"]["name"], project["attributes"]["name"], path,
                                               tip["attributes"]["name"], entry["id"]))
        return found


def truth(sim: Simulator, include_deleted: bool = False) -> set[tuple[str, str, tuple[str, ...], str, str]]:
    return {(e.hub, e.project, e.path, e.tip.name, e.item_id) for e in sim.iter_files(include_deleted)}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize(server: SimulatorServer, challenge: str, state: str = "xyz", scope: str = "data:read user-profile:read",
              redirect_uri: str = REDIRECT) -> requests.Response:
    """Press "Allow" on the consent page: POST the same parameters back."""
    params = {"response_type": "code", "client_id": server.client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    page = requests.get(f"{server.base_url}/authentication/v2/authorize", params=params)
    assert page.status_code == 200 and "Allow" in page.text, page.text
    return requests.post(f"{server.base_url}/authentication/v2/authorize", data={**params, "action": "allow"},
                         allow_redirects=False)


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["code"][0]


# ---- Autodesk's OpenAPI schemas, with the two documented corrections
def _patch(node: Any) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            data = props.get("data")
            if isinstance(data, dict):
                # Correction 1: extension.data values are strings, numbers, lists: any value.
                if {"type", "version", "schema"} <= set(props) and "additionalProperties" in data:
                    data["additionalProperties"] = True
                # Correction 2: an empty folder's contents are "data": [].
                if data.get("type") == "array":
                    data.pop("minItems", None)
        for value in node.values():
            _patch(value)
    elif isinstance(node, list):
        for value in node:
            _patch(value)


@lru_cache(maxsize=None)
def _spec(name: str) -> dict[str, Any]:
    spec = yaml.safe_load(spec_path(f"aps-openapi/{name}").read_text(encoding="utf-8"))
    _patch(spec)
    return spec


def validate(document: Any, spec: str, schema: str) -> None:
    """Validate against ``#/components/schemas/<schema>`` of ``spec`` (all $refs resolved)."""
    root = copy.copy(_spec(spec))
    root["$ref"] = f"#/components/schemas/{schema}"
    jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(document)


def validate_response(document: Any, spec: str, response: str) -> None:
    """Validate against the JSON schema of ``#/components/responses/<response>`` of ``spec``."""
    root = copy.copy(_spec(spec))
    content = root["components"]["responses"][response]["content"]
    schema = next(iter(content.values()))["schema"]
    jsonschema.Draft202012Validator({**root, **schema}).validate(document)
