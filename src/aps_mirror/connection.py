"""Connection settings, parsed once, resolved the way Airflow resolves connections.

A connection is looked up in `AIRFLOW_CONN_<ID>` (JSON or URI form) first, then through the
installed backend (`aps_mirror.backends`: Airflow's metadata database and secrets backends
when the Airflow adapter is installed). Whatever the source, the fields are parsed and checked
here, once: a malformed value is a one-line ConfigError. Secrets are kept out of `repr` so a
stray log line or traceback never shows them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aps_mirror.backends import installed_backend
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

    @classmethod
    def parse(cls, conn_id: str, *, conn_type: Any = None, host: Any = None, login: Any = None,
              password: Any = None, schema: Any = None, port: Any = None,
              extra: Any = None) -> ConnectionFields:
        """Checked fields from raw values (a JSON env var, a URI, a row): one rule for all."""
        values = {"conn_type": conn_type, "host": host, "login": login, "password": password,
                  "schema": schema}
        for name, value in values.items():
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"Connection {conn_id!r} has a {name} of type "
                                  f"{type(value).__name__}; it must be text.")
        return cls(conn_id=conn_id, **{k: v or None for k, v in values.items()},
                   port=_port(conn_id, port), extra=_extra(conn_id, extra))


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
        """The parsed connection: an `SsaConnection` when auth_mode is ssa, else this class."""
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
        raw_mode = _text(fields, "auth_mode") or AuthMode.AUTHORIZATION_CODE.value
        try:
            mode = AuthMode(raw_mode)
        except ValueError:
            allowed = ", ".join(m.value for m in AuthMode)
            raise ConfigError(
                f"Connection {fields.conn_id!r} has auth_mode {raw_mode!r}; use one of: {allowed}."
            ) from None
        base = ApsConnection(
            conn_id=fields.conn_id,
            client_id=fields.login,
            client_secret=fields.password,
            base_url=_base_url(fields),
            auth_mode=mode,
            scopes=_scopes(fields.conn_id, extra.get("scopes")),
            refresh_token=_text(fields, "refresh_token"),
            callback_url=_text(fields, "callback_url"),
            user_id=_text(fields, "user_id"),
            rate_scale=_rate_scale(fields.conn_id, extra.get("rate_scale")),
            rate_budget_url=_text(fields, "rate_budget_url") or os.environ.get("APS_MIRROR_RATE_BUDGET_URL") or None,
        )
        return SsaConnection.extend(base, fields) if mode is AuthMode.SSA else base


@dataclass(frozen=True)
class SsaConnection(ApsConnection):
    """An `ssa` connection: the service account and the private key that signs its assertions.

    Extra keys: `service_account_id`, `private_key` (PEM, RSA) and optional `private_key_id`
    (the key id APS gave when the key was created; sent as the JWT `kid`).
    """

    service_account_id: str = ""
    private_key: str = field(default="", repr=False)
    private_key_id: str | None = None

    @classmethod
    def extend(cls, base: ApsConnection, fields: ConnectionFields) -> SsaConnection:
        account = (_text(fields, "service_account_id") or "").strip()
        key = (_text(fields, "private_key") or "").replace("\\n", "\n").strip()
        if not account or not key.startswith("-----BEGIN"):
            raise ConfigError(
                f"Connection {fields.conn_id!r} uses auth_mode 'ssa' but lacks "
                f"{'service_account_id' if not account else 'a PEM private_key'} in its extra: "
                "create a Secure Service Account and a key at APS, then put the account id in "
                "extra.service_account_id and the key's PEM text in extra.private_key."
            )
        values = {name: getattr(base, name) for name in ApsConnection.__dataclass_fields__}
        return cls(**values, service_account_id=account, private_key=key,
                   private_key_id=_text(fields, "private_key_id"))


VAULT_API_PATH = "/AutodeskDM/Services/api/vault/v2"


@dataclass(frozen=True)
class VaultSettings:
    """Autodesk Vault on an `autodesk` connection (extra `vault_url`): where its Data API v2 is,
    which vaults to mirror, and how to sign in.

    Through Vault Gateway (`https://<id>.vg.autodesk.com`) or on a Vault server, the connection's
    own APS 3-legged token is the default (the user's Autodesk ID must be mapped to a Vault
    user); with `vault_user` and `vault_password`, a Vault session token is used instead (a
    server without Autodesk ID sign-in, or a dedicated Vault account).
    """

    conn_id: str
    url: str  # scheme and host (and port): the API path is added by the client
    vaults: tuple[str, ...] = ()  # names or ids, fnmatch globs, case-insensitive; () = every vault
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def api_base(self) -> str:
        return self.url + VAULT_API_PATH

    @property
    def uses_session(self) -> bool:
        return self.user is not None

    @classmethod
    def from_fields(cls, fields: ConnectionFields) -> VaultSettings | None:
        """The connection's Vault settings; None when it has no `vault_url`."""
        raw = _text(fields, "vault_url")
        if raw is None:
            for key in ("vaults", "vault_user", "vault_password"):
                if fields.extra.get(key) not in (None, "", []):
                    raise ConfigError(f"Connection {fields.conn_id!r} has extra.{key} but no extra.vault_url: "
                                      "add the Vault Gateway or server address, e.g. https://12345678.vg.autodesk.com.")
            return None
        url = _vault_url(fields.conn_id, raw)
        user, password = _text(fields, "vault_user"), _text(fields, "vault_password")
        if (user is None) != (password is None):
            raise ConfigError(f"Connection {fields.conn_id!r} has extra.{'vault_user' if user else 'vault_password'} "
                              f"without extra.{'vault_password' if user else 'vault_user'}: give both for a Vault "
                              "session, or neither to use the connection's Autodesk sign-in.")
        if user is None and _text(fields, "auth_mode") == AuthMode.CLIENT_CREDENTIALS.value:
            raise ConfigError(f"Connection {fields.conn_id!r} reaches Vault with a client-credentials token, which "
                              "Vault refuses (it needs a user): use auth_mode authorization_code, or set "
                              "extra.vault_user and extra.vault_password.")
        return cls(conn_id=fields.conn_id, url=url, vaults=_vault_selection(fields.conn_id, fields.extra.get("vaults")),
                   user=user, password=password)


