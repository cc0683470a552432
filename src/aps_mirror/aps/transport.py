"""One authenticated HTTP channel to APS: retries, token refresh on 401, and call counting.

The same channel serves the Vault Data API (aps_mirror.vault): another base URL, another
bearer source (a Vault session, or the APS provider shared) and the same retries and budget.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Protocol
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters

from aps_mirror.aps import endpoints, redact
from aps_mirror.aps.auth import BearerAuth, TokenProvider, TokenStore
from aps_mirror.aps.parsing import loads_json
from aps_mirror.aps.ratelimit import LocalRateBudget, RateBudget, RedisRateBudget
from aps_mirror.aps.retry import (RETRYABLE_STATUSES, RetryableResponse, RetryPolicy, make_retrying,
                                  server_wait_seconds)
from aps_mirror.connection import ApsConnection
from aps_mirror.errors import ApiError, RateLimited

log = logging.getLogger(__name__)

USER_AGENT = "aps-mirror/0.1 (+https://github.com/aps-mirror/aps-mirror)"


POOL_SIZE = 32  # connections kept per host


class BearerSource(Protocol):
    """Puts a bearer token on each request, and forgets one the server refused (a 401)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest: ...

    def invalidate(self, rejected: str) -> None: ...


class CallTally:
    """Requests counted within one scope (say, one project's sync), whatever thread sent them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def add(self, counts: Counter[str], endpoint: str) -> None:
        with self._lock:
            counts[endpoint] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    def throttled_snapshot(self) -> dict[str, int]:
        """Requests answered 429, per endpoint class."""
        with self._lock:
            return dict(sorted(self.throttled.items()))


# The tallies open in this context: a request counts in each (run, project, ...). Worker
# threads see them when started through aps_mirror.threads.ContextThreadPool.
_open_tallies: contextvars.ContextVar[tuple[CallTally, ...]] = contextvars.ContextVar("aps_call_tallies", default=())


class CallCounter(CallTally):
    """Requests sent per endpoint class (every attempt, retries and token calls included), in
    all, and in each scope opened with `tally()`."""

    def sent(self, endpoint: str) -> None:
        for tally in (self, *_open_tallies.get()):
            tally.add(tally.calls, endpoint)

    def was_throttled(self, endpoint: str) -> None:
        for tally in (self, *_open_tallies.get()):
            tally.add(tally.throttled, endpoint)

    @staticmethod
    @contextmanager
    def tally() -> Iterator[CallTally]:
        """Count the requests this context (and the threads it starts) sends while open."""
        scope = CallTally()
        token = _open_tallies.set((*_open_tallies.get(), scope))
        try:
            yield scope
        finally:
            _open_tallies.reset(token)


class ApsTransport:
    """Sends requests to APS with a valid token, retrying what is worth retrying."""

    def __init__(
        self,
        connection: ApsConnection,
        token_store: TokenStore | None = None,
        *,
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        budget: RateBudget | None = None,
        base_url: str | None = None,
        bearer: BearerSource | None = None,
        service: str = "APS",
        advice: Mapping[int, str] | None = None,
    ) -> None:
        """``base_url``, ``bearer``, ``service`` (the name in error messages) and ``advice`` (a
        hint per final status) default to APS's; the Vault client passes its own."""
        self.connection = connection
        self.base_url = (base_url or connection.base_url).rstrip("/")
        self.service = service
        self.advice = _ADVICE if advice is None else advice
        # x-user-id acts for an ACC user under a 2-legged token: APS's header, for APS only.
        self._user_id = connection.user_id if base_url is None else None
        self.counter = CallCounter()
        self.session = session or requests.Session()
        # Project workers x ranged parts in flight exceed requests' default pool of 10.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = timeout
        self.tokens = TokenProvider(connection, self.session, token_store,
                                    on_request=self.counter.sent, retry_policy=self.retry_policy)
        self._auth: BearerSource = bearer or BearerAuth(self.tokens)
        self.budget = budget or default_budget(connection)
        redact.scrub_http_logs()  # urllib3 logs signed URLs in full at DEBUG (`-v`)

    def url(self, path_or_url: str) -> str:
        """An absolute URL; `links.next` may come back relative or absolute."""
        return urljoin(self.base_url + "/", path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        stream: bool = False,
        endpoint: str | None = None,
        json: Any = None,
        data: bytes | None = None,
    ) -> requests.Response:
        """Send one logical request; raise ApiError for a final error status. A body (`json`
        or `data`) is held whole, so every retry sends it again."""
        url = self.url(path_or_url)
        endpoint = endpoint or endpoints.classify(urlsplit(url).path, method)
        extra_headers = dict(headers or {})
        if authenticated and self._user_id:
            extra_headers.setdefault("x-user-id", self._user_id)
        reauthenticated = False

        budget = endpoints.budget_of(endpoint)

        def attempt() -> requests.Response:
            nonlocal reauthenticated
            self.budget.acquire(budget)
            self.counter.sent(endpoint)
            try:
                response = self.session.request(
                    method, url, params=params, headers=extra_headers, stream=stream, json=json, data=data,
                    auth=self._auth if authenticated else None, timeout=self.timeout,
                )
            except requests.RequestException as exc:
                # Connection errors quote the URL; a signed one is a credential.
                clean = redact.scrubbed_error(exc)
                if clean is None:
                    raise
                raise clean from None  # the chained urllib3 error quotes it too
            if response.status_code == 401 and authenticated and not reauthenticated:
                # The token expired early or was revoked: fetch a new one and try once more.
                reauthenticated = True
                rejected = (response.request.headers.get("Authorization") or "").removeprefix("Bearer ")
                self._auth.invalidate(rejected)
                _release(response)
                return attempt()
            if response.status_code in RETRYABLE_STATUSES:
                if response.status_code == 429:
                    self.counter.was_throttled(endpoint)
                    self.budget.throttled(budget, server_wait_seconds(response))
                _release(response)
                raise RetryableResponse(response)
            return response

        try:
            response = make_retrying(self.retry_policy, describe=f"{method} {endpoint}")(attempt)
        except RetryableResponse as exc:
            response = exc.response
        if response.status_code >= 400:
            raise _api_error(response, endpoint, self.service, self.advice)
        return response

    def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path_or_url, params=params)
        try:
            return loads_json(response.content)
        except ValueError:
            raise ApiError(
                f"{self.service} answered {urlsplit(response.url).path} with a body that is not JSON; "
                "this is usually transient, run again.",
                status=response.status_code,
            ) from None


