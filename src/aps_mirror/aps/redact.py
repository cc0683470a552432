"""Keeping signed-URL signatures and OAuth secrets out of exception texts and log lines.

A signed download URL is a credential until it expires: whoever reads it can fetch the file.
requests and urllib3 write full URLs into connection errors ("Max retries exceeded with url:
/o?...&Signature=...") and, at DEBUG, into their request log lines; from there a text reaches
the terminal (`-v`), task logs, the mirror's error list and the catalog. The client re-raises
such errors scrubbed and filters the HTTP libraries' loggers, so every caller is covered.
"""

from __future__ import annotations

import logging
import re
import threading

import requests

# Query parameters that make a URL (or a form) a credential: S3/CloudFront presigning,
# Autodesk's signed URLs, OAuth codes and tokens.
SECRET_PARAMETERS = (
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature", "Policy",
    "Key-Pair-Id", "sig", "token", "access_token", "refresh_token", "id_token", "code",
    "code_verifier", "client_secret", "assertion",
)
_SECRET_VALUE = re.compile(
    r"(?i)(?<![\w-])(" + "|".join(re.escape(name) for name in SECRET_PARAMETERS)
    + r")=[^&\s'\")\]>]+")
HIDDEN = "***"

# The HTTP libraries' loggers that print URLs (request lines, retries, redirects).
_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry",
                 "urllib3.connection", "urllib3.response")


def scrub(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by ***."""
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}={HIDDEN}", text)


def scrubbed_error(exc: requests.RequestException) -> requests.RequestException | None:
    """A copy of `exc` (same type) whose text names no secret, or None when it names none."""
    text = str(exc)
    clean = scrub(text)
    if clean == text:
        return None
    try:
        copy = type(exc)(clean, request=exc.request, response=exc.response)
    except Exception:  # noqa: BLE001 - an exception type with a constructor of its own
        copy = requests.ConnectionError(clean, request=exc.request, response=exc.response)
    return copy


class ScrubbingFilter(logging.Filter):
    """Rewrites a log record's message without secret query parameters (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's business, not ours
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = ScrubbingFilter()
_installed = threading.Lock()


def scrub_http_logs() -> None:
    """Filter the HTTP libraries' loggers (idempotent; a logger's filters see its own records)."""
    with _installed:
        for name in _HTTP_LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