def _vault_url(conn_id: str, raw: str) -> str:
    """`raw` as scheme://host[:port]; the API path may be given or not."""
    parts = urlsplit(raw.strip())
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not parts.hostname or path not in ("", VAULT_API_PATH) \
            or parts.query or parts.fragment:
        raise ConfigError(f"Connection {conn_id!r} has extra.vault_url {raw[:200]!r}, which is not a Vault "
                          "address: write e.g. https://12345678.vg.autodesk.com (Vault Gateway) or "
                          "https://vault.example.com (a Vault server).")
    return f"{parts.scheme}://{parts.netloc}"


def _vault_selection(conn_id: str, value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        names = []
    if not names or not all(names):
        raise ConfigError(f"Connection {conn_id!r} has extra.vaults={value!r}; write vault names or ids "
                          "(globs allowed) as a list, e.g. [\"Engineering\", \"Archive*\"], or leave it out "
                          "for every vault.")
    return tuple(names)


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

    def client(self, *, workers: int = 1) -> Any:
        """A boto3 S3 client for these settings, sized for `workers` parallel transfers."""
        import boto3  # boto3 import is slow; only pay for it when S3 is used

        from aps_mirror.s3_client import make_s3_client

        session = boto3.session.Session(aws_access_key_id=self.aws_access_key_id,
                                        aws_secret_access_key=self.aws_secret_access_key,
                                        aws_session_token=self.aws_session_token,
                                        region_name=self.region_name)
        return make_s3_client(session=session, endpoint_url=self.endpoint_url, workers=workers)


def _base_url(fields: ConnectionFields) -> str:
    """The API base URL: the host with its scheme (Airflow's URI form puts it in `schema`)."""
    host = (fields.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        if (fields.schema or "").lower() not in ("http", "https"):
            # Guessing https would turn a typo into 100 s of retries against the wrong server.
            raise ConfigError(
                f"Connection {fields.conn_id!r} has host {host!r} without a scheme; write it as "
                f"https://{host} (or leave the host empty for {DEFAULT_BASE_URL}).")
        host = f"{fields.schema.lower()}://{host}" + (f":{fields.port}" if fields.port else "")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Connection {fields.conn_id!r} has host {host!r}, which is not an "
                          f"http(s) URL; use e.g. {DEFAULT_BASE_URL}.")
    return host


def _text(fields: ConnectionFields, key: str) -> str | None:
    """extra[key] as text (None when absent or empty); another type is a ConfigError."""
    value = fields.extra.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"Connection {fields.conn_id!r} has extra.{key} of type "
                          f"{type(value).__name__}; it must be text.")
    return value


