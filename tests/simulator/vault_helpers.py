"""A deliberately small Vault Data API client for the simulator's tests: tokens, GET/POST, nextUrl paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from aps_mirror.simulator import SimulatorServer
from tests.specs.vault_shapes import validate

API = "/AutodeskDM/Services/api/vault/v2"
PASSWORDS = {"sam.builder": "Builder2024", "val.viewer": "Viewer2024", "Administrator": ""}


class VaultApi:
    """Requests against one simulator's Vault routes with one bearer token (or none)."""

    def __init__(self, server: SimulatorServer, token: str | None = None) -> None:
        self.server = server
        self.sim = server.sim
        self.host = server.base_url
        self.session = requests.Session()
        self.token = token
        vaults = self.sim.vault.store.vaults
        self.vault_id = vaults[0].id if vaults else ""  # the first vault: "Engineering" in the demo

    # ---- tokens
    def aps_user(self, user: str | None = None) -> VaultApi:
        """Use a 3-legged APS access token (the demo user, or ``"viewer"``)."""
        self.token = self.sim.user_tokens(user=user)["access_token"]
        return self

    def sign_in(self, user: str = "sam.builder", vault: str = "Engineering") -> dict[str, Any]:
        """Sign in with the user's password; the session token becomes the bearer token."""
        r = self.post("/sessions", json={"input": {"vault": vault, "userName": user, "password": PASSWORDS[user],
                                                   "appCode": "tests"}}, auth=False)
        assert r.status_code == 200, r.text
        self.token = r.json()["accessToken"]
        return r.json()

    # ---- requests
    def url(self, path: str) -> str:
        """``path`` below the API base, or a server-relative ``/AutodeskDM/...`` URL as given."""
        return self.host + (path if path.startswith("/AutodeskDM/") else API + path)

    def headers(self, auth: bool = True, **extra: str) -> dict[str, str]:
        found = {"Accept": "application/json", **extra}
        if auth and self.token:
            found["Authorization"] = f"Bearer {self.token}"
        return found

    def get(self, path: str, auth: bool = True, headers: dict[str, str] | None = None,
            **params: Any) -> requests.Response:
        return self.session.get(self.url(path), params=params or None,
                                headers={**self.headers(auth), **(headers or {})})

    def post(self, path: str, json: Any = None, auth: bool = True, **params: Any) -> requests.Response:
        return self.session.post(self.url(path), json=json, params=params or None, headers=self.headers(auth))

    def ok(self, path: str, shape: str | None = None, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, (r.status_code, r.text)
        if shape:
            validate(r.json(), shape)
        return r.json()

    def vault_path(self, tail: str) -> str:
        return f"/vaults/{self.vault_id}{tail}"

    def pages(self, path: str, shape: str | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page, following ``nextUrl`` (server-relative) until it is absent."""
        doc = self.ok(path, shape, **params)
        yield doc
        while "nextUrl" in doc["pagination"]:
            doc = self.ok(doc["pagination"]["nextUrl"], shape)
            yield doc

    def all(self, path: str, shape: str | None = None, **params: Any) -> list[dict[str, Any]]:
        return [row for page in self.pages(path, shape, **params) for row in page["results"]]

    def error(self, response: requests.Response, status: int) -> dict[str, Any]:
        """The ErrorResponse of a failed call, checked for its status and shape."""
        assert response.status_code == status, (response.status_code, response.text)
        body = response.json()
        validate(body, "ErrorResponse")
        assert body["statusCode"] == status
        return body
