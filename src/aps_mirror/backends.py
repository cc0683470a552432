"""Where connections, rotated refresh tokens and S3 credentials come from when a host platform
provides them.

The core names no host. A package registers a backend in the `aps_mirror.backends` entry-point
group (the Airflow adapter does, in pyproject.toml); the first one whose own dependencies import
is used. Without one, connections come only from `AIRFLOW_CONN_*` variables, a rotated
refresh token lives in memory for the process, and the core reads `aws` connections itself
(`s3_client.client_from_fields`: keys, endpoint, region, profile, botocore config; no roles).
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aps_mirror.aps.auth import TokenStore
    from aps_mirror.connection import ConnectionFields

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "aps_mirror.backends"


class Backend(Protocol):
    """What the core asks of a host platform."""

    name: str

    def connection_fields(self, conn_id: str) -> ConnectionFields | None:
        """The raw fields of `conn_id` (parsed with ConnectionFields.parse), or None if undefined."""

    def token_store(self, conn_id: str) -> TokenStore:
        """Where the rotating refresh token of `conn_id` is kept between runs."""

    def s3_client(self, conn_id: str, *, workers: int = 1) -> Any:
        """The boto3 S3 client of the `aws` connection `conn_id` as the platform resolves it
        (keys, profiles, roles, endpoint, botocore config), built by
        `s3_client.make_s3_client` for `workers` parallel transfers. A connection that is
        missing (other than the default) or unusable is a one-line ConfigError."""


@functools.cache
def installed_backend() -> Backend | None:
    """The first registered backend that loads here, or None (looked up once per process)."""
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            factory = entry.load()
        except ImportError as exc:  # its platform is not installed here: not an error
            log.debug("aps-mirror backend %r is not available (%s)", entry.name, exc)
            continue
        return factory()
    return None
