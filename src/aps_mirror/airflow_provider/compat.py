"""What differs between the Airflow releases aps-mirror supports (3.1 to the newest 3.x), in one place.

Features of newer releases degrade on older ones rather than fail the DAG file:
- retry policies (`airflow.sdk.ExceptionRetryPolicy`, Airflow 3.3+): without them a task that
  cannot succeed (a bad connection) uses its plain `retries` like any other failure;
- deadline alerts (`airflow.sdk.DeadlineAlert`, public from Airflow 3.2; named from 3.3): without
  them a mirror has no deadline, only its failure callback;
- `retry_exponential_backoff` is a multiplier from Airflow 3.2; on 3.1 a bool (True doubles);
- `airflow.sdk.exceptions` and `airflow.sdk.configuration` (Airflow 3.2+): on 3.1 the same
  exceptions and settings come from `airflow.exceptions` and `airflow.configuration`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import airflow.sdk

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSkipException
except ImportError:  # Airflow 3.1: the task SDK raises the core's exceptions
    from airflow.exceptions import AirflowNotFoundException, AirflowSkipException

log = logging.getLogger(__name__)

RETRY_POLICIES_SUPPORTED = hasattr(airflow.sdk, "ExceptionRetryPolicy")
DEADLINE_ALERTS_SUPPORTED = hasattr(airflow.sdk, "DeadlineAlert")

__all__ = [
    "DEADLINE_ALERTS_SUPPORTED",
    "RETRY_POLICIES_SUPPORTED",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "airflow_conf",
    "deadline_alert",
    "fail_fast_retry_policy",
    "retry_exponential_backoff",
    "retry_policy_args",
]


def fail_fast_retry_policy(exceptions: Sequence[type[BaseException]], reason: str) -> Any | None:
    """A retry policy that fails the task at once on `exceptions` (and retries anything else as
    usual); None where Airflow has no retry policies."""
    if not RETRY_POLICIES_SUPPORTED:
        return None
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(rules=[RetryRule(exception=list(exceptions), action=RetryAction.FAIL,
                                                 reason=reason)])


def retry_policy_args(policy: Any | None) -> dict[str, Any]:
    """`{"retry_policy": policy}` for a task's (or `default_args`') keyword arguments; empty where
    there is no policy, so older Airflow never sees the argument."""
    return {} if policy is None else {"retry_policy": policy}


def retry_exponential_backoff(multiplier: float) -> float | bool:
    """The `retry_exponential_backoff` task argument for `multiplier`: the multiplier itself
    (Airflow 3.2+), or on 3.1, which only doubles, whether to back off at all."""
    try:
        from airflow.sdk.bases.operator import BASEOPERATOR_ARGS_EXPECTED_TYPES
    except ImportError:  # a newer layout: the multiplier
        return multiplier
    if BASEOPERATOR_ARGS_EXPECTED_TYPES.get("retry_exponential_backoff") is bool:
        return multiplier > 0
    return multiplier


def deadline_alert(interval: timedelta, notifier: type, kwargs: dict[str, Any], *,
                   name: str, requested: bool = True) -> Any | None:
    """A DeadlineAlert `interval` after the run's logical date whose callback is `notifier(**kwargs)`
    (a BaseNotifier, awaited by the triggerer); None where Airflow has no deadline alerts.

    `requested`: the deadline was asked for explicitly, so its absence is worth a warning.
    """
    if not DEADLINE_ALERTS_SUPPORTED:
        log.log(logging.WARNING if requested else logging.DEBUG,
                "%s: no deadline alert, this Airflow has none (Airflow 3.2+ has); failed runs are "
                "still reported by the failure callback.", name)
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    named = {"name": name} if "name" in inspect.signature(DeadlineAlert.__init__).parameters else {}
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE, interval=interval,
                         callback=AsyncCallback(notifier, kwargs=kwargs), **named)


def airflow_conf() -> Any:
    """Airflow's configuration as the running process sees it: the task SDK's where it has one
    (3.2+: tasks read their own settings), else the core's."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf
    return conf
