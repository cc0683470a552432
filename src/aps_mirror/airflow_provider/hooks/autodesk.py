"""`AutodeskHook`: an `autodesk` Airflow connection turned into a ready `ApsClient`."""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
from typing import TYPE_CHECKING, Any

import requests

from airflow.sdk import BaseHook
from aps_mirror.airflow_provider.connections import get_connection_fields, mask
from aps_mirror.airflow_provider.provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore, deployment_redis_url
from aps_mirror.aps.auth import TOKEN_PATH
from aps_mirror.aps.capabilities import all_essential_ok, validate
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.parsing import loads_json
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import ApsConnection, AuthMode, VaultSettings, env_var_name
from aps_mirror.errors import ApsMirrorError, ConfigError
from aps_mirror.vault.capabilities import validate_vault

if TYPE_CHECKING:
    from aps_mirror.vault import VaultClient

# A connection test should answer in seconds, not sit out a long backoff.
TEST_RETRY_POLICY = RetryPolicy(attempts=3, backoff_initial=0.5, backoff_max=5.0, max_wait=10.0)


class AutodeskHook(BaseHook):
    """Interact with Autodesk Platform Services (APS) Data Management.

    Connection: host = API base URL, login = client id, password = client secret; extra holds
    `auth_mode`, `scopes`, `callback_url`, `user_id`, for SSA `service_account_id`, `private_key`
    and `private_key_id`, and (written by aps-mirror) `refresh_token` with its bookkeeping.

    :param autodesk_conn_id: the `autodesk` connection to use.
    """

    conn_name_attr = "autodesk_conn_id"
    default_conn_name = "autodesk_default"
    conn_type = "autodesk"
    hook_name = "Autodesk Platform Services"

    def __init__(self, autodesk_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.autodesk_conn_id = autodesk_conn_id
        self._client: ApsClient | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the standard form fields (Airflow 3.3 reads the same dict from provider info)."""
        return copy.deepcopy(UI_FIELD_BEHAVIOUR)

    def get_aps_connection(self) -> ApsConnection:
        """The connection, parsed and validated; its secrets are masked from then on."""
        fields = get_connection_fields(self.autodesk_conn_id)
        if fields is None:
            raise ConfigError(
                f"Connection {self.autodesk_conn_id!r} was not found: create it in the Airflow UI "
                f"(Admin > Connections, type 'Autodesk Platform Services') or export "
                f"{env_var_name(self.autodesk_conn_id)}."
            )
        conn = ApsConnection.from_fields(fields)  # an SsaConnection when auth_mode is ssa
        mask(conn.client_secret, conn.refresh_token, _basic_credentials(conn))
        vault = VaultSettings.from_fields(fields)
        if vault is not None:
            mask(vault.password)
        return conn

    def get_vault_client(self, client: ApsClient) -> VaultClient | None:
        """The Vault client beside `client` (its token and rate budget shared); None when the
        connection has no `vault_url`."""
        from aps_mirror.vault import VaultClient

        fields = get_connection_fields(self.autodesk_conn_id)
        settings = VaultSettings.from_fields(fields) if fields is not None else None
        if settings is None:
            return None
        mask(settings.password)
        return VaultClient.connect(settings, client.transport)

    def get_conn(self) -> ApsClient:
        """A ready `ApsClient` (built once per hook); tokens come and go through the connection."""
        if self._client is None:
            self._client = self._build_client(self.get_aps_connection())
        return self._client

    def _build_client(self, conn: ApsConnection, retry_policy: RetryPolicy | None = None) -> ApsClient:
        # Only the 3-legged mode has a refresh chain to keep; the others mint tokens afresh.
        store = AirflowTokenStore(conn.conn_id) if conn.auth_mode is AuthMode.AUTHORIZATION_CODE else None
        if conn.rate_budget_url is None and (shared := deployment_redis_url()):
            # Mapped tasks run in many worker processes: one budget in the broker's Redis
            # keeps them, together, within Autodesk's per-client limits.
            conn = dataclasses.replace(conn, rate_budget_url=shared)
        transport = ApsTransport(conn, store, session=_masking_session(), retry_policy=retry_policy)
        return ApsClient(transport)

    def test_connection(self) -> tuple[bool, str]:
        """Run the sample calls (who we are, hubs, projects, folder contents, a download) and
        say in plain words which capability works."""
        try:
            conn = self.get_aps_connection()
            if conn.auth_mode is AuthMode.AUTHORIZATION_CODE and os.environ.get(
                    env_var_name(conn.conn_id)):
                # The UI tests a copy of the connection held in an env var: refreshing would
                # burn the stored single-use refresh token and the new one could not be saved.
                return False, (
                    "Not tested against APS: testing an authorization_code connection uses up "
                    "its refresh token, and this test could not save the new one. The fields "
                    "look complete; trigger the aps_mirror DAG with dry_run to test it for real."
                )
            client = self._build_client(conn, TEST_RETRY_POLICY)
            checks = validate(client)
            vault = self.get_vault_client(client)
            if vault is not None:
                try:
                    checks += validate_vault(vault, vault.settings)
                finally:
                    vault.close()
        except ApsMirrorError as exc:
            return False, str(exc)
        except requests.RequestException as exc:
            return False, f"Could not reach APS ({type(exc).__name__}); check the API base URL."
        report = " ".join(f"[{'ok' if c.ok else 'FAILED'}] {c.capability}: {c.detail}." for c in checks)
        return all_essential_ok(checks), f"{conn.base_url} ({conn.auth_mode.value}): {report}"


def _basic_credentials(conn: ApsConnection) -> str:
    """The Basic auth value the token request carries (masked like the secret itself)."""
    return base64.b64encode(f"{conn.client_id}:{conn.client_secret}".encode()).decode()


def _masking_session() -> requests.Session:
    """A session that masks every token APS hands out, the moment it arrives (signed URLs are
    scrubbed from errors and logs by the client itself, on every path)."""
    session = requests.Session()
    session.hooks["response"].append(_mask_token_response)
    return session


def _mask_token_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code != 200 or not response.url.split("?")[0].endswith(TOKEN_PATH):
        return
    try:
        body = loads_json(response.content)
    except ValueError:
        return
    if isinstance(body, dict):
        mask(body.get("access_token"), body.get("refresh_token"))
