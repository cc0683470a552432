"""Health of each `autodesk` connection, as plain data: what the accounts page shows, for the dashboard.

Only non-secret bookkeeping is read (auth mode, who consented, when the refresh token last
rotated, whether a refresh was interrupted, what shadows the row); the token, client secret
and fingerprints never leave this module.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from aps_mirror.airflow_provider.token_persistence import (
    ACCOUNT_KEY,
    PENDING_KEY,
    REFRESH_TOKEN_KEY,
    ROTATED_AT_KEY,
    shadowing_source,
)
from aps_mirror.connection import ConnectionFields, env_var_name, parse_connection_value
from aps_mirror.errors import ConfigError

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN_DIES_AFTER_DAYS = 15
WARN_AFTER_DAYS = 10  # the accounts page and the dashboard; the keep-alive DAG has a param


@dataclass(frozen=True)
class ConnectionHealth:
    conn_id: str
    auth_mode: str
    defined_in: str  # "metadata database" or the environment variable
    level: str  # ok | warn | alert
    message: str  # plain words, with what to do when it is not ok
    account: str | None = None  # "Name <email>" of who consented (authorization_code)
    last_rotation: str | None = None
    shadowed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TokenHealth:
    level: str  # ok | warn | alert
    message: str


def token_health(extra: dict[str, Any], now: datetime, warn_after_days: int = WARN_AFTER_DAYS) -> TokenHealth:
    """The one rule for an authorization_code connection's refresh token, from its extra:
    the accounts page, the dashboard and the keep-alive DAG all judge by it."""
    if not extra.get(REFRESH_TOKEN_KEY):
        return TokenHealth("alert", "Not connected: connect an Autodesk account on the "
                                    "'Autodesk accounts' page.")
    if extra.get(PENDING_KEY):
        return TokenHealth("alert", "A token refresh was interrupted (crash). If runs fail with "
                                    "'re-authorization required', connect the account again on the "
                                    "'Autodesk accounts' page.")
    age = _age_days(extra.get(ROTATED_AT_KEY), now)
    if age is not None and age >= warn_after_days:
        return TokenHealth("warn", (
            f"The connection last rotated its refresh token {age} days ago; it dies after "
            f"{REFRESH_TOKEN_DIES_AFTER_DAYS} days unused. Run the aps_mirror_keepalive DAG, or "
            "reconnect on the 'Autodesk accounts' page."))
    return TokenHealth("ok", f"Connected; refresh token last rotated {age} day(s) ago."
                       if age is not None else "Connected.")


def stored_autodesk_connections() -> dict[str, ConnectionFields | ConfigError]:
    """Every `autodesk` row of the metadata database, parsed (or why it cannot be), by conn id."""
    from sqlalchemy import select

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    found: dict[str, ConnectionFields | ConfigError] = {}
    with create_session() as session:
        for r in session.scalars(select(Connection).where(Connection.conn_type == "autodesk")
                                 .order_by(Connection.conn_id)):
            try:
                found[r.conn_id] = ConnectionFields.parse(
                    r.conn_id, conn_type=r.conn_type, host=r.host, login=r.login,
                    password=r.password, schema=r.schema, port=r.port, extra=r.extra)
            except ConfigError as exc:
                found[r.conn_id] = exc
    return found


def connection_health(now: datetime | None = None) -> list[ConnectionHealth]:
    """Every autodesk connection in the metadata database or in an AIRFLOW_CONN_* variable."""
    now = now or datetime.now(timezone.utc)
    stored = stored_autodesk_connections()
    health = [db_health(conn_id, fields, now) for conn_id, fields in stored.items()]
    health += [_env_health(fields) for conn_id, fields in _env_connections().items() if conn_id not in stored]
    return sorted(health, key=lambda h: h.conn_id)


def _env_connections() -> dict[str, ConnectionFields]:
    found = {}
    for name, value in os.environ.items():
        if not name.startswith("AIRFLOW_CONN_") or not value.strip():
            continue
        conn_id = name[len("AIRFLOW_CONN_"):].lower()
        try:
            fields = parse_connection_value(conn_id, value)
        except ConfigError:
            continue  # not ours to judge: Airflow reports broken connections itself
        if fields.conn_type == "autodesk":
            found[conn_id] = fields
    return found


def _mode(fields: ConnectionFields) -> str:
    return str(fields.extra.get("auth_mode") or AUTHORIZATION_CODE)


def _env_health(fields: ConnectionFields) -> ConnectionHealth:
    mode, where = _mode(fields), f"environment variable {env_var_name(fields.conn_id)}"
    if mode == AUTHORIZATION_CODE:
        return ConnectionHealth(fields.conn_id, mode, where, "alert",
                                "A rotating refresh token cannot be saved into an environment variable: "
                                "the next rotation would be lost. Store this connection in Admin > "
                                "Connections instead, or use auth_mode ssa or client_credentials.")
    return ConnectionHealth(fields.conn_id, mode, where, "ok", f"{mode}: no refresh token to keep alive.")


def db_health(conn_id: str, fields: ConnectionFields | ConfigError, now: datetime) -> ConnectionHealth:
    """The health of one row of the metadata database (see `token_health` for the token rule)."""
    if isinstance(fields, ConfigError):
        return ConnectionHealth(conn_id, "?", "metadata database", "alert", str(fields))
    extra, mode = fields.extra, _mode(fields)
    account = extra.get(ACCOUNT_KEY) if isinstance(extra.get(ACCOUNT_KEY), dict) else {}
    who = f"{account.get('name')} <{account.get('email') or '?'}>" if account else None
    rotated = extra.get(ROTATED_AT_KEY)
    shadow = shadowing_source(fields.conn_id)
    base = dict(conn_id=fields.conn_id, auth_mode=mode, defined_in="metadata database", account=who,
                last_rotation=str(rotated) if rotated else None, shadowed_by=shadow)
    if mode != AUTHORIZATION_CODE:
        return ConnectionHealth(**base, level="ok", message=f"{mode}: no refresh token to keep alive.")
    if shadow:
        return ConnectionHealth(**base, level="alert", message=(
            f"Shadowed by {shadow}: Airflow reads that first, so rotated refresh tokens saved here "
            "are never read. Remove it there and keep the connection in Admin > Connections only."))
    token = token_health(extra, now)
    return ConnectionHealth(**base, level=token.level, message=token.message)


def _age_days(rotated: Any, now: datetime) -> int | None:
    try:
        return (now - datetime.fromisoformat(str(rotated))).days if rotated else None
    except (ValueError, TypeError):
        return None
