"""Autodesk Vault Data API v2 client (core, no Airflow): vaults, folders, file versions, ranged downloads.

``client.py`` the calls; ``models.py`` the parsed values; ``sessions.py`` Vault session sign-in as a
bearer source; ``download.py`` Range-chunked, checked, hashed downloads with bounded memory.
"""

from __future__ import annotations

from .client import VaultClient
from .download import DEFAULT_CHUNK_SIZE, GATEWAY_PAYLOAD_QUOTA
from .models import ROOT, Download, Vault, VaultFileVersion, VaultFolder

__all__ = ["DEFAULT_CHUNK_SIZE", "GATEWAY_PAYLOAD_QUOTA", "ROOT", "Download", "Vault", "VaultClient",
           "VaultFileVersion", "VaultFolder"]
