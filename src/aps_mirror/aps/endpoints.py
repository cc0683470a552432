"""Names of APS endpoint classes, shared by the client's call counters and the simulator's.

Autodesk rate-limits per client id and per endpoint; the classes below follow its table
(Autodesk's documented rate limits per endpoint), so a count per class is also a count per rate budget.
"""

from __future__ import annotations

import re
from typing import Final

from aps_mirror.connection import VAULT_API_PATH

_VAULT = "^" + re.escape(VAULT_API_PATH)
# The Vault Gateway's documented 40,000 requests per 5 minutes, as a per-minute rate.
VAULT_GATEWAY_RPM: Final = 40_000 // 5

# (class name, documented requests per minute, path pattern). Order matters: first match wins.
_ENDPOINTS: Final[list[tuple[str, int | None, re.Pattern[str]]]] = [
    (name, rpm, re.compile(pattern))
    for name, rpm, pattern in [
        ("token", 500, r"^/authentication/v2/token$"),
        ("authorize", None, r"^/authentication/v2/authorize(/.*)?$"),
        ("userprofile", None, r"^/userprofile/v1/users/@me$"),
        ("hubs", 50, r"^/project/v1/hubs$"),
        ("hub", 50, r"^/project/v1/hubs/[^/]+$"),
        ("projects", 50, r"^/project/v1/hubs/[^/]+/projects$"),
        ("project", 50, r"^/project/v1/hubs/[^/]+/projects/[^/]+$"),
        ("top_folders", 300, r"^/project/v1/hubs/[^/]+/projects/[^/]+/topFolders$"),
        ("folder_contents", 300, r"^/data/v1/projects/[^/]+/folders/[^/]+/contents$"),
        ("folder_search", 300, r"^/data/v1/projects/[^/]+/folders/[^/]+/search$"),
        ("folder_parent", 50, r"^/data/v1/projects/[^/]+/folders/[^/]+/(parent|refs)$"),
        ("folder", 300, r"^/data/v1/projects/[^/]+/folders/[^/]+$"),
        ("item_tip", 50, r"^/data/v1/projects/[^/]+/items/[^/]+/tip$"),
        ("item_versions", 800, r"^/data/v1/projects/[^/]+/items/[^/]+/versions$"),
        ("item", 300, r"^/data/v1/projects/[^/]+/items/[^/]+$"),
        ("version", 300, r"^/data/v1/projects/[^/]+/versions/[^/]+$"),
        # The write side (restore): creation endpoints and the OSS upload pair.
        ("storage", 300, r"^/data/v1/projects/[^/]+/storage$"),
        ("create_folder", 50, r"^/data/v1/projects/[^/]+/folders$"),
        ("create_item", 50, r"^/data/v1/projects/[^/]+/items$"),
        ("create_version", 300, r"^/data/v1/projects/[^/]+/versions$"),
        ("complete_upload", 1000, r"^/oss/v2/buckets/[^/]+/objects/.+/signeds3upload$"),  # POST only
        ("signeds3upload", 1000, r"^/oss/v2/buckets/[^/]+/objects/.+/signeds3upload$"),
        ("signeds3download", 1000, r"^/oss/v2/buckets/[^/]+/objects/.+/signeds3download$"),
        ("oss", 1000, r"^/oss/v2/.*$"),
        # Webhooks (Autodesk's "Webhooks Rate Limits and Quotas" page; tokens are not listed
        # there: 50, the lowest webhooks limit, is assumed). Creations are POST only.
        ("webhooks_create_all", 50, r"^/webhooks/v1/systems/[^/]+/hooks$"),  # POST only
        ("webhooks_create", 50, r"^/webhooks/v1/systems/[^/]+/events/[^/]+/hooks$"),  # POST only
        ("webhooks_system_hooks", 300, r"^/webhooks/v1/systems/[^/]+/hooks$"),
        ("webhooks_event_hooks", 300, r"^/webhooks/v1/systems/[^/]+/events/[^/]+/hooks$"),
        ("webhooks_hook", 300, r"^/webhooks/v1/systems/[^/]+/events/[^/]+/hooks/[^/]+$"),  # GET, PATCH, DELETE
        ("webhooks_hooks", 300, r"^/webhooks/v1/(app/)?hooks$"),
        ("webhooks_tokens", 50, r"^/webhooks/v1/tokens(/@me)?$"),
        # Vault Data API v2 (server or Vault Gateway). The server itself has no limits; the
        # gateway allows 40,000 requests per 5 minutes for all its APIs: one budget, "vault".
        ("vault_server_info", None, _VAULT + r"/server-info$"),
        ("vault_sessions", None, _VAULT + r"/sessions(/[^/]+)?$"),
        ("vault_search", None, _VAULT + r"/vaults/[^/]+:advanced-search$"),
        ("vault_vaults", None, _VAULT + r"/vaults$"),
        ("vault_vault", None, _VAULT + r"/vaults/[^/]+$"),
        ("vault_sub_folders", None, _VAULT + r"/vaults/[^/]+/folders/[^/]+/sub-folders$"),
        ("vault_folder_contents", None, _VAULT + r"/vaults/[^/]+/folders/[^/]+/contents$"),
        ("vault_folder", None, _VAULT + r"/vaults/[^/]+/folders/[^/]+$"),
        ("vault_content", None, _VAULT + r"/vaults/[^/]+/file-versions/[^/]+/content$"),
        ("vault_signed_url", None, _VAULT + r"/vaults/[^/]+/file-versions/[^/]+/signedurl$"),
        ("vault_file_version", None, _VAULT + r"/vaults/[^/]+/file-versions/[^/]+$"),
        ("vault_file_versions", None, _VAULT + r"/vaults/[^/]+/file-versions$"),
        ("vault_file_history", None, _VAULT + r"/vaults/[^/]+/files/[^/]+/versions$"),
        ("vault_file", None, _VAULT + r"/vaults/[^/]+/files/[^/]+$"),
        ("vault_property_definitions", None, _VAULT + r"/vaults/[^/]+/property-definitions(/[^/]+)?$"),
        ("vault", VAULT_GATEWAY_RPM, _VAULT + r"(/.*)?$"),
    ]
]

