"""Writing keys of a connection's extra: the ORM outside tasks, the REST API inside them
(a task on a real executor cannot use the ORM, and the Task SDK cannot write connections)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from aps_mirror.airflow_provider.connections import get_connection_fields, in_task, mask
from aps_mirror.errors import AuthError, ConfigError

API_CONN_ID_ENV = "APS_MIRROR_AIRFLOW_API_CONN_ID"
# A file holding the password (a Docker/Kubernetes secret; docker-compose.yaml's airflow-init writes one).
PASSWORD_FILE_ENV = "APS_MIRROR_AIRFLOW_API_PASSWORD_FILE"
DEFAULT_API_CONN_ID = "aps_mirror_airflow_api"


class ConnectionWriter(Protocol):
    """Changes keys of a connection's extra in the metadata database (None deletes a key)."""

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None: ...


class OrmWriter:
    """Writes the DB row directly: the CLI, the API server and `airflow dags test`."""

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None:
        from sqlalchemy import select

        from airflow.models.connection import Connection
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalar(select(Connection).where(Connection.conn_id == conn_id)
                                 .with_for_update())
            if row is None:
                raise ConfigError(f"Connection {conn_id!r} has no row in the Airflow metadata "
                                  "database; create it in Admin > Connections first.")
            row.set_extra(json.dumps(_apply(json.loads(row.extra) if row.extra else {}, changes)))


@dataclass(frozen=True)
class AirflowApiSettings:
    """Where the Airflow REST API is and who aps-mirror logs in as (needs connection edit rights)."""

    url: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def resolve(cls) -> AirflowApiSettings:
        """Env vars APS_MIRROR_AIRFLOW_API_URL/_USERNAME/_PASSWORD (or _PASSWORD_FILE), else the
        connection `aps_mirror_airflow_api` (host = URL, login, password); URL defaults to Airflow's own."""
        url = os.environ.get("APS_MIRROR_AIRFLOW_API_URL")
        user = os.environ.get("APS_MIRROR_AIRFLOW_API_USERNAME")
        password = os.environ.get("APS_MIRROR_AIRFLOW_API_PASSWORD") or _password_from_file()
        if not (user and password):
            api_conn_id = os.environ.get(API_CONN_ID_ENV, DEFAULT_API_CONN_ID)
            fields = get_connection_fields(api_conn_id)
            if fields is None or not fields.login or not fields.password:
                raise ConfigError(
                    "aps-mirror must save rotated refresh tokens through the Airflow REST API "
                    "(tasks cannot write connections otherwise) but has no credentials for it: "
                    f"create the connection {api_conn_id!r} (type http; host = the API server URL, "
                    "login/password = a user allowed to edit connections) or set "
                    "APS_MIRROR_AIRFLOW_API_USERNAME and APS_MIRROR_AIRFLOW_API_PASSWORD (or "
                    f"{PASSWORD_FILE_ENV})."
                )
            user, password = fields.login, fields.password
            url = url or (fields.host if fields.host and "://" in fields.host else None)
        return cls(url=(url or _default_api_url()).rstrip("/"), username=user, password=password)


def _password_from_file() -> str | None:
    path = os.environ.get(PASSWORD_FILE_ENV)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            password = f.read().strip()
    except OSError as exc:
        raise ConfigError(f"{PASSWORD_FILE_ENV} names {path}, which cannot be read "
                          f"({exc.strerror}); fix the path or its permissions (docker compose: "
                          "run airflow-init again).") from None
    if not password:
        raise ConfigError(f"{path} ({PASSWORD_FILE_ENV}) is empty; write the Airflow API "
                          "password of APS_MIRROR_AIRFLOW_API_USERNAME into it.")
    mask(password)
    return password


def _default_api_url() -> str:
    from aps_mirror.airflow_provider.compat import airflow_conf

    conf = airflow_conf()
    base = conf.get("api", "base_url", fallback="") or ""
    if base.startswith("http"):
        return base
    execution = conf.get("core", "execution_api_server_url", fallback="") or ""
    if execution:  # every worker knows where the execution API is: the same server
        return execution.rstrip("/").removesuffix("/execution")
    return "http://localhost:8080"


class RestWriter:
    """Writes through `PATCH /api/v2/connections/{id}`: what a task on a worker can do."""

    def __init__(self, settings: AirflowApiSettings | None = None, timeout: float = 20.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._session = requests.Session()
        self._jwt: str | None = None

    @property
    def settings(self) -> AirflowApiSettings:
        if self._settings is None:
            self._settings = AirflowApiSettings.resolve()
        return self._settings

    def update_extra(self, conn_id: str, changes: dict[str, Any]) -> None:
        url = f"{self.settings.url}/api/v2/connections/{conn_id}"
        for attempt in range(4):  # transient API trouble must not lose a rotated token
            try:
                current = self._call("GET", url)
                if current.status_code == 404:
                    raise ConfigError(f"Connection {conn_id!r} is not in the Airflow metadata "
                                      "database; create it in Admin > Connections first.")
                current.raise_for_status()
                body = current.json()
                # Masked values ('***') sent back are restored by the API server from the row.
                extra = _apply(json.loads(body.get("extra") or "{}"), changes)
                patched = self._call("PATCH", url, params={"update_mask": "extra"},
                                     json={"connection_id": conn_id, "conn_type": body["conn_type"],
                                           "extra": json.dumps(extra)})
                patched.raise_for_status()
                return
            except (requests.RequestException, ValueError) as exc:
                if attempt == 3:
                    raise AuthError(f"The Airflow REST API at {self.settings.url} did not save "
                                    f"connection {conn_id!r} ({type(exc).__name__}).") from None
                time.sleep(0.5 * 2 ** attempt)

    def get(self, path: str) -> requests.Response:
        """A GET of the REST API (`path` from `/api/v2/...`), logged in as aps-mirror."""
        return self._call("GET", f"{self.settings.url}{path}")

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        for _ in range(2):
            if self._jwt is None:
                self._jwt = self._login()
            response = self._session.request(method, url, timeout=self._timeout,
                                             headers={"Authorization": f"Bearer {self._jwt}"}, **kwargs)
            if response.status_code != 401:
                if response.status_code == 403:
                    raise ConfigError(f"The Airflow user {self.settings.username!r} may not edit "
                                      "connections; give it that permission (or use another user).")
                return response
            self._jwt = None  # expired: log in again once
        return response

    def _login(self) -> str:
        response = self._session.post(f"{self.settings.url}/auth/token", timeout=self._timeout,
                                      json={"username": self.settings.username,
                                            "password": self.settings.password})
        if response.status_code in (401, 403):
            raise ConfigError(f"The Airflow API at {self.settings.url} refused the login of "
                              f"{self.settings.username!r}; fix the aps-mirror API credentials.")
        response.raise_for_status()
        token = response.json()["access_token"]
        mask(token)
        return token


def _apply(extra: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(extra)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def default_writer() -> ConnectionWriter:
    """REST inside tasks (ORM blocked) or when configured; the ORM everywhere else."""
    if in_task() or os.environ.get("APS_MIRROR_AIRFLOW_API_URL"):
        return RestWriter()
    return OrmWriter()
