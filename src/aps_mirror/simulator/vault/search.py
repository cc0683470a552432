"""Advanced search: the body's criteria against property values (no HTTP here).

The spec leaves open how criteria combine and which date format ``searchString`` takes.
GUESS: criteria combine with AND; dates are ISO-8601 (``2024-01-15T09:00:00Z``, fractions up
to 7 digits, or a bare date). A criterion on a property the entity does not have matches only
``IsEmpty``. Cloaked entities are never found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import PropertyDefinitionDoesNotExist, VaultBadRequest
from .model import FileVersion, Folder, PropertyDefinition
from .properties import BOOL, BY_ID, DATETIME, NUMERIC, value_of

OPERATORS = ("Unknown", "Contains", "DoesNotContain", "IsExactly", "IsEmpty", "IsNotEmpty", "GreaterThan",
             "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "NotEqualTo")
ENTITY_TYPES = ("File", "Folder", "Item", "ChangeOrder")


@dataclass(frozen=True)
class Criterion:
    definition: PropertyDefinition
    operator: str
    search_string: str


@dataclass(frozen=True)
class Sort:
    definition: PropertyDefinition
    ascending: bool


@dataclass(frozen=True)
class SearchRequest:
    entity_types: frozenset[str]  # empty: every type
    folder_ids: tuple[str, ...]  # empty: the whole vault
    criteria: tuple[Criterion, ...]
    sorts: tuple[Sort, ...]


def parse_date(raw: str) -> float:
    text = raw.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads up to 6 fractional digits; Vault writes up to 7
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise VaultBadRequest(f"Invalid date {raw!r}: use ISO-8601, e.g. 2024-01-15T09:00:00Z.") from None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _definition(url: Any) -> PropertyDefinition:
    if not isinstance(url, str) or "property-definitions/" not in url:
        raise VaultBadRequest(f"Invalid propertyDefinitionUrl {url!r}.")
    prop_id = url.rstrip("/").rsplit("/", 1)[-1]
    found = BY_ID.get(prop_id)
    if found is None:
        raise PropertyDefinitionDoesNotExist(prop_id)
    return found


def parse(body: Any) -> SearchRequest:
    """The request body, checked (400 for a malformed one, 404 for an unknown property)."""
    if not isinstance(body, dict):
        raise VaultBadRequest("The body must be a JSON object.")
    types = body.get("entityTypesToSearch") or []
    if not isinstance(types, list) or any(t not in ENTITY_TYPES for t in types) or len(set(types)) != len(types):
        raise VaultBadRequest(f"entityTypesToSearch must be unique values of {', '.join(ENTITY_TYPES)}.")
    folders = body.get("foldersToSearch") or []
    if not isinstance(folders, list) or not all(isinstance(f, str) and "/folders/" in f for f in folders):
        raise VaultBadRequest("foldersToSearch must be folder URLs.")
    raw_criteria = body.get("searchCriterias")
    if not isinstance(raw_criteria, list):
        raise VaultBadRequest("searchCriterias is required.", params=["searchCriterias"])
    criteria = []
    for raw in raw_criteria:
        if not isinstance(raw, dict) or raw.get("operator") not in OPERATORS or raw.get("operator") == "Unknown":
            raise VaultBadRequest(f"Each search criterion needs an operator among {', '.join(OPERATORS[1:])}.")
        criteria.append(Criterion(_definition(raw.get("propertyDefinitionUrl")), raw["operator"],
                                  str(raw.get("searchString") or "")))
    sorts = []
    for raw in body.get("sortCriterias") or []:
        if not isinstance(raw, dict):
            raise VaultBadRequest("sortCriterias must be objects.")
        sorts.append(Sort(_definition(raw.get("propertyDefinitionUrl")), bool(raw.get("ascending", True))))
    return SearchRequest(frozenset(types), tuple(f.rstrip("/").rsplit("/", 1)[-1] for f in folders),
                         tuple(criteria), tuple(sorts))


def _typed(definition: PropertyDefinition, text: str) -> Any:
    if definition.data_type == DATETIME:
        return parse_date(text)
    if definition.data_type == NUMERIC:
        try:
            return float(text)
        except ValueError:
            raise VaultBadRequest(f"{definition.system_name} takes a number, not {text!r}.") from None
    if definition.data_type == BOOL:
        return text.strip().lower() == "true"
    return text.casefold()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "IsExactly": lambda a, b: a == b, "NotEqualTo": lambda a, b: a != b,
    "GreaterThan": lambda a, b: a > b, "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b,
    "Contains": lambda a, b: str(b) in str(a), "DoesNotContain": lambda a, b: str(b) not in str(a),
}


def matches(entity: FileVersion | Folder, criteria: tuple[Criterion, ...]) -> bool:
    for criterion in criteria:
        value = value_of(criterion.definition, entity)
        if isinstance(value, str):
            value = value.casefold()
        empty = value is None or value == ""
        if criterion.operator in ("IsEmpty", "IsNotEmpty"):
            if empty != (criterion.operator == "IsEmpty"):
                return False
            continue
        if empty or not _COMPARE[criterion.operator](value, _typed(criterion.definition, criterion.search_string)):
            return False
    return True


def sort_key(sorts: tuple[Sort, ...]) -> Callable[[FileVersion | Folder], Any] | None:
    """A key for ``sorted`` (only the first sort criterion is applied: GUESS, enough for a mirror)."""
    if not sorts:
        return None
    definition = sorts[0].definition

    def key(entity: FileVersion | Folder) -> Any:
        value = value_of(definition, entity)
        return (value is None, value if value is not None else 0)

    return key
