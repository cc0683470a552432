"""An in-process Autodesk Platform Services simulator (OAuth, Data Management, OSS) for tests and demos."""

from __future__ import annotations

from .clock import Clock
from .server import SimulatorServer
from .sim import Simulator
from .state import FileEntry, Version

__all__ = ["Clock", "FileEntry", "Simulator", "SimulatorServer", "Version"]
