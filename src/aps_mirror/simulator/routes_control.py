"""The ``/_sim/`` control namespace (no Autodesk client calls it): stats, faults, clock, changes, churn,
and the same for the Vault server under ``/_sim/vault/``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .sim import Simulator

Handler = Callable[[dict[str, Any]], Any]


def _json_route(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Wrap ``handler(body) -> dict`` so a malformed body is a 400 ``{"error": ...}``."""

    async def route(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = (await request.json()) if raw else {}
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            result = handler({**body, **request.path_params})
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        return JSONResponse(result if result is not None else {"ok": True})

    return route


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def register(app: FastAPI, sim: Simulator) -> None:
    """Add every ``/_sim/`` control route."""

    def post(path: str, handler: Handler, methods: tuple[str, ...] = ("POST",)) -> None:
        app.add_api_route(path, _json_route(handler), methods=list(methods), include_in_schema=True)

    @app.get("/_sim/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "seed": sim.seed}

    @app.get("/_sim/stats")
    def stats() -> dict[str, Any]:
        return sim.stats()

    @app.get("/_sim/faults")
    def faults() -> dict[str, Any]:
        return {"faults": sim.faults.pending(), "seed": sim.faults.seed_value}

    @app.get("/_sim/files")
    def files(include_deleted: bool = False) -> dict[str, Any]:
        return {"files": [{"hub": e.hub, "project": e.project, "path": list(e.path), "item_id": e.item_id,
                           "version_id": e.tip.id, "name": e.tip.name, "size": e.tip.size,
                           "deleted": e.tip.deleted,
                           "sha1": None if e.tip.deleted else sim.sha1(e.tip.id)}
                          for e in sim.iter_files(include_deleted)]}

    @app.get("/_sim/service-accounts")
    def service_accounts() -> dict[str, Any]:
        return {"serviceAccounts": sim.oauth.service_accounts.listing()}

    def add_fault(b: dict[str, Any]) -> dict[str, Any]:
        if "seed" in b:
            sim.faults.seed(b["seed"])
        if "endpoint" in b or "seed" not in b:
            sim.inject_fault(str(b["endpoint"]), _opt_int(b.get("status")),
                             _opt_int(b["count"]) if "count" in b else (None if "rate" in b else 1),
                             _opt_int(b.get("retry_after")), kind=str(b.get("kind", "status")),
                             rate=float(b.get("rate", 1.0)),
                             seconds=None if b.get("seconds") is None else float(b["seconds"]),
                             fraction=float(b.get("fraction", 0.5)))
        return {"faults": sim.faults.pending(), "seed": sim.faults.seed_value}

    post("/_sim/faults", add_fault)
    post("/_sim/faults", lambda b: sim.clear_faults(), ("DELETE",))
    post("/_sim/reset-stats", lambda b: sim.reset_stats())
    post("/_sim/clock/advance", lambda b: {"now": sim.advance_clock(float(b["seconds"]))})

    def rate_scale(b: dict[str, Any]) -> dict[str, Any]:
        sim.rate_scale = float(b["rate_scale"])
        return {"rate_scale": sim.rate_scale}

    def switches(b: dict[str, Any]) -> dict[str, Any]:
        if "rate_limit_headers" in b:
            sim.rate_limit_headers = bool(b["rate_limit_headers"])
        if "reuse_detection" in b:
            sim.reuse_detection = bool(b["reuse_detection"])
        if "unreachable_regions" in b:
            sim.unreachable_regions = {str(r) for r in b["unreachable_regions"]}
        if "honor_range" in b:
            sim.honor_range = bool(b["honor_range"])
        return {"rate_limit_headers": sim.rate_limit_headers, "reuse_detection": sim.reuse_detection,
                "unreachable_regions": sorted(sim.unreachable_regions), "rate_scale": sim.rate_scale,
                "honor_range": sim.honor_range}

    post("/_sim/rate-scale", rate_scale)
    post("/_sim/switches", switches)
    post("/_sim/tokens/expire", lambda b: sim.expire_access_tokens())
    post("/_sim/user-token", lambda b: sim.user_tokens(b.get("scope") or "data:read user-profile:read",
                                                        user=b.get("user")))
    post("/_sim/download-status", lambda b: sim.set_download_status(str(b["version_id"]), str(b["status"])))

    def add_service_account(b: dict[str, Any]) -> dict[str, Any]:
        reg = sim.add_service_account(str(b.get("name", "mirror")))
        return {"serviceAccountId": reg.service_account_id, "kid": reg.kid, "privateKey": reg.private_key_pem,
                "email": reg.email, "clientId": sim.client_id}

    post("/_sim/service-accounts", add_service_account)

    # ---- changes: the Python API of Simulator over HTTP
    post("/_sim/projects", lambda b: {"project_id": sim.add_project(str(b["name"]), b.get("hub_id"))})
    post("/_sim/projects/{project_id}", lambda b: sim.delete_project(b["project_id"]), ("DELETE",))
    post("/_sim/folders", lambda b: {"folder_id": sim.add_folder(b["project_id"], b["parent_folder_id"],
                                                                 str(b["name"]))})

    def change_folder(b: dict[str, Any]) -> dict[str, Any]:
        if "name" in b:
            sim.rename_folder(b["folder_id"], str(b["name"]))
        if "parent_folder_id" in b:
            sim.move_folder(b["folder_id"], b["parent_folder_id"])
        return {"folder_id": b["folder_id"]}

    post("/_sim/folders/{folder_id}", change_folder, ("PATCH",))
    post("/_sim/folders/{folder_id}", lambda b: sim.delete_folder(b["folder_id"]), ("DELETE",))

    def add_file(b: dict[str, Any]) -> dict[str, Any]:
        item_id = sim.add_file(b["project_id"], b["folder_id"], str(b["name"]), int(b.get("size", 1024)),
                               b.get("content_seed"))
        return {"item_id": item_id, "version_id": sim.account.item(item_id).tip.id}

    post("/_sim/files", add_file)
    post("/_sim/items/{item_id}/versions",
         lambda b: {"version_id": sim.add_version(b["item_id"], _opt_int(b.get("size")), b.get("name"))})

    def change_item(b: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"item_id": b["item_id"]}
        if "name" in b:
            out["version_id"] = sim.rename_item(b["item_id"], str(b["name"]))
        if "folder_id" in b:
            sim.move_item(b["item_id"], b["folder_id"])
        return out

    post("/_sim/items/{item_id}", change_item, ("PATCH",))
    post("/_sim/items/{item_id}", lambda b: {"version_id": sim.delete_item(b["item_id"])}, ("DELETE",))
    post("/_sim/items/{item_id}/restore", lambda b: {"version_id": sim.restore_item(b["item_id"])})
    post("/_sim/churn", lambda b: sim.churn(float(b["projects_fraction"]), int(b["folders_per_project"]),
                                            b.get("seed")))

    # ---- webhooks: delivery switches and settings, failing callback URLs, the log, waiting for quiet
    def webhook_switches(b: dict[str, Any]) -> dict[str, Any]:
        if "seed" in b:
            sim.webhooks.seed(b.pop("seed"))
        return {**sim.webhooks.configure(**b), "seed": sim.webhooks.deliverer.seed_value}

    def fail_webhooks(b: dict[str, Any]) -> dict[str, Any]:
        sim.webhooks.fail_deliveries(str(b["url"]), int(b.get("status", 500)), _opt_int(b.get("count")))
        return {"failing": sim.webhooks.deliverer.failing()}

    post("/_sim/webhooks/switches", webhook_switches)
    post("/_sim/webhooks/fail", fail_webhooks)
    post("/_sim/webhooks/fail", lambda b: sim.webhooks.clear_failures(), ("DELETE",))
    post("/_sim/webhooks/drain", lambda b: {"drained": sim.webhooks.drain(float(b.get("timeout", 30)))})
    post("/_sim/webhooks/deliveries", lambda b: sim.webhooks.clear_log(), ("DELETE",))

    @app.get("/_sim/webhooks/deliveries")
    def webhook_deliveries() -> dict[str, Any]:
        return {"deliveries": sim.webhooks.deliveries()}

    _register_vault(app, sim, post)


def _register_vault(app: FastAPI, sim: Simulator, post: Callable[..., None]) -> None:
    """``/_sim/vault/``: the Vault side's ground truth, switches, sessions and changes."""
    vault = sim.vault

    @app.get("/_sim/vault/files")
    def vault_files(include_cloaked: bool = False) -> dict[str, Any]:
        return {"files": [{"vault": e.vault, "path": list(e.path), "file_id": e.file_id, "version_id": e.tip.id,
                           "version": e.tip.number, "name": e.tip.file.name, "size": e.tip.size}
                          for e in vault.iter_files(include_cloaked)]}

    @app.get("/_sim/vault/{vault_id}/file-versions/{version_id}/sha256")
    def vault_sha256(vault_id: str, version_id: str) -> dict[str, Any]:
        return {"sha256": vault.sha256(vault_id, version_id)}

    post("/_sim/vault/switches", lambda b: vault.configure(
        None if b.get("gateway") is None else bool(b["gateway"]), _opt_int(b.get("max_page_size")),
        b.get("indexing_status"), _opt_int(b.get("payload_limit"))))
    post("/_sim/vault/sessions/expire", lambda b: vault.expire_sessions())
    post("/_sim/vault/session-token", lambda b: {"accessToken": vault.session_token(
        str(b.get("user", "sam.builder")), b.get("vault"))})
    post("/_sim/vault/churn", lambda b: vault.churn(float(b["fraction"]), b.get("seed")))

    post("/_sim/vault/{vault_id}/folders", lambda b: {"folder_id": vault.add_folder(
        b["vault_id"], str(b["parent_id"]), str(b["name"]), bool(b.get("cloaked", False)))})

    def change_folder(b: dict[str, Any]) -> dict[str, Any]:
        if "name" in b:
            vault.rename_folder(b["vault_id"], b["folder_id"], str(b["name"]))
        if "parent_id" in b:
            vault.move_folder(b["vault_id"], b["folder_id"], str(b["parent_id"]))
        return {"folder_id": b["folder_id"]}

    post("/_sim/vault/{vault_id}/folders/{folder_id}", change_folder, ("PATCH",))
    post("/_sim/vault/{vault_id}/folders/{folder_id}", lambda b: vault.delete_folder(b["vault_id"], b["folder_id"]),
         ("DELETE",))

    def add_file(b: dict[str, Any]) -> dict[str, Any]:
        file_id = vault.add_file(b["vault_id"], str(b["folder_id"]), str(b["name"]), int(b.get("size", 1024)),
                                 bool(b.get("cloaked", False)))
        return {"file_id": file_id, "version_id": vault.file(b["vault_id"], file_id).tip.id}

    post("/_sim/vault/{vault_id}/files", add_file)
    post("/_sim/vault/{vault_id}/files/{file_id}/versions", lambda b: {"version_id": vault.check_in(
        b["vault_id"], b["file_id"], _opt_int(b.get("size")), b.get("state"), b.get("revision"))})
    post("/_sim/vault/{vault_id}/files/{file_id}/checkout",
         lambda b: vault.check_out(b["vault_id"], b["file_id"], str(b.get("user", "Administrator"))))

    def change_file(b: dict[str, Any]) -> dict[str, Any]:
        if "name" in b:
            vault.rename_file(b["vault_id"], b["file_id"], str(b["name"]))
        if "folder_id" in b:
            vault.move_file(b["vault_id"], b["file_id"], str(b["folder_id"]))
        return {"file_id": b["file_id"]}

    post("/_sim/vault/{vault_id}/files/{file_id}", change_file, ("PATCH",))
    post("/_sim/vault/{vault_id}/files/{file_id}", lambda b: vault.delete_file(b["vault_id"], b["file_id"]),
         ("DELETE",))
    post("/_sim/vault/{vault_id}/links", lambda b: {"link_id": vault.add_link(
        b["vault_id"], str(b["folder_id"]), str(b["target_id"]))})
