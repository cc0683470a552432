"""A hook's ``filter``: the JsonPath form Autodesk documents, ``$[?(@.ext=='txt')]``, over the
callback's ``payload``. The simulator understands comparisons of payload members (dotted paths)
with ``==`` / ``!=`` against a string, number or boolean, joined by ``&&`` / ``||`` (``&&`` binds
tighter); anything else is refused when the hook is made, so a filter never silently matches all."""

from __future__ import annotations

import re
from typing import Any

_WHOLE = re.compile(r"^\s*\$\[\?\((?P<body>.*)\)\]\s*$", re.S)
_TERM = re.compile(r"""^\s*@\.(?P<path>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*(?P<op>==|!=)\s*
                       (?P<value>'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?|true|false)\s*$""", re.X)

Term = tuple[tuple[str, ...], str, Any]  # (member path, operator, literal)


class FilterError(ValueError):
    """The expression is not in the subset the simulator evaluates."""


def _literal(raw: str) -> Any:
    if raw[0] in "'\"":
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    return float(raw) if "." in raw else int(raw)


def parse(expression: str) -> list[list[Term]]:
    """The expression as OR-ed groups of AND-ed terms, or :class:`FilterError`."""
    whole = _WHOLE.match(expression)
    if whole is None:
        raise FilterError(f"Unsupported filter {expression!r}: use the form $[?(@.member=='value')].")
    groups: list[list[Term]] = []
    for alternative in whole.group("body").split("||"):
        terms: list[Term] = []
        for part in alternative.split("&&"):
            term = _TERM.match(part)
            if term is None:
                raise FilterError(f"Unsupported condition {part.strip()!r} in the filter {expression!r}.")
            terms.append((tuple(term.group("path").split(".")), term.group("op"), _literal(term.group("value"))))
        groups.append(terms)
    return groups


def _member(payload: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(payload, dict) or key not in payload:
            return None
        payload = payload[key]
    return payload


def matches(groups: list[list[Term]], payload: dict[str, Any]) -> bool:
    """True when one group has every term true (a missing member equals nothing)."""
    return any(all((_member(payload, path) == value) == (op == "==") for path, op, value in terms)
               for terms in groups)
