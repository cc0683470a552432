"""Watching the nightly run: a notifier for failures and missed deadlines, and the deadline itself.

`MirrorAlertNotifier` writes one WARNING line to the `aps_mirror.alerts` logger, synchronously
(a DAG's `on_failure_callback`, run by the DAG processor) or awaited (a `DeadlineAlert`'s
`AsyncCallback`, run by the triggerer): a log line any log shipping can alert on, with no
setup. Airflow's own notifiers (SmtpNotifier, SlackWebhookNotifier) plug in the same places.

The deadline is a time of day (UTC, `APS_MIRROR_DEADLINE`, e.g. `06:00`; `off` for none) by
which the night's scheduled run must be done, counted from its scheduled start (midnight UTC
for `@daily`), read each time the DAG file is parsed.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseNotifier
from aps_mirror.airflow_provider.compat import deadline_alert
from aps_mirror.errors import ConfigError

log = logging.getLogger("aps_mirror.alerts")

DEADLINE_ENV = "APS_MIRROR_DEADLINE"
DEFAULT_DEADLINE = "06:00"

FAILED = ("<mirror> run {{ dag_run.run_id }} failed: see its failed tasks' logs (summarize lists "
          "the failed projects; a run that never reached sync_batch failed in plan_work).")
LATE = ("<mirror> run {{ dag_run.run_id }} is not done by its deadline {{ deadline.deadline_time }}: "
        "a batch is slow or stuck, or sync_batch waits for its pool (`airflow pools list`).")


class MirrorAlertNotifier(BaseNotifier):
    """One WARNING line on the `aps_mirror.alerts` logger; `message` is a Jinja template over the
    callback's context (`dag_run`, and `deadline` for a missed deadline)."""

    template_fields = ("message",)

    def __init__(self, message: str = FAILED, context: Any = None, mirror: str = "aps_mirror") -> None:
        super().__init__(context=context)
        self.message = message.replace("<mirror>", mirror)  # the DAG's id: which mirror is in trouble

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # A sandboxed environment of its own: the DAG in a failure callback's context may be the
        # serialized one (under `airflow dags test`), which cannot make the DAG's environment.
        from jinja2.sandbox import SandboxedEnvironment

        super().render_template_fields(context, jinja_env or SandboxedEnvironment(cache_size=0))

    def notify(self, context: Any) -> None:
        log.warning("aps_mirror alert: %s", self.message)

    async def async_notify(self, context: Any) -> None:
        self.notify(context)


def deadline_after_start(raw: str | None, label: str = DEADLINE_ENV) -> timedelta | None:
    """`HH:MM` (UTC, after the midnight start) as the time the run may take; None for `off`."""
    text = (raw or DEFAULT_DEADLINE).strip().lower()
    if text in ("off", "none"):
        return None
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", text)
    if not match or text in ("0:00", "00:00"):
        raise ConfigError(f"{label} {raw!r} is not accepted: use a UTC time of day after "
                          "midnight as HH:MM (e.g. 06:00), or off.")
    return timedelta(hours=int(match[1]), minutes=int(match[2]))


def nightly_deadline(raw: str | None = None, *, mirror: str = "aps_mirror") -> Any | None:
    """The DeadlineAlert when a scheduled run is not done `raw` (HH:MM; default `APS_MIRROR_DEADLINE`)
    after its scheduled start (manual runs have none, so Airflow sets them no deadline); None
    for `off`, and on Airflow 3.1, which has no deadline alerts (`compat`)."""
    env = os.environ.get(DEADLINE_ENV)
    if raw is not None:
        interval = deadline_after_start(raw, label="deadline")
    else:
        interval = deadline_after_start(env)
    if interval is None:
        return None
    return deadline_alert(interval, MirrorAlertNotifier, {"message": LATE, "mirror": mirror},
                          name=f"{mirror} nightly deadline", requested=(raw or env) is not None)
