"""A simulated Autodesk Vault server (Data API v2) beside the APS simulator: ``sim.vault`` and its routes.

Modules: ``model.py`` value objects; ``state.py`` the vaults and every mutation; ``seed.py``
accounts, the demo vault, generated vaults, churn; ``sessions.py`` sign-in and who a token
is; ``gateway.py`` the Vault Gateway's rate limit and payload quota; ``properties.py`` and
``search.py`` property definitions, values and advanced-search criteria; ``paging.py`` cursor
paging; ``serialize.py`` the JSON shapes; ``errors.py`` the ErrorResponse family;
``service.py`` the ``sim.vault`` facade; ``web.py``, ``routes.py`` and ``routes_*.py`` the HTTP face.
"""

from __future__ import annotations

from .service import VaultService

__all__ = ["VaultService"]
