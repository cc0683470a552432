"""Connection settings, parsed once, resolved the way Airflow resolves connections.

A connection is looked up in `AIRFLOW_CONN_<ID>` (JSON or URI form) first and, when Airflow
is installed, through Airflow itself (metadata database, secrets backends). Secrets are kept
out of `repr` so a stray log line or traceback never shows them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aps_mirror.errors import ConfigError

DEFAULT_BASE_URL = "https://developer.api.autodesk.com"
DEFAULT_SCOPES = ("data:read",)
DEFAULT_CONN_ID = "autodesk_default"
DEFAULT_AWS_CONN_ID = "aws_default"


class AuthMode(str, Enum):
    """How the app proves who it is to APS."""

    AUTHORIZATION_CODE = "authorization_code"  # 3-legged, rotating refresh token
    SSA = "ssa"  # Secure Service Account, JWT bearer
    CLIENT_CREDENTIALS = "client_credentials"  # 2-legged


@dataclass(frozen=True)
class ConnectionFields:
    """The generic fields of an Airflow connection, whatever its type."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ApsConnection:
    """An `autodesk` connection: where APS is and how to authenticate to it."""

    conn_id: str
    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    auth_mode: AuthMode = AuthMode.AUTHORIZATION_CODE
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    refresh_token: str | None = field(default=None, repr=False)
    callback_url: str | None = None
    user_id: str | None = None  # x-user-id for 2-legged calls on behalf of an ACC user
    # Share of Autodesk's documented rate limits to use (lower it when other apps share the
    # client id; 0 turns client-side budgeting off). The simulator's --rate-scale matches it.
    rate_scale: float = 1.0
    # A redis:// URL makes every worker of a deployment share one request budget.
    rate_budget_url: str | None = None

    @classmethod
    def from_fields(cls, fields: ConnectionFields) -> ApsConnection:
        extra = fields.extra
        if not fields.login:
            raise ConfigError(
                f"Connection {fields.conn_id!r} has no client id: put your APS app's "
                "Client ID in the connection's 'Client ID' (login) field."
            )
        if not fields.password:
            raise ConfigError(
                f"Connection {fields.conn_id!r} has no client secret: put your APS app's "
                "Client Secret in the connection's 'Client Secret' (password) field."
            )
        raw_mode = str(extra.get("auth_mode") or AuthMode.AUTHORIZATION_CODE.value)
        try:
            mode = AuthMode(raw_mode)
        except ValueError:
            allowed = ", ".join(m.value for m in AuthMode)
            raise ConfigError(
                f"Connection {fields.conn_id!r} has auth_mode {raw_mode!r}; use one of: {allowed}."
            ) from None
        return cls(
            conn_id=fields.conn_id,
            client_id=fields.login,
            client_secret=fields.password,
            base_url=_base_url(fields),
            auth_mode=mode,
            scopes=_scopes(extra.get("scopes")),
            refresh_token=extra.get("refresh_token") or None,
            callback_url=extra.get("callback_url") or None,
            user_id=extra.get("user_id") or None,
            rate_scale=_float(fields.conn_id, "rate_scale", extra.get("rate_scale"), 1.0),
            rate_budget_url=extra.get("rate_budget_url") or os.environ.get("APS_MIRROR_RATE_BUDGET_URL") or None,
        )


@dataclass(frozen=True)
class S3Settings:
    """Where the mirror writes: an `aws` connection reduced to what boto3 needs."""

    endpoint_url: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_fields(cls, fields: ConnectionFields | None) -> S3Settings:
        if fields is None:  # no connection: boto3's own chain (env, profile, instance role)
            return cls(endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)
        extra = fields.extra
        return cls(
            endpoint_url=extra.get("endpoint_url") or fields.host or None,
            region_name=extra.get("region_name") or None,
            aws_access_key_id=fields.login or extra.get("aws_access_key_id") or None,
            aws_secret_access_key=fields.password or extra.get("aws_secret_access_key") or None,
            aws_session_token=extra.get("aws_session_token") or None,
        )

    def client(self) -> Any:
        """A boto3 S3 client for these settings."""
        import boto3  # boto3 import is slow; only pay for it when S3 is used
        from botocore.config import Config

        return boto3.client(
            "s3",
            # Parallel copies x ranged parts in flight exceed botocore's default pool of 10.
            config=Config(max_pool_connections=32),
            endpoint_url=self.endpoint_url,
            region_name=self.region_name or "us-east-1",
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )


def _base_url(fields: ConnectionFields) -> str:
    host = (fields.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = fields.schema or "https"
        host = f"{scheme}://{host}"
        if fields.port:
            host = f"{host}:{fields.port}"
    return host


def _float(conn_id: str, name: str, value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Connection {conn_id!r} has {name}={value!r}; it must be a number.") from None


def _scopes(value: Any) -> tuple[str, ...]:
    if not value:
        return DEFAULT_SCOPES
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    return tuple(str(v) for v in value)


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def parse_connection_value(conn_id: str, value: str) -> ConnectionFields:
    """Parse an `AIRFLOW_CONN_*` value in Airflow's JSON or URI form."""
    value = value.strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{env_var_name(conn_id)} is not valid JSON ({exc.msg} at character {exc.pos})."
            ) from None
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        return ConnectionFields(
            conn_id=conn_id,
            conn_type=data.get("conn_type"),
            host=data.get("host"),
            login=data.get("login"),
            password=data.get("password"),
            schema=data.get("schema"),
            port=int(data["port"]) if data.get("port") else None,
            extra=dict(extra),
        )
    parts = urlsplit(value)
    if not parts.scheme:
        raise ConfigError(
            f"{env_var_name(conn_id)} is neither JSON nor a connection URI like "
            "'autodesk://CLIENT_ID:CLIENT_SECRET@developer.api.autodesk.com'."
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: dict[str, Any] = json.loads(query.pop("__extra__")) if "__extra__" in query else query
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_"),
        host=unquote(parts.hostname or "") or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path.lstrip("/")) or None,
        port=parts.port,
        extra=extra,
    )


def lookup_connection(conn_id: str, *, required: bool = True) -> ConnectionFields | None:
    """Find a connection as Airflow would: env var first, then Airflow's own lookup."""
    value = os.environ.get(env_var_name(conn_id))
    if value:
        return parse_connection_value(conn_id, value)
    try:
        from aps_mirror.airflow_provider.connections import get_connection_fields
    except ImportError:  # Airflow not installed: only env vars can define connections
        fields = None
    else:
        fields = get_connection_fields(conn_id)
    if fields is None and required:
        raise ConfigError(
            f"Connection {conn_id!r} was not found. Define it in the Airflow UI "
            f"(Admin > Connections) or export {env_var_name(conn_id)} as JSON, e.g. "
            '{"conn_type": "autodesk", "login": "CLIENT_ID", "password": "CLIENT_SECRET", '
            '"extra": {"auth_mode": "client_credentials"}}.'
        )
    return fields