def _rate_scale(conn_id: str, value: Any) -> float:
    if value is None or value == "":
        return 1.0
    try:
        scale = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale < 0:
        raise ConfigError(f"Connection {conn_id!r} has extra.rate_scale={value!r}; it must be a "
                          "number >= 0 (1 = Autodesk's full rate limits, 0 = no client-side budget).")
    return scale


def _scopes(conn_id: str, value: Any) -> tuple[str, ...]:
    if not value:
        return DEFAULT_SCOPES
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"Connection {conn_id!r} has extra.scopes={value!r}; write the scopes as "
                      "text separated by spaces, e.g. \"data:read user-profile:read\".")


def _port(conn_id: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    raise ConfigError(f"Connection {conn_id!r} has port {value!r}; it must be a number from 1 to 65535.")


def _extra(conn_id: str, value: Any) -> dict[str, Any]:
    """The extra as a dict: Airflow stores it as JSON text, env vars may give an object."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Connection {conn_id!r} has an extra that is not valid JSON "
                              f"({exc.msg} at character {exc.pos}); fix it in the connection.") from None
    if not isinstance(value, dict):
        raise ConfigError(f"Connection {conn_id!r} has an extra of type {type(value).__name__}; "
                          'it must be a JSON object, e.g. {"auth_mode": "client_credentials"}.')
    return dict(value)


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
        if not isinstance(data, dict):
            raise ConfigError(f"{env_var_name(conn_id)} must be a JSON object.")
        known = ("conn_type", "host", "login", "password", "schema", "port", "extra")
        return ConnectionFields.parse(conn_id, **{k: data.get(k) for k in known})
    return _parse_uri(conn_id, value)


def _parse_uri(conn_id: str, value: str) -> ConnectionFields:
    """Airflow's URI form; `type://https://login:password@host` carries the host's scheme."""
    conn_type, sep, rest = value.partition("://")
    if not sep or not conn_type.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            f"{env_var_name(conn_id)} is neither JSON nor a connection URI like "
            "'autodesk://https://CLIENT_ID:CLIENT_SECRET@developer.api.autodesk.com'."
        )
    protocol, has_protocol, after = rest.partition("://")
    if has_protocol and ("@" in protocol or ":" in protocol):
        has_protocol, after = "", rest  # a '://' further on (in the query), not a protocol
    parts = urlsplit(f"{protocol}://{after}" if has_protocol else f"//{rest}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: Any = query.pop("__extra__") if "__extra__" in query else query
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{env_var_name(conn_id)} has a port that is not a number.") from None
    hostname = unquote(parts.hostname or "")
    return ConnectionFields.parse(
        conn_id,
        conn_type=conn_type.replace("-", "_"),
        host=(f"{parts.scheme}://{hostname}" + (f":{port}" if port else "")
              if has_protocol and hostname else hostname) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path.lstrip("/")) or None,
        port=port,
        extra=extra,
    )


def lookup_connection(conn_id: str, *, required: bool = True) -> ConnectionFields | None:
    """Find a connection as Airflow would: env var first, then the installed backend's lookup."""
    value = os.environ.get(env_var_name(conn_id))
    if value:
        return parse_connection_value(conn_id, value)
    backend = installed_backend()  # None without Airflow: only env vars define connections
    fields = backend.connection_fields(conn_id) if backend else None
    if fields is None and required:
        raise ConfigError(
            f"Connection {conn_id!r} was not found. Define it in the Airflow UI "
            f"(Admin > Connections) or export {env_var_name(conn_id)} as JSON, e.g. "
            '{"conn_type": "autodesk", "login": "CLIENT_ID", "password": "CLIENT_SECRET", '
            '"extra": {"auth_mode": "client_credentials"}}.'
        )
    return fields
