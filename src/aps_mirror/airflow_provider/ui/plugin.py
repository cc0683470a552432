"""Registers aps-mirror's pages with Airflow: a FastAPI app and nav links to its two pages,
"Autodesk accounts" and the "Autodesk mirror" dashboard."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/aps-mirror"


def _app():  # noqa: ANN202 - imported lazily: only the API server needs the pages
    from aps_mirror.airflow_provider.ui.app import create_app

    return create_app()


class ApsMirrorPlugin(AirflowPlugin):
    name = "aps_mirror"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Autodesk accounts"}]
    external_views = [{"name": "Autodesk accounts", "href": f"{URL_PREFIX}/", "destination": "nav",
                       "category": "browse", "url_route": "autodesk-accounts"},
                      {"name": "Autodesk mirror", "href": f"{URL_PREFIX}/dashboard", "destination": "nav",
                       "category": "browse", "url_route": "autodesk-mirror"}]
