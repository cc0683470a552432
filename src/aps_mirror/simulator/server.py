"""Run the simulator's FastAPI app with uvicorn in a background thread on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from aps_mirror.extras import import_extra

# The server stack is the `simulator` extra; Simulator itself (in-process) needs neither.
import_extra("fastapi", extra="simulator", feature="The APS simulator's HTTP server")
uvicorn = import_extra("uvicorn", extra="simulator", feature="The APS simulator's HTTP server")

from .app import create_app  # noqa: E402 - after the check, so a missing fastapi is named
from .sim import Simulator  # noqa: E402


class SimulatorServer:
    """A live simulator: ``with SimulatorServer() as server: requests.get(server.base_url + ...)``.

    Pass a ready ``sim`` or the keyword arguments of :class:`Simulator`. ``port=0`` picks a free port.
    """

    def __init__(self, sim: Simulator | None = None, host: str = "127.0.0.1", port: int = 0,
                 access_log: bool = False, log_level: str = "warning", **sim_kwargs: object) -> None:
        self.sim = sim if sim is not None else Simulator(**sim_kwargs)  # type: ignore[arg-type]
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client_id(self) -> str:
        return self.sim.client_id

    @property
    def client_secret(self) -> str:
        return self.sim.client_secret

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        """Bind, start serving in a daemon thread and wait until requests are accepted."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        sock.set_inheritable(True)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.sim), lifespan="off", access_log=self._access_log,
                                log_level=self._log_level, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"aps-simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the APS simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to finish and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
