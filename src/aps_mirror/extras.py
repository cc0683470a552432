"""Optional features and the extras that install them: a missing one is a one-line error naming
the pip command, raised where the feature is first used (never at import of the core).

    simulator  fastapi, uvicorn: the APS simulator's HTTP server (`aps-mirror simulator serve`)
    redis      redis: a rate budget and a refresh lock shared through Redis
    postgres   psycopg2: a refresh lock shared through PostgreSQL
"""

from __future__ import annotations

import importlib
from types import ModuleType

from aps_mirror.errors import ConfigError


class MissingExtra(ConfigError, ImportError):
    """An optional dependency is not installed (a ConfigError: the CLI prints it as one line)."""


def import_extra(module: str, *, extra: str, feature: str) -> ModuleType:
    """`module` imported, or MissingExtra saying which extra brings it."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, package):
            raise  # installed, but broken: its own error says more
        raise MissingExtra(f"{feature} needs {package}, which is not installed: "
                           f"pip install 'aps-mirror[{extra}]'") from None