# Transfers to and from a signed URL carry no APS credentials and no APS rate limit.
SIGNED_URL_DOWNLOAD: Final = "download"
SIGNED_URL_UPLOAD: Final = "upload"
OTHER: Final = "other"

# Every OSS endpoint shares one budget at Autodesk.
SHARED_BUDGETS: Final[dict[str, str]] = {
    "signeds3download": "oss", "signeds3upload": "oss", "complete_upload": "oss",
    # Every Vault call through the gateway draws from its one budget.
    **{name: "vault" for name, _rpm, _pattern in _ENDPOINTS if name.startswith("vault_")},
}

# Classes bound to one method (the same path answers another class otherwise).
_METHODS: Final[dict[str, str]] = {"complete_upload": "POST", "webhooks_create_all": "POST",
                                  "webhooks_create": "POST"}


def classify(path: str, method: str = "GET") -> str:
    """Return the endpoint class of a request (path without query string), or 'other'."""
    for name, _rpm, pattern in _ENDPOINTS:
        if name in _METHODS and _METHODS[name] != method.upper():
            continue
        if pattern.match(path):
            return name
    return OTHER


def documented_rpm(endpoint_class: str) -> int | None:
    """Autodesk's documented requests per minute for a class, or None when unlimited/unknown."""
    for name, rpm, _pattern in _ENDPOINTS:
        if name == endpoint_class:
            return rpm
    return None


def budget_of(endpoint_class: str) -> str:
    """The rate budget a class draws from (all OSS endpoints share one)."""
    return SHARED_BUDGETS.get(endpoint_class, endpoint_class)
