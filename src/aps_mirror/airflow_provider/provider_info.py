"""Provider metadata Airflow reads through the `apache_airflow_provider` entry point.

Pure data, no imports of Airflow or of the hook: every Airflow process loads this at start-up.
The version is the package's own (`aps_mirror.__version__`, which the wheel's metadata also reads).
Airflow 3.2+ builds the connection form from `conn-fields` and `ui-field-behaviour` here
without importing the hook; `AutodeskHook.get_ui_field_behaviour()` returns the same dict.
"""

from __future__ import annotations

from typing import Any

from aps_mirror import __version__

PACKAGE_NAME = "aps-mirror"
CONN_TYPE = "autodesk"
HOOK_NAME = "Autodesk Platform Services"
HOOK_CLASS = "aps_mirror.airflow_provider.hooks.autodesk.AutodeskHook"
AUTH_MODES = ("authorization_code", "ssa", "client_credentials")

# The standard form fields: host = API base URL, login = client id, password = client secret.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client Secret"},
    "placeholders": {
        "host": "https://developer.api.autodesk.com",
        "login": "Client ID of your APS app",
        "password": "Client Secret of your APS app",
        "extra": '{"auth_mode": "authorization_code", "scopes": "data:read"}',
    },
}

# Extra fields shown in the form. The refresh token is deliberately not one of them: it lives
# in extra["refresh_token"], is written by aps-mirror itself, and Airflow redacts it ("token").
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "auth_mode": {
        "label": "Auth mode",
        "description": "authorization_code (3-legged, a user's refresh token), ssa (Secure "
                       "Service Account) or client_credentials (2-legged app token).",
        "schema": {"type": ["string", "null"], "default": "authorization_code",
                   "enum": list(AUTH_MODES)},
    },
    "scopes": {
        "label": "Scopes",
        "description": "Space separated APS scopes, e.g. 'data:read user-profile:read'.",
        "schema": {"type": ["string", "null"], "default": "data:read"},
    },
    "callback_url": {
        "label": "Callback URL",
        "description": "The callback URL registered for your APS app (authorization_code only).",
        "schema": {"type": ["string", "null"]},
    },
    "user_id": {
        "label": "Acting user id",
        "description": "Optional: an ACC user id sent as x-user-id with 2-legged calls.",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict[str, Any]:
    """The provider metadata dict (Airflow's runtime `provider_info.schema.json`)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Autodesk Platform Services (aps-mirror)",
        "description": "Mirror Autodesk Platform Services (APS) Data Management documents "
                       "into Amazon S3: the `autodesk` connection type and `AutodeskHook`.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": HOOK_NAME,
                "external-doc-url": "https://aps.autodesk.com/developer/documentation",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": HOOK_NAME,
                "python-modules": ["aps_mirror.airflow_provider.hooks.autodesk"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS,
                "hook-name": HOOK_NAME,
                "connection-type": CONN_TYPE,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
                    "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
                    "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
                },
            }
        ],
    }
