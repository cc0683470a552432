"""Assemble the simulator's HTTP face: the traffic edge, error mapping and the route modules."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from . import routes_auth, routes_control, routes_dm, routes_oss, routes_upload, routes_webhooks, routes_write
from .errors import SimError
from .sim import Simulator
from .traffic import SimApp, fault_response
from .vault import routes as vault_routes
from .web import render_error

__all__ = ["create_app", "fault_response", "render_error"]


def create_app(sim: Simulator) -> FastAPI:
    """The HTTP face of ``sim``: Autodesk's paths (APS and Vault) plus the ``/_sim/`` control namespace."""
    app = SimApp(title="APS simulator", docs_url="/_sim/docs", redoc_url=None, openapi_url="/_sim/openapi.json")
    app.sim = sim

    @app.exception_handler(SimError)
    async def _on_sim_error(_request: Request, exc: SimError) -> Response:
        return render_error(exc)

    routes_auth.register(app, sim)
    routes_dm.register(app, sim)
    routes_oss.register(app, sim)
    routes_write.register(app, sim)
    routes_upload.register(app, sim)
    routes_webhooks.register(app, sim)
    vault_routes.register(app, sim.vault)
    routes_control.register(app, sim)
    return app
