"""Checks the factories share: arguments are refused where they enter, in one line."""

from __future__ import annotations

import re
import sys
from typing import Any

from aps_mirror.errors import ConfigError

# Airflow's own rule for DAG ids (KEY_REGEX), so the message comes before Airflow's traceback.
_DAG_ID = re.compile(r"^[\w.-]+$")
_OWN_PACKAGE = __name__.rsplit(".", 2)[0]  # aps_mirror.airflow_provider


def check_dag_id(dag_id: Any) -> str:
    if not isinstance(dag_id, str) or not _DAG_ID.fullmatch(dag_id) or len(dag_id) > 200:
        raise ConfigError(f"dag_id {dag_id!r} is not accepted: use letters, digits, '_', '-' and '.' "
                          "(at most 200 characters).")
    return dag_id


def check_name(label: str, value: Any, *, optional: bool = False) -> str | None:
    """A connection id or pool name: a non-empty string without spaces."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ConfigError(f"{label} {value!r} is not accepted: use a non-empty name without spaces.")
    return value


def caller_file() -> str | None:
    """The DAG file that called a factory (the first frame outside this package): Airflow
    records it as the DAG's file, as if the DAG were written there."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_OWN_PACKAGE):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else None
