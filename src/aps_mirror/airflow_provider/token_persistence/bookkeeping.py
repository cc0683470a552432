"""The keys aps-mirror keeps in an `autodesk` connection's extra, next to the refresh token.

Only REFRESH_TOKEN_KEY is secret; the rest is non-secret bookkeeping that tells readers whether
their copy is current and lets a refusal after a crash be explained.
"""

from __future__ import annotations

from datetime import datetime, timezone

REFRESH_TOKEN_KEY = "refresh_token"
GENERATION_KEY = "rt_generation"
FINGERPRINT_KEY = "rt_fingerprint"
ROTATED_AT_KEY = "rt_rotated_at"
PENDING_KEY = "rt_pending"
ACCOUNT_KEY = "connected_account"  # who consented, which scopes, when (shown in the UI)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