def default_budget(connection: ApsConnection) -> RateBudget:
    """The deployment-wide budget when a Redis URL is configured, else this process's own."""
    if connection.rate_budget_url:
        return RedisRateBudget(connection.rate_budget_url, connection.client_id, connection.rate_scale)
    return LocalRateBudget(connection.rate_scale)


def _release(response: requests.Response) -> None:
    """Read a (small) error body so its pooled connection is freed and the body stays readable."""
    try:
        response.content
    except requests.RequestException:
        pass


def _api_error(response: requests.Response, endpoint: str, service: str = "APS",
               advice_by_status: Mapping[int, str] | None = None) -> ApiError:
    """Turn an error answer (APS's JSON:API, gateway or OAuth envelope, or Vault's
    ErrorResponse ``{title, detail, statusCode, errorCode}``) into an ApiError."""
    try:
        body = loads_json(response.content) if response.content else {}
    except ValueError:
        body = {}
    code = detail = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = errors[0].get("code")
            detail = errors[0].get("detail") or errors[0].get("title")
        else:
            code = body.get("errorCode") or body.get("error")
            detail = body.get("developerMessage") or body.get("error_description") or body.get("detail")
    request_id = response.headers.get("x-ads-request-id") or response.headers.get("x-request-id")
    path = urlsplit(response.url).path if response.url else endpoint
    advice = (_ADVICE if advice_by_status is None else advice_by_status).get(response.status_code, "")
    message = f"{service} answered HTTP {response.status_code} for {path}"
    if code or detail:
        message += f" ({code or ''}{': ' if code and detail else ''}{detail or ''})"
    message += f". {advice}".rstrip()
    cls = RateLimited if response.status_code == 429 else ApiError
    return cls(message, status=response.status_code, code=code, endpoint=endpoint, request_id=request_id)


_ADVICE = {
    400: "The request was malformed; this is a bug in aps-mirror, please report it.",
    401: "The access token was refused twice; check the connection's credentials.",
    403: "The app or user lacks permission here: check the scopes, and for ACC/BIM 360 that "
         "the app is added as a custom integration in the account admin.",
    404: "It no longer exists or this user cannot see it; it will be skipped.",
    429: "APS kept rate-limiting after every retry; lower the parallelism or run later.",
}
