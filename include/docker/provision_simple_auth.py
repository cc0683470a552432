"""airflow-init's step that writes SimpleAuthManager's password file (docker-compose.yaml).

Two users, as AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS declares them:
- the people's login (_AIRFLOW_WWW_USER_USERNAME / _AIRFLOW_WWW_USER_PASSWORD, role admin);
- aps-mirror's own REST user (APS_MIRROR_AIRFLOW_API_USERNAME, role op: the least role that may
  edit connections), with which tasks save rotated Autodesk refresh tokens. Its password is
  _APS_MIRROR_AIRFLOW_API_PASSWORD when given (from .env), else the one an earlier init kept,
  else a new random one; it is written to APS_MIRROR_AIRFLOW_API_PASSWORD_FILE (in the shared
  ./config volume, readable by the Airflow user only), where the services read it.

Prints paths, never a password. Standard library only: it runs in the image's Python.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path


def main() -> int:
    env = os.environ
    passwords_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    api_password_file = Path(env["APS_MIRROR_AIRFLOW_API_PASSWORD_FILE"])
    login, api_user = env["_AIRFLOW_WWW_USER_USERNAME"], env["APS_MIRROR_AIRFLOW_API_USERNAME"]
    roles = dict(entry.strip().split(":")[:2] for entry in
                 env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",") if entry.strip())
    if login == api_user or roles.get(login, "").lower() != "admin" or roles.get(api_user, "").lower() != "op":
        print(f"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS must give {login!r} role admin and "
              f"aps-mirror's REST user {api_user!r} (APS_MIRROR_AIRFLOW_API_USERNAME, another name) "
              "role op; fix docker-compose.yaml or .env.", file=sys.stderr)
        return 1

    text = passwords_file.read_text().strip() if passwords_file.exists() else ""
    passwords = json.loads(text or "{}")
    kept = api_password_file.read_text().strip() if api_password_file.exists() else ""
    api_password = env.get("_APS_MIRROR_AIRFLOW_API_PASSWORD") or kept or secrets.token_urlsafe(24)
    passwords[login] = env["_AIRFLOW_WWW_USER_PASSWORD"]
    passwords[api_user] = api_password
    _write_private(api_password_file, api_password + "\n")
    _write_private(passwords_file, json.dumps(passwords) + "\n")
    print(f"{passwords_file}: users {login} (admin) and {api_user} (op)")
    print(f"{api_password_file}: the password of {api_user}")
    return 0


def _write_private(path: Path, text: str) -> None:
    """Owner-only (init chowns ./config to AIRFLOW_UID afterwards, the services' user)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file an earlier init created
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
