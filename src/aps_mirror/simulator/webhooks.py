"""The simulator's Webhooks service: every change of the account becomes a signed callback to each
active hook whose scope holds it, delivered in the background (see webhook_delivery.py), with the
switches and the log tests use. ``sim.webhooks`` is the one instance of a :class:`Simulator`."""

from __future__ import annotations

import json
import logging
import random
import uuid
from typing import Any

from .changes import Change
from .clock import Clock
from .state import Account
from .webhook_delivery import Deliverer, Delivery
from .webhook_events import payload, resource_urn
from .webhook_filter import matches
from .webhook_registry import HookRegistry, Settings, Target

log = logging.getLogger("aps_mirror.simulator.webhooks")


class Webhooks:
    """Hooks and tokens (``registry``), deliveries (``deliverer``) and the change listener between them."""

    def __init__(self, account: Account, clock: Clock, seed: int | str = 0) -> None:
        self._account = account
        self._ids = random.Random(f"webhooks/{account.seed}")  # reproducible hook and delivery ids
        self.registry = HookRegistry(clock, self._new_id)
        self.deliverer = Deliverer(self.registry, clock, seed)
        account.listeners.append(self._on_change)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    # ---- the listener (account lock held): queue, never send
    def _on_change(self, change: Change) -> None:
        try:
            targets = self.registry.targets(change)
            if targets:
                self.deliverer.enqueue(self._deliveries(change, targets))
        except Exception:  # a broken callback must never break the change itself
            log.exception("could not queue the webhook callbacks of %s", change.event)

    def _deliveries(self, change: Change, targets: list[Target]) -> list[Delivery]:
        event_payload = payload(change, self._account.user.user_id)
        urn = resource_urn(change)
        found = []
        for target in targets:
            if target.filter_terms is not None and not matches(target.filter_terms, event_payload):
                continue
            doc: dict[str, Any] = (event_payload if target.payload_only else
                                   {"version": "1.0", "resourceUrn": urn, "hook": target.details,
                                    "payload": event_payload})
            body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
            found.append(Delivery(self._new_id(), target.hook_id, target.event, target.url, body,
                                  one_time=target.one_time))
        return found

    # ---- for tests and the /_sim/webhooks control routes
    @property
    def settings(self) -> Settings:
        """Thresholds and timings: failures_to_deactivate, token_delay, reactivate_after, page_size."""
        return self.registry.settings

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Set delivery switches (duplicate, reorder_window, delay, drop, drop_next, retries, retry_backoff,
        timeout) and settings (failures_to_deactivate, token_delay, reactivate_after, page_size) by
        name; returns every value."""
        settings = {k: changes.pop(k) for k in list(changes) if hasattr(self.registry.settings, k)}
        switches = self.deliverer.configure(**changes)
        for name, value in settings.items():
            least = 1 if name in ("failures_to_deactivate", "page_size") else 0
            if value is None or float(value) < least:
                raise ValueError(f"{name} must be a number of {least} or more")
            setattr(self.registry.settings, name, type(getattr(self.registry.settings, name))(value))
        return {**switches, **vars(self.registry.settings)}

    def seed(self, seed: int | str) -> None:
        """Restart the random draws of the duplicate, drop and reorder switches."""
        self.deliverer.seed(seed)

    def fail_deliveries(self, url: str, status: int = 500, count: int | None = None) -> None:
        """Deliveries to ``url`` are not sent and fail with ``status`` (all, or the next ``count``)."""
        self.deliverer.fail_url(url, status, count)

    def clear_failures(self) -> None:
        self.deliverer.clear_failing()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery is queued, held or in flight (True), or ``timeout`` seconds (False)."""
        return self.deliverer.drain(timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        """The log: every attempt (delivery_id, hook_id, event, url, attempt, duplicate, outcome, status,
        headers, body, at) and every event not sent (outcome dropped / hook inactive / hook deleted)."""
        return self.deliverer.deliveries()

    def clear_log(self) -> None:
        self.deliverer.clear_log()

    def hook(self, hook_id: str) -> dict[str, Any] | None:
        """A hook's details (and ``failedEvents``), whoever owns it; None if it does not exist."""
        return self.registry.snapshot(hook_id)
