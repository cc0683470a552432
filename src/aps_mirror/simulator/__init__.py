"""An in-process Autodesk Platform Services simulator (OAuth, Data Management, OSS) for tests and demos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import Clock
from .sim import Simulator
from .state import FileEntry, Version

if TYPE_CHECKING:
    from .server import SimulatorServer

__all__ = ["Clock", "FileEntry", "Simulator", "SimulatorServer", "Version"]


def __getattr__(name: str) -> Any:
    # The HTTP server needs the `simulator` extra (fastapi, uvicorn): imported when first asked for.
    if name == "SimulatorServer":
        from .server import SimulatorServer

        return SimulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
