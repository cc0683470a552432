"""The ASGI edge: counts and logs every Autodesk-facing request and carries out injected faults."""

from __future__ import annotations

import asyncio
import html
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from aps_mirror.aps.endpoints import SIGNED_URL_DOWNLOAD, SIGNED_URL_UPLOAD, classify

from .faults import BOM, RANGE_403, RESET, SLOW, STATUS, TIMEOUT, TRUNCATE, Fault

if TYPE_CHECKING:
    from .sim import Simulator

request_log = logging.getLogger("aps_mirror.simulator.requests")
MORE_INFO = "https://aps.autodesk.com/en/docs/oauth/v2/developers_guide/error_handling/"
SIGNED_PREFIX = "/_sim/s3/"
UTF8_BOM = b"\xef\xbb\xbf"
Scope = dict[str, Any]


def fault_response(fault: Fault, endpoint: str) -> Response:
    """The answer of a ``status`` (or ``range403``) fault, in the envelope of that endpoint."""
    if fault.kind == RANGE_403 or (endpoint in (SIGNED_URL_DOWNLOAD, SIGNED_URL_UPLOAD) and fault.status == 403):
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
               f"<Message>{html.escape('Request has expired')}</Message></Error>")
        return Response(xml, 403, media_type="application/xml")
    if fault.status == 429:
        return JSONResponse({"developerMessage": "Quota limit exceeded."}, 429,
                            headers={"Retry-After": str(1 if fault.retry_after is None else fault.retry_after)})
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse({"developerMessage": f"Simulated fault (HTTP {fault.status}).", "userMessage": "",
                         "errorCode": "", "more info": MORE_INFO}, fault.status, headers=headers)


def _endpoint(path: str, method: str) -> str:
    """The endpoint class of a request; a signed URL is S3's: a GET downloads, a PUT uploads a part."""
    if path.startswith(SIGNED_PREFIX):
        return SIGNED_URL_UPLOAD if method == "PUT" else SIGNED_URL_DOWNLOAD
    return classify(path, method)


def _range_start(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"range":
            first = value.decode("latin-1").removeprefix("bytes=").partition("-")[0].strip()
            return int(first) if first.isdigit() else None
    return None


def _transport(send: Any) -> Any:
    """uvicorn's transport behind its ``send`` (None under other servers or test clients)."""
    return getattr(getattr(send, "__self__", None), "transport", None)


async def _drop_connection(send: Any, reset: bool) -> None:
    """Close the client connection without an answer (RST when ``reset``)."""
    transport = _transport(send)
    if transport is None:
        raise ConnectionAbortedError("simulated connection drop")
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    for _ in range(3):  # let uvicorn notice the disconnect before the app returns
        await asyncio.sleep(0)


class SimApp(FastAPI):
    """FastAPI plus the traffic edge. It wraps the app *outside* Starlette's middleware so that
    it sees uvicorn's own ``send`` (needed to drop or truncate a connection)."""

    sim: Simulator

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or (path.startswith("/_sim/") and not path.startswith(SIGNED_PREFIX)):
            await super().__call__(scope, receive, send)
            return
        sim = self.sim
        endpoint = _endpoint(path, scope["method"])
        fault = sim.faults.take(endpoint, _range_start(scope) if endpoint == SIGNED_URL_DOWNLOAD else None)
        state: dict[str, Any] = scope.setdefault("state", {})
        recorded = {"done": False}

        def record(code: int) -> None:
            """Count the request once, when its status is known (or it was dropped: status 0)."""
            if recorded["done"]:
                return
            recorded["done"] = True
            sim.traffic.record(scope["method"], path, code, endpoint)
            request_log.info("%s %s -> %s [%s]%s", scope["method"], path, code or "dropped", endpoint,
                             f" (injected {fault.kind})" if fault is not None else "")

        try:
            await self._serve(scope, receive, send, self._edge_send(send, record, fault, state), fault, endpoint)
        finally:
            record(0)

    async def _serve(self, scope: Scope, receive: Any, raw_send: Any, send: Any, fault: Fault | None,
                     endpoint: str) -> None:
        if fault is None or fault.kind in (BOM, TRUNCATE):
            await super().__call__(scope, receive, send)
            return
        if fault.kind == SLOW:
            await asyncio.sleep(fault.seconds)
            await super().__call__(scope, receive, send)
        elif fault.kind in (STATUS, RANGE_403):
            await fault_response(fault, endpoint)(scope, receive, send)
        elif fault.kind == TIMEOUT:
            await asyncio.sleep(fault.seconds)
            await _drop_connection(raw_send, reset=False)
        elif fault.kind == RESET:
            await _drop_connection(raw_send, reset=True)

    def _edge_send(self, send: Any, record: Any, fault: Fault | None, state: dict[str, Any]) -> Any:
        """``send`` that records the status, adds X-RateLimit-* headers and applies body faults."""
        sim = self.sim
        body = {"announced": 0, "sent": 0, "cut": None, "dropped": False}

        async def edge(message: dict[str, Any]) -> None:
            if body["dropped"]:
                return
            if message["type"] == "http.response.start":
                record(message["status"])
                headers = list(message.get("headers", []))
                limit = state.get("ratelimit")
                if sim.rate_limit_headers and limit is not None:
                    headers += [(b"x-ratelimit-limit", str(limit[0]).encode()),
                                (b"x-ratelimit-remaining", str(limit[1]).encode()),
                                (b"x-ratelimit-reset", str(limit[2]).encode())]
                if fault is not None and fault.kind in (BOM, TRUNCATE):
                    headers = self._rewrite_length(headers, fault, body)
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and fault is not None:
                chunk = message.get("body", b"")
                if fault.kind == BOM and body["sent"] == 0:
                    chunk = UTF8_BOM + chunk
                if fault.kind == TRUNCATE and body["cut"] is not None:
                    room = int(body["cut"]) - int(body["sent"])
                    if len(chunk) >= room:
                        await send({"type": "http.response.body", "body": chunk[:room], "more_body": True})
                        body["dropped"] = True
                        await _drop_connection(send, reset=False)
                        return
                body["sent"] += len(chunk)
                message = {**message, "body": chunk}
            await send(message)

        return edge

    @staticmethod
    def _rewrite_length(headers: list[tuple[bytes, bytes]], fault: Fault, body: dict[str, Any]) -> list[Any]:
        out = []
        for name, value in headers:
            if name.lower() == b"content-length":
                length = int(value)
                if fault.kind == BOM:
                    value = str(length + len(UTF8_BOM)).encode()
                else:
                    body["cut"] = int(length * fault.fraction)
            out.append((name, value))
        return out
