"""Grouping the projects that need work into a bounded number of balanced batches.

An orchestrator that runs one task per batch then has as many tasks as `max_batches` at
most, whatever the account's size: Airflow refuses to map more than `[core] max_map_length`
(1,024 by default) task instances from one list.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")

# What a walk costs, roughly, by why it is due: a first copy or full walk lists every folder.
_HEAVY = ("new project", "no full walk yet", "full walk", "last full walk", "the selection changed",
          "hub or project renamed", "the last run was interrupted")


def walk_weight(reason: str | None) -> int:
    """A project's expected cost relative to a walk of what changed since the last run."""
    return 10 if reason and reason.startswith(_HEAVY) else 1


def balanced_batches(items: Sequence[T], weights: Sequence[int], max_batches: int) -> list[list[T]]:
    """At most `max_batches` batches, one item each while there are few, with their total
    weights balanced (heaviest first, each to the lightest batch); items keep their order in
    a batch. Empty input, no batch."""
    if max_batches < 1:
        raise ValueError(f"max_batches must be at least 1, got {max_batches}")
    count = min(max_batches, len(items))
    loads = [0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(items)), key=lambda i: -weights[i]):
        lightest = min(range(count), key=lambda b: (loads[b], len(members[b]), b))
        members[lightest].append(index)
        loads[lightest] += weights[index]
    return [[items[i] for i in sorted(batch)] for batch in members]
